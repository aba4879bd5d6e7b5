"""Command line: ``explorer ...`` or ``python -m explorer ...``.

Every command drives the same core iterators as the app.  ``--json`` prints a machine-readable
summary on stdout (progress goes to stderr).  Every parameter is checked, and the memory a request
needs, before any work starts; every failure a user can cause is one line on stderr
(``explorer: error: ...``) with exit status 2, and leaves no output file behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.budget import check_memory, format_bytes
from explorer.core.io import atomic_path, json_default
from explorer.core.progress import Progress, run
from explorer.core.support import DEFAULT_FLOOR as DEFAULT_SUPPORT_FLOOR

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"

#: The default data shipped in assets/, each built by one `explorer generate` command.
ASSET_COMMANDS: dict[str, list[str]] = {
    "phi4_L64_beta0.50.npz": ["phi4", "--size", "64", "--samples", "256", "--beta", "0.50",
                              "--lam", "1", "--seed", "1"],
    "phi4_L64_beta0.68.npz": ["phi4", "--size", "64", "--samples", "256", "--beta", "0.68",
                              "--lam", "1", "--seed", "2"],
    "phi4_L64_beta0.76.npz": ["phi4", "--size", "64", "--samples", "256", "--beta", "0.76",
                              "--lam", "1", "--seed", "3"],
    "gaussian_L64_eta2.npz": ["gaussian", "--size", "64", "--samples", "256", "--kind", "powerlaw",
                              "--slope", "2", "--mass", "0", "--seed", "4"],
    "turbulence_L128.npz": ["turbulence", "--size", "128", "--samples", "16", "--seed", "5"],
    "turbulence_L256.npz": ["turbulence", "--size", "256", "--samples", "16", "--seed", "6"],
}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise CLIError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------------ progress display
class ProgressPrinter:
    """Shows progress reports on stderr: a live line on a terminal, a line per stage otherwise.

    Warnings are always shown, also with ``quiet``."""

    #: the stream holding an unfinished live line (an error message must not be appended to it)
    open_line = None

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stage = None
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        if p.info.get("warning"):  # warnings are never silenced, not even by --quiet
            self.stream.write(("\r\033[K" if self.tty and not self.quiet else "")
                              + f"warning ({p.info.get('scale', p.stage)}): {p.info['warning']}\n")
            self.stream.flush()
            if ProgressPrinter.open_line is self.stream:
                ProgressPrinter.open_line = None
        if self.quiet:
            return
        now = time.monotonic()
        info = " ".join(f"{k}={_fmt(v)}" for k, v in p.info.items() if k != "warning")
        line = f"[{p.stage}] {p.step}/{p.total} {info}".rstrip()
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if p.done else ""))
            self.stream.flush()
            ProgressPrinter.open_line = None if p.done else self.stream
        elif p.stage != self.stage or p.done or now - self.last > 5.0:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last = now
        self.stage = p.stage


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


# ------------------------------------------------------------------ generate
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {v}")
    return v


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _int_in(lo: int, hi: int | None = None):
    """Argument type: a whole number in lo..hi (no upper bound when hi is None)."""
    where = f"in {lo}..{hi}" if hi is not None else f">= {lo}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected a whole number {where}, got {v}")
        return v

    return parse


def _power_of_two(lo: int, hi: int):
    """Argument type: a power of two in lo..hi (checked before any work)."""

    def parse(text: str) -> int:
        v = _int_in(1)(text)
        if not lo <= v <= hi or v & (v - 1):
            raise argparse.ArgumentTypeError(f"expected a power of two in {lo}..{hi}, got {v}")
        return v

    return parse


def _float_where(rule: str, ok):
    """Argument type: a finite number satisfying ``ok`` (described by ``rule``, e.g. '> 0')."""

    def parse(text: str) -> float:
        v = _finite_float(text)
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected a finite number {rule}, got {text!r}")
        return v

    return parse


_positive_float = _float_where("> 0", lambda v: v > 0)
_nonnegative_float = _float_where(">= 0", lambda v: v >= 0)


def _support_floor(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    v = _finite_float(text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"the support floor must be in [0, 1) or 'none', got {text!r}")
    return v


def _add_generate(sub) -> None:
    gen = sub.add_parser("generate", help="generate a batch of fields into an .npz file")
    kinds = gen.add_subparsers(dest="kind", metavar="{phi4,gaussian,turbulence}")
    kinds.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--samples", type=_positive_int, default=256, help="number of fields N")
    common.add_argument("--seed", type=_int_in(0), default=0, help="random seed")
    common.add_argument("--out", required=True, help="output .npz file")
    common.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress display")

    def size(parser, kind: str, default: int) -> None:
        lo, hi = GENERATE_SIZES[kind]
        parser.add_argument("--size", type=_power_of_two(lo, hi), default=default,
                            help=f"lattice side L (a power of two in {lo}..{hi})")

    p = kinds.add_parser("phi4", parents=[common], help="lattice phi^4 (canonical form)")
    size(p, "phi4", 64)
    p.add_argument("--beta", type=_nonnegative_float, default=0.68,
                   help="nearest-neighbour coupling (>= 0)")
    p.add_argument("--lam", type=_nonnegative_float, default=1.0, help="quartic coupling lambda (>= 0)")
    p.add_argument("--chains", type=_positive_int, default=None,
                   help="parallel Markov chains (default min(N, 256))")
    p.add_argument("--local-only", action="store_true",
                   help="Metropolis moves only, no cluster updates (slow near beta_c)")
    p.add_argument("--require-equilibrium", action="store_true",
                   help="fail (exit 2, nothing written) when tau_int cannot be measured or the "
                        "production run decorrelates more slowly than the pilot said; by default "
                        "such data are written with a warning and meta equilibrated=false")

    g = kinds.add_parser("gaussian", parents=[common], help="exact Gaussian field (FFT)")
    size(g, "gaussian", 64)
    g.add_argument("--kind", dest="spectrum", choices=["powerlaw", "free"], default="powerlaw",
                   help="powerlaw: P=(k^2+m^2)^(-slope/2); free: P=1/(m^2+beta*khat^2)")
    g.add_argument("--slope", type=_nonnegative_float, default=2.0,
                   help="power-law exponent eta (>= 0)")
    g.add_argument("--mass", type=_nonnegative_float, default=0.0, help="mass m (>= 0)")
    g.add_argument("--beta", type=_positive_float, default=1.0, help="free-field stiffness (> 0)")

    t = kinds.add_parser("turbulence", parents=[common], help="2D forced turbulence (vorticity)")
    size(t, "turbulence", 128)
    t.add_argument("--spinup", type=_nonnegative_float, default=10.0,
                   help="spin-up time before sampling (>= 0)")
    t.add_argument("--interval", type=_positive_float, default=1.0,
                   help="time between snapshots (> 0)")
    t.add_argument("--nu", type=_positive_float, default=None,
                   help="hyperviscosity (> 0; default: scaled with the resolution)")
    t.add_argument("--order", type=_int_in(1, 16), default=4,
                   help="hyperviscosity order p in (-Delta)^p (1..16)")
    t.add_argument("--drag", type=_nonnegative_float, default=0.1, help="linear drag alpha (>= 0)")
    t.add_argument("--kf", type=_int_in(1), default=4,
                   help="Kolmogorov forcing wavenumber (1 <= kf < size/3)")
    t.add_argument("--cfl", type=_float_where("in (0, 1.5]", lambda v: 0 < v <= 1.5), default=0.5,
                   help="CFL number (0 < cfl <= 1.5)")


def _iterator_for(args):
    if args.kind == "phi4":
        from explorer.core.fields.phi4 import iter_phi4

        return iter_phi4(size=args.size, n_samples=args.samples, beta=args.beta, lam=args.lam,
                         seed=args.seed, n_chains=args.chains, cluster=not args.local_only,
                         require_equilibrium=args.require_equilibrium)
    if args.kind == "gaussian":
        from explorer.core.fields.gaussian import iter_gaussian

        return iter_gaussian(size=args.size, n_samples=args.samples, kind=args.spectrum,
                             eta=args.slope, mass=args.mass, beta=args.beta, seed=args.seed)
    from explorer.core.fields.turbulence import iter_turbulence

    return iter_turbulence(size=args.size, n_snapshots=args.samples, spinup=args.spinup,
                           interval=args.interval, nu=args.nu, p=args.order, alpha=args.drag,
                           kf=args.kf, cfl=args.cfl, seed=args.seed)


def _check_generate(args) -> None:
    """Every parameter of ``generate`` and the memory it needs, before any work."""
    if args.kind == "gaussian":
        from explorer.core.fields.gaussian import check_gaussian_params

        check_gaussian_params(args.size, args.samples, args.spectrum, args.slope, args.mass,
                              args.beta)
    elif args.kind == "turbulence":
        from explorer.core.fields.turbulence import check_solver_params

        if not args.kf < args.size / 3:
            raise CLIError(f"--kf {args.kf} is too large for --size {args.size}: the forcing "
                           f"must lie inside the dealiased band, kf < size/3 = "
                           f"{args.size / 3:.4g}")
        check_solver_params(args.size, args.nu, args.order, args.drag, args.kf, args.cfl)
    needed, working = _generate_bytes(args)
    N, L = args.samples, args.size
    check_memory(needed, f"generate {args.kind}",
                 f"{N} fields of {L}x{L}: {format_bytes(4 * N * L * L)} of float32 output plus "
                 f"{format_bytes(working)} of float64 working arrays",
                 "use fewer --samples or a smaller --size")


def _generate_bytes(args) -> tuple[int, int]:
    """(peak bytes, working bytes beyond the float32 output) of ``generate``: the larger of the
    generator's own peak and the output plus the summary computed on it (float64 copies)."""
    N, L = args.samples, args.size
    pixels = L * L
    out = 4 * N * pixels
    if args.kind == "phi4":
        chains = args.chains or min(N, 256)
        per_chain = math.ceil(N / chains)
        run_peak = (4 * per_chain * chains + 64 * chains + 8 * N) * pixels
        summary = 40 * N * pixels
    elif args.kind == "gaussian":
        from explorer.core.fields.gaussian import gaussian_memory_bytes

        run_peak, summary = gaussian_memory_bytes(L, N), 16 * N * pixels
    else:
        from explorer.core.fields.turbulence import turbulence_memory_bytes

        run_peak, summary = turbulence_memory_bytes(L, N), 64 * N * pixels
    peak = max(run_peak, out + summary)
    return peak, peak - out


def cmd_generate(args, argv: list[str]) -> dict:
    from explorer.core.io import save_fields
    from explorer.core.summary import field_summary

    out = _check_out(args.out)
    _check_generate(args)
    t0 = time.perf_counter()
    fs = run(_iterator_for(args), ProgressPrinter(args.quiet), allow_partial=False)
    fs.meta["command"] = "explorer " + shlex.join(argv)
    fs.meta["seconds"] = round(time.perf_counter() - t0, 3)
    save_fields(out, fs)
    return {"out": str(out), **field_summary(fs)}


# ------------------------------------------------------------------ info
def cmd_info(args, argv) -> dict:
    from explorer.core.summary import field_summary

    return {"file": args.file, **field_summary(_load_fields(args.file))}


# ------------------------------------------------------------------ models
def _family_options(args) -> dict:
    opts: dict[str, Any] = {"radius": args.radius}
    if args.family == "phi4":
        opts["potential"] = args.potential
        if args.potential == "windows":
            opts["n_windows"] = args.windows
        else:
            opts["degree"] = args.degree
    if args.family == "scattering":
        opts["eps_rel"] = args.eps_rel
    return opts


def _check_depth(depth: int, L: int, flag: str = "--depth") -> None:
    from explorer.core import wavelets as wv

    deepest = wv.max_levels(L)
    if depth > deepest:
        raise CLIError(f"{flag} {depth} is too deep for {L}x{L} fields: at most {deepest} "
                       f"(2^depth must divide the size)")


def cmd_fit(args, argv) -> dict:
    from explorer.core.model import WCRGModel

    out = _check_out(args.out, args.data)
    WCRGModel(args.family, 0, args.wavelet, support_floor=args.support_floor,
              **_family_options(args))  # checks the family's options before the data are read
    fs = _load_fields(args.data)
    if args.depth is None:  # the app's default for these data
        from explorer.core.model import default_depth

        args.depth = default_depth(fs.size, fs.meta.get("generator"))
    _check_depth(args.depth, fs.size)
    model = WCRGModel(args.family, args.depth, args.wavelet, support_floor=args.support_floor,
                      **_family_options(args))
    t0 = time.perf_counter()
    provenance = {"data": Path(args.data).name, "data_meta": {k: fs.meta.get(k) for k in
                                                               ("generator", "params", "seed")},
                  "n_fields": fs.n, "command": "explorer " + shlex.join(argv)}
    model.fit(fs.fields, ProgressPrinter(args.quiet), method=args.method, ridge=args.ridge,
              provenance=provenance)
    with atomic_path(out) as tmp:
        model.save(tmp)
    summary = model.summary()
    return {"out": str(out), "seconds": time.perf_counter() - t0, **summary}


#: float64 bytes per pixel and sample of the coarse-to-fine sampler (chains, proposals,
#: gradients, the reconstructed finer fields), measured on the three families.
SAMPLE_BYTES_PER_PIXEL = 160


def cmd_sample(args, argv) -> dict:
    from explorer.core.io import save_fields

    out = _check_out(args.out, args.model)
    model = _load_model(args.model)
    L, n = model.stats["L"], args.samples
    check_memory((4 + SAMPLE_BYTES_PER_PIXEL) * n * L * L, "sample",
                 f"{n} fields of {L}x{L}: {format_bytes(4 * n * L * L)} of float32 output plus "
                 f"{format_bytes(SAMPLE_BYTES_PER_PIXEL * n * L * L)} of float64 chains",
                 "use fewer --samples")
    burn = args.burn_in if args.burn_in is not None else args.steps
    fs = model.sample(args.samples, ProgressPrinter(args.quiet), steps=args.steps, burn_in=burn,
                      method=args.sampler, seed=args.seed, allow_unbounded=args.allow_unbounded)
    fs.meta["command"] = "explorer " + shlex.join(argv)
    save_fields(out, fs)
    return {"out": str(out), "shape": list(fs.fields.shape), **fs.meta["sampling"]}


def _check_model_size(model, L: int, what: str) -> None:
    if L != model.stats["L"]:
        raise CLIError(f"the model was fitted on {model.stats['L']}x{model.stats['L']} fields, "
                       f"the {what} are {L}x{L}")


def cmd_energy(args, argv) -> dict:
    model = _load_model(args.model)
    fs = _load_fields(args.fields)
    _check_model_size(model, fs.size, "fields")
    per_scale = model.scale_energies(fs.fields)
    if model.J == 0:
        return {"energies": per_scale["coarse"].tolist(),
                "note": "energy of the single-scale model, up to one additive constant"}
    return {"energies": None, "scale_energies": {k: v.tolist() for k, v in per_scale.items()},
            "note": "depth >= 1 without fitted free energies: per-scale conditional energies "
                    "(their sum is the energy only up to the free energies log Z_j(x_j))"}


def cmd_rgflow(args, argv) -> dict:
    from explorer.core.rgflow import rg_flow

    fs = _load_fields(args.data)
    return rg_flow(fs.fields, family=args.family, radius=args.radius)


# ------------------------------------------------------------------ diagnostics
def _plot_dir(args):
    """Validated --plot folder (or None); loads the PNG backend before any figure is built."""
    if not getattr(args, "plot", None):
        return None
    d = Path(args.plot)
    if d.exists() and not d.is_dir():
        raise CLIError(f"--plot must name a folder, {args.plot!r} is a file")
    from explorer.ui import export

    export.ensure_backends()
    return d


def _write_figures(figures: dict, plot_dir: Path) -> list[str]:
    """Write the figures; on failure remove what this call created (files and the folder)."""
    from explorer.ui import export

    existed = plot_dir.is_dir()
    before = set(os.listdir(plot_dir)) if existed else set()
    try:
        return export.write_figures(figures, plot_dir)
    except BaseException:
        if plot_dir.is_dir():
            for name in set(os.listdir(plot_dir)) - before:
                try:
                    (plot_dir / name).unlink()
                except OSError:
                    pass
            if not existed:
                try:
                    plot_dir.rmdir()
                except OSError:
                    pass
        raise


def cmd_compare(args, argv) -> dict:
    from explorer.core.diagnostics import compare

    plot_dir = _plot_dir(args)
    data, samples = _load_fields(args.data), _load_fields(args.samples, "samples")
    if args.depth is not None:
        _check_depth(args.depth, data.size)
    report = compare(data.fields, samples.fields, J=args.depth, wavelet=args.wavelet,
                     couplings=True)
    report["files"] = {"data": Path(args.data).name, "samples": Path(args.samples).name}
    if plot_dir is not None:
        from explorer.ui import export

        report["figures"] = _write_figures(
            export.compare_figures(data.fields, samples.fields, report), plot_dir)
    return report


def cmd_diagnose(args, argv) -> dict:
    from explorer.core.diagnostics import diagnose

    plot_dir = _plot_dir(args)
    model = _load_model(args.model)
    fs = _load_fields(args.data)
    _check_model_size(model, fs.size, "data")
    if args.fields > fs.n:
        raise CLIError(f"--fields {args.fields} is more than the {fs.n} fields of "
                       f"{Path(args.data).name!r}")
    t0 = time.perf_counter()
    report = diagnose(model, fs.fields, n_fields=args.fields, method=args.method)
    report["seconds"] = time.perf_counter() - t0
    report["files"] = {"model": Path(args.model).name, "data": Path(args.data).name}
    # the fit's own verdicts travel with the spectra: a degenerate or unbounded factor's Hessian
    # (e.g. "kappa 1" from huge cancelling couplings) means nothing on its own
    report["fit_warnings"] = {("coarse" if f.level == "depth0" else f"j={f.j}"): f.fit["warnings"]
                              for f in model.factors() if f.fit.get("warnings")}
    if plot_dir is not None:
        from explorer.ui import export

        report["figures"] = _write_figures(export.diagnose_figures(report), plot_dir)
    return report


# ------------------------------------------------------------------ assets
def cmd_assets(args, argv) -> dict:
    out_dir = Path(args.out)
    names = args.only or list(ASSET_COMMANDS)
    unknown = sorted(set(names) - set(ASSET_COMMANDS))
    if unknown:
        raise CLIError(f"unknown asset(s) {unknown}; known: {sorted(ASSET_COMMANDS)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f"--out must name a folder, {args.out!r} is a file")
    plans = []
    for name in names:  # every command is checked before the first one runs
        target = out_dir / name
        try:  # record a path relative to where the command runs, never a machine path
            target = target.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass
        sub = ["generate", *ASSET_COMMANDS[name], "--out", str(target)]
        if args.quiet:
            sub.append("--quiet")
        sub_args = build_parser().parse_args(sub)
        _check_generate(sub_args)
        plans.append((name, target, sub, sub_args))
    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    try:
        for name, target, sub, sub_args in plans:
            if not args.quiet:
                print(f"explorer {shlex.join(sub)}", file=sys.stderr)
            try:
                cmd_generate(sub_args, sub)
            except (CLIError, ValueError, OSError, RuntimeError, FloatingPointError) as e:
                raise CLIError(f"building asset {name} failed: {_one_line(e)}") from None
            done[name] = target.stat().st_size
    except BaseException:
        for d in made:  # the folders this command made, if still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return {"assets": done}


# ------------------------------------------------------------------ scattering
def _scattering_data(args):
    from explorer.core.scattering import default_J

    fs = _load_fields(args.data)
    x = fs.fields
    if args.fields is not None:
        bad = [i for i in args.fields if not 0 <= i < fs.n]
        if bad:
            raise CLIError(f"--fields {bad} out of range: the file has {fs.n} fields (0..{fs.n - 1})")
        x = x[args.fields]
    M = fs.size
    deepest = int(math.log2(M))
    if args.J is not None and args.J > deepest:
        raise CLIError(f"--J {args.J} is too large for {M}x{M} fields: J must be in 1..{deepest}")
    if args.J is None:
        args.J = default_J(M)
    return fs, x


def cmd_scattering(args, argv) -> dict:
    from explorer.core.scattering import scattering_statistics

    _fs, x = _scattering_data(args)
    stats = scattering_statistics(x, args.J, args.L, reduction=args.reduction,
                                  threshold=args.threshold)
    return {"file": args.data, **stats.to_dict()}


def cmd_synthesize(args, argv) -> dict:
    from explorer.core.io import save_fields
    from explorer.core.scattering import iter_synthesize

    out = _check_out(args.out, args.data)
    fs_data, x = _scattering_data(args)
    n, M = args.samples, fs_data.size
    per_pixel = 48 if args.model == "gaussian" else SYNTHESIS_BYTES_PER_PIXEL * args.L
    working = per_pixel * (n + len(x)) * M * M
    check_memory(4 * n * M * M + working, "synthesize",
                 f"{n} syntheses of {M}x{M} from {len(x)} fields: {format_bytes(4 * n * M * M)} of "
                 f"float32 output plus {format_bytes(working)} of float64 working arrays",
                 "use fewer --samples, fewer --fields or a smaller --L")
    result = run(iter_synthesize(x, args.samples, J=args.J, L=args.L, iterations=args.iterations,
                                 seed=args.seed, model=args.model), ProgressPrinter(args.quiet))
    result.meta["command"] = "explorer " + shlex.join(argv)
    result.meta["data"] = {"file": Path(args.data).name, "fields": args.fields,
                           "generator": fs_data.meta.get("generator")}
    save_fields(out, result)
    return {"out": str(out), "shape": list(result.fields.shape),
            **result.meta.get("synthesis", {}), "params": result.meta["params"]}


#: float64 bytes per pixel, field and orientation of the synthesis (wavelet transforms of the
#: syntheses and the data, their moduli and gradients, L-BFGS history), measured.
SYNTHESIS_BYTES_PER_PIXEL = 300


def _add_scattering(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("data", help="field file (.npz/.npy/.png/.jpg)")
    common.add_argument("--J", type=_int_in(1, 12), default=None,
                        help="number of scales, 1..log2(size) (default log2(size) - 2)")
    common.add_argument("--L", type=_int_in(1, 16), default=4,
                        help="number of orientations (1..16)")
    common.add_argument("--fields", type=int, nargs="+", default=None, metavar="I",
                        help="use only these fields of the file (default: all)")
    common.add_argument("--json", action="store_true")
    sc = sub.add_parser("scattering", parents=[common],
                        help="scattering spectra S1-S4 of a field file, with coefficient names")
    sc.add_argument("--reduction", choices=["raw", "isotropic", "fourier", "scale"],
                    default="fourier")
    sc.add_argument("--threshold", action="store_true",
                    help="drop S3/S4 coefficients with |mean| < std over the fields")
    sy = sub.add_parser("synthesize", parents=[common],
                        help="microcanonical scattering-spectra synthesis from a few fields")
    sy.add_argument("--samples", type=_positive_int, default=4, help="number of syntheses")
    sy.add_argument("--iterations", type=_int_in(1, 1_000_000), default=300,
                    help="L-BFGS iterations")
    sy.add_argument("--model", choices=["scattering", "gaussian"], default="scattering",
                    help="gaussian: phase-randomised data (power spectrum only)")
    sy.add_argument("--seed", type=_int_in(0), default=0)
    sy.add_argument("--out", required=True, help="output .npz file")
    sy.add_argument("--quiet", action="store_true")


# ------------------------------------------------------------------ entry point
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="explorer", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_generate(sub)
    i = sub.add_parser("info", help="summarise a field file (.npz/.npy/.png/.jpg)")
    i.add_argument("file")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    f = sub.add_parser("fit", help="fit a WCRG energy model to a field file")
    f.add_argument("data")
    f.add_argument("--family", choices=["gaussian", "phi4", "scattering"], default="phi4")
    f.add_argument("--eps-rel", type=_positive_float, default=0.5,
                   help="scattering family: smooth-modulus width relative to each scale's rms")
    f.add_argument("--depth", type=_int_in(0, 12), default=None,
                   help="number of wavelet scales J (0: pixels; 2^J must divide the size); "
                        "default: the app's, i.e. the deepest (coarse field 4x4) for Gaussian and "
                        "turbulence data, otherwise 2")
    f.add_argument("--wavelet", default="db4", help="haar, db2..db8, sym2..sym8")
    f.add_argument("--method", choices=["score", "ml"], default="score",
                   help="score matching (fast) or maximum likelihood (slow, MALA chains)")
    f.add_argument("--radius", type=_int_in(0, 8), default=1,
                   help="coupling shifts within this radius (0..8)")
    f.add_argument("--potential", choices=["polynomial", "windows"], default="polynomial")
    f.add_argument("--degree", type=_int_in(4, 16), default=4,
                   help="polynomial potential degree (4..16)")
    f.add_argument("--windows", type=_int_in(2, 200), default=20,
                   help="number of potential windows (2..200)")
    f.add_argument("--ridge", type=_nonnegative_float, default=1e-6)
    f.add_argument("--support-floor", type=_support_floor, default=DEFAULT_SUPPORT_FLOOR,
                   help="modes with less than this fraction of the largest modal power are "
                        "completed with noise for the fit and projected out of the samples "
                        "(dealiased or band-limited data); 'none' turns this off")
    f.add_argument("--out", required=True, help="model file (.npz)")
    f.add_argument("--json", action="store_true")
    f.add_argument("--quiet", action="store_true")

    s = sub.add_parser("sample", help="sample a fitted model coarse to fine")
    s.add_argument("model")
    s.add_argument("--samples", type=_positive_int, default=16)
    s.add_argument("--steps", type=_int_in(1, 10_000_000), default=200,
                   help="MALA steps per scale")
    s.add_argument("--burn-in", type=_int_in(1, 10_000_000), default=None,
                   help="default: --steps")
    s.add_argument("--sampler", choices=["mala", "ula"], default="mala")
    s.add_argument("--seed", type=_int_in(0), default=0)
    s.add_argument("--allow-unbounded", action="store_true",
                   help="sample even a factor the fit flagged as unbounded below (experiments "
                        "only; a runaway is still stopped)")
    s.add_argument("--out", required=True, help="output .npz file")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true")

    e = sub.add_parser("energy", help="energies of fields under a fitted model")
    e.add_argument("model")
    e.add_argument("fields")
    e.add_argument("--json", action="store_true")

    r = sub.add_parser("rgflow", help="RG flow of the depth-0 couplings under coarse-graining")
    r.add_argument("data")
    r.add_argument("--family", choices=["phi4", "gaussian"], default="phi4")
    r.add_argument("--radius", type=_int_in(1, 8), default=1,
                   help="coupling shifts within this radius (1..8; gaussian family)")
    r.add_argument("--json", action="store_true")

    c = sub.add_parser("compare", help="distances between data and samples (spectra, "
                                       "histograms, per-scale std, Binder, scale coupling)")
    c.add_argument("data")
    c.add_argument("samples")
    c.add_argument("--depth", type=_int_in(0, 12), default=None,
                   help="wavelet scales for std ratios and coupling (default: to a 4x4 field)")
    c.add_argument("--wavelet", default="db4")
    c.add_argument("--plot", metavar="DIR", help="also write the figures as PNG into DIR")
    c.add_argument("--json", action="store_true")

    d = sub.add_parser("diagnose", help="Hessian spectra per scale, learned potentials and "
                                        "kernels of a fitted model at data fields")
    d.add_argument("model")
    d.add_argument("data")
    d.add_argument("--fields", type=_positive_int, default=4,
                   help="number of data fields at which Hessians are taken")
    d.add_argument("--method", choices=["auto", "dense", "slq"], default="auto",
                   help="eigenvalues: dense (exact), slq (stochastic Lanczos quadrature "
                        "estimate), auto (dense up to 1024 variables)")
    d.add_argument("--plot", metavar="DIR", help="also write the figures as PNG into DIR")
    d.add_argument("--json", action="store_true")

    _add_scattering(sub)

    a = sub.add_parser("assets", help="rebuild the default data in assets/")
    a.add_argument("--out", default=str(ASSETS_DIR), help="output folder (default: assets/)")
    a.add_argument("--only", nargs="+", metavar="NAME", help="build only these files")
    a.add_argument("--quiet", action="store_true")
    a.add_argument("--json", action="store_true")
    return parser


COMMANDS = {"generate": cmd_generate, "info": cmd_info, "assets": cmd_assets, "fit": cmd_fit,
            "sample": cmd_sample, "energy": cmd_energy, "rgflow": cmd_rgflow,
            "compare": cmd_compare, "diagnose": cmd_diagnose, "scattering": cmd_scattering,
            "synthesize": cmd_synthesize}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        result = COMMANDS[args.command](args, argv)
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:
        detail = _one_line(e)
        return _fail("out of memory" + (f" ({detail})" if detail else ""))
    # user-caused failures: bad flags and files (CLIError, FieldFileError and other ValueErrors),
    # the file system (OSError), diverged samplers and solvers (FloatingPointError), numbers too
    # large for floats (OverflowError), refused or failed runs (RuntimeError)
    except (CLIError, ValueError, OSError, RuntimeError, FloatingPointError, OverflowError) as e:
        return _fail(_one_line(e))
    try:
        _print_result(args, result)
    except BrokenPipeError:  # e.g. piped into `head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
    return 0


def _fail(message: str) -> int:
    live, ProgressPrinter.open_line = ProgressPrinter.open_line, None
    if live is not None:  # clear the live progress line: the error is the line left
        try:
            live.write("\r\033[K")
        except (OSError, ValueError):
            pass
    print(f"explorer: error: {message}", file=sys.stderr)
    return 2


def _one_line(e: BaseException) -> str:
    """An exception's message on one line, never a repr (a KeyError's message is its argument)."""
    if isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    else:
        text = str(e)
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _print_result(args, result: dict) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=json_default))
    elif args.command == "info":
        _print_info(result)
    elif args.command in ("compare", "diagnose"):
        _print_report(result)
    elif args.command == "fit":
        _print_fit(result)
    elif args.command == "sample":
        _print_sample(result)
    elif args.command in ("energy", "rgflow", "synthesize"):
        print(json.dumps(result, default=json_default)[:2000])
    elif args.command == "scattering":
        print(f"{result['file']}: {result['count']} {result['reduction']} scattering coefficients "
              f"(J={result['params']['J']}, L={result['params']['L']}, {result['n_fields']} fields; "
              "--json for all)")


# ------------------------------------------------------------------ helpers
#: Accepted ``generate --size`` ranges (powers of two), the generators' own limits.
GENERATE_SIZES = {"phi4": (8, 256), "gaussian": (8, 1024), "turbulence": (16, 4096)}


def _check_out(text: str, *inputs: str) -> Path:
    """A usable --out path: an .npz file in an existing, writable folder, not one of the inputs."""
    out = Path(text)
    if out.suffix != ".npz":
        raise CLIError(f"--out must name an .npz file, got {text!r}")
    folder = out.parent
    if not folder.exists():
        raise CLIError(f"the folder of --out does not exist: {str(folder)!r}")
    if not folder.is_dir():
        raise CLIError(f"the folder of --out is not a folder: {str(folder)!r}")
    if out.is_dir():
        raise CLIError(f"--out names a folder, not a file: {text!r}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write into the folder of --out: {str(folder)!r}")
    for source in inputs:
        if out.exists() and Path(source).exists() and out.resolve() == Path(source).resolve():
            raise CLIError(f"--out {text!r} would overwrite the input file")
    return out


def _npz_members(path: str | Path) -> set[str] | None:
    """Names of the arrays in an .npz archive (None if it is not a readable archive)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {n[:-4] if n.endswith(".npy") else n for n in zf.namelist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def _load_fields(path: str, what: str = "fields"):
    """load_fields with a clear message when a model file is given instead."""
    from explorer.core.io import FieldFileError, load_fields

    try:
        return load_fields(path)
    except FieldFileError:
        if Path(path).suffix.lower() == ".npz" and "header" in (_npz_members(path) or ()):
            raise CLIError(f"{path!r} is a model file (made by 'explorer fit'), not a field "
                           f"file; give the {what} as .npz/.npy/.png/.jpg fields") from None
        raise


def _load_model(path: str):
    """WCRGModel.load with a clear message for a missing file, a wrong suffix or a field file."""
    from explorer.core.model import WCRGModel

    p = Path(path)
    if not p.exists():
        raise CLIError(f"Cannot load model {path!r}: no such file.")
    if p.is_dir():
        raise CLIError(f"Cannot load model {path!r}: this is a folder, not a file.")
    if p.suffix.lower() != ".npz":
        raise CLIError(f"Cannot load model {path!r}: a model is an .npz file made by "
                       f"'explorer fit', not {p.suffix or 'a file without extension'!r}.")
    members = _npz_members(p)
    if members is None:
        raise CLIError(f"Cannot load model {path!r}: not an NPZ archive (corrupt, truncated or "
                       "of another type).")
    if "header" not in members:
        if "fields" in members:
            raise CLIError(f"{path!r} is a field file, not a model; make a model with "
                           "'explorer fit'")
        raise CLIError(f"Cannot load model {path!r}: not a model file (it has no header).")
    try:
        return WCRGModel.load(p)
    except (KeyError, IndexError, TypeError, AttributeError) as e:  # a header missing entries
        what = e.args[0] if isinstance(e, KeyError) and e.args else _one_line(e)
        raise CLIError(f"Cannot load model {path!r}: the model file is incomplete or corrupt "
                       f"({what!s} missing or malformed).") from None


def _print_fit(r: dict) -> None:
    """One line per scale: parameters, kappa(H) raw -> Jacobi, seconds, warnings."""
    st = r.get("stats") or {}
    L = st.get("L")
    print(f"{r['out']}: {r['family']} model, depth {r['J']}, wavelet {r['wavelet']}, fitted on "
          f"{st.get('n_fields', '?')} fields of {L}x{L}")
    total = 0
    for s in r.get("scales", []):
        f = s.get("fit") or {}
        name = f"scale {s['j']}" + (" (coarsest)" if s.get("level") == "depth0"
                                    else " (conditional)")
        n_par = f.get("n_parameters", len(s.get("theta", {})))
        total += n_par
        parts = [f"{name:<21}", f"{n_par:>5} parameters"]
        if f.get("kappa_H_raw") is not None and f.get("kappa_H_preconditioned") is not None:
            parts.append(f"kappa(H) {f['kappa_H_raw']:.3g} -> {f['kappa_H_preconditioned']:.3g} "
                         "(Jacobi)")
        elif f.get("method") == "ml":
            parts.append(f"ML {f.get('iterations', '?')} iterations"
                         + ("" if f.get("converged") else " (not converged)"))
        if f.get("seconds") is not None:
            parts.append(f"{f['seconds']:.2f} s")
        warns = list(f.get("warnings") or [])
        qb = f.get("quadratic_base") or {}
        if "warnings" not in f and qb.get("indefinite"):
            warns.append(f"quadratic part indefinite (lambda <= {qb['ritz_min']:.3g}): energy "
                         "unbounded below")
        parts += [f"WARNING: {w}" for w in warns]
        print("  ".join(parts))
    print(f"total: {len(r.get('scales', []))} factors, {total} parameters, "
          f"{r.get('seconds', 0.0):.2f} s (--json for the couplings)")


def _print_sample(r: dict) -> None:
    """One line per scale: acceptance, step, gradient evaluations (and any other key); totals."""
    known = ("scale", "acceptance", "step", "gradient_evaluations")
    for s in r.get("scales", []):
        parts = [f"{s.get('scale', '?'):<18}"]
        if s.get("acceptance") is not None:
            parts.append(f"acceptance {s['acceptance']:.3f}")
        if s.get("step") is not None:
            parts.append(f"step {s['step']:.4g}")
        if s.get("gradient_evaluations") is not None:
            parts.append(f"gradient evaluations {s['gradient_evaluations']}")
        parts += [f"{k} {_fmt(v)}" for k, v in s.items() if k not in known]
        print("  ".join(parts))
    shape = r.get("shape") or []
    what = f"{shape[0]} fields of {shape[1]}x{shape[2]}" if len(shape) == 3 else "samples"
    line = f"total: {what} -> {r.get('out')}"
    if r.get("gradient_evaluations") is not None:
        line += f", {r['gradient_evaluations']} gradient evaluations"
    if r.get("seconds") is not None:
        line += f", {r['seconds']:.2f} s"
    print(line)
    extra = {k: v for k, v in r.items()
             if k not in ("out", "shape", "scales", "gradient_evaluations", "seconds")}
    if extra:
        print("  ".join(f"{k} {_fmt(v)}" for k, v in extra.items()))


def _print_report(r: dict) -> None:
    """Short human-readable lines of a compare/diagnose report (full report: --json)."""
    if "hessian" in r:
        h = r["hessian"]
        rows = [("pixel", h["pixel"])] if "pixel" in h else (
            [(f"j={s['j']}", s) for s in h["scales"]] + [("coarse", h["coarse"])])
        for name, e in rows:
            kappa = e["condition_number"]
            warn = (r.get("fit_warnings") or {}).get(name)
            print(f"{name:>7}: lambda [{e['min_eigenvalue']:.4g}, {e['max_eigenvalue']:.4g}]  "
                  f"negative {100 * e['negative_share']:.1f}%  "
                  f"kappa {'%.4g' % kappa if kappa is not None else 'n/a (not convex)'}"
                  + ("  (SLQ estimate)" if e["estimated"] else "")
                  + (f"  WARNING (fit): {'; '.join(warn)}" if warn else ""))
    else:
        print(f"spectrum mean |log ratio| {r['spectrum_log_ratio']:.4f}  histogram TV "
              f"{r['total_variation']:.4f}  KL {r['kl_divergence']:.4f}  Binder diff "
              f"{r['binder_difference']:.4f}")
        extra = [f"{label} {_fmt(r[key])}" for key, label in
                 (("spectrum_2d_log_ratio", "2D spectrum mean |log ratio|"),
                  ("corner_power_ratio", "corner power ratio")) if r.get(key) is not None]
        if extra:
            print("  ".join(extra))
        print("per-scale std ratios " + " ".join(f"{x:.3f}" for x in r["scale_std_ratios"]))
        sk = r.get("scale_kurtosis")
        if sk:
            for part, label in (("low", "low-passes x_0..x_J"), ("details", "details j=1..J")):
                row = {who: " ".join("-" if k is None else f"{k:.2f}" for k in sk[who][part])
                       for who in ("data", "samples")}
                print(f"kurtosis of {label}: data {row['data']}  samples {row['samples']}")
    if r.get("figures"):
        print("figures: " + ", ".join(r["figures"]))


def _print_info(result: dict) -> None:
    s = result["summary"]
    print(f"{result['file']}: {s['shape']} {result['generator']}  mean {s['mean']:.4g}  "
          f"std {s['std']:.4g}")
    for family, obs in result["observables"].items():
        items = ", ".join(f"{k} {_fmt(v)}" for k, v in obs.items() if not isinstance(v, dict))
        print(f"  {family}: {items}")
        for k, v in obs.items():
            if isinstance(v, dict) and k != "spectrum":  # the spectrum is for --json
                print(f"    {k}: " + ", ".join(f"{kk}: {_fmt(vv)}" for kk, vv in v.items()))

"""Command line: ``explorer ...`` or ``python -m explorer ...``.

Every command drives the same core iterators as the app.  ``--json`` prints a machine-readable
summary on stdout (progress goes to stderr).  Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.io import json_default
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
    """Shows progress reports on stderr: a live line on a terminal, a line per stage otherwise."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stage = None
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if p.info.get("warning"):
            self.stream.write(("\r\033[K" if self.tty else "")
                              + f"warning ({p.info.get('scale', p.stage)}): {p.info['warning']}\n")
        info = " ".join(f"{k}={_fmt(v)}" for k, v in p.info.items() if k != "warning")
        line = f"[{p.stage}] {p.step}/{p.total} {info}".rstrip()
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if p.done else ""))
            self.stream.flush()
        elif p.stage != self.stage or p.done or now - self.last > 5.0:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last = now
        self.stage = p.stage


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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
    common.add_argument("--size", type=_positive_int, default=64, help="lattice side L (power of two)")
    common.add_argument("--samples", type=_positive_int, default=256, help="number of fields N")
    common.add_argument("--seed", type=int, default=0, help="random seed")
    common.add_argument("--out", required=True, help="output .npz file")
    common.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress display")

    p = kinds.add_parser("phi4", parents=[common], help="lattice phi^4 (canonical form)")
    p.add_argument("--beta", type=_finite_float, default=0.68, help="nearest-neighbour coupling")
    p.add_argument("--lam", type=_finite_float, default=1.0, help="quartic coupling lambda")
    p.add_argument("--chains", type=_positive_int, default=None,
                   help="parallel Markov chains (default min(N, 256))")
    p.add_argument("--local-only", action="store_true",
                   help="Metropolis moves only, no cluster updates (slow near beta_c)")

    g = kinds.add_parser("gaussian", parents=[common], help="exact Gaussian field (FFT)")
    g.add_argument("--kind", dest="spectrum", choices=["powerlaw", "free"], default="powerlaw",
                   help="powerlaw: P=(k^2+m^2)^(-slope/2); free: P=1/(m^2+beta*khat^2)")
    g.add_argument("--slope", type=_finite_float, default=2.0, help="power-law exponent eta")
    g.add_argument("--mass", type=_finite_float, default=0.0, help="mass m (>= 0)")
    g.add_argument("--beta", type=_finite_float, default=1.0, help="free-field stiffness")

    t = kinds.add_parser("turbulence", parents=[common], help="2D forced turbulence (vorticity)")
    t.add_argument("--spinup", type=_finite_float, default=10.0, help="spin-up time before sampling")
    t.add_argument("--interval", type=_finite_float, default=1.0, help="time between snapshots")
    t.add_argument("--nu", type=_finite_float, default=None,
                   help="hyperviscosity (default: scaled with the resolution)")
    t.add_argument("--order", type=int, default=4, help="hyperviscosity order p in (-Delta)^p")
    t.add_argument("--drag", type=_finite_float, default=0.1, help="linear drag alpha")
    t.add_argument("--kf", type=int, default=4, help="Kolmogorov forcing wavenumber")
    t.add_argument("--cfl", type=_finite_float, default=0.5, help="CFL number")


def _iterator_for(args):
    if args.kind == "phi4":
        from explorer.core.fields.phi4 import iter_phi4

        return iter_phi4(size=args.size, n_samples=args.samples, beta=args.beta, lam=args.lam,
                         seed=args.seed, n_chains=args.chains, cluster=not args.local_only)
    if args.kind == "gaussian":
        from explorer.core.fields.gaussian import iter_gaussian

        return iter_gaussian(size=args.size, n_samples=args.samples, kind=args.spectrum,
                             eta=args.slope, mass=args.mass, beta=args.beta, seed=args.seed)
    from explorer.core.fields.turbulence import iter_turbulence

    return iter_turbulence(size=args.size, n_snapshots=args.samples, spinup=args.spinup,
                           interval=args.interval, nu=args.nu, p=args.order, alpha=args.drag,
                           kf=args.kf, cfl=args.cfl, seed=args.seed)


def cmd_generate(args, argv: list[str]) -> dict:
    from explorer.core.io import save_fields
    from explorer.core.summary import field_summary

    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must name an .npz file, got {args.out!r}")
    if not out.parent.exists():
        raise CLIError(f"the folder of --out does not exist: {str(out.parent)!r}")
    t0 = time.perf_counter()
    fs = run(_iterator_for(args), ProgressPrinter(args.quiet), allow_partial=False)
    fs.meta["command"] = "explorer " + shlex.join(argv)
    fs.meta["seconds"] = round(time.perf_counter() - t0, 3)
    save_fields(out, fs)
    return {"out": str(out), **field_summary(fs)}


# ------------------------------------------------------------------ info
def cmd_info(args, argv) -> dict:
    from explorer.core.io import load_fields
    from explorer.core.summary import field_summary

    return {"file": args.file, **field_summary(load_fields(args.file))}


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


def cmd_fit(args, argv) -> dict:
    from explorer.core.io import load_fields
    from explorer.core.model import WCRGModel

    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must name an .npz file, got {args.out!r}")
    fs = load_fields(args.data)
    model = WCRGModel(args.family, args.depth, args.wavelet, support_floor=args.support_floor,
                      **_family_options(args))
    t0 = time.perf_counter()
    provenance = {"data": Path(args.data).name, "data_meta": {k: fs.meta.get(k) for k in
                                                               ("generator", "params", "seed")},
                  "n_fields": fs.n, "command": "explorer " + shlex.join(argv)}
    model.fit(fs.fields, ProgressPrinter(args.quiet), method=args.method, ridge=args.ridge,
              provenance=provenance)
    model.save(out)
    summary = model.summary()
    return {"out": str(out), "seconds": time.perf_counter() - t0, **summary}


def cmd_sample(args, argv) -> dict:
    from explorer.core.io import save_fields
    from explorer.core.model import WCRGModel

    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must name an .npz file, got {args.out!r}")
    model = WCRGModel.load(args.model)
    burn = args.burn_in if args.burn_in is not None else args.steps
    fs = model.sample(args.samples, ProgressPrinter(args.quiet), steps=args.steps, burn_in=burn,
                      method=args.sampler, seed=args.seed)
    fs.meta["command"] = "explorer " + shlex.join(argv)
    save_fields(out, fs)
    return {"out": str(out), "shape": list(fs.fields.shape), **fs.meta["sampling"]}


def cmd_energy(args, argv) -> dict:
    from explorer.core.io import load_fields
    from explorer.core.model import WCRGModel

    model = WCRGModel.load(args.model)
    fs = load_fields(args.fields)
    per_scale = model.scale_energies(fs.fields)
    if model.J == 0:
        return {"energies": per_scale["coarse"].tolist(),
                "note": "energy of the single-scale model, up to one additive constant"}
    return {"energies": None, "scale_energies": {k: v.tolist() for k, v in per_scale.items()},
            "note": "depth >= 1 without fitted free energies: per-scale conditional energies "
                    "(their sum is the energy only up to the free energies log Z_j(x_j))"}


def cmd_rgflow(args, argv) -> dict:
    from explorer.core.io import load_fields
    from explorer.core.rgflow import rg_flow

    fs = load_fields(args.data)
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


def cmd_compare(args, argv) -> dict:
    from explorer.core.diagnostics import compare
    from explorer.core.io import load_fields

    plot_dir = _plot_dir(args)
    data, samples = load_fields(args.data), load_fields(args.samples)
    report = compare(data.fields, samples.fields, J=args.depth, wavelet=args.wavelet,
                     couplings=True)
    report["files"] = {"data": Path(args.data).name, "samples": Path(args.samples).name}
    if plot_dir is not None:
        from explorer.ui import export

        report["figures"] = export.write_figures(
            export.compare_figures(data.fields, samples.fields, report), plot_dir)
    return report


def cmd_diagnose(args, argv) -> dict:
    from explorer.core.diagnostics import diagnose
    from explorer.core.io import load_fields
    from explorer.core.model import WCRGModel

    plot_dir = _plot_dir(args)
    model = WCRGModel.load(args.model)
    fs = load_fields(args.data)
    t0 = time.perf_counter()
    report = diagnose(model, fs.fields, n_fields=args.fields, method=args.method)
    report["seconds"] = time.perf_counter() - t0
    report["files"] = {"model": Path(args.model).name, "data": Path(args.data).name}
    if plot_dir is not None:
        from explorer.ui import export

        report["figures"] = export.write_figures(export.diagnose_figures(report), plot_dir)
    return report


# ------------------------------------------------------------------ assets
def cmd_assets(args, argv) -> dict:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = args.only or list(ASSET_COMMANDS)
    unknown = sorted(set(names) - set(ASSET_COMMANDS))
    if unknown:
        raise CLIError(f"unknown asset(s) {unknown}; known: {sorted(ASSET_COMMANDS)}")
    done = {}
    for name in names:
        target = out_dir / name
        try:  # record a path relative to where the command runs, never a machine path
            target = target.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass
        sub = ["generate", *ASSET_COMMANDS[name], "--out", str(target)]
        if args.quiet:
            sub.append("--quiet")
        print(f"explorer {shlex.join(sub)}", file=sys.stderr)
        code = main(sub)
        if code:
            raise CLIError(f"building asset {name} failed")
        done[name] = target.stat().st_size
    return {"assets": done}


# ------------------------------------------------------------------ scattering
def _scattering_data(args):
    from explorer.core.io import load_fields

    fs = load_fields(args.data)
    x = fs.fields
    if args.fields is not None:
        bad = [i for i in args.fields if not 0 <= i < fs.n]
        if bad:
            raise CLIError(f"--fields {bad} out of range: the file has {fs.n} fields (0..{fs.n - 1})")
        x = x[args.fields]
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

    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must name an .npz file, got {args.out!r}")
    if not out.parent.exists():
        raise CLIError(f"the folder of --out does not exist: {str(out.parent)!r}")
    fs_data, x = _scattering_data(args)
    result = run(iter_synthesize(x, args.samples, J=args.J, L=args.L, iterations=args.iterations,
                                 seed=args.seed, model=args.model), ProgressPrinter(args.quiet))
    result.meta["command"] = "explorer " + shlex.join(argv)
    result.meta["data"] = {"file": Path(args.data).name, "fields": args.fields,
                           "generator": fs_data.meta.get("generator")}
    save_fields(out, result)
    return {"out": str(out), "shape": list(result.fields.shape),
            **result.meta.get("synthesis", {}), "params": result.meta["params"]}


def _add_scattering(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("data", help="field file (.npz/.npy/.png/.jpg)")
    common.add_argument("--J", type=_positive_int, default=None,
                        help="number of scales (default log2(size) - 2)")
    common.add_argument("--L", type=_positive_int, default=4, help="number of orientations")
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
    sy.add_argument("--iterations", type=_positive_int, default=300, help="L-BFGS iterations")
    sy.add_argument("--model", choices=["scattering", "gaussian"], default="scattering",
                    help="gaussian: phase-randomised data (power spectrum only)")
    sy.add_argument("--seed", type=int, default=0)
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
    f.add_argument("--eps-rel", type=_finite_float, default=0.5,
                   help="scattering family: smooth-modulus width relative to each scale's rms")
    f.add_argument("--depth", type=int, default=0, help="number of wavelet scales J (0: pixels)")
    f.add_argument("--wavelet", default="db4", help="haar, db2..db8, sym2..sym8")
    f.add_argument("--method", choices=["score", "ml"], default="score",
                   help="score matching (fast) or maximum likelihood (slow, MALA chains)")
    f.add_argument("--radius", type=int, default=1, help="coupling shifts within this radius")
    f.add_argument("--potential", choices=["polynomial", "windows"], default="polynomial")
    f.add_argument("--degree", type=int, default=4, help="polynomial potential degree")
    f.add_argument("--windows", type=int, default=20, help="number of potential windows")
    f.add_argument("--ridge", type=_finite_float, default=1e-6)
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
    s.add_argument("--steps", type=_positive_int, default=200, help="MALA steps per scale")
    s.add_argument("--burn-in", type=_positive_int, default=None, help="default: --steps")
    s.add_argument("--sampler", choices=["mala", "ula"], default="mala")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true")

    e = sub.add_parser("energy", help="energies of fields under a fitted model")
    e.add_argument("model")
    e.add_argument("fields")
    e.add_argument("--json", action="store_true")

    r = sub.add_parser("rgflow", help="RG flow of the depth-0 couplings under coarse-graining")
    r.add_argument("data")
    r.add_argument("--family", choices=["phi4", "gaussian"], default="phi4")
    r.add_argument("--radius", type=int, default=1)
    r.add_argument("--json", action="store_true")

    c = sub.add_parser("compare", help="distances between data and samples (spectra, "
                                       "histograms, per-scale std, Binder, scale coupling)")
    c.add_argument("data")
    c.add_argument("samples")
    c.add_argument("--depth", type=int, default=None,
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
    except CLIError as e:
        print(f"explorer: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as e:  # FieldFileError, SamplerDiverged, ...
        print(f"explorer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=json_default))
    elif args.command == "info":
        _print_info(result)
    elif args.command in ("compare", "diagnose"):
        _print_report(result)
    elif args.command in ("fit", "sample", "energy", "rgflow", "synthesize"):
        print(json.dumps(result, default=json_default)[:2000])
    elif args.command == "scattering":
        print(f"{result['file']}: {result['count']} {result['reduction']} scattering coefficients "
              f"(J={result['params']['J']}, L={result['params']['L']}, {result['n_fields']} fields; "
              "--json for all)")
    return 0


def _print_report(r: dict) -> None:
    """Short human-readable lines of a compare/diagnose report (full report: --json)."""
    if "hessian" in r:
        h = r["hessian"]
        rows = [("pixel", h["pixel"])] if "pixel" in h else (
            [(f"j={s['j']}", s) for s in h["scales"]] + [("coarse", h["coarse"])])
        for name, e in rows:
            kappa = e["condition_number"]
            print(f"{name:>7}: lambda [{e['min_eigenvalue']:.4g}, {e['max_eigenvalue']:.4g}]  "
                  f"negative {100 * e['negative_share']:.1f}%  "
                  f"kappa {'%.4g' % kappa if kappa is not None else 'n/a (not convex)'}"
                  + ("  (SLQ estimate)" if e["estimated"] else ""))
    else:
        print(f"spectrum mean |log ratio| {r['spectrum_log_ratio']:.4f}  histogram TV "
              f"{r['total_variation']:.4f}  KL {r['kl_divergence']:.4f}  Binder diff "
              f"{r['binder_difference']:.4f}")
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

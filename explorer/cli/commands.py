"""The commands of the command line, each ``cmd_NAME(args, argv) -> dict``: argument checks, then
the workflows of :mod:`explorer.core.workflows` (the app runs the same ones)."""

from __future__ import annotations

import math
import shlex
import sys
import time
from pathlib import Path

from explorer.sweep_cli import COMMANDS as SWEEP_COMMANDS
from explorer.core import workflows as wf
from explorer.core.budget import check_memory, format_bytes
from explorer.core.io import atomic_path
from explorer.core.progress import run
from explorer.cli.parser import ASSET_COMMANDS, build_parser
from explorer.cli.printing import ProgressPrinter
from explorer.cli.validation import (CLIError, check_depth, check_generate, check_model_size,
                                     check_out, generate_params, load_fields, load_model,
                                     npz_members, one_line, plot_dir, write_figures)

#: float64 bytes per pixel and sample of the coarse-to-fine sampler (chains, proposals,
#: gradients, the reconstructed finer fields), measured on the three families.
SAMPLE_BYTES_PER_PIXEL = 160
#: float64 bytes per pixel, field and orientation of the synthesis (wavelet transforms of the
#: syntheses and the data, their moduli and gradients, L-BFGS history), measured.
SYNTHESIS_BYTES_PER_PIXEL = 300


def _command(argv) -> str:
    return "explorer " + shlex.join(argv)


# ------------------------------------------------------------------ data
def _iterator_for(args):
    return wf.iter_generate(args.kind, args.size, args.samples, seed=args.seed,
                            **generate_params(args))


def cmd_generate(args, argv: list[str]) -> dict:
    from explorer.core.io import save_fields
    from explorer.core.summary import field_summary

    if getattr(args, "store", None):  # a chunked ensemble on Dask workers
        from explorer.sweep_cli import cmd_ensemble

        if args.out:
            raise CLIError("give either --out FILE or --store DIR, not both")
        return cmd_ensemble(args, argv)
    for flag in ("chunk", "scheduler", "workers"):
        if getattr(args, flag, None) is not None:
            raise CLIError(f"--{flag} applies to an ensemble: add --store DIR")
    if not args.out:
        raise CLIError("--out FILE is required (or, for phi4, --store DIR for a chunked ensemble)")
    out = check_out(args.out)
    check_generate(args)
    t0 = time.perf_counter()
    fs = run(_iterator_for(args), ProgressPrinter(args.quiet), allow_partial=False)
    fs.meta["command"] = _command(argv)
    fs.meta["seconds"] = round(time.perf_counter() - t0, 3)
    save_fields(out, fs)
    return {"out": str(out), **field_summary(fs)}


def cmd_info(args, argv) -> dict:
    from explorer.core.summary import field_summary

    p = Path(args.file)
    if (p.suffix.lower() == ".npz" and args.key is None and p.is_file()
            and "header" in (npz_members(p) or ())):
        if args.observables:
            raise CLIError("--observables describes field files; this is a model file")
        return model_info(args.file, load_model(args.file))
    return {"file": args.file, **field_summary(load_fields(args.file, key=args.key),
                                               args.observables)}


def model_info(path: str, model) -> dict:
    """What a model file holds: its summary (family, depth, options, per-factor fits and
    couplings, provenance with any preprocessing) and whether each factor is bounded below."""
    from explorer.core.model import unbounded_factors

    summary = model.summary()
    return {"file": path, "kind": "model", **summary,
            "unbounded": [{"factor": wf.scale_label(n), "reason": why}
                          for n, why in unbounded_factors(model)]}


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
        check_generate(sub_args)
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
                raise CLIError(f"building asset {name} failed: {one_line(e)}") from None
            done[name] = target.stat().st_size
    except BaseException:
        for d in made:  # the folders this command made, if still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return {"assets": done}


# ------------------------------------------------------------------ models
def family_options(args) -> dict:
    return wf.family_options(args.family, radius=args.radius, potential=args.potential,
                             degree=args.degree, n_windows=args.windows, eps_rel=args.eps_rel,
                             parity=args.parity)


def cmd_fit(args, argv) -> dict:
    from explorer.core.model import WCRGModel
    from explorer.core.statistics import suggested_depth

    out = check_out(args.out, args.data)
    options = family_options(args)
    WCRGModel(wf.resolve_family(args.family), 0, args.wavelet, support_floor=args.support_floor,
              **options)  # checks the family's options before the data are read
    fs = load_fields(args.data, key=args.key)
    # without --depth: the depth `explorer info` suggests (the app's default for these data)
    depth = suggested_depth(fs.fields, fs.meta)["depth"] if args.depth is None else args.depth
    check_depth(depth, fs.size)
    t0 = time.perf_counter()
    result = run(wf.iter_fit(fs.fields, args.family, depth, args.wavelet, args.method,
                             options=options, support_floor=args.support_floor, ridge=args.ridge,
                             data_meta=fs.meta, provenance={"data": Path(args.data).name,
                                                            "key": args.key,
                                                            "command": _command(argv)},
                             dequantise=args.dequantise, gaussianise=args.gaussianise,
                             seed=args.seed, refine_generated=args.refine_generated),
                 ProgressPrinter(args.quiet), allow_partial=False)
    model = result["model"]
    with atomic_path(out) as tmp:
        model.save(tmp)
    return {"out": str(out), "seconds": time.perf_counter() - t0, **model.summary()}


class _ScaleTimer:
    """Seconds per sampler scale from the times of the progress reports ('SCALE: phase'): a
    scale runs from its first report until the next scale's first report (or the end)."""

    def __init__(self, show):
        self.show, self.start, self.end, self.current = show, {}, {}, None
        self.t0 = time.perf_counter()

    def __call__(self, p) -> None:
        now = time.perf_counter()
        scale = None if p.done else p.stage.partition(": ")[0]
        if scale != self.current:
            if self.current is not None:
                self.end[self.current] = now
            if scale is not None:
                self.start.setdefault(scale, self.t0 if not self.start else now)
            self.current = scale
        self.show(p)

    def seconds(self, scale: str) -> float | None:
        if scale not in self.start or scale not in self.end:
            return None
        return self.end[scale] - self.start[scale]


def cmd_sample(args, argv) -> dict:
    from explorer.core.io import save_fields

    out = check_out(args.out, args.model)
    model = load_model(args.model)
    L, n = model.stats["L"], args.samples
    if args.size is not None and args.size != L:
        from explorer.core.transfer import check_transfer

        _, L, _ = check_transfer(model, args.size)
    check_memory((4 + SAMPLE_BYTES_PER_PIXEL) * n * L * L, "sample",
                 f"{n} fields of {L}x{L}: {format_bytes(4 * n * L * L)} of float32 output plus "
                 f"{format_bytes(SAMPLE_BYTES_PER_PIXEL * n * L * L)} of float64 chains",
                 "use fewer --samples")
    timer = _ScaleTimer(ProgressPrinter(args.quiet))
    fs = run(wf.iter_sample(model, n, steps=args.steps, burn_in=args.burn_in,
                            method=args.sampler, seed=args.seed,
                            allow_unbounded=args.allow_unbounded, size=args.size),
             timer, allow_partial=False)
    for s in fs.meta["sampling"]["scales"]:
        s["seconds"] = timer.seconds(s["scale"])
    fs.meta["command"] = _command(argv)
    save_fields(out, fs)
    result = {"out": str(out), "shape": list(fs.fields.shape), **fs.meta["sampling"]}
    for note in ("marginal", "requantised"):
        if fs.meta.get(note):
            result[note] = fs.meta[note]
    if "size_transfer" in fs.meta:
        result["size_transfer"] = fs.meta["size_transfer"]
    return result


def cmd_energy(args, argv) -> dict:
    model = load_model(args.model)
    fs = load_fields(args.fields, key=args.key)
    check_model_size(model, fs.size, "fields")
    per_scale = model.scale_energies(wf.model_space(model, fs.fields))
    if model.J == 0:
        return {"energies": per_scale["coarse"].tolist(),
                "note": "energy of the single-scale model, up to one additive constant"}
    return {"energies": None, "scale_energies": {k: v.tolist() for k, v in per_scale.items()},
            "note": "depth >= 1 without fitted free energies: per-scale conditional energies "
                    "(their sum is the energy only up to the free energies log Z_j(x_j))"}


def cmd_rgflow(args, argv) -> dict:
    """One file: the flow of its couplings. Several (e.g. one per beta): the distance table, each
    file labelled by the beta in its meta (else its name)."""
    from explorer.core.rgflow import rg_flow, rg_flow_table

    figures_dir = plot_dir(args)
    sets = {}
    for path in args.data:
        fs = load_fields(path, key=args.key)
        beta = (fs.meta.get("params") or {}).get("beta") if fs.meta.get("generator") == "phi4" \
            else None
        label = f"beta {float(beta):g}" if beta is not None else Path(path).stem
        while label in sets:
            label += "'"
        sets[label] = fs.fields
    options = dict(family=args.family, radius=args.radius)
    if len(sets) == 1:
        result = rg_flow(next(iter(sets.values())), **options)
        result["label"] = next(iter(sets))
        rows = {result["label"]: {"L": [s["L"] for s in result["scales"]],
                                  "distance": result["distances"]}}
    else:
        result = rg_flow_table(sets, **options)
        rows = result["rows"]
    if figures_dir is not None:
        from explorer.ui import figures

        result["figures"] = write_figures({"rgflow_distances": figures.rg_distance_figure(rows)},
                                          figures_dir)
    return result


# ------------------------------------------------------------------ diagnostics
def cmd_compare(args, argv) -> dict:
    figures_dir = plot_dir(args)
    data, samples = load_fields(args.data, key=args.key), load_fields(args.samples, "samples")
    model = None
    if args.model is not None:
        model = load_model(args.model)
        check_model_size(model, data.size, "data")
    if args.depth is not None:
        check_depth(args.depth, data.size)
    if data.size != samples.size:
        raise CLIError(f"data and samples differ in size: {data.size}x{data.size} vs "
                       f"{samples.size}x{samples.size}")
    report = wf.comparison_report(data.fields, samples.fields, J=args.depth,
                                  wavelet=args.wavelet, model=model, data_meta=data.meta,
                                  sample_meta=samples.meta, observables=args.observables)
    if figures_dir is not None:
        from explorer.ui import compare_png, figures

        figs = figures.compare_figures(data.fields, samples.fields, report)
        pngs = compare_png.compare_pngs(data.fields, samples.fields, report)
        for name in pngs:  # the readable Matplotlib versions replace the HoloViews ones
            figs.pop(name, None)
        report["figures"] = write_figures(figs, figures_dir, pngs)
    return report


def cmd_diagnose(args, argv) -> dict:
    from explorer.core.diagnostics import diagnose

    figures_dir = plot_dir(args)
    model = load_model(args.model)
    fs = load_fields(args.data, key=args.key)
    check_model_size(model, fs.size, "data")
    if args.fields > fs.n:
        raise CLIError(f"--fields {args.fields} is more than the {fs.n} fields of "
                       f"{Path(args.data).name!r}")
    t0 = time.perf_counter()
    report = diagnose(model, wf.model_space(model, fs.fields), n_fields=args.fields,
                      method=args.method)
    report["seconds"] = time.perf_counter() - t0
    report["files"] = {"model": Path(args.model).name, "data": Path(args.data).name}
    # the fit's own verdicts travel with the spectra: a degenerate or unbounded factor's Hessian
    # (e.g. "kappa 1" from huge cancelling couplings) means nothing on its own
    report["fit_warnings"] = {wf.factor_label(f): f.fit["warnings"]
                              for f in model.factors() if f.fit.get("warnings")}
    if figures_dir is not None:
        from explorer.ui import figures

        report["figures"] = write_figures(figures.diagnose_figures(report), figures_dir)
    return report


# ------------------------------------------------------------------ scattering
def _scattering_data(args):
    from explorer.core.scattering import default_J

    fs = load_fields(args.data, key=args.key)
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

    out = check_out(args.out, args.data)
    fs_data, x = _scattering_data(args)
    n, M = args.samples, fs_data.size
    per_pixel = 48 if args.model == "gaussian" else SYNTHESIS_BYTES_PER_PIXEL * args.L
    working = per_pixel * (n + len(x)) * M * M
    check_memory(4 * n * M * M + working, "synthesize",
                 f"{n} syntheses of {M}x{M} from {len(x)} fields: {format_bytes(4 * n * M * M)} of "
                 f"float32 output plus {format_bytes(working)} of float64 working arrays",
                 "use fewer --samples, fewer --fields or a smaller --L")
    result = run(iter_synthesize(x, args.samples, J=args.J, L=args.L, iterations=args.iterations,
                                 seed=args.seed, model=args.model, precision=args.precision),
                 ProgressPrinter(args.quiet))
    result.meta["command"] = _command(argv)
    result.meta["data"] = {"file": Path(args.data).name, "fields": args.fields,
                           "generator": fs_data.meta.get("generator")}
    save_fields(out, result)
    return {"out": str(out), "shape": list(result.fields.shape),
            **result.meta.get("synthesis", {}), "params": result.meta["params"]}


COMMANDS = {"generate": cmd_generate, "info": cmd_info, "assets": cmd_assets, "fit": cmd_fit,
            "sample": cmd_sample, "energy": cmd_energy, "rgflow": cmd_rgflow,
            "compare": cmd_compare, "diagnose": cmd_diagnose, "scattering": cmd_scattering,
            "synthesize": cmd_synthesize}
COMMANDS.update(SWEEP_COMMANDS)  # sweep, ensemble

"""Command-line glue for sweeps and ensembles (``explorer sweep ...``, ``explorer ensemble ...``).

Kept apart from the CLI package so that it can be registered there in two lines::

    from explorer.sweep_cli import COMMANDS as SWEEP_COMMANDS, add_parsers as add_sweep_parsers
    add_sweep_parsers(sub)            # sub: the parser's add_subparsers(...) object
    COMMANDS.update(SWEEP_COMMANDS)   # {"sweep": cmd_sweep, "ensemble": cmd_ensemble}

Every ``cmd_*(args, argv) -> dict`` checks its input before any cluster starts and raises
ValueError with a one-line message for bad input; progress ("points done/total, time left") goes
to stderr. :func:`cmd_ensemble` reads its options with defaults, so ``generate phi4 ... --store
DIR`` can call it with the ``generate`` arguments plus ``--store`` (and optionally ``--chunk``,
``--scheduler``, ``--workers``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from explorer.core.budget import check_memory, format_bytes

#: fields per ensemble chunk when the caller gives none
DEFAULT_CHUNK = 256


def _duration(seconds) -> str:
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class _Printer:
    """Progress on stderr: one line per finished point or chunk (failures always shown)."""

    def __init__(self, what: str, quiet: bool = False, stream=None):
        self.what, self.quiet = what, quiet
        self.stream = stream or sys.stderr

    def __call__(self, p) -> None:
        info = p.info
        failed = info.get("last", "").endswith(": failed")
        warning = info.get("warning")
        if self.quiet and not (failed or warning):
            return
        if self.what == "points":
            line = (f"[sweep] {info.get('points_done', p.step)}/{info.get('points_total', p.total)}"
                    f" points done")
            if info.get("failed"):
                line += f" ({info['failed']} failed)"
        else:
            line = (f"[ensemble] {info.get('chunks_done', p.step)}/"
                    f"{info.get('chunks_total', p.total)} chunks done "
                    f"({info.get('fields_done')}/{info.get('fields_total')} fields)")
        line += f", time left {_duration(info.get('time_left'))}"
        if info.get("last"):
            line += f" - {info['last']}"
        if warning:
            line += f"\nwarning: {warning}"
        self.stream.write(line + "\n")
        self.stream.flush()


# ------------------------------------------------------------------ parsers
def _family_choices() -> list[str]:
    from explorer.core.workflows import family_choices

    return family_choices()


def add_parsers(subparsers) -> None:
    """Add the ``sweep`` and ``ensemble`` commands to an ``add_subparsers()`` object."""
    s = subparsers.add_parser(
        "sweep", help="run generate -> fit -> sample -> compare over a grid of parameters, "
                      "model settings and seeds on Dask; rows in OUT/results.csv")
    s.add_argument("kind", choices=["phi4", "gaussian", "turbulence"])
    s.add_argument("--size", type=int, nargs="+", default=[16], metavar="L",
                   help="lattice sides (powers of two)")
    s.add_argument("--beta", type=float, nargs="+", default=None,
                   help="phi4 couplings (default 0.68)")
    s.add_argument("--lam", type=float, nargs="+", default=None,
                   help="phi4 quartic couplings (default 1)")
    s.add_argument("--slope", type=float, nargs="+", default=None,
                   help="gaussian spectral slopes eta (default 2)")
    s.add_argument("--drag", type=float, nargs="+", default=None,
                   help="turbulence drags alpha (default 0.1)")
    s.add_argument("--family", nargs="+", choices=_family_choices(),
                   default=None, help="model families (default: phi4 for phi4 data, "
                                      "gaussian otherwise)")
    s.add_argument("--depth", type=int, nargs="+", default=None,
                   help="WCRG depths J (default: the app's depth for each size)")
    s.add_argument("--method", nargs="+", choices=["score", "ml"], default=["score"],
                   help="fit methods")
    s.add_argument("--samples", type=int, default=64, help="model samples per point")
    s.add_argument("--data", type=int, default=None,
                   help="data fields per point (default: --samples)")
    s.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (one point each)")
    s.add_argument("--steps", type=int, default=200, help="model sampler steps per scale")
    s.add_argument("--burn-in", type=int, default=None, help="default: --steps")
    s.add_argument("--sampler", choices=["mala", "ula"], default="mala")
    _cluster_options(s)
    s.add_argument("--store-fields", action="store_true",
                   help="also write OUT/fields/<key>.npz (data and samples) for every point")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder")
    s.add_argument("--plot", metavar="DIR",
                   help="also write the figures (U(beta), <|m|>(beta), distances per L) as PNG "
                        "into DIR")
    s.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    s.add_argument("--quiet", action="store_true", help="only failures on stderr")

    e = subparsers.add_parser(
        "ensemble", help="generate a large phi4 ensemble in chunks on Dask workers "
                         "(DIR/chunk_XXXX.npz; a rerun finishes an interrupted one)")
    e.add_argument("kind", choices=["phi4"])
    e.add_argument("--size", type=int, default=64, help="lattice side L (power of two, 8..256)")
    e.add_argument("--samples", type=int, default=1024, help="number of fields N")
    e.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="fields per chunk (task)")
    e.add_argument("--beta", type=float, default=0.68)
    e.add_argument("--lam", type=float, default=1.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--chains", type=int, default=None,
                   help="Markov chains per chunk (default min(chunk, 256))")
    e.add_argument("--store", required=True, metavar="DIR", help="output folder")
    _cluster_options(e)
    e.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    e.add_argument("--quiet", action="store_true", help="no progress display")


def _cluster_options(p) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address (tcp://host:port) or scheduler file of a running Dask "
                        "cluster; default: a local cluster on this machine")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local cluster processes (default: one per core)")


def _check_cluster(args) -> int:
    """Workers that will run at once on this machine (1 for a remote scheduler's share)."""
    from explorer.sweep.cluster import default_workers

    scheduler, workers = getattr(args, "scheduler", None), getattr(args, "workers", None)
    if scheduler and workers is not None:
        raise ValueError("--workers sizes the local cluster; with --scheduler the cluster's own "
                         "workers run the tasks")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if scheduler:
        return 1
    return default_workers() if workers is None else workers


def _check_folder(path: str, flag: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a folder")
    if not out.exists() and not out.parent.is_dir():
        raise ValueError(f"{flag} {path}: the folder {out.parent} does not exist")
    return out


def _point_bytes(p: dict) -> int:
    """Generous peak memory of one point: the data generator, float64 copies of data and
    samples for the fit, the sampler and the comparison."""
    L2, n = p["size"] ** 2, p["n_data"]
    if p["kind"] == "phi4":
        C = min(n, 256)
        gen = (4 * -(-n // C) * C + 64 * C + 8 * n) * L2
    elif p["kind"] == "gaussian":
        from explorer.core.fields.gaussian import gaussian_memory_bytes

        gen = gaussian_memory_bytes(p["size"], n)
    else:
        from explorer.core.fields.turbulence import turbulence_memory_bytes

        gen = turbulence_memory_bytes(p["size"], n)
    return max(gen, 96 * (n + p["n_samples"]) * L2)


def _plot_dir(path: str | None) -> Path | None:
    """The validated ``--plot`` folder (None without the option); loads the PNG backend before
    any work, as ``explorer compare --plot`` does."""
    if not path:
        return None
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise ValueError(f"--plot must name a folder, {path!r} is a file")
    if not d.exists() and not d.parent.is_dir():
        raise ValueError(f"--plot {path}: the folder {d.parent} does not exist")
    from explorer.ui import figures

    figures.ensure_backends(("matplotlib",))
    return d


def _write_figures(figs: dict, directory: Path) -> list[str]:
    from explorer.cli.validation import write_figures  # removes partial output on failure

    return write_figures(figs, directory)


# ------------------------------------------------------------------ commands
def cmd_sweep(args, argv) -> dict:
    from explorer.sweep.grid import KIND_PARAMETERS, make_grid
    from explorer.sweep.runner import run_sweep
    from explorer.sweep.table import COLUMNS, read_table

    kind = args.kind
    given = {"beta": args.beta, "lam": args.lam, "eta": args.slope, "drag": args.drag}
    flags = {"beta": "--beta", "lam": "--lam", "eta": "--slope", "drag": "--drag"}
    for name, value in given.items():
        if value is not None and name not in KIND_PARAMETERS[kind]:
            raise ValueError(f"{flags[name]} is not an option of {kind} sweeps")
    out = _check_folder(args.out, "--out")
    figures_dir = _plot_dir(getattr(args, "plot", None))
    workers = _check_cluster(args)
    points = make_grid(kind, size=args.size, **{k: v for k, v in given.items() if v is not None},
                       family=args.family, J=args.depth,
                       method=args.method, seeds=args.seeds, n_samples=args.samples,
                       n_data=args.data, steps=args.steps, burn_in=args.burn_in,
                       sampler=args.sampler)
    big = max(points, key=_point_bytes)
    check_memory(_point_bytes(big) * workers, "the sweep",
                 f"{workers} worker(s) at once, the largest point {big['n_data']} + "
                 f"{big['n_samples']} fields of {big['size']}x{big['size']} "
                 f"(~{format_bytes(_point_bytes(big))} each)",
                 "use fewer --samples/--data, smaller sizes or fewer --workers")
    read_table(out / "results.csv")  # a foreign or unreadable table fails here, before Dask
    t0 = time.perf_counter()
    summary = run_sweep(points, out, callback=_Printer("points", args.quiet),
                        scheduler=args.scheduler, n_workers=args.workers,
                        store_fields=args.store_fields)
    rows = read_table(out / "results.csv")
    keys = {p["key"] for p in points}
    failed = [{"index": int(r["index"]), "message": r["message"]} for r in rows
              if r["key"] in keys and r["status"] == "failed"]
    result = {**summary, "command": "explorer " + shlex.join(argv), "columns": list(COLUMNS),
              "failed_points": failed, "wall_seconds": time.perf_counter() - t0}
    if figures_dir is not None:
        from explorer.ui.sweep_figures import sweep_figures

        in_grid = [r for r in rows if r["key"] in keys]
        result["figures"] = _write_figures(sweep_figures(in_grid), figures_dir)
        result["figures_dir"] = str(figures_dir)
    return result


def cmd_ensemble(args, argv) -> dict:
    from explorer.sweep.ensemble import check_ensemble, run_ensemble

    store = getattr(args, "store", None)
    if not store:
        raise ValueError("an ensemble needs --store DIR (the folder of its chunk files)")
    for flag, attr in (("--local-only", "local_only"),
                       ("--require-equilibrium", "require_equilibrium")):
        if getattr(args, attr, False):
            raise ValueError(f"{flag} is not supported with --store (ensembles)")
    out = _check_folder(store, "--store")
    _check_cluster(args)
    chunk = getattr(args, "chunk", None)
    chunk = DEFAULT_CHUNK if chunk is None else chunk
    chains = getattr(args, "chains", None)
    kind = getattr(args, "kind", "phi4")
    check_ensemble(kind, args.size, args.samples, chunk, args.beta, args.lam, args.seed, chains)
    t0 = time.perf_counter()
    result = run_ensemble(kind, size=args.size, n_samples=args.samples, chunk=chunk,
                          beta=args.beta, lam=args.lam, seed=args.seed, out_dir=out,
                          scheduler=getattr(args, "scheduler", None),
                          n_workers=getattr(args, "workers", None), chains=chains,
                          callback=_Printer("chunks", getattr(args, "quiet", False)))
    return {**result, "command": "explorer " + shlex.join(argv),
            "wall_seconds": time.perf_counter() - t0}


COMMANDS = {"sweep": cmd_sweep, "ensemble": cmd_ensemble}


def print_result(args, result: dict) -> None:
    """Human-readable summary on stdout (``--json`` prints the dict instead)."""
    if args.command == "sweep":
        print(f"{result['table']}: {result['ok']} ok, {result['failed']} failed of "
              f"{result['points']} points ({result['computed']} computed, {result['skipped']} "
              f"already done) in {_duration(result['wall_seconds'])}")
        for f in result["failed_points"]:
            print(f"  point {f['index']}: {f['message']}")
        if result.get("figures"):
            print(f"figures in {result['figures_dir']}: " + ", ".join(result["figures"]))
    else:
        o = result.get("observables") or {}
        line = (f"{result['out_dir']}: {result['n_fields']} fields in {result['chunks']} chunks "
                f"({result['computed']} generated, {result['skipped']} already there)")
        if o:
            line += (f"; U = {o['binder']:.4f} ± {o['binder_err']:.4f}, chi = {o['chi']:.4g} ± "
                     f"{o['chi_err']:.2g}, <|m|> = {o['abs_m']:.4f}")
        print(line)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m explorer.sweep_cli sweep ...``) until the commands
    are registered in the CLI package; exit status 2 and one line for bad input."""
    import json

    from explorer.core.io import json_default

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="explorer")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        result = COMMANDS[args.command](args, argv)
    except (ValueError, OSError, RuntimeError, FloatingPointError) as e:
        print(f"explorer: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=json_default))
    else:
        print_result(args, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

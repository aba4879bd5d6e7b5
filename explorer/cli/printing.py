"""What the command line prints: progress on stderr, results on stdout (``--json``: the whole
result as JSON; otherwise short lines per command)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from explorer.core.io import json_default
from explorer.core.progress import Progress


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
        info = " ".join(f"{k}={fmt(v)}" for k, v in p.info.items() if k != "warning")
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


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return str(v)


def print_result(args, result: dict) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=json_default))
    elif args.command == "info":
        print_info(result)
    elif args.command == "compare":
        print_compare(result)
    elif args.command == "diagnose":
        print_diagnose(result)
    elif args.command == "fit":
        print_fit(result)
    elif args.command == "sample":
        print_sample(result)
    elif args.command == "rgflow":
        print_rgflow(result)
    elif args.command in ("energy", "synthesize"):
        print(json.dumps(result, default=json_default)[:2000])
    elif args.command in ("sweep", "ensemble") or getattr(args, "store", None):
        from explorer.sweep_cli import print_result as print_sweep

        if args.command == "generate":
            args.command = "ensemble"
        print_sweep(args, result)
    elif args.command == "scattering":
        print(f"{result['file']}: {result['count']} {result['reduction']} scattering coefficients "
              f"(J={result['params']['J']}, L={result['params']['L']}, {result['n_fields']} fields; "
              "--json for all)")


def print_rgflow(r: dict) -> None:
    """One file: a line per coarse-graining step (side, couplings, distance to the previous
    step). Several: a row per file with its distances and their mean."""
    if "scales" in r:
        print(f"{r.get('label', '')}: {r['family']} ansatz, {r['normalisation']}")
        for s in r["scales"]:
            th = "  ".join(f"{k} {v:+.4g}" for k, v in s["theta"].items())
            d = f"  distance {s['distance']:.3f}" if "distance" in s else ""
            print(f"  L {s['L']:>4}: {th}{d}")
        print(f"mean distance {r['mean_distance']:.3f}")
    else:
        for label, row in r["rows"].items():
            ds = ", ".join(f"{d:.2f}" for d in row["distance"])
            print(f"{label:<14} sides {row['L'][0]}->{row['L'][-1]}: distances {ds}  "
                  f"mean {row['mean_distance']:.3f}")
        print(f"closest to a fixed point: {r['closest_to_fixed']}")
    print(f"distance: {r.get('definition') or r.get('distance_definition')}")
    for f in r.get("figures", []):
        print(f"figure: {f}")


def print_fit(r: dict) -> None:
    """One line per factor (coarse first): parameters, kappa(H) raw -> Jacobi, seconds,
    warnings."""
    st = r.get("stats") or {}
    L = st.get("L")
    print(f"{r['out']}: {r['family']} model, depth {r['J']}, wavelet {r['wavelet']}, fitted on "
          f"{st.get('n_fields', '?')} fields of {L}x{L}")
    total = 0
    for s in r.get("scales", []):
        f = s.get("fit") or {}
        name = "coarse" if s.get("level") == "depth0" else f"j={s['j']}"
        if s.get("level") == "depth0" and L:
            side = L >> r["J"]
            name += f" ({side}x{side})"
        n_par = f.get("n_parameters", len(s.get("theta", {})))
        total += n_par
        parts = [f"{name:<16}", f"{n_par:>5} parameters"]
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


def print_sample(r: dict) -> None:
    """One line per scale: acceptance, step, gradient evaluations (and any other key); totals."""
    known = ("scale", "acceptance", "step", "gradient_evaluations")
    for s in r.get("scales", []):
        parts = [f"{s.get('scale', '?'):<8}"]
        if s.get("acceptance") is not None:
            parts.append(f"acceptance {s['acceptance']:.3f}")
        if s.get("step") is not None:
            parts.append(f"step {s['step']:.4g}")
        if s.get("gradient_evaluations") is not None:
            parts.append(f"gradient evaluations {s['gradient_evaluations']}")
        parts += [f"{k} {fmt(v)}" for k, v in s.items() if k not in known]
        print("  ".join(parts))
    shape = r.get("shape") or []
    what = f"{shape[0]} fields of {shape[1]}x{shape[2]}" if len(shape) == 3 else "samples"
    line = f"total: {what} -> {r.get('out')}"
    if r.get("gradient_evaluations") is not None:
        line += f", {r['gradient_evaluations']} gradient evaluations"
    if r.get("seconds") is not None:
        line += f", {r['seconds']:.2f} s"
    print(line)
    tr = r.get("size_transfer")
    if tr:
        ext = ", ".join(f"j={j} from j={e['from']}" for j, e in tr["conditionals_extrapolated"].items())
        print(f"size transfer: fitted at {tr['fitted_size']}x{tr['fitted_size']}, sampled at "
              f"{tr['size']}x{tr['size']}; extrapolated {ext}; detail growth per level "
              f"{tr['detail_growth_per_level']:.3f} (log2 {tr['detail_growth_log2']:.3f}, 7/8 at "
              f"beta_c), coarse field rescaled by {tr['coarse_rescaled_by']:.3f}")
    extra = {k: v for k, v in r.items()
             if k not in ("out", "shape", "scales", "gradient_evaluations", "seconds",
                          "size_transfer")}
    if extra:
        print("  ".join(f"{k} {fmt(v)}" for k, v in extra.items()))


def _hessian_line(name: str, e: dict, warn=None) -> str:
    kappa = e["condition_number"]
    return (f"{name:>7}: lambda [{e['min_eigenvalue']:.4g}, {e['max_eigenvalue']:.4g}]  "
            f"negative {100 * e['negative_share']:.1f}%  "
            f"kappa {'%.4g' % kappa if kappa is not None else 'n/a (not convex)'}"
            + ("  (SLQ estimate)" if e["estimated"] else "")
            + (f"  WARNING (fit): {'; '.join(warn)}" if warn else ""))


def print_diagnose(r: dict) -> None:
    """Per factor: the Hessian's extreme eigenvalues, negative share, kappa (full report:
    --json)."""
    h = r["hessian"]
    rows = [("pixel", h["pixel"])] if "pixel" in h else (
        [(f"j={s['j']}", s) for s in h["scales"]] + [("coarse", h["coarse"])])
    for name, e in rows:
        print(_hessian_line(name, e, (r.get("fit_warnings") or {}).get(name)))
    if r.get("figures"):
        print("figures: " + ", ".join(r["figures"]))


def print_compare(r: dict) -> None:
    """Short lines of a comparison report, every section or why it is missing (full report:
    --json)."""
    print(f"spectrum mean |log ratio| {r['spectrum_log_ratio']:.4f}  histogram TV "
          f"{r['total_variation']:.4f}  KL {r['kl_divergence']:.4f}  Binder diff "
          f"{r['binder_difference']:.4f}")
    extra = [f"{label} {fmt(r[key])}" for key, label in
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
    c = r.get("coupling")
    if c:
        print("largest cross-scale coupling of moduli: data "
              f"{c['data']['moduli_cross_scale_max']:.3f}  samples "
              f"{c['samples']['moduli_cross_scale_max']:.3f}")
    h = r.get("hessian")
    if h:
        print(f"Hessian eigenvalues at {h['n_fields']} data fields:")
        for name, e in h["histograms"].items():
            print("  " + _hessian_line(name, e["report"]).strip())
    m = r.get("mixing")
    if m:
        print(f"tau_int of the mean energy ({m['unit']}): "
              + "  ".join(f"{k} {v['tau_int']:.4g}" for k, v in m["scales"].items()))
    s = r.get("scattering")
    if s:
        print("scattering spectra, mean relative difference: "
              + "  ".join(f"{k} {100 * v:.1f}%" for k, v in s["relative_difference"].items()))
    missing = {k: v for k, v in (r.get("reasons") or {}).items() if v}
    for k, v in missing.items():
        print(f"{k}: not computed ({v})")
    if r.get("figures"):
        print("figures: " + ", ".join(r["figures"]))


def print_info(result: dict) -> None:
    s = result["summary"]
    print(f"{result['file']}: {s['shape']} {result['generator']}  mean {s['mean']:.4g}  "
          f"std {s['std']:.4g}")
    for family, obs in result["observables"].items():
        items = ", ".join(f"{k} {fmt(v)}" for k, v in obs.items() if not isinstance(v, dict))
        print(f"  {family}: {items}")
        for k, v in obs.items():
            if isinstance(v, dict) and k != "spectrum":  # the spectrum is for --json
                print(f"    {k}: " + ", ".join(f"{kk}: {fmt(vv)}" for kk, vv in v.items()))

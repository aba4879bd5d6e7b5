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
    """Shows progress reports on stderr: on a terminal a tqdm bar per stage (steps done, rate,
    time elapsed and left); otherwise (a log file, a pipe) a line per stage and every 5 s.

    Warnings are always shown, also with ``quiet``. A sampler's stages are ``SCALE: burn-in`` and
    ``SCALE: sampling``, their totals the MALA steps of that scale: the coarse field runs more
    steps than ``--steps`` (4^J times, at most 16 times), being smaller."""

    #: the stream holding an unfinished live line (an error message must not be appended to it)
    open_line = None
    #: the printer whose bar is live (an error erases it: :meth:`abandon`)
    live = None
    #: info keys shown next to a bar or line (the rest is for --json)
    SHOWN = ("scale", "acceptance", "step", "parameters", "loss", "points")

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stage = None
        self.last = 0.0
        self.bar = None

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if ProgressPrinter.open_line is self.stream:
            ProgressPrinter.open_line = None
        if ProgressPrinter.live is self:
            ProgressPrinter.live = None

    @classmethod
    def abandon(cls) -> None:
        """Forget the live bar without drawing it again (an error message takes its line)."""
        printer, cls.live = cls.live, None
        if printer is not None and printer.bar is not None:
            printer.bar.disable = True   # closing it later writes nothing
            printer.bar = None

    def __call__(self, p: Progress) -> None:
        if p.info.get("warning"):  # warnings are never silenced, not even by --quiet
            if self.bar is not None:
                self.bar.clear()
            self.stream.write(f"warning ({p.info.get('scale', p.stage)}): {p.info['warning']}\n")
            self.stream.flush()
            if self.bar is not None:
                self.bar.refresh()
        if self.quiet:
            return
        info = " ".join(f"{k}={fmt(v)}" for k, v in p.info.items() if k in self.SHOWN)
        if self.tty:
            self._show_bar(p, info)
        else:
            now = time.monotonic()
            if p.stage != self.stage or p.done or now - self.last > 5.0:
                self.stream.write(f"[{p.stage}] {p.step}/{p.total} {info}".rstrip() + "\n")
                self.stream.flush()
                self.last = now
        self.stage = p.stage

    def _show_bar(self, p: Progress, info: str) -> None:
        from tqdm import tqdm

        if self.bar is None or p.stage != self.stage:
            self._close_bar()
            self.bar = tqdm(total=p.total or None, desc=f"[{p.stage}]", file=self.stream,
                            unit="step", dynamic_ncols=True, mininterval=0.2, leave=True)
        if p.total and p.step <= p.total:
            self.bar.n = p.step
        if info:
            self.bar.set_postfix_str(info, refresh=False)
        self.bar.refresh()
        ProgressPrinter.open_line, ProgressPrinter.live = self.stream, self
        if p.done:
            self._close_bar()


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
        (print_model_info if result.get("kind") == "model" else print_info)(result)
    elif args.command == "compare":
        print_compare(result)
    elif args.command == "diagnose":
        print_diagnose(result)
    elif args.command == "fit":
        print_fit(result)
    elif args.command == "sample":
        print_sample(result)
    elif args.command == "energy":
        print_energy(result)
    elif args.command == "rgflow":
        print_rgflow(result)
    elif args.command == "synthesize":
        print(f"{result['out']}: {result['shape'][0]} syntheses of {result['shape'][1]}x"
              f"{result['shape'][2]}" + (f", final loss {result['loss']:.4g}"
                                         if isinstance(result.get("loss"), float) else "")
              + " (--json for the details)")
    elif args.command in ("sweep", "ensemble") or getattr(args, "store", None):
        from explorer.sweep_cli import print_result as print_sweep

        if args.command == "generate":
            args.command = "ensemble"
        print_sweep(args, result)
    elif args.command == "scattering":
        print(f"{result['file']}: {result['count']} {result['reduction']} scattering coefficients "
              f"(J={result['params']['J']}, L={result['params']['L']}, {result['n_fields']} fields; "
              "--json for all)")


def _table(rows: list[list[str]], header: list[str]) -> None:
    """Print rows under a header, columns left-aligned to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def _couplings(theta: dict, n: int = 3) -> str:
    """The ``n`` largest couplings by magnitude, with their feature names."""
    top = sorted(theta.items(), key=lambda kv: -abs(kv[1]))[:n]
    return ", ".join(f"{k} {v:+.3g}" for k, v in top)


def print_rgflow_distances(r: dict) -> None:
    """Several files: a row per file with its distances between successive couplings."""
    for label, row in r["rows"].items():
        ds = ", ".join(f"{d:.2f}" for d in row["distance"])
        print(f"{label:<14} sides {row['L'][0]}->{row['L'][-1]}: distances {ds}  "
              f"mean {row['mean_distance']:.3f}")
    print(f"closest to a fixed point: {r['closest_to_fixed']}")
    print(f"distance: {r['definition']}")
    for f in r.get("figures", []):
        print(f"figure: {f}")


def _generated_note(gen: dict | None, what: str) -> str | None:
    """The fit header's note on a refinement on generated fields (its provenance record)."""
    if not gen:
        return None
    if "skipped" in gen:
        return f"{what}refinement on generated fields skipped ({gen['skipped']})"
    kept = [j for j in gen["levels"] if j not in gen["kept_previous"]]
    return (f"{what}j={', '.join(map(str, kept)) or 'none'} refined on generated fields"
            + (f" (j={', '.join(map(str, gen['kept_previous']))} kept as fitted)"
               if gen["kept_previous"] else ""))


def print_fit(r: dict) -> None:
    """A table, one row per factor (coarse first): size, parameters, the largest couplings,
    kappa(H) raw -> Jacobi, bounded below, seconds; then warnings and totals."""
    st = r.get("stats") or {}
    L = st.get("L")
    pre = (r.get("provenance") or {}).get("preprocessing") or {}
    extra = []
    if pre.get("dequantise"):
        extra.append(f"dequantised with N(0, {pre['dequantise']['sigma']:g}^2) noise")
    if pre.get("marginal"):
        extra.append("one-point law Gaussianised (anamorphosis)")
    prov = r.get("provenance") or {}
    for key, what in (("refine_variances", "variances: "), ("refine_generated", "")):
        note = _generated_note(prov.get(key), what)
        if note:
            extra.append(note)
    opts = ", ".join(f"{k} {v}" for k, v in (r.get("options") or {}).items())
    print(f"{r['out']}: {r['family']} model ({opts}), depth {r['J']}, wavelet {r['wavelet']}, "
          f"fitted on {st.get('n_fields', '?')} fields of {L}x{L}"
          + (f"; {'; '.join(extra)}" if extra else ""))
    rows, warnings, total = [], [], 0
    for s in r.get("scales", []):
        f = s.get("fit") or {}
        coarse = s.get("level") == "depth0"
        name = "coarse" if coarse else f"j={s['j']}"
        side = (L >> r["J"]) if coarse and L else ((L >> (s["j"] - 1)) if L else None)
        n_par = f.get("n_parameters", len(s.get("theta", {})))
        total += n_par
        if f.get("kappa_H_raw") is not None and f.get("kappa_H_preconditioned") is not None:
            kappa = f"{f['kappa_H_raw']:.3g} -> {f['kappa_H_preconditioned']:.3g}"
        elif f.get("method") == "ml":
            kappa = f"ML {f.get('iterations', '?')} it" + ("" if f.get("converged") else " (!)")
        else:
            kappa = "-"
        warns = list(f.get("warnings") or [])
        qb = f.get("quadratic_base") or {}
        if "warnings" not in f and qb.get("indefinite"):
            warns.append(f"quadratic part indefinite (lambda <= {qb['ritz_min']:.3g}): energy "
                         "unbounded below")
        bounded = (f.get("bounded") or {}).get("bounded")
        rows.append([name, f"{side}x{side}" if side else "?", str(n_par),
                     _couplings(s.get("theta") or {}), kappa,
                     "no" if bounded is False or warns and "unbounded" in " ".join(warns)
                     else "yes" if bounded else "-",
                     f"{f['seconds']:.2f}" if f.get("seconds") is not None else "-"])
        warnings += [f"{name}: WARNING: {w}" for w in warns]
    _table(rows, ["factor", "field", "params", "largest couplings", "kappa(H) raw -> Jacobi",
                  "bounded", "seconds"])
    for w in warnings:
        print(w)
    print(f"total: {len(rows)} factors, {total} parameters, {r.get('seconds', 0.0):.2f} s "
          "(every coupling: --json, or 'explorer info MODEL')")


def print_sample(r: dict) -> None:
    """A table, one row per scale (coarse first): acceptance, frozen step, RMS / data std,
    gradient evaluations, seconds; then totals."""
    rows = []
    for s in r.get("scales", []):
        rows.append([str(s.get("scale", "?")),
                     f"{s['acceptance']:.3f}" if s.get("acceptance") is not None else "-",
                     f"{s['step']:.4g}" if s.get("step") is not None else "-",
                     f"{s['rms_ratio']:.3f}" if s.get("rms_ratio") is not None else "-",
                     str(s.get("gradient_evaluations", "-")),
                     f"{s['seconds']:.2f}" if s.get("seconds") is not None else "-"])
    _table(rows, ["scale", "acceptance", "step", "rms/std", "gradient evaluations", "seconds"])
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
              f"beta_c), coarse field rescaled by {tr['coarse_rescaled_by']:.3f} (mean), "
              f"{tr.get('coarse_fluctuation_rescaled_by', tr['coarse_rescaled_by']):.3f} "
              "(fluctuation)")
        how = tr.get("extrapolation", {})
        if how:
            print(f"extrapolated with: {how['method']}; "
                  + (how.get("regime") or how.get("reason", "")))
    for note in ("marginal", "requantised"):
        if r.get(note):
            print(f"note: {r[note]}")


def print_energy(r: dict) -> None:
    if r.get("energies") is not None:
        e = r["energies"]
        print(f"energy of {len(e)} fields: " + " ".join(f"{v:.6g}" for v in e[:8])
              + (" ..." if len(e) > 8 else ""))
    else:
        for name, e in r["scale_energies"].items():
            print(f"{name:<8} mean {sum(e) / len(e):.6g}  first " + " ".join(
                f"{v:.6g}" for v in e[:4]) + (" ..." if len(e) > 4 else ""))
    print(f"note: {r['note']} (every value: --json)")


def print_rgflow(r: dict) -> None:
    """One file: a row per coarse-graining step and the distances between successive couplings;
    several files: the distance table."""
    if "rows" in r:
        print_rgflow_distances(r)
        return
    rows = [[str(s["j"]), f"{s['L']}x{s['L']}", f"{s['scale_factor']:.4g}",
             _couplings(s["theta"], 4),
             f"{s['kappa_H_preconditioned']:.3g}" if s.get("kappa_H_preconditioned") else "-"]
            for s in r["scales"]]
    print(f"RG flow of the {r['family']} couplings ({r['normalisation']}):")
    _table(rows, ["j", "field", "rescaling", "largest couplings", "kappa(H) Jacobi"])
    ds = r.get("distances") or []
    if ds:
        print("distances between successive couplings: " + ", ".join(f"{d:.3f}" for d in ds)
              + f" (mean {r['mean_distance']:.3f})")
        print(f"distance: {r['distance_definition']}")
    for f in r.get("figures", []):
        print(f"figure: {f}")


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


def verdict_lines(generic: dict) -> list[str]:
    """One line per statistic: ok/FAIL, the statistic, data and samples, the value against its
    threshold and the rule (thresholds: README, "Your own data")."""
    def num(v):
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(num(x) for x in v) + "]"
        return "-" if v is None else f"{v:.4g}"

    lines = []
    for v in generic["verdicts"]:
        both = (f"data {num(v['data'])}  samples {num(v['samples'])}  "
                if v["data"] is not None else "")
        lines.append(f"{'ok  ' if v['ok'] else 'FAIL'}  {v['statistic']:<26} {both}"
                     f"value {num(v['value'])} (threshold {num(v['threshold'])}: {v['rule']})")
    lines.append(f"verdict: {generic['passed']}/{generic['total']} statistics within their "
                 "thresholds")
    return lines


def one_point_lines(generic: dict) -> list[str]:
    """The one-point statistics of data and samples side by side."""
    d, s = generic["one_point"]["data"], generic["one_point"]["samples"]
    keys = ("mean", "std", "skewness", "kurtosis", "min", "max", "field_mean_spread")
    rows = [f"{'':<18}{'data':>12}{'samples':>12}"]
    for k in keys:
        a, b = d[k], s[k]
        rows.append(f"{k:<18}{'-' if a is None else f'{a:.4g}':>12}"
                    f"{'-' if b is None else f'{b:.4g}':>12}")
    for q in d["quantiles"]:
        rows.append(f"{'quantile ' + q:<18}{d['quantiles'][q]:>12.4g}{s['quantiles'][q]:>12.4g}")
    return rows


def print_compare(r: dict) -> None:
    """The verdicts first, then the one-point statistics, labelled per-scale ratios, and every
    section or why it is missing (full report: --json)."""
    g = r.get("generic")
    if g:
        print("\n".join(verdict_lines(g)))
        print()
        print("\n".join(one_point_lines(g)))
        print()
    line = (f"spectrum mean |log ratio| {r['spectrum_log_ratio']:.4f}  histogram TV "
            f"{r['total_variation']:.4f}  KL {r['kl_divergence']:.4f}")
    if r.get("binder_difference") is not None:
        line += f"  Binder diff {r['binder_difference']:.4f}"
        if r.get("binder_data") is not None:
            line += f" (data {r['binder_data']:.4f}, samples {r['binder_samples']:.4f})"
    print(line)
    extra = [f"{label} {fmt(r[key])}" for key, label in
             (("spectrum_2d_log_ratio", "2D spectrum mean |log ratio|"),
              ("corner_power_ratio", "corner power ratio")) if r.get(key) is not None]
    if extra:
        print("  ".join(extra))
    labels = (g or {}).get("scale_labels") or [f"{i}" for i in range(len(r["scale_std_ratios"]))]
    print("per-scale std ratios (samples/data): " + "  ".join(
        f"{lab} {x:.3f}" for lab, x in zip(labels, r["scale_std_ratios"])))
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
    """A field file: how it was read, the generic statistics, the suggested depth, and the domain
    observables its meta (or --observables) asked for."""
    s, g = result["summary"], result["generic"]
    src = result.get("source") or {}
    how = []
    if src.get("key"):
        how.append(f"array {src['key']!r}")
    if src.get("dtype"):
        how.append(f"stored {src['dtype']}")
    if src.get("cast"):
        how.append(f"read as float32 ({src['cast']})")
    n, L = s["shape"][0], s["shape"][-1]
    print(f"{result['file']}: {n} field{'s' if n != 1 else ''} of {L}x{L}, generator "
          f"{result['generator']}" + (f" ({', '.join(how)})" if how else ""))
    o = g["one_point"]
    print(f"  values     mean {o['mean']:.4g}  std {o['std']:.4g}  min {o['min']:.4g}  "
          f"max {o['max']:.4g}")
    print(f"  shape      skewness {o['skewness']:.4f}  kurtosis {o['kurtosis']:.4f} "
          "(Gaussian: 0 and 3)")
    print("  quantiles  " + "  ".join(f"{k} {v:.4g}" for k, v in o["quantiles"].items()))
    if o["field_mean_spread"] is None:
        print("  per-field means: one field, no spread")
    else:
        print(f"  per-field means: spread (std over fields) {o['field_mean_spread']:.4g} = "
              f"{o['field_mean_spread_rel']:.3g} x the std of all values")
    sl = g["spectrum_slope"]
    if sl is None:
        print(f"  spectrum   no slope ({g['spectrum_slope_note']})")
    else:
        print(f"  spectrum   P(k) ~ k^{sl['slope']:.2f} fitted over shells n = {sl['shells'][0]}.."
              f"{sl['shells'][1]} ({sl['n_shells']} shells, k = {sl['k_range'][0]:.3g}.."
              f"{sl['k_range'][1]:.3g}; rms residual {sl['residual_rms']:.2g} in log P)")
    d = g["discrete"]
    if d is not None:
        vals = ", ".join(f"{v:g}" for v in d["values"][:6]) + (", ..." if d["n_values"] > 6
                                                             else "")
        print(f"  discrete   {d['n_values']} distinct values ({vals}): fit needs "
              f"--dequantise SIGMA (e.g. {d['suggested_sigma']:g})")
    sd = g["suggested_depth"]
    print(f"  suggested depth {sd['depth']} ({sd['reason']})")
    for family, obs in result["observables"].items():
        items = ", ".join(f"{k} {fmt(v)}" for k, v in obs.items() if not isinstance(v, dict))
        print(f"  {family}: {items}")
        for k, v in obs.items():
            if isinstance(v, dict) and k != "spectrum":  # the spectrum is for --json
                print(f"    {k}: " + ", ".join(f"{kk}: {fmt(vv)}" for kk, vv in v.items()))


def print_model_info(r: dict) -> None:
    """A model file: what was fitted on what, the preprocessing, one row per factor."""
    prov = r.get("provenance") or {}
    print(f"{r['file']}: WCRG model")
    print_fit({**r, "out": r["file"], "seconds": prov.get("fit_seconds", 0.0)})
    if prov.get("data") or prov.get("command"):
        print(f"fitted on: {prov.get('data', '?')}  ({prov.get('command', 'no command recorded')})")

"""Markdown of the generic statistics, for any data: the summary of a field batch (what
``explorer info`` prints) and the verdicts of a comparison (what ``explorer compare`` prints), so
that the app and the command line show the same numbers under the same names. Pure functions of
the core's dicts (:func:`explorer.core.summary.field_summary`,
:func:`explorer.core.statistics.comparison_verdicts`); no Panel."""

from __future__ import annotations


def _num(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_num(x) for x in v) + "]"
    return f"{v:.4g}"


def summary_markdown(summary: dict | None) -> str:
    """The generic summary of a batch as a Markdown table: how it was read, moments with
    skewness and kurtosis, extremes, quantiles, per-field mean spread, spectral slope with its
    fitted range, discreteness (with the dequantisation recipe) and the suggested depth."""
    if not summary or not summary.get("generic"):
        return ""
    g, s = summary["generic"], summary["summary"]
    o = g["one_point"]
    src = summary.get("source") or {}
    rows = ["| statistic | value |", "|---|---|",
            f"| fields | {s['n']} of {s['size']}×{s['size']} |"]
    if src.get("dtype"):
        rows.append(f"| stored as | {src['dtype']}"
                    + (f" (read as {src['cast']})" if src.get("cast") else "") + " |")
    rows += [f"| mean / std | {_num(o['mean'])} / {_num(o['std'])} |",
             f"| min / max | {_num(o['min'])} / {_num(o['max'])} |",
             f"| skewness / kurtosis (Gaussian: 0 / 3) | {o['skewness']:.3f} / "
             f"{o['kurtosis']:.3f} |",
             "| quantiles 1 % / 50 % / 99 % | " + " / ".join(
                 _num(o["quantiles"][k]) for k in ("1%", "50%", "99%")) + " |",
             "| per-field mean spread (std over fields) | "
             + ("one field" if o["field_mean_spread"] is None else
                f"{_num(o['field_mean_spread'])} ({o['field_mean_spread_rel']:.3g} × std)")
             + " |"]
    sl = g["spectrum_slope"]
    rows.append("| spectral slope | " + (
        f"P ∝ k^{sl['slope']:.2f} over shells {sl['shells'][0]}–{sl['shells'][1]} "
        f"({sl['n_shells']} shells)" if sl else g["spectrum_slope_note"]) + " |")
    d = g["discrete"]
    if d:
        rows.append(f"| discrete | {d['n_values']} values: set *dequantise* σ ≈ "
                    f"{d['suggested_sigma']:g} before fitting |")
    sd = g["suggested_depth"]
    rows.append(f"| suggested depth J | {sd['depth']} ({sd['reason']}) |")
    return "\n".join(rows)


def verdicts_markdown(generic: dict | None) -> str:
    """One row per statistic of a comparison: ✓ or ✗, data, samples, value, threshold, rule."""
    if not generic:
        return ""
    rows = [f"**Verdict: {generic['passed']}/{generic['total']} statistics within their "
            "thresholds**", "",
            "| | statistic | data | samples | value | threshold | rule |",
            "|---|---|---|---|---|---|---|"]
    for v in generic["verdicts"]:
        rows.append(f"| {'✓' if v['ok'] else '✗'} | {v['statistic']} | {_num(v['data'])} | "
                    f"{_num(v['samples'])} | {_num(v['value'])} | {_num(v['threshold'])} | "
                    f"{v['rule'].replace('|', chr(92) + '|')} |")
    return "\n".join(rows)

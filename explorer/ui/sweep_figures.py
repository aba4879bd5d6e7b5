"""Figures of a sweep table (HoloViews only, no Panel): the Binder cumulant U(β) and ⟨|m|⟩(β)
per lattice size L for the data (points with error bars) and the model's samples (dashed lines
with markers), and the per-point distances (radial spectrum log ratio, histogram total variation)
against the generator parameter per L. In a notebook::

    from explorer.ui.sweep_figures import sweep_figure
    sweep_figure("sweep/")              # a folder, a results.csv, rows, or curves(...) output

PNG files go through :func:`explorer.ui.figures.write_figures` (HoloViews' Matplotlib backend),
as ``explorer compare --plot`` does: ``write_figures(sweep_figures(table), "plots/")``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import holoviews as hv
import numpy as np

from explorer.sweep.curves import curves as sweep_curves
from explorer.sweep.table import RESULTS, read_table, typed
from explorer.ui.figures import _style

BETA_C = 0.68  # the critical coupling of the shipped phi4 (lam = 1), marked on the beta axes
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
GUIDE = "#999999"
#: per-point distances drawn against the generator parameter: column -> label
DISTANCES = {"spectrum_log_ratio": "spectrum |log ratio|", "total_variation": "histogram TV"}
_X = {"phi4": ("beta", "β"), "gaussian": ("eta", "η"), "turbulence": ("drag", "drag")}
_OBS = {"binder": ("U", "Binder U(β)"), "absm": ("abs_m", "⟨|m|⟩(β)")}


def _rows(table) -> list[dict]:
    """Typed rows of a table given as a folder, a ``results.csv`` path or rows."""
    if isinstance(table, (str, Path)):
        p = Path(table)
        table = read_table(p / RESULTS if p.is_dir() else p)
    return [typed(r) if isinstance(r.get("size"), str) else dict(r) for r in table]


def _is_curves(table) -> bool:
    return isinstance(table, dict) and "sizes" in table and "binder" in table


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _dashed(el, dash: bool = True):
    return _style(el, mpl={"linestyle": "--" if dash else "-"},
                  line_dash="dashed" if dash else "solid")


def observable_plot(c: dict, observable: str = "binder") -> hv.Overlay:
    """U(β) (``"binder"``) or ⟨|m|⟩(β) (``"absm"``) per L from :func:`explorer.sweep.curves`
    output: data as points with error bars, the model dashed with markers; β_c marked, and for U
    the guide lines 2/3 (ordered) and 0 (disordered)."""
    vname, title = _OBS[observable]
    x, y = hv.Dimension("beta", label="β"), hv.Dimension(vname, label=title.split("(")[0])
    els = []
    for i, L in enumerate(c["sizes"]):
        cu, col = c[observable][L], _color(i)
        b = np.asarray(cu["beta"], float)
        for src in ("data", "model"):
            v, e = np.asarray(cu[src], float), np.asarray(cu[f"{src}_err"], float)
            label = f"{src} L={L}"
            pts = hv.Scatter((b, v), kdims=[x], vdims=[y], label=label)
            bars = hv.ErrorBars((b, v, e), kdims=[x], vdims=[y, f"{vname}_err"])
            if src == "data":
                els += [_style(bars, color=col, mpl={"edgecolor": col, "capsize": 3}),
                        _style(pts, color=col, size=8)]
            else:
                line = hv.Curve((b, v), kdims=[x], vdims=[y], label=label)
                els += [_style(bars, color=col, alpha=0.5, mpl={"edgecolor": col}),
                        _dashed(_style(line, color=col)),
                        _style(pts.relabel(""), color=col, size=5, marker="square")]
    if observable == "binder":
        els += [_dashed(_style(hv.HLine(2 / 3), color=GUIDE)),
                _dashed(_style(hv.HLine(0.0), color=GUIDE))]
    els.append(_dashed(_style(hv.VLine(BETA_C), color=GUIDE)))
    if not c["sizes"]:  # nothing yet: empty axes with the right names
        els.insert(0, hv.Scatter([], kdims=[x], vdims=[y]))
    return _style(hv.Overlay(els), title=f"{title}: data (points) and model (dashed), "
                  f"β_c ≈ {BETA_C}", tools=["hover"], legend_position="right",
                  mpl={"legend_position": "right"})


def distances_plot(rows: list[dict], metrics: dict | None = None) -> hv.Overlay:
    """Per-point distances data vs model (default: spectrum |log ratio| solid, histogram total
    variation dashed) against the generator parameter (β, η or drag) per L; seeds averaged."""
    metrics = DISTANCES if metrics is None else metrics
    rows = [r for r in rows if r.get("status") == "ok"]
    kind = rows[0]["kind"] if rows else "phi4"
    xcol, xlabel = _X.get(kind, ("beta", "β"))
    x, y = hv.Dimension(xcol, label=xlabel), hv.Dimension("distance")
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("kind") == kind and r.get(xcol) is not None:
            groups[int(r["size"])][float(r[xcol])].append(r)
    els = []
    for i, L in enumerate(sorted(groups)):
        xs = sorted(groups[L])
        for j, (col, label) in enumerate(metrics.items()):
            ys = [np.nanmean([np.nan if r.get(col) is None else float(r[col])
                              for r in groups[L][v]]) for v in xs]
            name = f"{label} L={L}"
            els += [_dashed(_style(hv.Curve((xs, ys), kdims=[x], vdims=[y], label=name),
                                   color=_color(i)), dash=j > 0),
                    _style(hv.Scatter((xs, ys), kdims=[x], vdims=[y]), color=_color(i), size=6)]
    if kind == "phi4":
        els.append(_dashed(_style(hv.VLine(BETA_C), color=GUIDE)))
    if not groups:
        els.insert(0, hv.Curve([], kdims=[x], vdims=[y]))
    return _style(hv.Overlay(els), title="distances data vs model: " + ", ".join(metrics.values())
                  + " (dashed)" * (len(metrics) > 1), tools=["hover"], legend_position="right",
                  mpl={"legend_position": "right"})


def sweep_figures(table, where: dict | None = None) -> dict:
    """``{name: element}``: ``binder`` (U(β)) and ``abs_m`` (⟨|m|⟩(β)) when the table holds φ⁴
    rows, and ``distances`` when it holds rows (not for :func:`~explorer.sweep.curves` output,
    which has no distances). ``table``: a sweep folder, a ``results.csv``, rows (dicts, as read
    or as returned by ``run_point``) or ``curves(...)`` output; ``where`` as in ``curves``."""
    if _is_curves(table):
        c, rows = table, None
    else:
        rows = _rows(table)
        c = sweep_curves(rows, where=where)
        if where:
            rows = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    figs = {}
    if c["sizes"] or not rows or any(r.get("kind") == "phi4" for r in rows):
        figs["binder"] = observable_plot(c, "binder")
        figs["abs_m"] = observable_plot(c, "absm")
    if rows is not None:
        figs["distances"] = distances_plot(rows)
    return figs


def sweep_figure(table, where: dict | None = None) -> hv.Layout:
    """The figures of :func:`sweep_figures` as one layout (one column)."""
    return hv.Layout(list(sweep_figures(table, where).values())).cols(1)

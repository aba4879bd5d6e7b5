"""Figures of the teaching notebooks (HoloViews, Bokeh backend): arrays and the results of
:mod:`explorer.teaching` to elements, so that the notebooks' cells carry the physics and not the
plotting. Legends sit outside the axes (never over a curve) and titles are short enough for
their plot.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np

LEGEND = {"legend_position": "right"}  # outside the axes, beside the plot


def setup() -> None:
    """Defaults for every notebook figure: legends beside the axes, hover, readable titles."""
    hv.opts.defaults(
        hv.opts.Curve(tools=["hover"], padding=0.05),
        hv.opts.Scatter(tools=["hover"], size=7, padding=0.05),
        hv.opts.Overlay(legend_position="right", fontsize={"title": 10}),
        hv.opts.Image(fontsize={"title": 10}),
        hv.opts.HeatMap(fontsize={"title": 10}),
    )


def curve_points(x, y, kdim: str, vdim: str, label: str, **opts) -> hv.Overlay:
    """A curve with its points marked (same label: one legend entry)."""
    pts = list(zip(np.asarray(x, float).tolist(), np.asarray(y, float).tolist()))
    return hv.Curve(pts, kdim, vdim, label=label).opts(**opts) * hv.Scatter(pts, kdim, vdim, label=label).opts(
        **{k: v for k, v in opts.items() if k in ("logx", "logy", "color")})


def hline(y: float, label: str | None = None, color: str = "gray") -> hv.HLine:
    el = hv.HLine(y).opts(color=color, line_dash="dotted")
    return el.relabel(label) if label else el


def heatmap(corr: np.ndarray, labels: list[str], title: str, clim=(-1.0, 1.0),
            cmap: str = "RdBu_r", width: int = 330) -> hv.HeatMap:
    pts = [(labels[i], labels[k], float(corr[i, k])) for i in range(len(labels)) for k in range(len(labels))]
    return hv.HeatMap(pts, ["row", "column"], "correlation").opts(
        cmap=cmap, clim=clim, colorbar=True, title=title, width=width, height=300,
        xrotation=90, invert_yaxis=True, tools=["hover"])


def difference_heatmap(a: np.ndarray, b: np.ndarray, labels: list[str], title: str) -> hv.HeatMap:
    """a − b on a symmetric colour scale: where two coupling matrices differ."""
    d = np.asarray(a) - np.asarray(b)
    lim = float(np.abs(d).max()) or 1.0
    return heatmap(d, labels, title, clim=(-lim, lim), cmap="PuOr_r").redim.label(correlation="difference")


def eigenvalue_histograms(spectra: dict[str, np.ndarray], title: str, bins: int = 80) -> hv.Overlay:
    """Log-density histograms of several eigenvalue sets on one range, with 0 marked."""
    from explorer.core import diagnostics as dg

    lo = min(float(np.min(v)) for v in spectra.values())
    hi = max(float(np.max(v)) for v in spectra.values())
    els = []
    for label, ev in spectra.items():
        h = dg.eigenvalue_histogram(ev, bins=bins, range_=(lo, hi))
        dens = np.array(h["density"])
        els.append(hv.Histogram((np.array(h["edges"]), np.where(dens > 0, dens, np.nan)),
                                kdims=["eigenvalue"], vdims=["density"], label=label).opts(alpha=0.5, logy=True))
    return hv.Overlay(els + [hv.VLine(0).opts(color="black", line_dash="dotted")]).opts(
        title=title, width=700, height=320, ylim=(1e-4, None), **LEGEND)


def efficiency_figure(rows: list[dict]) -> hv.Layout:
    """Double-well study of :func:`explorer.teaching.double_well_efficiency`: the estimates of h
    (mean ± std over replicates) and the variance ratio score matching / maximum likelihood."""
    a = [r["barrier a"] for r in rows]
    h = rows[0]["true h"]
    est = []
    for key, color, dx in (("SM", "#d62728", -0.04), ("ML", "#1f77b4", 0.04)):
        x = np.array(a) + dx
        m = np.array([r[f"mean h, {key}"] for r in rows])
        s = np.array([r[f"std h, {key}"] for r in rows])
        label = "score matching" if key == "SM" else "maximum likelihood"
        est.append(hv.ErrorBars((x, m, s), "barrier a", ["fitted h", "spread"], label=label).opts(color=color))
        est.append(hv.Scatter((x, m), "barrier a", "fitted h", label=label).opts(color=color, size=7))
    left = hv.Overlay(est + [hline(h, "true h", "black")]).opts(
        title="fitted field h: mean ± spread", width=470, height=300, **LEGEND)
    right = hv.Overlay([
        curve_points(a, [r["variance ratio SM/ML (measured)"] for r in rows], "barrier a",
                     "Var(SM) / Var(ML)", "measured", logy=True),
        hv.Curve((a, [r["variance ratio SM/ML (asymptotic)"] for r in rows]), "barrier a",
                 "Var(SM) / Var(ML)", label="asymptotic").opts(line_dash="dashed", color="black", logy=True),
    ]).opts(title="score-matching variance / ML variance", width=470, height=300, **LEGEND)
    return (left + right).opts(shared_axes=False).cols(2)


def mixing_figure(rows: dict) -> hv.Layout:
    """Rows of :func:`explorer.teaching.mixing_at_size` by L: cost per independent sample of the
    single-scale and of the whole multiscale sampler, and τ_int of every factor."""
    Ls = sorted(rows)
    single = [rows[L]["single-scale"]["tau"] for L in Ls]
    multi = [rows[L]["multiscale cost"] for L in Ls]
    kd, vd = "L", "full-resolution gradients per independent sample"
    cost = hv.Overlay([
        curve_points(Ls, single, kd, vd, "single-scale MALA", logx=True, logy=True, color="#1f77b4"),
        curve_points(Ls, multi, kd, vd, "whole WCRG sampler", logx=True, logy=True, color="#d62728"),
    ]).opts(title="cost per independent sample, β = 0.68", width=720, height=320, **LEGEND)
    names = sorted({f["factor"].split(" (")[0] for L in Ls for f in rows[L]["factors"]},
                   key=lambda n: (n.startswith("coarse"), n))
    curves = []
    for name in names:
        pts = [(L, f["tau"]) for L in Ls for f in rows[L]["factors"] if f["factor"].split(" (")[0] == name]
        curves.append(curve_points([p[0] for p in pts], [p[1] for p in pts], kd,
                                   "τ_int (gradient evaluations)", f"WCRG {name}", logx=True, logy=True))
    pts = [(L, rows[L]["coarse MALA alone"]["tau"]) for L in Ls]
    curves.append(curve_points([p[0] for p in pts], [p[1] for p in pts], kd,
                               "τ_int (gradient evaluations)", "coarse 4×4, MALA alone", logx=True,
                               logy=True).opts(hv.opts.Curve(line_dash="dashed")))
    taus = hv.Overlay(curves).opts(title="τ_int of each factor", width=720, height=320, **LEGEND)
    return (cost + taus).opts(shared_axes=False).cols(1)


def flow_figures(flows: dict) -> hv.Layout:
    """β_j and λ_j against the lattice side of :func:`explorer.core.rgflow.rg_flow` results by β."""
    kd = "L (side after coarse-graining)"
    beta = hv.Overlay([curve_points([s["L"] for s in f["scales"]], [s["beta"] for s in f["scales"]],
                                    kd, "β_j", f"β = {b}", logx=True) for b, f in flows.items()]).opts(
        title="nearest-neighbour coupling β_j", width=520, height=300, invert_xaxis=True, **LEGEND)
    lam = hv.Overlay([curve_points([s["L"] for s in f["scales"]], [max(s["lam"], 1e-3) for s in f["scales"]],
                                   kd, "λ_j", f"β = {b}", logx=True, logy=True) for b, f in flows.items()]).opts(
        title="quartic coupling λ_j", width=520, height=300, invert_xaxis=True, **LEGEND)
    return (beta + lam).opts(shared_axes=False).cols(2)


def scattering_kinds_figure(by_name: dict[str, dict]) -> hv.Layout:
    """One panel per kind S1–S4: the moduli of the isotropic coefficients (index within the
    kind) for each batch of :func:`explorer.teaching.scattering_by_kind`."""
    panels = []
    for kind in ("S1", "S2", "S3", "S4"):
        els = []
        for name, d in by_name.items():
            v = np.asarray(d[kind], float)
            els.append(hv.Scatter((np.arange(len(v)), np.where(v > 0, v, np.nan)), "coefficient",
                                  f"|{kind}|", label=name).opts(size=5, logy=True, alpha=0.8))
        panels.append(hv.Overlay(els).opts(title=f"{kind} ({len(v)} coefficients)", width=440, height=260,
                                           **LEGEND))
    return hv.Layout(panels).opts(shared_axes=False).cols(2)

"""Figures: arrays and reports in, HoloViews elements out; PNG files through HoloViews'
Matplotlib backend. Imports HoloViews' core only (no Panel): a plotting backend is loaded on
first use (:func:`ensure_backends`, else Bokeh when none is loaded). Options every backend
understands go to every loaded backend, Bokeh-only ones to Bokeh (:func:`_style`).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

import holoviews as hv
import numpy as np

from explorer.core.observables import radial_power_spectrum

MAX_IMAGE_SIDE = 256  # larger fields are block-averaged before display
COMMON_OPTIONS = {"title", "logx", "logy", "cmap", "clim", "colorbar", "alpha", "xlabel", "ylabel",
                  "color", "show_legend", "xrotation", "linewidth", "invert_yaxis", "fontsize",
                  "xticks", "yticks", "xlim", "ylim"}
DATA_COLOR, SAMPLE_COLOR = "#1f77b4", "#d62728"


def _style(el, mpl: dict | None = None, **options):
    """Apply ``options`` to ``el``: the common ones for every loaded backend, the rest for Bokeh;
    ``mpl``: extra options for the Matplotlib backend only."""
    if not hv.Store.renderers:  # nothing loaded yet: HoloViews' default backend
        _load_bokeh()
    common = {k: v for k, v in options.items() if k in COMMON_OPTIONS}
    bokeh_only = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
    for backend in hv.Store.renderers:
        if backend == "bokeh":
            el = el.opts(**common, **bokeh_only, backend="bokeh")
        elif backend == "matplotlib":
            el = el.opts(**{k: v for k, v in common.items() if k != "linewidth"},
                         **(mpl or {}), backend="matplotlib")
    return el


def display_array(field: np.ndarray, caller: str = "display_array",
                  ) -> tuple[np.ndarray, int, tuple[float, float], bool]:
    """One 2-D field as drawn: float32, block-averaged by ``f`` beyond :data:`MAX_IMAGE_SIDE`;
    returns (array, f, colour range, signed): a symmetric range around 0 for a signed field, else
    its own range. ``caller`` names the figure in the error for a field that is not 2-D."""
    x = np.asarray(field, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{caller} needs one 2-D field, got shape {x.shape}")
    f = max(1, x.shape[0] // MAX_IMAGE_SIDE)
    if f > 1:
        x = x[: x.shape[0] // f * f, : x.shape[1] // f * f]
        x = x.reshape(x.shape[0] // f, f, x.shape[1] // f, f).mean(axis=(1, 3))
    lim = float(np.max(np.abs(x))) or 1.0
    signed = float(x.min()) < 0
    clim = (-lim, lim) if signed else (float(x.min()), float(x.max()) or 1.0)
    return x, f, clim, signed


def field_image(field: np.ndarray, title: str = "field", cmap: str = "RdBu_r",
                extent: float | None = None) -> hv.Image:
    """One field as an image, float32, symmetric colour range around 0 for signed fields.
    ``extent``: side of the drawn square in plot units (default: the field's side in pixels); a
    coarse-scale field drawn with the fine field's extent covers the same physical domain."""
    x, f, clim, signed = display_array(field, "field_image")
    H, W = x.shape
    ext_x, ext_y = (W * f, H * f) if extent is None else (extent, extent)
    img = hv.Image(x[::-1], bounds=(0, 0, ext_x, ext_y), kdims=["x", "y"], vdims=["value"])
    return _style(img, cmap=cmap if signed else "viridis", clim=clim, colorbar=True,
                  title=title, data_aspect=1, tools=["hover"])


def histogram(fields: np.ndarray, bins: int = 80, label: str = "data",
              range_: tuple[float, float] | None = None) -> hv.Histogram:
    """Marginal density of all pixel values of a batch, on a log density axis."""
    x = np.asarray(fields, dtype=np.float64).ravel()
    density, edges = np.histogram(x, bins=bins, range=range_, density=True)
    # empty bins are not drawn (NaN) rather than faked on the log axis
    h = hv.Histogram((edges, np.where(density > 0, density, np.nan)), kdims=["value"],
                     vdims=["density"], label=label)
    return _style(h, logy=True, title="marginal histogram", alpha=0.6, tools=["hover"])


def power_spectrum(fields: np.ndarray, label: str = "data") -> hv.Curve:
    """Radially averaged power spectrum P(k) in lattice units, log-log."""
    k, P = radial_power_spectrum(fields)
    c = hv.Curve((k, P), kdims=["k"], vdims=["P(k)"], label=label)
    return _style(c, logx=True, logy=True, title="radial power spectrum", tools=["hover"])


def gallery(fields: np.ndarray, n: int = 4, cmap: str = "RdBu_r") -> hv.Layout:
    """The first ``n`` fields of a batch side by side, on one colour scale."""
    x = np.asarray(fields[:n], dtype=np.float32)
    lim = float(np.abs(x).max()) or 1.0
    imgs = [
        _style(field_image(f, title=f"sample {i}", cmap=cmap),
               clim=(-lim, lim) if x.min() < 0 else (float(x.min()), lim), colorbar=False,
               xaxis=None, yaxis=None, frame_width=140, frame_height=140)
        for i, f in enumerate(x)
    ]
    return hv.Layout(imgs).cols(n)


# ---------------------------------------------------------------- data vs samples
def spectra_compare(data: np.ndarray, samples: np.ndarray | None) -> hv.Overlay:
    """Radial power spectra of data and samples on shared log-log axes."""
    curves = [_style(power_spectrum(data, "data"), color=DATA_COLOR)]
    if samples is not None and len(samples):
        curves.append(_style(power_spectrum(samples, "samples"), color=SAMPLE_COLOR))
    return _style(hv.Overlay(curves), title="radial power spectrum", logx=True, logy=True,
                  legend_position="bottom_left")


def histograms_compare(data: np.ndarray, samples: np.ndarray | None, bins: int = 80) -> hv.Overlay:
    """Marginal densities of data and samples on common bins (log density axis)."""
    arrays = [np.asarray(data, np.float64)]
    if samples is not None and len(samples):
        arrays.append(np.asarray(samples, np.float64))
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    hists = [_style(histogram(a, bins, label, (lo, hi)), color=c)
             for a, label, c in zip(arrays, ("data", "samples"), (DATA_COLOR, SAMPLE_COLOR))]
    return _style(hv.Overlay(hists), title="marginal histogram", logy=True)


def _share(summary: dict) -> str:
    neg = summary.get("negative_share")
    if summary.get("condition_number") is not None:
        return f"κ = {summary['condition_number']:.3g}"
    parts = []
    if neg is not None:
        parts.append(f"{100 * neg:.1f}% < 0" + (" (est.)" if summary.get("estimated") else ""))
    parts.append(f"λmin {summary['min']:.2f}")
    return ", ".join(parts)


def eigen_histograms(histograms: dict[str, dict], title: str = "Hessian eigenvalues") -> hv.Overlay:
    """Eigenvalue densities (:func:`explorer.core.diagnostics.eigenvalue_histogram` results) of
    several energies, e.g. ``{"pixel": ..., "j=1": ..., "j=2": ...}``, overlaid on one axis. The
    legend gives each one's condition number when positive definite, else its share of negative
    eigenvalues and λ_min: curvature is shown as measured, never assumed convex."""
    curves = []
    for name, h in histograms.items():
        edges = np.asarray(h["edges"], np.float64)
        dens = np.asarray(h["density"], np.float64)
        label = f"{name}: {_share(h['summary'])}"
        curves.append(_style(hv.Histogram((edges, dens), kdims=["eigenvalue"], vdims=["density"],
                                          label=label), alpha=0.45))
    vline = _style(hv.VLine(0.0), color="black", line_dash="dashed", mpl={"linestyle": "--"})
    return _style(hv.Overlay(curves + [vline]), title=title, legend_position="top_right")


def coupling_matrix(corr: np.ndarray, labels: list[str], title: str = "scale coupling",
                    symmetric: bool = True) -> hv.Image:
    """A scale-coupling (correlation) matrix as an image, one cell per (row, column) pair named
    by ``labels`` on both axes (first label top left, as the matrix is printed); colour range
    [-1, 1] (or [0, 1]). An image rather than a categorical heat map: its size does not depend
    on the labels, so it is drawn at the frame size it is given."""
    C = np.asarray(corr, np.float64)
    n = len(labels)
    if C.shape != (n, n):
        raise ValueError(f"coupling_matrix needs a {n}x{n} matrix for {n} labels, got {C.shape}")
    img = hv.Image(C.astype(np.float32), bounds=(0, 0, n, n), kdims=["scale a", "scale b"],
                   vdims=["corr"])
    xticks = [(i + 0.5, lab) for i, lab in enumerate(labels)]
    yticks = [(n - i - 0.5, lab) for i, lab in enumerate(labels)]
    return _style(img, cmap="RdBu_r" if symmetric else "viridis",
                  clim=(-1.0, 1.0) if symmetric else (0.0, 1.0), colorbar=True, title=title,
                  xticks=xticks, yticks=yticks, xrotation=90, tools=["hover"], xlabel="",
                  ylabel="", hooks=[_room_for_labels])


def _room_for_labels(plot, element) -> None:
    """Bokeh hook: room below and left of the axes for the rotated scale labels (the default
    border clips them)."""
    plot.state.min_border_bottom = 70
    plot.state.min_border_left = 70


def autocorrelations(acfs: dict[str, np.ndarray], taus: dict[str, float] | None = None,
                     xlabel: str = "lag", lags: dict[str, np.ndarray] | None = None) -> hv.Overlay:
    """Autocorrelation functions ρ(t) of several observables/chains, with τ_int in the legend;
    ``lags``: the lag of every point per curve (default 0, 1, 2, ...)."""
    curves = []
    for name, rho in acfs.items():
        rho = np.asarray(rho, np.float64)
        t = np.arange(len(rho)) if not lags or name not in lags else np.asarray(lags[name])
        label = name if not taus or name not in taus else f"{name} (τ_int {taus[name]:.3g})"
        curves.append(hv.Curve((t, rho), kdims=[xlabel], vdims=["ρ"], label=label))
    zero = _style(hv.HLine(0.0), color="gray")
    return _style(hv.Overlay(curves + [zero]), title="autocorrelation", xlabel=xlabel)


def potentials(grid: np.ndarray, values: dict[str, np.ndarray]) -> hv.Overlay:
    """Learned per-site potentials V(φ) (one curve per scale), each shifted to V(0) = 0."""
    g = np.asarray(grid, np.float64)
    i0 = int(np.argmin(np.abs(g)))
    curves = [hv.Curve((g, np.asarray(v) - np.asarray(v)[i0]), kdims=["φ"], vdims=["V(φ)"],
                       label=name) for name, v in values.items()]
    return _style(hv.Overlay(curves), title="learned potential V(φ) per scale")


def kernel_mosaic(kernels: dict, title: str = "quadratic kernels") -> hv.Image:
    """The coupling kernels K[c, d] of one factor as a mosaic of (2R+1)² tiles, one per channel
    pair, separated by blank rows (NaN)."""
    K = np.asarray(kernels["kernels"], np.float64)
    C, _, S, _ = K.shape
    tile = S + 1
    M = np.full((C * tile - 1, C * tile - 1), np.nan)
    for c in range(C):
        for d in range(C):
            M[c * tile: c * tile + S, d * tile: d * tile + S] = K[c, d]
    lim = float(np.nanmax(np.abs(M))) or 1.0
    img = hv.Image(M[::-1].astype(np.float32), bounds=(0, 0, M.shape[1], M.shape[0]),
                   kdims=["shift x", "shift y"], vdims=["K"])
    names = " ".join(kernels["channels"])
    return _style(img, cmap="RdBu_r", clim=(-lim, lim), colorbar=True,
                  title=f"{title} ({names})", data_aspect=1, tools=["hover"])


def rg_flow(flow: dict) -> hv.Overlay:
    """Couplings θ_j against the coarse-graining step j (one curve per coupling)."""
    scales = flow["scales"]
    names = list(scales[0]["theta"])
    j = [s["j"] for s in scales]
    curves = [_style(hv.Curve((j, [s["theta"][n] for s in scales]), kdims=["j"], vdims=["θ"],
                              label=n), tools=["hover"]) for n in names]
    curves += [hv.Scatter((j, [s["theta"][n] for s in scales]), kdims=["j"], vdims=["θ"],
                          label=n) for n in names]
    return _style(hv.Overlay(curves), title="RG flow of the couplings", xlabel="coarse-graining step j")


def rg_distance_figure(rows: dict) -> hv.Overlay:
    """Distance d_j between the normalised couplings of successive coarse-graining steps, one
    curve per data set (``rows`` as :func:`explorer.core.rgflow.rg_flow_table`'s): small and flat
    at a fixed point, about 1 and more where the flow runs away."""
    curves, n_steps = [], max((len(r["distance"]) for r in rows.values()), default=1)
    ticks = list(range(1, n_steps + 1))
    for label, row in rows.items():
        steps = list(range(1, len(row["distance"]) + 1))
        curves.append(_style(hv.Curve((steps, row["distance"]), kdims=["step"],
                                      vdims=["distance"], label=str(label)), tools=["hover"]))
        curves.append(hv.Scatter((steps, row["distance"]), kdims=["step"], vdims=["distance"],
                                 label=str(label)))
    return _style(hv.Overlay(curves), title="RG flow: distance between successive couplings",
                  xlabel="coarse-graining step (side L -> L/2)", ylabel="distance d_j",
                  legend_position="right", width=620, height=340, xticks=ticks,
                  mpl={"fig_size": 200, "aspect": 1.8})


# ---------------------------------------------------------------- raster (no plot library)
_LUTS: dict[str, np.ndarray] = {}


def _lut(cmap: str) -> np.ndarray:
    if cmap not in _LUTS:
        from matplotlib import colormaps  # no pyplot: just the colour table

        _LUTS[cmap] = (colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return _LUTS[cmap]


def field_png(field: np.ndarray, size: int = 320, cmap: str = "RdBu_r",
              clim: tuple[float, float] | None = None) -> bytes:
    """One field as PNG bytes (nearest-neighbour upscaled to ``size`` pixels, symmetric colour
    range for signed fields): a cheap live view, the page only swaps an image."""
    import io

    from PIL import Image

    x = np.asarray(field, np.float64)
    if x.ndim != 2:
        raise ValueError(f"field_png needs one 2-D field, got shape {x.shape}")
    if clim is None:
        lim = float(np.max(np.abs(x))) or 1.0
        clim = (-lim, lim) if x.min() < 0 else (float(x.min()), float(x.max()) or 1.0)
    lo, hi = clim
    idx = np.clip((x - lo) / ((hi - lo) or 1.0) * 255, 0, 255).astype(np.uint8)
    rgb = _lut(cmap if x.min() < 0 else "viridis")[idx]
    img = Image.fromarray(rgb, "RGB").resize((size, size), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@lru_cache(maxsize=4)
def empty_traces_png(width: int = 420, height: int = 360) -> bytes:
    """:func:`traces_png` of no series, drawn once per process (every page shows it first)."""
    return traces_png({}, width, height)


def traces_png(series: dict[str, dict[str, list]], width: int = 420, height: int = 360) -> bytes:
    """Sampler traces as one PNG (Matplotlib Agg, no pyplot): acceptance and mean energy against
    the report index, one colour per scale ``{scale: {"acceptance": [...], "mean energy": [...]}}``."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=False)
    for ax, key in zip(axes, ("acceptance", "mean energy")):
        for scale, d in series.items():
            y = np.asarray(d.get(key, []), np.float64)
            if y.size:
                ax.plot(np.arange(y.size), y, label=scale, lw=1)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[1].set_xlabel("report (every few MALA steps)")
    if series:
        axes[0].legend(fontsize=7, loc="lower right")
    axes[0].set_title("sampler traces per scale", fontsize=10)
    fig.subplots_adjust(left=0.17, right=0.97, top=0.92, bottom=0.13, hspace=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


_COEFFICIENT = re.compile(r"^(S[1-4])\[j=([0-9,]+)(?:;m=([0-9,]+))?\]$")


def scattering_by_scale(report: dict) -> dict:
    """Group the coefficients of a comparison report's ``scattering`` section (names as
    :func:`explorer.core.scattering.statistics.coefficient_name` writes them, isotropic Fourier
    reduction) by what they depend on, averaging |S| over the scale position:

    - ``S1`` / ``S2``: ``{j: value}`` per scale j (sparsity and power per scale);
    - ``S3``: ``{(m, a): value}`` by angular harmonic m and scale gap a = j2 − j1 (mean over j1);
    - ``S4``: ``{(a, b): value}`` at harmonics (0, 0) by gaps a = j2 − j1, b = j3 − j2.

    Each for ``data`` and ``samples``: ``{"data": {...}, "samples": {...}}`` per kind. Names in
    another format (e.g. the scale reduction) are left out."""
    sums: dict = {}
    for who in ("data", "samples"):
        values = np.asarray(report[who], np.float64)
        for name, v in zip(report["names"], values):
            m = _COEFFICIENT.match(name)
            if m is None:
                continue
            kind, js = m.group(1), [int(t) for t in m.group(2).split(",")]
            harm = [int(t) for t in m.group(3).split(",")] if m.group(3) else []
            if kind in ("S1", "S2"):
                key = js[0]
            elif kind == "S3" and len(js) == 2 and len(harm) == 1:
                key = (harm[0], js[1] - js[0])
            elif kind == "S4" and len(js) == 3 and harm == [0, 0]:
                key = (js[1] - js[0], js[2] - js[1])
            else:
                continue
            acc = sums.setdefault(kind, {}).setdefault(who, {}).setdefault(key, [])
            acc.append(abs(float(v)))
    return {kind: {who: {k: float(np.mean(v)) for k, v in sorted(d.items())}
                   for who, d in per.items()} for kind, per in sums.items()}


def _positive(values) -> np.ndarray:
    v = np.asarray(values, np.float64)
    return np.where(v > 0, v, np.nan)  # nothing drawn for a zero on the log axis


def _dash(el, dashed: bool):
    return _style(el, mpl={"linestyle": "--" if dashed else "-"},
                  line_dash="dashed" if dashed else "solid")


def scattering_panels(report: dict) -> dict[str, hv.Overlay]:
    """The scattering spectra of data (blue, solid) and samples (red, dashed) the way they are
    read, each kind on its own axes shared by data and samples (log |S|):
    ``"S1 S2"`` against the scale j, ``"S3"`` against the scale gap j2 − j1 per harmonic m,
    ``"S4"`` against the gaps (j2 − j1, j3 − j2)."""
    g = scattering_by_scale(report)
    out = {}
    style = {"data": (DATA_COLOR, False), "samples": (SAMPLE_COLOR, True)}
    curves = []
    for kind, marker in (("S1", "circle"), ("S2", "square")):
        for who, (color, dashed) in style.items():
            d = g.get(kind, {}).get(who)
            if d:
                c = hv.Curve((list(d), _positive(list(d.values()))), kdims=["scale j"],
                             vdims=["|S|"], label=f"{kind} {who}")
                curves.append(_dash(_style(c, color=color), dashed))
                curves.append(_style(hv.Scatter((list(d), _positive(list(d.values()))),
                                                kdims=["scale j"], vdims=["|S|"],
                                                label=f"{kind} {who}"),
                                     color=color, marker=marker, size=7))
    if curves:
        js = sorted({j for kind in ("S1", "S2") for d in g.get(kind, {}).values() for j in d})
        out["S1 S2"] = _style(hv.Overlay(curves), title="S1 (sparsity), S2 (power) per scale",
                              logy=True, xticks=js, legend_position="right",
                              mpl={"legend_position": "right"})
    curves = []
    if "S3" in g:
        harmonics = sorted({m for d in g["S3"].values() for m, _ in d})[:2]
        for who, (color, dashed) in style.items():
            d = g["S3"].get(who, {})
            for m in harmonics:
                pts = [(a, v) for (mm, a), v in d.items() if mm == m]
                if pts:
                    x, y = zip(*pts)
                    c = hv.Curve((list(x), _positive(y)), kdims=["scale gap j2 − j1"],
                                 vdims=["|S3|"], label=f"{who} m={m}")
                    curves.append(_dash(_style(c, color=color, alpha=1.0 if m == 0 else 0.5),
                                        dashed))
        gaps = sorted({a for d in g["S3"].values() for _, a in d})
        out["S3"] = _style(hv.Overlay(curves), title="S3 (phase–modulus) by scale gap",
                           logy=True, xticks=gaps, legend_position="right",
                           mpl={"legend_position": "right"})
    curves = []
    if "S4" in g:
        pairs = sorted({ab for d in g["S4"].values() for ab in d})
        ticks = [(i, f"{a},{b}") for i, (a, b) in enumerate(pairs)]
        for who, (color, dashed) in style.items():
            d = g["S4"].get(who, {})
            y = _positive([d.get(ab, np.nan) for ab in pairs])
            c = hv.Curve((np.arange(len(pairs)), y), kdims=["scale gaps (j2 − j1, j3 − j2)"],
                         vdims=["|S4|"], label=who)
            curves.append(_dash(_style(c, color=color), dashed))
            curves.append(_style(hv.Scatter((np.arange(len(pairs)), y),
                                            kdims=["scale gaps (j2 − j1, j3 − j2)"],
                                            vdims=["|S4|"], label=who), color=color, size=6))
        out["S4"] = _style(hv.Overlay(curves), title="S4 (envelope) by scale gaps, m = 0",
                           logy=True, xticks=ticks, xrotation=45, legend_position="right",
                           mpl={"legend_position": "right"})
    return out


def scattering_differences(report: dict) -> list[dict]:
    """Rows ``{"kind", "relative difference (%)", "coefficients"}`` of a comparison report's
    ``scattering`` section: the mean |S_samples − S_data| / |S_data| per kind."""
    kinds = report.get("kinds") or []
    rel = report.get("relative_difference") or {}
    return [{"kind": k, "relative difference (%)": round(100 * float(v), 1),
             "coefficients": sum(1 for kk in kinds if kk == k)} for k, v in rel.items()]


def scattering_compare(report: dict) -> hv.Layout:
    """:func:`scattering_panels` as one layout (PNG export, notebooks)."""
    panels = scattering_panels(report)
    return hv.Layout(list(panels.values())).cols(len(panels) or 1)


def scale_kurtosis_compare(report: dict) -> hv.Overlay:
    """One-point kurtosis scale by scale (``diagnostics.scale_kurtosis`` of data and samples):
    the low-passes x_j (j = 0 the field itself, solid) and the details x̄_j (dashed) against j,
    with the Gaussian value 3 in grey; a constant low-pass (no kurtosis) is left out."""
    def dashed(el, dash: bool):
        mpl = {"linestyle": "--" if dash else "-"}
        bk = {"line_dash": "dashed" if dash else "solid"}
        return _style(el, mpl=mpl, **bk)

    curves = []
    for who, color in (("data", DATA_COLOR), ("samples", SAMPLE_COLOR)):
        for part, first, label in (("low", 0, "low-pass"), ("details", 1, "details")):
            pts = [(first + i, k) for i, k in enumerate(report[who][part]) if k is not None]
            if pts:
                el = hv.Curve(pts, kdims=["scale j"], vdims=["kurtosis"], label=f"{who}: {label}")
                curves.append(dashed(_style(el, color=color), part == "details"))
                # markers: a single scale (J = 1 details) is a point, not a line
                dots = hv.Scatter(pts, kdims=["scale j"], vdims=["kurtosis"],
                                  label=f"{who}: {label}")
                curves.append(_style(dots, color=color, size=6,
                                     marker="circle" if part == "low" else "triangle"))
    curves.append(dashed(_style(hv.HLine(3.0), color="#999999"), True))
    n = max(len(report["data"]["low"]), len(report["data"]["details"]) + 1)
    # legend beside the axes (it hid the detail curves inside), a tick per integer scale only
    return _style(hv.Overlay(curves), title="kurtosis per scale (Gaussian: 3)", tools=["hover"],
                  xticks=list(range(n)), legend_position="right", padding=0.08,
                  mpl={"legend_position": "right", "padding": 0.08})


def mixing(section: dict) -> hv.Overlay:
    """Autocorrelation of the sampler's mean energy per scale (a comparison report's ``mixing``
    section), lags and τ_int in gradient evaluations."""
    scales = section["scales"]
    return _style(autocorrelations({k: v["acf"] for k, v in scales.items()},
                                   {k: v["tau_int"] for k, v in scales.items()},
                                   xlabel=f"lag ({section['unit']})",
                                   lags={k: v["lag"] for k, v in scales.items()}),
                  title="autocorrelation of the mean energy", legend_position="right",
                  mpl={"legend_position": "right"})


def mixing_rows(section: dict) -> list[dict]:
    """One row per scale of a comparison report's ``mixing`` section: τ_int in gradient
    evaluations (and in sampler reports), Sokal's window, the effective number of samples."""
    unit = section.get("unit", "gradient evaluations")
    return [{"scale": k, f"τ_int ({unit})": round(float(v["tau_int"]), 1),
             "τ_int (reports)": round(float(v["tau_int_reports"]), 2),
             "window (reports)": int(v["window"]), "n_eff": round(float(v["n_eff"]), 1)}
            for k, v in section["scales"].items()]


# ---------------------------------------------------------------- PNG files
_lock = threading.Lock()


def _load_bokeh() -> None:
    """HoloViews' Bokeh backend, drawing on a plain canvas. HoloViews asks Bokeh for WebGL by
    default; for figures this small (a few hundred points, one image) it only costs the browser a
    GL context, shader compilation and a copy back to the canvas per figure — a large share of
    the first render without a GPU."""
    if "bokeh" not in hv.Store.renderers:
        import holoviews.plotting.bokeh  # noqa: F401
    hv.Store.renderers["bokeh"].webgl = False


def ensure_backends(backends: tuple[str, ...] = ("bokeh", "matplotlib")) -> None:
    """Load these HoloViews plotting backends (Matplotlib on Agg, no display), keeping Bokeh the
    current one when loaded (drawing on a canvas, :func:`_load_bokeh`); call before building
    elements that will be saved as PNG."""
    with _lock:
        if "bokeh" in backends:
            _load_bokeh()
        if "matplotlib" in backends and "matplotlib" not in hv.Store.renderers:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import holoviews.plotting.mpl  # noqa: F401
        hv.Store.set_current_backend("bokeh" if "bokeh" in hv.Store.renderers else "matplotlib")


def save_png(obj, path: str | Path) -> Path:
    """Write one HoloViews object as a PNG file through the Matplotlib backend."""
    ensure_backends(("matplotlib",))
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    with _lock:  # matplotlib's pyplot state is process-global
        hv.save(obj, str(path), fmt="png", backend="matplotlib")
    return path


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"


def write_figures(figures: dict[str, object], directory: str | Path) -> list[str]:
    """Save each ``{name: element}`` as ``DIR/name.png``; returns the file names written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return [save_png(el, d / f"{slug(name)}.png").name for name, el in figures.items()]


# ---------------------------------------------------------------- figure sets of reports
def compare_figures(data: np.ndarray, samples: np.ndarray, report: dict | None = None) -> dict:
    """Data vs samples: spectra and histograms, and every section of a comparison report
    (:func:`explorer.core.workflows.comparison_report`) that was computed: kurtosis per scale,
    coupling matrices, Hessian eigenvalues, mixing, scattering spectra."""
    r = report or {}
    figs = {"spectra": spectra_compare(data, samples),
            "histograms": histograms_compare(data, samples)}
    if r.get("scale_kurtosis"):
        figs["kurtosis_scales"] = scale_kurtosis_compare(r["scale_kurtosis"])
    if r.get("coupling"):
        for who in ("data", "samples"):
            for kind in ("coefficients", "moduli"):
                figs[f"coupling_{kind}_{who}"] = coupling_matrix(
                    np.asarray(r["coupling"][who][kind]), r["coupling"]["labels"],
                    title=f"{who}: scale coupling of {kind}")
    if (r.get("hessian") or {}).get("histograms"):
        figs["hessian_eigenvalues"] = eigen_histograms(r["hessian"]["histograms"])
    if r.get("mixing"):
        figs["mixing"] = mixing(r["mixing"])
    if r.get("scattering"):
        figs["scattering"] = scattering_compare(r["scattering"])
    return figs


def model_figures(report: dict) -> dict:
    """Learned potentials (when any is non-zero) and coupling kernels per factor of a fitted
    model (``potential`` and ``kernels`` of a model or diagnose report)."""
    figs = {}
    pot = report["potential"]
    if any(np.any(np.asarray(v) != 0) for v in pot["V"].values()):
        figs["potential"] = potentials(np.asarray(pot["grid"]),
                                       {k: np.asarray(v) for k, v in pot["V"].items()})
    for name, k in report["kernels"].items():
        figs[f"kernels_{name}"] = kernel_mosaic({**k, "kernels": np.asarray(k["kernels"])},
                                                title=f"kernels {name}")
    return figs


def diagnose_figures(report: dict) -> dict:
    """Figures of :func:`explorer.core.diagnostics.diagnose`: eigenvalue histograms, learned
    potentials, coupling kernels per factor."""
    return {"hessian_eigenvalues": eigen_histograms(report["histograms"]), **model_figures(report)}

"""The comparison figures a person reads first, as PNG bytes (Matplotlib's object API, no pyplot
state): the one-point histograms, the radial spectra and a gallery of data and sample fields side
by side. Data are drawn on top and never hidden: an outline over the samples' translucent bars,
a thick line over the samples' dashed one; log axes are bounded by what the data show.
Used by ``explorer compare --plot`` and the app's export; no Panel, no science (the numbers come
from :mod:`explorer.core`)."""

from __future__ import annotations

import io

import numpy as np

from explorer.core.spectra import radial_power_spectrum

DATA_COLOR, SAMPLE_COLOR = "#1f77b4", "#d62728"
WIDTH, HEIGHT, DPI = 900, 560, 110


def _figure(width: int = WIDTH, height: int = HEIGHT):
    from matplotlib.figure import Figure

    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _log_limits(*arrays, decades: float = 6.0) -> tuple[float, float]:
    """Bounds of a log axis: the positive values shown, at most ``decades`` below the top."""
    pos = np.concatenate([np.asarray(a, float)[np.asarray(a, float) > 0] for a in arrays])
    if pos.size == 0:
        return 1e-3, 1.0
    hi = float(pos.max())
    lo = max(float(pos.min()), hi * 10 ** -decades)
    return lo / 2, hi * 2


def histogram_png(data, samples, bins: int = 80) -> bytes:
    """Densities of all values on common bins, log density: samples as translucent bars, data as
    an outline on top; the y axis spans the bins either populates (down to 6 decades)."""
    a, b = np.asarray(data, float).ravel(), np.asarray(samples, float).ravel()
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), bins + 1)
    da, _ = np.histogram(a, edges, density=True)
    db, _ = np.histogram(b, edges, density=True)
    fig = _figure()
    ax = fig.add_subplot()
    ax.stairs(db, edges, fill=True, color=SAMPLE_COLOR, alpha=0.35, label=f"samples ({len(b):,} values)")
    ax.stairs(da, edges, color=DATA_COLOR, linewidth=2.2, label=f"data ({len(a):,} values)")
    ax.set_yscale("log")
    ax.set_ylim(*_log_limits(da, db))
    ax.set_xlabel("value")
    ax.set_ylabel("probability density")
    ax.set_title("one-point law: data (outline) vs samples (bars)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def spectrum_png(data, samples, used=None) -> bytes:
    """Radial power spectra, log-log: data thick on top, samples dashed; the shells outside the
    data's spectral support (where distances are not taken) shaded."""
    k, pa = radial_power_spectrum(data)
    _, pb = radial_power_spectrum(samples)
    fig = _figure()
    ax = fig.add_subplot()
    ax.loglog(k, pb, "--", color=SAMPLE_COLOR, linewidth=1.8, label="samples")
    ax.loglog(k, pa, "-", color=DATA_COLOR, linewidth=2.6, label="data", zorder=3)
    if used is not None:
        used = np.asarray(used, bool)
        if used.size == k.size and not used.all():
            ax.fill_between(k, 0, 1, where=~used, color="0.85", alpha=0.6,
                            transform=ax.get_xaxis_transform(),
                            label="off the data's support (not compared)")
    shown = pa if used is None or np.asarray(used).size != k.size else pa[np.asarray(used, bool)]
    lo, hi = _log_limits(shown, decades=8.0)
    ax.set_ylim(lo, max(hi, 2 * float(np.max(pb))) if np.all(np.isfinite(pb)) else hi)
    ax.set_xlabel("k (lattice units)")
    ax.set_ylabel("P(k)")
    ax.set_title("radial power spectrum: data (solid) vs samples (dashed)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _png(fig)


def gallery_png(data, samples, n: int = 4) -> bytes:
    """The first ``n`` data fields (top row) and sample fields (bottom row) on one colour scale
    (the data's 0.5 %-99.5 % range), so that a sample brighter or smoother than the data shows."""
    a, b = np.asarray(data, np.float32), np.asarray(samples, np.float32)
    n = max(1, min(n, len(a), len(b)))
    lo, hi = (float(v) for v in np.quantile(a, [0.005, 0.995]))
    if hi <= lo:
        lo, hi = float(a.min()), float(a.max()) or 1.0
    fig = _figure(220 * n + 120, 470)
    axes = fig.subplots(2, n, squeeze=False)
    im = None
    for row, (who, x) in enumerate((("data", a), ("sample", b))):
        for i in range(n):
            ax = axes[row][i]
            im = ax.imshow(x[i], cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(f"{who} {i}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="value")
    fig.suptitle("data (top) and samples (bottom), one colour scale")
    return _png(fig)


def compare_pngs(data, samples, report: dict | None = None) -> dict[str, bytes]:
    """{"histograms", "spectra", "gallery"}: PNG bytes of the three figures above."""
    used = ((report or {}).get("spectrum") or {}).get("used")
    return {"histograms": histogram_png(data, samples),
            "spectra": spectrum_png(data, samples, used),
            "gallery": gallery_png(data, samples)}

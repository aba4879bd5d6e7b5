"""Figures as PNG files and figure sets for reports (command line ``--plot DIR``, the app's
Export). The same :mod:`explorer.ui.plots` functions draw on the page (Bokeh) and into PNG files
(HoloViews' Matplotlib backend, loaded here on first use: the page itself never needs it)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import holoviews as hv
import numpy as np

from explorer.ui import plots

_lock = threading.Lock()


def ensure_backends() -> None:
    """Load the Bokeh and Matplotlib plotting backends (Agg, no display) without changing the
    current backend; call before building elements that will be saved as PNG."""
    with _lock:
        current = hv.Store.current_backend if hv.Store.renderers else "bokeh"
        if "bokeh" not in hv.Store.renderers:
            import holoviews.plotting.bokeh  # noqa: F401
        if "matplotlib" not in hv.Store.renderers:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import holoviews.plotting.mpl  # noqa: F401
        hv.Store.set_current_backend(current if current in hv.Store.renderers else "bokeh")


def save_png(obj, path: str | Path) -> Path:
    """Write one HoloViews object as a PNG file through the Matplotlib backend."""
    ensure_backends()
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


def compare_figures(data: np.ndarray, samples: np.ndarray, report: dict | None = None) -> dict:
    """Data vs samples: spectra, histograms and (if ``report`` has them) the kurtosis per scale and
    the coupling matrices."""
    figs = {"spectra": plots.spectra_compare(data, samples),
            "histograms": plots.histograms_compare(data, samples)}
    if (report or {}).get("scale_kurtosis"):
        figs["kurtosis_scales"] = plots.scale_kurtosis_compare(report["scale_kurtosis"])
    coupling = (report or {}).get("coupling")
    if coupling:
        for who in ("data", "samples"):
            for kind in ("coefficients", "moduli"):
                figs[f"coupling_{kind}_{who}"] = plots.coupling_matrix(
                    np.asarray(coupling[who][kind]), coupling["labels"],
                    title=f"{who}: scale coupling of {kind}")
    return figs


def diagnose_figures(report: dict) -> dict:
    """Figures of :func:`explorer.core.diagnostics.diagnose`: eigenvalue histograms, learned
    potentials, coupling kernels per scale."""
    figs = {"hessian_eigenvalues": plots.eigen_histograms(report["histograms"])}
    pot = report["potential"]
    if any(np.any(np.asarray(v) != 0) for v in pot["V"].values()):
        figs["potential"] = plots.potentials(np.asarray(pot["grid"]),
                                             {k: np.asarray(v) for k, v in pot["V"].items()})
    for name, k in report["kernels"].items():
        figs[f"kernels_{name}"] = plots.kernel_mosaic(
            {**k, "kernels": np.asarray(k["kernels"])}, title=f"kernels {name}")
    return figs

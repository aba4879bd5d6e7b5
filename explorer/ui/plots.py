"""Pure plotting functions: arrays in, HoloViews elements out (no Panel, no state)."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from explorer.core.observables import radial_power_spectrum

MAX_IMAGE_SIDE = 256  # larger fields are block-averaged before display


def field_image(field: np.ndarray, title: str = "field", cmap: str = "RdBu_r") -> hv.Image:
    """One field as an image, float32, symmetric colour range around 0 for signed fields."""
    x = np.asarray(field, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"field_image needs one 2-D field, got shape {x.shape}")
    f = max(1, x.shape[0] // MAX_IMAGE_SIDE)
    if f > 1:
        x = x[: x.shape[0] // f * f, : x.shape[1] // f * f]
        x = x.reshape(x.shape[0] // f, f, x.shape[1] // f, f).mean(axis=(1, 3))
    H, W = x.shape
    lim = float(np.max(np.abs(x))) or 1.0
    signed = float(x.min()) < 0
    clim = (-lim, lim) if signed else (float(x.min()), float(x.max()) or 1.0)
    img = hv.Image(x[::-1], bounds=(0, 0, W * f, H * f), kdims=["x", "y"], vdims=["value"])
    return img.opts(cmap=cmap if signed else "viridis", clim=clim, colorbar=True,
                    title=title, data_aspect=1, tools=["hover"])


def histogram(fields: np.ndarray, bins: int = 80, label: str = "data",
              range_: tuple[float, float] | None = None) -> hv.Histogram:
    """Marginal density of all pixel values of a batch, on a log density axis."""
    x = np.asarray(fields, dtype=np.float64).ravel()
    density, edges = np.histogram(x, bins=bins, range=range_, density=True)
    # empty bins are not drawn (NaN) rather than faked on the log axis
    h = hv.Histogram((edges, np.where(density > 0, density, np.nan)), kdims=["value"],
                     vdims=["density"], label=label)
    return h.opts(logy=True, title="marginal histogram", alpha=0.6, tools=["hover"])


def power_spectrum(fields: np.ndarray, label: str = "data") -> hv.Curve:
    """Radially averaged power spectrum P(k) in lattice units, log-log."""
    k, P = radial_power_spectrum(fields)
    c = hv.Curve((k, P), kdims=["k"], vdims=["P(k)"], label=label)
    return c.opts(logx=True, logy=True, title="radial power spectrum", tools=["hover"])


def gallery(fields: np.ndarray, n: int = 4, cmap: str = "RdBu_r") -> hv.Layout:
    """The first ``n`` fields of a batch side by side, on one colour scale."""
    x = np.asarray(fields[:n], dtype=np.float32)
    lim = float(np.abs(x).max()) or 1.0
    imgs = [
        field_image(f, title=f"sample {i}", cmap=cmap).opts(
            clim=(-lim, lim) if x.min() < 0 else (float(x.min()), lim), colorbar=False,
            xaxis=None, yaxis=None, frame_width=140, frame_height=140)
        for i, f in enumerate(x)
    ]
    return hv.Layout(imgs).cols(n)

"""Gaussian anamorphosis of the one-point law: a monotone map T of values onto a standard normal,
built from the data's quantiles, under which a WCRG model is fitted and sampled, its samples then
mapped back with T⁻¹. The model's energy in the data's variables is U(T(x)) − Σ log T′(x): still an
energy model, with a one-point law exactly the data's (up to the model's variance of T(x)). Skewed
or heavy-tailed fields (log-normal density maps) that no even or polynomial potential fits are
modelled this way. The science: docs/models.md, "Gaussian anamorphosis".

The map is piecewise linear between ``K`` quantiles of the data (probabilities (i + ½)/K) and
their normal scores Φ⁻¹((i + ½)/K), continued linearly beyond the ends with the slope of the last
segment; it is stored as two lists in a model's provenance (JSON), never pickled.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from explorer.core.fields.base import as_batch

#: number of quantiles of the map
DEFAULT_KNOTS = 513


def fit_anamorphosis(fields, knots: int = DEFAULT_KNOTS) -> dict:
    """The map of a batch: ``{"kind": "gaussian_anamorphosis", "quantiles": [...],
    "normal_scores": [...]}`` (strictly increasing quantiles: ties of discrete data merged)."""
    x = as_batch(fields).ravel()
    knots = int(knots)
    if knots < 3:
        raise ValueError(f"the anamorphosis needs at least 3 knots, got {knots}")
    p = (np.arange(knots) + 0.5) / knots
    q = np.quantile(x, p)
    keep = np.concatenate([[True], np.diff(q) > 1e-12 * (np.abs(q).max() or 1.0)])
    if keep.sum() < 3:
        raise ValueError("the data take too few distinct values for a Gaussian anamorphosis; "
                         "dequantise them first")
    return {"kind": "gaussian_anamorphosis", "quantiles": q[keep].tolist(),
            "normal_scores": ndtri(p[keep]).tolist()}


def _piecewise(v: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation through (xs, ys), continued linearly beyond both ends."""
    out = np.interp(v, xs, ys)
    lo, hi = v < xs[0], v > xs[-1]
    out[lo] = ys[0] + (v[lo] - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
    out[hi] = ys[-1] + (v[hi] - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return out


def _check(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(spec, dict) or spec.get("kind") != "gaussian_anamorphosis":
        raise ValueError("not a Gaussian anamorphosis (a dict with kind 'gaussian_anamorphosis')")
    q = np.asarray(spec["quantiles"], np.float64)
    z = np.asarray(spec["normal_scores"], np.float64)
    if q.shape != z.shape or q.ndim != 1 or len(q) < 3 or not (
            np.all(np.diff(q) > 0) and np.all(np.diff(z) > 0)):
        raise ValueError("a Gaussian anamorphosis needs two increasing lists of equal length >= 3")
    return q, z


def to_gaussian(fields, spec: dict) -> np.ndarray:
    """T(x): data values to normal scores (float64, same shape)."""
    q, z = _check(spec)
    x = np.asarray(fields, np.float64)
    return _piecewise(x.ravel(), q, z).reshape(x.shape)


def from_gaussian(fields, spec: dict) -> np.ndarray:
    """T⁻¹(y): normal scores back to data values (float64, same shape)."""
    q, z = _check(spec)
    y = np.asarray(fields, np.float64)
    return _piecewise(y.ravel(), z, q).reshape(y.shape)

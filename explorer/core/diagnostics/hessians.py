"""Hessian spectra of energies at data fields: the true φ⁴ energy in the pixel basis and in its
finest details x̄_1 (conditional), and every factor of a fitted
:class:`~explorer.core.model.WCRGModel`. Built on the HVP linear algebra of
:mod:`explorer.core.linalg` (dense eigenvalues up to :data:`~explorer.core.linalg.SLQ_ABOVE`
variables, SLQ histograms or Lanczos extremes beyond). The science: docs/diagnostics.md, "Hessian
eigenvalues: pixel basis vs conditionals".
"""

from __future__ import annotations

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.fields import phi4 as _phi4
from explorer.core.fields.base import as_batch
from explorer.core.linalg import HVP, SLQ_ABOVE, hessian_eigenvalues, hessian_spectrum


def phi4_pixel_hvp(phi, beta: float, lam: float = 1.0) -> HVP:
    """Batched HVP of the true φ⁴ energy in the pixel basis at one field ``phi`` (L, L)."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2:
        raise ValueError(f"phi must be one field (L, L), got shape {phi.shape}")
    return lambda w: _phi4.hvp(phi, w, beta, lam)


def phi4_conditional_hvp(phi, beta: float, lam: float = 1.0,
                         wavelet: str = wv.DEFAULT_WAVELET) -> HVP:
    """Batched HVP in the finest details v = x̄_1 of E(synthesis(x_1, v)) at one field ``phi``:
    w ↦ details(analysis(H synthesis(0, w))), i.e. the Hessian W_d H W_dᵀ (E is quadratic-plus-
    local, the low-pass x_1 is held fixed)."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2:
        raise ValueError(f"phi must be one field (L, L), got shape {phi.shape}")
    wavelet = wv.check_wavelet(wavelet)

    def hvp(w):
        x = wv.synthesis(None, w, wavelet)
        return wv.analysis(_phi4.hvp(phi, x, beta, lam), wavelet)[1]

    return hvp


def _spectrum(hvp: HVP, shape: tuple, method: str, k: int):
    """Exact eigenvalues as an array (``dense``, ``lanczos`` extremes, ``auto`` on a small n) or
    a :class:`Spectrum` of SLQ nodes (``slq``, ``auto`` above :data:`SLQ_ABOVE`)."""
    n = int(np.prod(shape))
    if method == "lanczos" or method == "dense" or (method == "auto" and n <= SLQ_ABOVE):
        return hessian_eigenvalues(hvp, shape, "lanczos" if method == "lanczos" else "dense", k)
    if method in ("auto", "slq"):
        return hessian_spectrum(hvp, shape, "slq")
    raise ValueError(f"method must be 'auto', 'dense', 'slq' or 'lanczos', got {method!r}")


def phi4_hessian_spectra(fields, beta: float, lam: float = 1.0, basis: str = "pixel",
                         wavelet: str = wv.DEFAULT_WAVELET, method: str = "auto",
                         k: int = 6) -> list:
    """Eigenvalues at each field of the true φ⁴ energy: ``basis="pixel"`` (L² variables) or
    ``"conditional"`` (finest details x̄_1, 3 (L/2)² variables). ``method``: ``"dense"`` (all
    eigenvalues, arrays), ``"lanczos"`` (k extremes each side, arrays), ``"slq"`` (:class:`Spectrum`
    estimates) or ``"auto"`` (dense up to :data:`SLQ_ABOVE` variables, SLQ beyond)."""
    x = as_batch(fields)
    L = x.shape[-1]
    out = []
    for phi in x:
        if basis == "pixel":
            out.append(_spectrum(phi4_pixel_hvp(phi, beta, lam), (L, L), method, k))
        elif basis == "conditional":
            out.append(_spectrum(phi4_conditional_hvp(phi, beta, lam, wavelet),
                                 (3, L // 2, L // 2), method, k))
        else:
            raise ValueError(f"basis must be 'pixel' or 'conditional', got {basis!r}")
    return out


def scale_hvp(scale, v, c=None) -> HVP:
    """Batched HVP of a fitted factor (:class:`ScaleModel`) at one configuration: ``v`` the
    variables (*var_shape) (the coarse field, or the details x̄_j (3, n, n)), ``c`` the condition
    x_j (n, n) of a conditional (None for the coarse factor)."""
    v = np.asarray(v, dtype=np.float64)[None]
    c = None if c is None else np.asarray(c, dtype=np.float64)[None]

    def hvp(w):
        B = w.shape[0]
        vb = np.broadcast_to(v, (B,) + v.shape[1:])
        cb = None if c is None else np.broadcast_to(c, (B,) + c.shape[1:])
        return scale.features.hvp(scale.theta, vb, w, cb)

    return hvp


def model_hessian_spectra(model, fields, method: str = "auto", k: int = 6) -> dict:
    """Eigenvalues of every factor of a fitted model at each field:
    ``{"coarse": [eigs per field], "j=1": [...], ...}`` (coarse = the depth-0 energy for J = 0)."""
    if not model.fitted:
        raise RuntimeError("the model is not fitted yet")
    x = as_batch(fields)
    lows = wv.low_passes(x, model.J, model.wavelet)
    coarse = lows[-1]
    n = coarse.shape[-1]
    out = {"coarse": [_spectrum(scale_hvp(model.coarse, f), (n, n), method, k) for f in coarse]}
    if model.J:
        _, details = wv.decompose(x, model.J, model.wavelet)
        for m in model.conditionals:
            d, c = details[m.j - 1], lows[m.j]
            out[f"j={m.j}"] = [_spectrum(scale_hvp(m, d[i], c[i]), d.shape[1:], method, k)
                               for i in range(len(x))]
    return out

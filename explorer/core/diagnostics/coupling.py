"""Scale-coupling matrices: correlations across (scale, orientation) of co-located orthogonal
wavelet coefficients and of their moduli (the coarser scale repeated onto the finest detail grid),
the same for an undecimated Morlet bank (compare it with phase-randomised surrogates,
:func:`explorer.core.spectra.phase_randomise`). The science: docs/diagnostics.md, "Scale-coupling
matrices".
"""

from __future__ import annotations

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.fields.base import as_batch
from explorer.core.scattering.filters import morlet_transform


def _upsample(x: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return x
    return np.repeat(np.repeat(x, f, axis=-2), f, axis=-1)


def _corr(V: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix of the rows of V (variables x observations)."""
    V = V - V.mean(axis=1, keepdims=True)
    C = V @ V.T
    d = np.sqrt(np.clip(np.diag(C), 1e-300, None))
    return C / np.outer(d, d)


def wavelet_scale_coupling(fields, J: int, wavelet: str = wv.DEFAULT_WAVELET,
                           modulus: bool = False) -> tuple[np.ndarray, list[str]]:
    """Correlation matrix (3J x 3J) of the orthogonal wavelet details x̄_j (channel HL/LH/HH) —
    or of their moduli |x̄_j| — across scales and orientations, co-located: each x̄_j is upsampled
    (by repetition) to the grid of x̄_1. Rows ordered (j=1: HL, LH, HH), (j=2: ...), ...
    Returns (corr, labels)."""
    x = as_batch(fields)
    if J < 1:
        raise ValueError("need J >= 1")
    _, details = wv.decompose(x, J, wavelet)
    rows, labels = [], []
    for j, d in enumerate(details, start=1):
        u = _upsample(d, 2 ** (j - 1))
        if modulus:
            u = np.abs(u)
        for ch, name in enumerate(wv.DETAIL_CHANNELS):
            rows.append(u[:, ch].ravel())
            labels.append(f"j={j} {name}")
    return _corr(np.asarray(rows)), labels


def adjacent_scale_correlations(corr: np.ndarray, J: int, n_orient: int = 3) -> np.ndarray:
    """Same-orientation correlations between scales j and j+1: array (J-1, n_orient)."""
    corr = np.asarray(corr)
    return np.array([[corr[j * n_orient + o, (j + 1) * n_orient + o] for o in range(n_orient)]
                     for j in range(J - 1)]).reshape(J - 1, n_orient)


def cross_scale_max(corr: np.ndarray, n_orient: int = 3, absolute: bool = True) -> float:
    """Largest (|·|) entry of a scale-coupling matrix between *different* scales."""
    corr = np.asarray(corr)
    s = np.arange(corr.shape[0]) // n_orient
    mask = s[:, None] != s[None, :]
    vals = np.abs(corr[mask]) if absolute else corr[mask]
    return float(vals.max()) if vals.size else 0.0


def morlet_scale_coupling(fields, J: int, n_orient: int = 4, modulus: bool = False,
                          **bank) -> tuple[np.ndarray, list[str]]:
    """Scale-coupling matrix (J n_orient square) of undecimated Morlet coefficients:
    |⟨a b*⟩| / √(⟨|a|²⟩⟨|b|²⟩) for the complex coefficients, Pearson correlation for the moduli.
    Overlapping filters correlate adjacent scales even for Gaussian fields: compare with
    :func:`explorer.core.spectra.phase_randomise` (docs/diagnostics.md,
    "Scale-coupling matrices")."""
    W = morlet_transform(fields, J, n_orient, **bank)
    K = W.shape[1]
    V = np.moveaxis(W, 1, 0).reshape(K, -1)
    labels = [f"j={j + 1} θ={o}" for j in range(J) for o in range(n_orient)]
    if modulus:
        return _corr(np.abs(V)), labels
    C = V @ V.conj().T
    d = np.sqrt(np.real(np.diag(C)))
    return np.abs(C) / np.outer(d, d), labels


def coupling_report(data, samples, J: int, wavelet: str = wv.DEFAULT_WAVELET) -> dict:
    """Scale-coupling matrices (:func:`wavelet_scale_coupling`) of coefficients and moduli of the
    data and of the samples, and the largest |entry| between different scales of each."""
    out: dict = {"J": int(J), "wavelet": wavelet}
    for name, x in (("data", data), ("samples", samples)):
        entry = {}
        for kind, modulus in (("coefficients", False), ("moduli", True)):
            corr, labels = wavelet_scale_coupling(x, J, wavelet, modulus=modulus)
            entry[kind] = corr.tolist()
            entry[f"{kind}_cross_scale_max"] = cross_scale_max(corr)
            out["labels"] = labels
        out[name] = entry
    return out

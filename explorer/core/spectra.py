"""Power spectra of field batches: integer Fourier shells, the radial power spectrum (the one
implementation every other module calls) and phase-randomised surrogates.

Conventions and definitions: docs/diagnostics.md, "Power spectra"; docs/README.md, "Conventions"
(k = 2πn/L in lattice units unless a box length is given).
"""

from __future__ import annotations

import numpy as np

from explorer.core.fields.base import as_batch


def shell_index(L: int, half: bool = False) -> np.ndarray:
    """Integer shell n = round(|n⃗|) of every mode of the L × L FFT grid (FFT order), or of the
    rfft half-plane (L, L//2 + 1) with ``half=True``."""
    n = np.fft.fftfreq(L, 1.0 / L)
    nx = np.arange(L // 2 + 1) if half else n
    return np.rint(np.hypot(n[:, None], nx[None, :])).astype(int)


def half_plane_multiplicity(L: int) -> np.ndarray:
    """(L, L//2 + 1) number of full-plane modes each rfft half-plane mode stands for: 2, except 1
    in the k_x = 0 and k_x = L/2 columns."""
    mult = np.full((L, L // 2 + 1), 2.0)
    mult[:, 0] = 1.0
    mult[:, -1] = 1.0
    return mult


def shell_counts(L: int, n_shells: int | None = None, half: bool = False) -> np.ndarray:
    """Number of modes of the full L × L plane in the shells 1 .. ``n_shells`` (default L/2);
    from the half-plane with its multiplicities when ``half`` (floats, the same numbers)."""
    S = L // 2 if n_shells is None else int(n_shells)
    idx = shell_index(L, half).ravel()
    if half:
        return np.bincount(idx, weights=half_plane_multiplicity(L).ravel(), minlength=S + 1)[1: S + 1]
    return np.bincount(idx, minlength=S + 1)[1: S + 1]


def shell_average(values, n_shells: int | None = None, half: bool = False) -> np.ndarray:
    """Mean of ``values`` given per mode over the integer shells n = 1 .. ``n_shells`` (default
    L/2; beyond L/2 the shells reach into the corners |k| > L/2).

    ``values`` is (..., L, L) on the FFT grid, or (..., L, L//2 + 1) on the rfft half-plane with
    ``half=True`` (each mode then counts with :func:`half_plane_multiplicity`, so the result is the
    full-plane mean of a Hermitian-symmetric quantity). Leading axes are kept: (..., n_shells)."""
    v = np.asarray(values, dtype=np.float64)
    L = v.shape[-2]
    S = L // 2 if n_shells is None else int(n_shells)
    idx = shell_index(L, half).ravel()
    counts = shell_counts(L, S, half)
    if half:
        v = v * half_plane_multiplicity(L)
    flat = v.reshape(-1, v.shape[-2] * v.shape[-1])
    out = np.empty((flat.shape[0], S))
    for i, row in enumerate(flat):
        out[i] = np.bincount(idx, weights=row, minlength=S + 1)[1: S + 1] / counts
    return out.reshape(v.shape[:-2] + (S,))


def radial_power_spectrum(fields, box: float | None = None,
                          log_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum (k, P) of a batch (N, L, L) or of one field.

    P(k) = ⟨|x̂(k)|²⟩ / L² (x̂ the unnormalised DFT) averaged over the batch and over the modes of a
    bin; k = 2πn/box (box = L by default: lattice units).

    ``log_bins=None``: the integer shells n = round(|n⃗|) = 1 .. L/2 (:func:`shell_average`).
    ``log_bins=B``: B logarithmically spaced bins of |n⃗| between 1 and L/2 (geometric edges; empty
    bins dropped); k is then the mean wavenumber of the modes in a bin."""
    x = as_batch(fields)
    L = x.shape[-1]
    box = float(L) if box is None else float(box)
    p2 = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / (L * L)
    if log_bins is None:
        shells = np.arange(1, L // 2 + 1)
        return 2 * np.pi * shells / box, shell_average(p2)
    log_bins = int(log_bins)
    if log_bins < 1:
        raise ValueError(f"log_bins must be a positive integer, got {log_bins}")
    n = np.fft.fftfreq(L, 1.0 / L)
    r = np.hypot(n[:, None], n[None, :]).ravel()
    edges = np.geomspace(1.0, L / 2 + 0.5, log_bins + 1)
    idx = np.digitize(r, edges) - 1
    ok = (idx >= 0) & (idx < log_bins)
    counts = np.bincount(idx[ok], minlength=log_bins)
    psum = np.bincount(idx[ok], weights=p2.ravel()[ok], minlength=log_bins)
    rsum = np.bincount(idx[ok], weights=r[ok], minlength=log_bins)
    keep = counts > 0
    return 2 * np.pi * rsum[keep] / counts[keep] / box, psum[keep] / counts[keep]


def phase_randomise(fields, seed=0) -> np.ndarray:
    """Surrogate fields with exactly the same Fourier amplitudes |x̂(k)| and random phases
    (Hermitian-symmetric, taken from the FFT of real white noise; the mean is kept): the same
    spectrum and second-order statistics, no phase alignment across scales (docs/diagnostics.md,
    "Scale-coupling matrices")."""
    x = as_batch(fields)
    rng = np.random.default_rng(seed)
    f = np.fft.fft2(x)
    z = np.fft.fft2(rng.standard_normal(x.shape))
    ph = z / np.maximum(np.abs(z), 1e-300)
    ph[..., 0, 0] = 1.0
    return np.real(np.fft.ifft2(f * ph))

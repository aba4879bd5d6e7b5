"""The Morlet filter bank of scattering spectra: J scales × L orientations of Morlet-type wavelets
built on the DFT grid (hence periodic), undecimated (:func:`morlet_bank`, :func:`morlet_transform`)
and on per-scale subsampled grids (:func:`filter_bank`). The science: docs/diagnostics.md,
"Scattering spectra" ("Filter bank").

Scale j is computed on a grid subsampled by s_j = 2^max(0, j-1) (side m_j = M / s_j): the filter is
*defined* as zero outside that grid's frequency box (|k_y|, |k_x| < m_j / 2 in units of 2π/M) and
below ``tol`` × its maximum, so that x⋆ψ_λ on the coarse grid is exactly the subsampled
full-resolution convolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from explorer.core.fields.base import as_batch

#: centre frequency ξ0 of the finest scale, envelope σ0 and relative truncation of the bank
XI0 = 3 * np.pi / 4
SIGMA0 = 0.8
TOL = 1e-3


def morlet_bank(L: int, J: int, n_orient: int = 4, xi0: float = XI0,
                sigma0: float = SIGMA0, slant: float = 0.5) -> np.ndarray:
    """Fourier-domain Morlet-type filters (J * n_orient, L, L) on the FFT grid.

    ψ̂_{j,θ}(ω) = g(2^j R_θ ω - ξ0 e_1) - g(ξ0 e_1) g(2^j R_θ ω) with g(u) = exp(-σ0² (u_1² +
    u_2²/slant²)/2): an anisotropic Gabor at centre frequency ξ0 / 2^j, direction θ = πl/n_orient,
    corrected to zero mean. Analytic (one-sided in frequency): x ⋆ ψ is complex."""
    w = 2 * np.pi * np.fft.fftfreq(L)
    wy, wx = np.meshgrid(w, w, indexing="ij")
    out = []

    def g(u1, u2):
        return np.exp(-0.5 * sigma0**2 * (u1**2 + (u2 / slant) ** 2))

    for j in range(J):
        s = 2.0**j
        for o in range(n_orient):
            t = np.pi * o / n_orient
            u1 = s * (np.cos(t) * wx + np.sin(t) * wy)
            u2 = s * (-np.sin(t) * wx + np.cos(t) * wy)
            out.append(g(u1 - xi0, u2) - g(xi0, 0.0) * g(u1, u2))
    return np.asarray(out)


def morlet_transform(fields, J: int, n_orient: int = 4, **bank) -> np.ndarray:
    """Undecimated complex coefficients x ⋆ ψ_{j,θ}: (N, J * n_orient, L, L)."""
    x = as_batch(fields)
    psi = morlet_bank(x.shape[-1], J, n_orient, **bank)
    return np.fft.ifft2(np.fft.fft2(x)[:, None] * psi[None])


@dataclass(frozen=True, eq=False)
class FilterBank:
    """Per-scale grids, box-truncated filters and the weights of the Gram sums.

    ``side[j]`` grid side m_j; ``psi[j]`` (L, m_j, m_j) real filters on that grid (FFT order), zero
    outside the open box |k_y|, |k_x| < m_j/2 and below ``tol`` × their maximum; ``box_idx[j]`` flat
    indices into x's rfft half-plane of the box of grid j (the columns k_x < 0, the right half in
    FFT order, are read conjugated). Gram sums over the full plane are taken over the half-plane
    block of grid j (its m_j rows, columns k_x = 0 .. m_j/2 - 1) with, for orientation l,
    ``even[j][l]`` = c (ψ̂²(k) + ψ̂²(-k)) and ``odd[j][l]`` = c (ψ̂²(k) - ψ̂²(-k)), c = ½ on the
    k_x = 0 column (which holds both k and -k) and 1 elsewhere: for real fields a, b,
    Σ_k a b* ψ̂² = Σ_half [even Re(a b*) + i odd Im(a b*)].
    """

    M: int
    J: int
    L: int
    xi0: float
    sigma0: float
    slant: float
    tol: float
    side: tuple
    psi: tuple
    box_idx: tuple
    even: tuple
    sqrt_even: tuple
    odd: tuple

    @property
    def n_filters(self) -> int:
        return self.J * self.L

    def spec(self) -> dict:
        return {"M": self.M, "J": self.J, "L": self.L, "xi0": self.xi0, "sigma0": self.sigma0,
                "slant": self.slant, "tol": self.tol, "grid_sides": list(self.side)}


def _half_index(k: np.ndarray, m: int) -> np.ndarray:
    """Flat index into an rfft2 half-plane (m, m//2 + 1) of the signed wavenumbers k (P, 2);
    points with k_x < 0 point to -k (whose value is the conjugate)."""
    ky, kx = k[:, 0], k[:, 1]
    neg = kx < 0
    ry = np.where(neg, -ky, ky) % m
    rx = np.where(neg, -kx, kx)
    return (ry * (m // 2 + 1) + rx).astype(np.intp)


def _signed(m: int) -> np.ndarray:
    return np.fft.fftfreq(m, 1.0 / m).astype(int)


def filter_bank(M: int, J: int, L: int = 4, xi0: float = XI0, sigma0: float = SIGMA0,
                slant: float | None = None, tol: float = TOL) -> FilterBank:
    """The (cached) filter bank for fields of side M: the filters of :func:`morlet_bank` at
    orientations θ_ℓ = πℓ/L, slant 4/L by default (kymatio's), on the per-scale grids of the
    module docstring."""
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)) or M < 4 or M & (M - 1):
        raise ValueError(f"the field side must be a power of two >= 4, got {M}")
    if isinstance(J, bool) or not isinstance(J, (int, np.integer)) or J < 1 or 2 ** J > M:
        raise ValueError(f"J must be an integer in 1..log2(M) = {int(math.log2(M))} for side {M}, "
                         f"got {J!r}")
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or not 1 <= L <= 16:
        raise ValueError(f"the number of orientations L must be an integer in 1..16, got {L!r}")
    slant = 4.0 / L if slant is None else float(slant)
    return _filter_bank(int(M), int(J), int(L), float(xi0), float(sigma0), min(slant, 1.0),
                        float(tol))


@lru_cache(maxsize=16)
def _filter_bank(M, J, L, xi0, sigma0, slant, tol) -> FilterBank:
    full = morlet_bank(M, J, L, xi0=xi0, sigma0=sigma0, slant=slant).reshape(J, L, M, M)
    side, psi, box_idx, even, sqrt_even, odd = [], [], [], [], [], []
    for j in range(J):
        m = M >> max(0, j - 1)
        h = m // 2
        km = _signed(m)
        ky, kx = np.meshgrid(km, km, indexing="ij")
        f = full[j][:, ky % M, kx % M]                          # (L, m, m) values on the box
        peak = np.abs(full[j]).max(axis=(1, 2), keepdims=True)
        f = np.where(np.abs(f) >= tol * peak, f, 0.0)
        f[:, h, :] = 0.0                                        # open box: k = -m/2 excluded
        f[:, :, h] = 0.0
        f.setflags(write=False)
        side.append(m)
        psi.append(f)
        box_idx.append(_half_index(np.stack([ky.ravel(), kx.ravel()], 1), M))
        wp = f[:, :, :h] ** 2                                   # ψ̂²(k) on the half block
        wm = (f[:, (-ky[:, :h]) % m, (-kx[:, :h]) % m]) ** 2    # ψ̂²(-k)
        c = np.ones(h)
        c[0] = 0.5
        e = (c * (wp + wm)).reshape(L, -1)
        o = (c * (wp - wm)).reshape(L, -1)
        even.append(e)
        sqrt_even.append(np.sqrt(e))
        odd.append(o)
    return FilterBank(M, J, L, xi0, sigma0, slant, tol, tuple(side), tuple(psi), tuple(box_idx),
                      tuple(even), tuple(sqrt_even), tuple(odd))

"""Scattering spectra S1–S4 and microcanonical synthesis (SCIENCE.md §7; Cheng et al. 2024).

Filter bank
-----------
J scales × L orientations of Morlet-type wavelets built in Fourier space on the DFT grid (so they
are periodic in space): the Gabor-minus-DC filters of :func:`explorer.core.diagnostics.morlet_bank`
(centre frequency ξ_j = ξ0 / 2^j, ξ0 = 3π/4, envelope σ0 = 0.8, orientation θ_ℓ = πℓ/L,
ℓ = 0..L-1, slant 4/L as in kymatio). They are analytic (one-sided in frequency) and real in
Fourier, so x⋆ψ_λ is complex and ψ_{θ+π} = ψ_θ*: half a circle of orientations describes a real
field. Scale j is computed on a grid subsampled by s_j = 2^max(0, j-1) (side m_j = M / s_j): the
filter is *defined* as zero outside that grid's frequency box (|k_y|, |k_x| < m_j / 2 in units of
2π/M) and below ``tol`` × its maximum. With these definitions x⋆ψ_λ on the coarse grid is exactly
the subsampled full-resolution convolution; the energy dropped by the truncation is ~1e-4 of a
filter's. The modulus |x⋆ψ_λ| is taken on that grid.

Statistics
----------
Write f̃(k) = DFT(f)(k) / m² for a field f on a grid of side m, so that the spatial mean of f g*
is Σ_k f̃(k) g̃(k)* (Parseval). With W_λ = x⋆ψ_λ, U_λ = |W_λ| (λ = (j, ℓ)) and ⟨·⟩ the spatial
mean:

* ``mean``   ⟨x⟩
* ``S1[j,ℓ]`` = ⟨U_λ⟩                                      (sparsity: S1 / √S2)
* ``S2[j,ℓ]`` = ⟨|W_λ|²⟩ = Σ_k |x̃|² ψ̂_λ²                   (wavelet power spectrum)
* ``S3[j1,ℓ1,j2,ℓ2]`` = ⟨W_λ2 (U_λ1⋆ψ_λ2)*⟩ / √(S2_λ1 S2_λ2) = Σ_k x̃ Ũ_λ1* ψ̂_λ2² / √(S2 S2),
  j1 <= j2 (complex; zero in expectation for any sign-symmetric law, e.g. Gaussian fields)
* ``S4[j1,ℓ1,j2,ℓ2,j3,ℓ3]`` = ⟨(U_λ1⋆ψ_λ3)(U_λ2⋆ψ_λ3)*⟩ / √(S2_λ1 S2_λ2)
  = Σ_k Ũ_λ1 Ũ_λ2* ψ̂_λ3² / √(S2 S2), j1 <= j2 <= j3 (complex; NOT zero for Gaussian fields:
  compare it with phase-randomised surrogates, :func:`explorer.core.diagnostics.phase_randomise`)

So S2, S3, S4 are all weighted cross-spectra of the rows {x̃, Ũ_μ}: for each λ3 one weighted
Gram matrix over the (small) support of ψ̂_λ3. Entries outside j1 <= j2 (<= j3) are stored as 0.

Reductions (:func:`reduce_spectra`)
-----------------------------------
``raw``        every (j, ℓ) coefficient (anisotropic);
``isotropic``  average over a global rotation ℓ -> ℓ + r (mod L), keeping angle differences:
               S1[j], S2[j], S3[j1,j2,Δ] (Δ = ℓ2 - ℓ1), S4[j1,j2,j3,Δ1,Δ2] (Δi = ℓi - ℓ3).
               Counts 1 + 2J + L·J(J+1)/2 + L²·C(J+2,3): 631 at J=5, L=4; 1471 at J=7, L=4.
               (A wrap ℓ + r >= L is the rotated filter up to conjugation, ψ_{θ+π} = ψ_θ*: the
               average is over the cyclic orientation index.)
``fourier``    (default) isotropic, then the DFT over the angle differences (harmonics m, m1, m2;
               same count).
``scale``      fourier, then an orthonormal cosine transform (DCT-II) over the scale position at
               fixed scale gaps (S3: gap a = j2 - j1, over j1; S4: gaps (a, b) = (j2 - j1, j3 - j2),
               over j1): order q = 0 is the average over positions, q >= 1 the departures from
               self-similarity. Same count.
Signal-to-noise thresholding (``threshold=True``, needs N >= 2 fields): a coefficient is kept if
its mean magnitude over the batch is at least its standard deviation over the batch,
|mean_n v_n| >= std_n(v_n) (complex std: √mean|v - mean|²); mean, S1 and S2 are always kept. With
one field nothing is dropped (and the result says so).

Every reduced vector comes with a table naming each coefficient: dicts with ``kind`` ("mean",
"S1", "S2", "S3", "S4"), ``j1``, ``j2``, ``j3`` (None when absent), angle indices (``l1``, ``l2``,
``l3`` raw; ``dl``, ``dl1``, ``dl2`` isotropic; ``m``, ``m1``, ``m2`` harmonics), and for the scale
reduction ``gap`` / ``gaps`` and ``q`` instead of j's.

Microcanonical synthesis (:func:`iter_synthesize`, :func:`synthesize`)
------------------------------------------------------------------------
From white noise (data mean and standard deviation), minimise
    ℓ(x) = Σ_groups Σ_k |Φ_k(x) - Φ_k(data)|² / scale_k²
with scipy's L-BFGS and a hand-derived gradient (chain rule through the FFTs, the crops, the
modulus d|z| = Re(z* dz)/|z| and the weighted Gram sums). Φ = (mean, S1, S2, S3, S4 over all
orientations, and the isotropic power spectrum in integer shells), averaged over the data fields.
Scales: S1 by √S2_data, S2 by S2_data, S3/S4 by √(S2_data S2_data) (the definition's
normalisation, with the data's S2 held fixed), shells by P_data (only shells with power above
1e-12 of the largest), the mean by the data's standard deviation. The loss is a sum over
syntheses, so all syntheses form one L-BFGS vector.

The shells cover the whole DFT plane, 1 .. rint(M/√2), the corners |k| > M/2 included
(:func:`n_shells`). The wavelets barely see the corners (the finest filters peak at |ω| = 3π/4,
the open boxes drop the Nyquist row and column) and the disc |k| <= M/2 alone left the white-noise
start there: a checkerboard with 18-25x the data's corner power on sharp-edged textures (32² to
128², 60-200 iterations; now 0.9-1.0). Shells are the cheapest principled constraint there: the same
isotropic power constraint as on the disc (its maximum-entropy completion is Gaussian with the
data's power per shell), ~M/5 more shells, no new statistic.

Two details make it converge from white noise in a few hundred iterations at 256²:
* spectral support: Fourier modes where the data have (numerically) no power, e.g. beyond the
  2/3-rule dealiasing of a spectral solver, are projected out of the syntheses (the data are exactly
  band-limited there; matching float32 rounding noise by optimisation is hopeless);
* preconditioning: L-BFGS works on z with x = C z, C diagonal in Fourier,
  C(k) = √(P_data(|k|) / mean P_data), the mean over the shells |k| <= M/2; the start is still
  the white noise (z0 = C⁻¹ x0), C only reshapes the descent so that scales whose power differs by
  decades converge together.
Measured on field 0 of turbulence_L256 (2 syntheses, J = 6, L = 4): after 600 iterations the
spectrum log ratio is 0.006, the kurtosis +0.8 %, the increment flatness at 1..16 px within 11 %,
the histogram total variation 0.044.
``model="gaussian"`` returns phase-randomised copies of the data (the exact power-spectrum-only
maximum-entropy reference).

Conventions: batches (N, M, M), M a power of two >= 2^J (in practice >= 2^(J+1)); float64
throughout; FFTs with ``scipy.fft`` and ``workers`` threads.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.fft as sfft

from explorer.core.diagnostics import morlet_bank, phase_randomise
from explorer.core.fields.base import FieldSet, as_batch
from explorer.core.progress import Progress, run, should_stop
from explorer.core.support import ZERO_POWER

#: FFT worker threads (scipy.fft ``workers``); -1 = all cores
WORKERS = -1
XI0 = 3 * np.pi / 4
SIGMA0 = 0.8
TOL = 1e-3
REDUCTIONS = ("raw", "isotropic", "fourier", "scale")
#: Fourier modes with less than this fraction of the data's largest modal power are outside the
#: data's spectral support (syntheses are projected onto the support)
SUPPORT_FLOOR = ZERO_POWER


# ====================================================================== filter bank
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
    """The (cached) filter bank for fields of side M; see the module docstring."""
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


# ====================================================================== forward / backward
_BLAS = None


def _one_blas_thread():
    """Context limiting BLAS to one thread: the Gram products are skinny (R <= ~60 rows) and
    multi-threaded OpenBLAS is erratic on a busy machine (10x slower seen); FFTs still use
    ``workers`` threads."""
    global _BLAS
    try:
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        return _BLAS.limit(limits=1, user_api="blas")
    except Exception:  # noqa: BLE001 - threadpoolctl missing or unusable: run as is
        import contextlib

        return contextlib.nullcontext()


def _half_adjoint(g: np.ndarray, m: int, workers) -> np.ndarray:
    """Gradient wrt a real field f (..., m, m) of a loss whose gradient wrt f̃ = rfft2(f)/m² is
    g (..., m, m//2+1): Re(Rᴴ g)/m² = irfft2(g')/2 with g' = g with the k_x = 0 and k_x = m/2
    columns doubled (irfft2 keeps only their real, Hermitian part)."""
    g = g.copy()
    g[..., 0] *= 2.0
    g[..., -1] *= 2.0
    return 0.5 * sfft.irfft2(g, s=(m, m), workers=workers)


def _box(xf: np.ndarray, bank: FilterBank, j: int) -> np.ndarray:
    """x̃ on the frequency box of grid j: (N, m, m) complex in FFT order."""
    m = bank.side[j]
    X = xf[:, bank.box_idx[j]].reshape(-1, m, m)
    np.conjugate(X[..., m // 2:], out=X[..., m // 2:])
    return X


def _box_adjoint(g_xh: np.ndarray, gX: np.ndarray, bank: FilterBank, j: int) -> None:
    """g_xh (N, T) += adjoint of :func:`_box` applied to gX (N, m, m) (real-gradient convention)."""
    m = bank.side[j]
    gX = gX.copy()
    np.conjugate(gX[..., m // 2:], out=gX[..., m // 2:])
    idx = bank.box_idx[j].reshape(m, m)
    g_xh[:, idx[:, : m // 2].ravel()] += gX[..., : m // 2].reshape(len(gX), -1)
    g_xh[:, idx[:, m // 2:].ravel()] += gX[..., m // 2:].reshape(len(gX), -1)


def _block(H: np.ndarray, m3: int) -> np.ndarray:
    """Half-plane block of grid j3 (rows |k_y| < m3/2 in FFT order, columns k_x < m3/2) cut from a
    half-plane H (..., m, m//2+1) of a finer or equal grid."""
    h = m3 // 2
    m = H.shape[-2]
    return np.concatenate([H[..., :h, :h], H[..., m - h:, :h]], axis=-2)


def _block_adjoint(gH: np.ndarray, g: np.ndarray, m3: int) -> None:
    h = m3 // 2
    m = gH.shape[-2]
    gH[..., :h, :h] += g[..., :h, :]
    gH[..., m - h:, :h] += g[..., h:, :]


@dataclass
class _Forward:
    bank: FilterBank
    xh: np.ndarray                 # (N, M, M//2+1) x̃
    W: list                        # per scale (N, L, m, m) complex
    U: list                        # per scale (N, L, m, m)
    A: list                        # per scale j3: (re, im) of the rows, each (N, R, P)
    mean: np.ndarray               # (N,)
    S1: np.ndarray                 # (N, J, L)
    S2: np.ndarray                 # (N, J, L)
    S3: np.ndarray                 # (N, J, L, J, L) unnormalised, 0 where j1 > j2
    S4: np.ndarray                 # (N, J, L, J, L, J, L) unnormalised, 0 outside j1<=j2<=j3


def _forward(x: np.ndarray, bank: FilterBank, workers=WORKERS, keep: bool = False) -> _Forward:
    with _one_blas_thread():
        return _forward_impl(x, bank, workers, keep)


def _forward_impl(x, bank, workers, keep) -> _Forward:
    N, M = x.shape[0], bank.M
    J, L = bank.J, bank.L
    xh = sfft.rfft2(x, workers=workers) / (M * M)
    xf = xh.reshape(N, -1)
    halves = [xh[:, None]]                                      # rows: x̃, then Ũ_μ per scale
    Ws, Us = [], []
    S1 = np.empty((N, J, L))
    for j in range(J):
        m = bank.side[j]
        W = sfft.ifft2(_box(xf, bank, j)[:, None] * bank.psi[j], workers=workers,
                       overwrite_x=True)
        W *= m * m
        U = np.abs(W)
        Uh = sfft.rfft2(U, workers=workers)
        Uh /= m * m
        S1[:, j] = Uh[..., 0, 0].real
        halves.append(Uh)
        if keep:
            Ws.append(W)
            Us.append(U)
    S2 = np.empty((N, J, L))
    S3 = np.zeros((N, J, L, J, L), dtype=complex)
    S4 = np.zeros((N, J, L, J, L, J, L), dtype=complex)
    As = []
    for j3 in range(J):
        m3 = bank.side[j3]
        R = 1 + L * (j3 + 1)
        A = np.concatenate([_block(H, m3) for H in halves[: j3 + 2]], axis=1).reshape(N, R, -1)
        Ar, Ai = np.ascontiguousarray(A.real), np.ascontiguousarray(A.imag)
        Ari = np.concatenate([Ar, Ai], axis=1)                  # (N, 2R, P)
        for l3 in range(L):
            B = Ari * bank.sqrt_even[j3][l3]
            Aio = Ai * bank.odd[j3][l3]
            for n in range(N):
                Gr = B[n] @ B[n].T                              # BLAS syrk
                C = Aio[n] @ Ar[n].T
                G = (Gr[:R, :R] + Gr[R:, R:]) + 1j * (C - C.T)
                S2[n, j3, l3] = G[0, 0].real
                S3[n, : j3 + 1, :, j3, l3] = G[0, 1:].reshape(j3 + 1, L)
                S4[n, : j3 + 1, :, : j3 + 1, :, j3, l3] = G[1:, 1:].reshape(j3 + 1, L, j3 + 1, L)
        if keep:
            As.append((Ar, Ai))
    jj = np.arange(J)
    S4 *= (jj[:, None] <= jj[None, :])[None, :, None, :, None, None, None]
    return _Forward(bank, xh, Ws, Us, As, xh[:, 0, 0].real.copy(), S1, S2, S3, S4)


def _backward(fw: _Forward, gS1, gS2, gS3, gS4, gxh=None, workers=WORKERS) -> np.ndarray:
    """Gradient wrt x of a loss with gradients gS1 (N,J,L), gS2 (N,J,L) (real), gS3, gS4 (complex,
    real-gradient convention ∂/∂Re + i ∂/∂Im, unnormalised statistics) and gxh wrt x̃ directly."""
    with _one_blas_thread():
        return _backward_impl(fw, gS1, gS2, gS3, gS4, gxh, workers)


def _backward_impl(fw, gS1, gS2, gS3, gS4, gxh, workers) -> np.ndarray:
    bank = fw.bank
    N, M, J, L = fw.xh.shape[0], bank.M, bank.J, bank.L
    g_xh = (np.zeros((N, M, M // 2 + 1), dtype=complex) if gxh is None
            else np.array(gxh, dtype=complex).reshape(N, M, M // 2 + 1))
    g_Uh = [np.zeros((N, L, s, s // 2 + 1), dtype=complex) for s in bank.side]
    jj = np.arange(J)
    gS4 = gS4 * (jj[:, None] <= jj[None, :])[None, :, None, :, None, None, None]
    for j3 in range(J):
        m3 = bank.side[j3]
        R = 1 + L * (j3 + 1)
        Ar, Ai = fw.A[j3]
        P = Ar.shape[-1]
        Arow = np.concatenate([Ar, Ai], axis=2)                  # (N, R, 2P) = [Ar | Ai]
        gr = np.zeros((N, R, P))
        gi = np.zeros((N, R, P))
        for l3 in range(L):
            gG = np.zeros((N, R, R), dtype=complex)
            gG[:, 0, 0] = gS2[:, j3, l3]
            gG[:, 0, 1:] = gS3[:, : j3 + 1, :, j3, l3].reshape(N, -1)
            gG[:, 1:, 1:] = gS4[:, : j3 + 1, :, : j3 + 1, :, j3, l3].reshape(N, R - 1, R - 1)
            # Re G = Σ E (ar ar' + ai ai'), Im G = Σ O (ai ar' - ar ai'):
            # ∇Ar = E (Hs Ar) - O (Ha Ai), ∇Ai = E (Hs Ai) + O (Ha Ar), Hs = Gr + Grᵀ, Ha = Gi - Giᵀ
            Hs = gG.real + gG.real.swapaxes(1, 2)
            Ha = gG.imag - gG.imag.swapaxes(1, 2)
            Q = np.concatenate([Hs, Ha], axis=1)                 # (N, 2R, R)
            E, O = bank.even[j3][l3], bank.odd[j3][l3]
            for n in range(N):
                Y = Q[n] @ Arow[n]                              # [[Hs Ar, Hs Ai], [Ha Ar, Ha Ai]]
                gr[n] += E * Y[:R, :P] - O * Y[R:, P:]
                gi[n] += E * Y[:R, P:] + O * Y[R:, :P]
        g = (gr + 1j * gi).reshape(N, R, m3, m3 // 2)
        _block_adjoint(g_xh, g[:, 0], m3)
        for mu in range(j3 + 1):
            _block_adjoint(g_Uh[mu], g[:, 1 + mu * L: 1 + (mu + 1) * L], m3)
    g_xf = g_xh.reshape(N, -1)
    for j in range(J):
        m = bank.side[j]
        g = g_Uh[j]
        g[..., 0, 0] += gS1[:, j]
        gU = _half_adjoint(g, m, workers)
        W, U = fw.W[j], fw.U[j]
        gW = gU * np.divide(W, U, out=np.zeros_like(W), where=U > 0)
        gWt = sfft.fft2(gW, workers=workers, overwrite_x=True)
        gX = np.einsum("nlab,lab->nab", gWt, bank.psi[j])
        _box_adjoint(g_xf, gX, bank, j)
    return _half_adjoint(g_xh, M, workers)


# ====================================================================== statistics
_as_batch = as_batch  # float64 (N, M, M), validated


def default_J(M: int) -> int:
    """Default number of scales: log2(M) - 2 (coarsest wavelet ~ M/4 pixels), at least 1."""
    return max(1, int(math.log2(M)) - 2)


@dataclass
class ScatteringSpectra:
    """Raw (orientation-resolved) scattering spectra of a batch; S3, S4 normalised by √(S2 S2).

    Shapes: mean (N,), S1, S2 (N, J, L), S3 (N, J, L, J, L), S4 (N, J, L, J, L, J, L) complex,
    zero outside j1 <= j2 (<= j3). ``bank`` is the filter bank used.
    """

    mean: np.ndarray
    S1: np.ndarray
    S2: np.ndarray
    S3: np.ndarray
    S4: np.ndarray
    bank: FilterBank

    @property
    def J(self) -> int:
        return self.bank.J

    @property
    def L(self) -> int:
        return self.bank.L


def _normalise(fw: _Forward, S2=None):
    S2 = fw.S2 if S2 is None else S2
    r = np.sqrt(np.clip(S2, 1e-300, None))
    J, L = fw.bank.J, fw.bank.L
    n12 = r[:, :, :, None, None] * r[:, None, None, :, :]            # (N, J, L, J, L)
    return fw.S3 / n12, fw.S4 / n12[..., None, None]


def scattering_spectra(fields, J: int | None = None, L: int = 4, batch: int = 8,
                       workers=WORKERS, **bank_options) -> ScatteringSpectra:
    """Raw scattering spectra of a batch (N, M, M) (or one field), computed ``batch`` at a time."""
    x = _as_batch(fields)
    M = x.shape[-1]
    bank = filter_bank(M, default_J(M) if J is None else J, L, **bank_options)
    parts = []
    for a in range(0, len(x), max(1, int(batch))):
        fw = _forward(x[a: a + batch], bank, workers)
        S3, S4 = _normalise(fw)
        parts.append((fw.mean, fw.S1, fw.S2, S3, S4))
    cat = [np.concatenate([p[i] for p in parts]) for i in range(5)]
    return ScatteringSpectra(*cat, bank=bank)


def _scale_triples(J):
    return [(j1, j2, j3) for j1 in range(J) for j2 in range(j1, J) for j3 in range(j2, J)]


def _pairs(J):
    return [(j1, j2) for j1 in range(J) for j2 in range(j1, J)]


@dataclass
class ScatteringStatistics:
    """Reduced scattering statistics: ``values`` (N, K) complex, ``table`` naming each column."""

    values: np.ndarray
    table: list[dict]
    reduction: str
    params: dict
    thresholded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [coefficient_name(t) for t in self.table]

    def __len__(self) -> int:
        return len(self.table)

    def mean(self) -> np.ndarray:
        return self.values.mean(axis=0)

    def std(self) -> np.ndarray:
        return np.sqrt(np.mean(np.abs(self.values - self.mean()) ** 2, axis=0))

    def select(self, kind: str) -> np.ndarray:
        """Columns of one kind ("mean", "S1", "S2", "S3", "S4")."""
        return np.array([i for i, t in enumerate(self.table) if t["kind"] == kind], dtype=int)

    def to_dict(self) -> dict:
        """JSON-able: table entries with mean (re, im) and batch std of every coefficient."""
        mu, sd = self.mean(), self.std()
        rows = []
        for t, v, s in zip(self.table, mu, sd):
            rows.append({**t, "name": coefficient_name(t), "re": float(v.real),
                         "im": float(v.imag), "std": float(s)})
        return {"reduction": self.reduction, "params": self.params, "count": len(self.table),
                "n_fields": int(self.values.shape[0]), "thresholded": self.thresholded,
                "notes": list(self.notes), "coefficients": rows}


def coefficient_name(t: dict) -> str:
    """Readable name of a table entry, e.g. ``S4[j=0,1,3;m=1,0]``."""
    kind = t["kind"]
    if kind == "mean":
        return "mean"
    if "q" in t:
        gaps = t.get("gaps", [t.get("gap")] if t.get("gap") is not None else [])
        ang = ",".join(str(t[k]) for k in ("m", "m1", "m2") if k in t)
        g = ",".join(map(str, gaps))
        return f"{kind}[gap={g};q={t['q']}" + (f";m={ang}]" if ang else "]")
    js = ",".join(str(t[k]) for k in ("j1", "j2", "j3") if t.get(k) is not None)
    angle_keys = [k for k in ("l1", "l2", "l3", "dl", "dl1", "dl2", "m", "m1", "m2") if k in t]
    if not angle_keys:
        return f"{kind}[j={js}]"
    label = {"l": "l", "d": "dl", "m": "m"}[angle_keys[0][0]]
    ang = ",".join(str(t[k]) for k in angle_keys)
    return f"{kind}[j={js};{label}={ang}]"


def reduce_spectra(spec: ScatteringSpectra, reduction: str = "fourier",
                   threshold: bool = False) -> ScatteringStatistics:
    """Reduce raw spectra to a vector + table (see the module docstring for the reductions)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    J, L = spec.J, spec.L
    N = spec.mean.shape[0]
    cols: list[np.ndarray] = [spec.mean[:, None].astype(complex)]
    table: list[dict] = [{"kind": "mean", "j1": None, "j2": None, "j3": None}]
    pairs, triples = _pairs(J), _scale_triples(J)
    if reduction == "raw":
        for kind, S in (("S1", spec.S1), ("S2", spec.S2)):
            cols.append(S.reshape(N, -1).astype(complex))
            table += [{"kind": kind, "j1": j, "j2": None, "j3": None, "l1": l}
                      for j in range(J) for l in range(L)]
        for j1, j2 in pairs:
            cols.append(spec.S3[:, j1, :, j2, :].reshape(N, -1))
            table += [{"kind": "S3", "j1": j1, "j2": j2, "j3": None, "l1": a, "l2": b}
                      for a in range(L) for b in range(L)]
        for j1, j2, j3 in triples:
            cols.append(spec.S4[:, j1, :, j2, :, j3, :].reshape(N, -1))
            table += [{"kind": "S4", "j1": j1, "j2": j2, "j3": j3, "l1": a, "l2": b, "l3": c}
                      for a in range(L) for b in range(L) for c in range(L)]
        return _finish(cols, table, reduction, spec, threshold)
    # rotation average over the cyclic orientation index
    l = np.arange(L)
    d = (l[:, None] + l[None, :]) % L                       # d[r, Δ] = r + Δ
    S1 = spec.S1.mean(axis=2)
    S2 = spec.S2.mean(axis=2)
    S3 = np.stack([spec.S3[:, :, r, :, d[r]] for r in range(L)]).mean(axis=0)
    # spec.S3[:, :, r, :, d[r]] -> (L_Δ, N, J, J) by advanced indexing rules; reorder below
    S3 = np.moveaxis(S3, 0, -1)                             # (N, J, J, Δ)
    S4 = np.mean([spec.S4[:, :, d[r][:, None], :, d[r][None, :], :, r] for r in range(L)], axis=0)
    S4 = np.moveaxis(S4, (0, 1), (-2, -1))                  # (N, J, J, J, Δ1, Δ2)
    ang3, ang4 = ("dl",), ("dl1", "dl2")
    if reduction in ("fourier", "scale"):
        S3 = np.fft.fft(S3, axis=-1) / L
        S4 = np.fft.fft2(S4, axes=(-2, -1)) / (L * L)
        ang3, ang4 = ("m",), ("m1", "m2")
    for kind, S in (("S1", S1), ("S2", S2)):
        cols.append(S.astype(complex))
        table += [{"kind": kind, "j1": j, "j2": None, "j3": None} for j in range(J)]
    if reduction != "scale":
        for j1, j2 in pairs:
            cols.append(S3[:, j1, j2])
            table += [{"kind": "S3", "j1": j1, "j2": j2, "j3": None, ang3[0]: a} for a in range(L)]
        for j1, j2, j3 in triples:
            cols.append(S4[:, j1, j2, j3].reshape(N, -1))
            table += [{"kind": "S4", "j1": j1, "j2": j2, "j3": j3, ang4[0]: a, ang4[1]: b}
                      for a in range(L) for b in range(L)]
        return _finish(cols, table, reduction, spec, threshold)
    for gap in range(J):
        seq = np.stack([S3[:, j1, j1 + gap] for j1 in range(J - gap)], axis=1)  # (N, P, L)
        c = sfft.dct(seq.real, type=2, norm="ortho", axis=1) + 1j * sfft.dct(
            seq.imag, type=2, norm="ortho", axis=1)
        cols.append(c.reshape(N, -1))
        table += [{"kind": "S3", "j1": None, "j2": None, "j3": None, "gap": gap, "q": q, "m": a}
                  for q in range(J - gap) for a in range(L)]
    for a in range(J):
        for b in range(J - a):
            P = J - a - b
            seq = np.stack([S4[:, j1, j1 + a, j1 + a + b] for j1 in range(P)], axis=1)
            c = sfft.dct(seq.real, type=2, norm="ortho", axis=1) + 1j * sfft.dct(
                seq.imag, type=2, norm="ortho", axis=1)
            cols.append(c.reshape(N, -1))
            table += [{"kind": "S4", "j1": None, "j2": None, "j3": None, "gaps": [a, b], "q": q,
                       "m1": m1, "m2": m2} for q in range(P) for m1 in range(L) for m2 in range(L)]
    return _finish(cols, table, reduction, spec, threshold)


def _finish(cols, table, reduction, spec, threshold) -> ScatteringStatistics:
    values = np.concatenate([c.reshape(c.shape[0], -1) for c in cols], axis=1)
    assert values.shape[1] == len(table)
    params = {"J": spec.J, "L": spec.L, **spec.bank.spec()}
    stats = ScatteringStatistics(values, table, reduction, params)
    if threshold:
        stats = snr_threshold(stats)
    return stats


def snr_threshold(stats: ScatteringStatistics, ratio: float = 1.0) -> ScatteringStatistics:
    """Drop S3/S4 coefficients with |mean| < ratio × std over the batch (needs >= 2 fields)."""
    N = stats.values.shape[0]
    if N < 2:
        return ScatteringStatistics(stats.values, stats.table, stats.reduction, stats.params,
                                    False, stats.notes + ["one field: no signal-to-noise "
                                                          "thresholding (needs >= 2)"])
    mu, sd = np.abs(stats.mean()), stats.std()
    keep = np.array([t["kind"] in ("mean", "S1", "S2") or mu[i] >= ratio * sd[i]
                     for i, t in enumerate(stats.table)])
    table = [t for t, k in zip(stats.table, keep) if k]
    note = f"kept {int(keep.sum())} of {len(keep)} coefficients (|mean| >= {ratio} std)"
    return ScatteringStatistics(stats.values[:, keep], table, stats.reduction, stats.params, True,
                                stats.notes + [note])


def scattering_statistics(fields, J: int | None = None, L: int = 4, reduction: str = "fourier",
                          threshold: bool = False, **kwargs) -> ScatteringStatistics:
    """Scattering spectra of a batch reduced to a named vector (the main entry point)."""
    return reduce_spectra(scattering_spectra(fields, J, L, **kwargs), reduction, threshold)


def isotropic_count(J: int, L: int) -> int:
    """1 + 2J + L·J(J+1)/2 + L²·C(J+2, 3) (631 at J=5, L=4; 1471 at J=7, L=4)."""
    return 1 + 2 * J + L * J * (J + 1) // 2 + L * L * math.comb(J + 2, 3)


# ====================================================================== synthesis objective
def n_shells(M: int) -> int:
    """Number of integer shells 1..S covering the whole DFT plane, corners included:
    S = rint(M/√2) (the shell of the corner mode (M/2, M/2))."""
    return int(np.rint(np.hypot(M // 2, M // 2)))


def _shells(M: int):
    """Integer shell of every half-plane mode, multiplicity (2 for interior columns) and counts
    of the shells 1 .. :func:`n_shells` (the whole plane: the corners |k| > M/2 included)."""
    ky = _signed(M)[:, None]
    kx = np.arange(M // 2 + 1)[None, :]
    shell = np.rint(np.hypot(ky, kx)).astype(int)
    mult = np.full((M, M // 2 + 1), 2.0)
    mult[:, 0] = 1.0
    mult[:, -1] = 1.0
    ok = shell >= 1
    S = n_shells(M)
    counts = np.bincount(shell[ok], weights=mult[ok], minlength=S + 1)[1:]
    return shell, mult, ok, counts


def shell_spectrum(xh: np.ndarray, M: int) -> np.ndarray:
    """Mean of |x̃(k)|² over the integer shells 1 .. :func:`n_shells` (M/2 is the inscribed circle;
    the shells beyond it cover the corners) from half-planes (N, M, M//2+1)."""
    shell, mult, ok, counts = _shells(M)
    S = len(counts)
    p = np.abs(xh) ** 2 * mult
    N = xh.shape[0]
    out = np.empty((N, S))
    for n in range(N):
        out[n] = np.bincount(shell[ok], weights=p[n][ok], minlength=S + 1)[1:] / counts
    return out


class SynthesisObjective:
    """ℓ(x) summed over a batch of syntheses and its exact gradient (see the module docstring).

    ``targets`` come from the data (averaged over the data fields); ``weights`` per group
    ("mean", "S1", "S2", "S3", "S4", "spectrum"), default 1.
    """

    GROUPS = ("mean", "S1", "S2", "S3", "S4", "spectrum")

    def __init__(self, data, J: int | None = None, L: int = 4, weights: dict | None = None,
                 workers=WORKERS, **bank_options):
        d = _as_batch(data, "data")
        self.M = d.shape[-1]
        self.bank = filter_bank(self.M, default_J(self.M) if J is None else J, L, **bank_options)
        self.workers = workers
        self.weights = {g: 1.0 for g in self.GROUPS}
        for k, v in (weights or {}).items():
            if k not in self.weights:
                raise ValueError(f"unknown weight group {k!r}; groups: {self.GROUPS}")
            self.weights[k] = float(v)
        fw = _forward(d, self.bank, workers)
        self.t_mean = fw.mean.mean()
        self.t_S1 = fw.S1.mean(axis=0)
        self.t_S2 = fw.S2.mean(axis=0)
        self.t_S3 = fw.S3.mean(axis=0)
        self.t_S4 = fw.S4.mean(axis=0)
        self.t_P = shell_spectrum(fw.xh, self.M).mean(axis=0)
        if not np.all(self.t_S2 > 0):
            raise ValueError("the data have no power at some wavelet scale (constant fields?)")
        self.data_std = float(d.std())
        self.data_mean = float(d.mean())
        r = np.sqrt(self.t_S2)
        n12 = (r[:, :, None, None] * r[None, None]) ** 2      # S2 S2 (J, L, J, L)
        self.s_S3 = 1.0 / n12
        self.s_S4 = 1.0 / n12[..., None, None]
        J_, L_ = self.bank.J, self.bank.L
        jj = np.arange(J_)
        self.m3 = (jj[:, None] <= jj[None, :])[:, None, :, None]
        self.m4 = (self.m3[..., None, None] & (jj[None, None, :, None] <= jj[None, None, None, :]
                                                ).reshape(1, 1, J_, 1, J_, 1))
        # spectral support of the data: modes with power above 1e-12 of the largest (e.g. the
        # 2/3-rule dealiasing of a spectral solver leaves exact zeros, up to float32 rounding)
        p2 = (np.abs(fw.xh) ** 2).mean(axis=0)
        p2[0, 0] = 0.0
        self.mode_mask = p2 > SUPPORT_FLOOR * p2.max()
        self.mode_mask[0, 0] = True
        self.restricted = not bool(self.mode_mask.all())
        # relative spectrum error on the shells that carry power
        self.shell_on = self.t_P > SUPPORT_FLOOR * self.t_P.max()
        self.inv_tP = np.where(self.shell_on, 1.0 / np.where(self.shell_on, self.t_P, 1.0), 0.0)
        self.n_evaluations = 0
        self.last_parts: dict = {}
        self.data_fields = d

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(loss, gradient) for syntheses x (N, M, M)."""
        x = np.asarray(x, dtype=np.float64)
        w = self.weights
        fw = _forward(x, self.bank, self.workers, keep=True)
        N = x.shape[0]
        parts = {}
        dm = fw.mean - self.t_mean
        parts["mean"] = w["mean"] * np.sum(dm**2) / self.data_std**2
        d1 = fw.S1 - self.t_S1
        parts["S1"] = w["S1"] * np.sum(d1**2 / self.t_S2)
        d2 = fw.S2 - self.t_S2
        parts["S2"] = w["S2"] * np.sum(d2**2 / self.t_S2**2)
        d3 = (fw.S3 - self.t_S3) * self.m3
        parts["S3"] = w["S3"] * np.sum(np.abs(d3) ** 2 * self.s_S3)
        d4 = (fw.S4 - self.t_S4) * self.m4
        parts["S4"] = w["S4"] * np.sum(np.abs(d4) ** 2 * self.s_S4)
        P = shell_spectrum(fw.xh, self.M)
        dP = (P - self.t_P) * self.inv_tP
        parts["spectrum"] = w["spectrum"] * np.sum(dP**2)
        loss = float(sum(parts.values()))
        # gradients
        gS1 = 2 * w["S1"] * d1 / self.t_S2
        gS2 = 2 * w["S2"] * d2 / self.t_S2**2
        gS3 = 2 * w["S3"] * d3 * self.s_S3
        gS4 = 2 * w["S4"] * d4 * self.s_S4
        shell, mult, ok, counts = _shells(self.M)
        gP = 2 * w["spectrum"] * dP * self.inv_tP                          # (N, M/2)
        coef = np.zeros((N, self.M, self.M // 2 + 1))
        coef[:, ok] = (gP / counts)[:, shell[ok] - 1] * mult[ok]
        gxh = 2.0 * coef * fw.xh
        gxh[:, 0, 0] += 2 * w["mean"] * dm / self.data_std**2
        g = _backward(fw, gS1, gS2, gS3, gS4, gxh, self.workers)
        self.n_evaluations += 1
        self.last_parts = {k: float(v) for k, v in parts.items()}
        return loss, g


# ====================================================================== synthesis
def gaussian_synthesis(data, n_samples: int = 1, seed: int = 0) -> np.ndarray:
    """Power-spectrum-only references: phase-randomised copies of the data fields (cycled)."""
    d = _as_batch(data, "data")
    pick = d[np.arange(int(n_samples)) % len(d)]
    return phase_randomise(pick, seed=seed)


def iter_synthesize(data, n_samples: int = 1, J: int | None = None, L: int = 4,
                    iterations: int = 300, seed: int = 0, stop: threading.Event | None = None,
                    report_every: int = 10, model: str = "scattering",
                    weights: dict | None = None, x0=None, workers=WORKERS,
                    **bank_options) -> Iterator[Progress]:
    """Microcanonical synthesis of ``n_samples`` fields from one or a few data fields.

    Yields :class:`Progress` (stage "synthesis", step = L-BFGS iteration, snapshot = first
    synthesis as float32, info = {loss, loss_<group>, evaluations}); honours ``stop`` (the partial
    result is returned with ``stopped=True``). The final report carries a FieldSet whose meta
    records the parameters, the final loss and the timings. ``model="gaussian"``: phase-randomised
    data (no optimisation).
    """
    from scipy.optimize import minimize

    d = _as_batch(data, "data")
    M = d.shape[-1]
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"the number of syntheses must be at least 1, got {n_samples}")
    if model not in ("scattering", "gaussian"):
        raise ValueError(f"model must be 'scattering' or 'gaussian', got {model!r}")
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    J = default_J(M) if J is None else int(J)
    t0 = time.perf_counter()
    meta: dict[str, Any] = {"generator": "scattering-synthesis",
                            "params": {"model": model, "J": J, "L": int(L), "iterations": iterations,
                                       "n_data": int(len(d)), "n": n_samples, "size": int(M)},
                            "seed": seed}
    if model == "gaussian":
        x = gaussian_synthesis(d, n_samples, seed)
        meta["seconds"] = time.perf_counter() - t0
        yield Progress(1, 1, "done", snapshot=x[0].astype(np.float32), done=True,
                       result=FieldSet(x.astype(np.float32), meta))
        return
    obj = SynthesisObjective(d, J, L, weights, workers, **bank_options)
    rng = np.random.default_rng(seed)
    if x0 is None:
        x0 = obj.data_mean + obj.data_std * rng.standard_normal((n_samples, M, M))
    else:
        x0 = _as_batch(x0, "x0")
        if x0.shape != (n_samples, M, M):
            raise ValueError(f"x0 must have shape {(n_samples, M, M)}, got {x0.shape}")
    shape = x0.shape
    # Preconditioning: L-BFGS works on z with x = C z, C diagonal in Fourier with
    # C(k) = √(P_data(|k|) / mean P_data) on the data's spectral support and 0 off it (an
    # orthogonal projection there). The start is still the white noise x0 (z0 = C⁻¹ x0 on the
    # support); C only changes the geometry of the descent, so that scales whose power differs by
    # decades converge together.
    shell, _mult, _ok, _counts = _shells(M)
    Pd = np.where(obj.shell_on, obj.t_P, 0.0)
    Ps = np.concatenate([[Pd[0] if len(Pd) else 1.0], Pd])     # shell 0 (the mean) -> shell 1
    Pin = Pd[: M // 2]                                          # normalised on the disc |k| <= M/2
    cpre = np.sqrt(Ps[shell] / max(Pin[Pin > 0].mean() if (Pin > 0).any() else 1.0, 1e-300))
    cpre = np.where(obj.mode_mask & (cpre > 0), cpre, 0.0)
    cinv = np.where(cpre > 0, 1.0 / np.where(cpre > 0, cpre, 1.0), 0.0)
    cpre[0, 0] = cinv[0, 0] = 1.0

    def apply(z, c):
        zh = sfft.rfft2(z, workers=workers)
        zh *= c
        return sfft.irfft2(zh, s=(M, M), workers=workers)

    def to_x(z):
        return apply(z.reshape(shape), cpre)

    def fun(z):
        loss, g = obj(to_x(z))
        return loss, apply(g, cpre).ravel()

    z0 = apply(x0, cinv)
    reports: queue.Queue = queue.Queue()
    halt = threading.Event()
    state = {"it": 0, "loss": float("nan")}

    def callback(intermediate_result):
        state["it"] += 1
        state["loss"] = float(intermediate_result.fun)
        it = state["it"]
        if it % report_every == 0 or it == iterations:
            reports.put(("progress", it, to_x(intermediate_result.x)[0],
                         dict(obj.last_parts)))
        if halt.is_set() or should_stop(stop):
            raise StopIteration

    def worker():
        try:
            res = minimize(fun, z0.ravel(), jac=True, method="L-BFGS-B", callback=callback,
                           options={"maxiter": iterations, "maxcor": 20, "maxfun": 2 * iterations + 20,
                                    "ftol": 0.0, "gtol": 0.0})
            reports.put(("done", res))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            reports.put(("error", e))

    th = threading.Thread(target=worker, name="scattering-synthesis", daemon=True)
    th.start()
    res = None
    try:
        while True:
            item = reports.get()
            if item[0] == "progress":
                _, it, snap, parts = item
                yield Progress(it, iterations, "synthesis", snapshot=snap.astype(np.float32),
                               info={"loss": state["loss"], "evaluations": obj.n_evaluations,
                                     **{f"loss_{k}": v for k, v in parts.items()}})
            elif item[0] == "done":
                res = item[1]
                break
            else:
                raise item[1]
    finally:
        halt.set()
        th.join()
    x = to_x(res.x)
    final_loss, _ = obj(x)
    meta["synthesis"] = {"loss": final_loss, "loss_parts": dict(obj.last_parts),
                         "spectral_support_restricted": obj.restricted, "iterations": int(state["it"]),
                         "evaluations": obj.n_evaluations, "message": str(res.message),
                         "seconds": time.perf_counter() - t0}
    meta["params"]["bank"] = obj.bank.spec()
    yield Progress(state["it"], iterations, "done", snapshot=x[0].astype(np.float32), done=True,
                   stopped=should_stop(stop),
                   result=FieldSet(x.astype(np.float32), meta))


def synthesize(data, n_samples: int = 1, callback=None, stop: threading.Event | None = None,
               **kwargs) -> FieldSet:
    """Run :func:`iter_synthesize` to completion (or until ``stop``); returns the FieldSet."""
    return run(iter_synthesize(data, n_samples, stop=stop, **kwargs), callback)

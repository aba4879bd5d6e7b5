"""Forward and backward (adjoint) passes of the scattering transform on a batch: wavelet
coefficients W = x⋆ψ_λ, moduli U = |W| and the weighted Gram sums that give S1–S4 (unnormalised),
and the exact gradient of a loss on them with respect to the fields. Used by
:mod:`explorer.core.scattering.statistics` and :mod:`explorer.core.scattering.synthesis`; the
definitions: docs/diagnostics.md, "Definitions S1–S4".

Write f̃(k) = DFT(f)(k) / m² for a field f on a grid of side m, so that the spatial mean of f g* is
Σ_k f̃(k) g̃(k)* (Parseval): S2, S3, S4 are all weighted cross-spectra of the rows {x̃, Ũ_μ}, for
each λ3 one weighted Gram matrix over the (small) support of ψ̂_λ3, summed over the rfft
half-plane (:class:`~explorer.core.scattering.filters.FilterBank`). FFTs with ``scipy.fft`` and
``workers`` threads, float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from explorer.core.scattering.filters import FilterBank

#: FFT worker threads (scipy.fft ``workers``); -1 = all cores
WORKERS = -1


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

"""Forward and backward (adjoint) passes of the scattering transform on a batch: wavelet
coefficients W = x⋆ψ_λ, moduli U = |W| and the weighted Gram sums that give S1–S4 (unnormalised),
and the exact gradient of a loss on them with respect to the fields. Used by
:mod:`explorer.core.scattering.statistics` and :mod:`explorer.core.scattering.synthesis`; the
definitions: docs/diagnostics.md, "Definitions S1–S4".

Write f̃(k) = DFT(f)(k) / m² for a field f on a grid of side m, so that the spatial mean of f g* is
Σ_k f̃(k) g̃(k)* (Parseval): S2, S3, S4 are all weighted cross-spectra of the rows {x̃, Ũ_μ}, for
each λ3 one weighted Gram matrix over the (small) support of ψ̂_λ3, summed over the rfft
half-plane (:class:`~explorer.core.scattering.filters.FilterBank`). FFTs with ``scipy.fft``
(:mod:`explorer.core.scattering.wavelet_fft`) and ``workers`` threads.

Precision: float64 throughout by default (the statistics, always). ``single=True`` (the
synthesis's single-precision option) computes the wavelet coefficients, moduli, Gram sums and
their adjoint in float32 / complex64 (the filters and weights of :func:`_single_bank`), from x̃
computed in float64 and rounded per mode (x̃ spans ~11 decades of power at high k, beyond what
a float32 FFT of x resolves); the final adjoint back to x is float64 again. The statistics are
returned as float64 / complex128 arrays either way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from explorer.core.scattering.filters import FilterBank
from explorer.core.scattering.wavelet_fft import (fft_workers, filtered_ifft,
                                                  filtered_ifft_one, modulus, padded)

#: worker threads of the FFTs (scipy.fft ``workers``) and of the Gram sums (one scale j3 per
#: task); -1 = all cores
WORKERS = -1

#: numpy's ufunc buffer (elements) while the transforms run (:func:`_ufunc_buffers`)
UFUNC_BUFSIZE = 512

_POOL: ThreadPoolExecutor | None = None


def n_threads(workers) -> int:
    """The number of threads that ``workers`` (-1 or None: all cores) stands for."""
    return (os.cpu_count() or 1) if workers is None or workers < 0 else max(1, int(workers))


def _map(fn, items: list, workers) -> list:
    """[fn(i) for i in items], on up to ``workers`` threads (-1: all cores). The tasks are numpy
    and BLAS calls, which release the GIL; BLAS itself stays on one thread (the caller holds
    :func:`_one_blas_thread`), and each task runs under :func:`_ufunc_buffers`. Tasks must not
    call :func:`_map` with more than one thread (the pool is shared)."""
    n = n_threads(workers)
    if n <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                   thread_name_prefix="scattering")

    def task(item):
        with _ufunc_buffers():                 # the setting is per thread
            return fn(item)

    return list(_POOL.map(task, items))


@contextlib.contextmanager
def _ufunc_buffers():
    """Context: numpy's ufunc buffer at :data:`UFUNC_BUFSIZE` elements (restored after). numpy
    (2.4, measured) copies the operands of an elementwise operation through its buffers whenever
    its inner loop is shorter than the buffer (8192 elements by default), even with nothing to
    cast: the products here run on rows of 512-8192 strided or broadcast elements (filter
    products into padded rows, the Gram sums' weighted rows), and the copies cost more than the
    products (the filter product of a 256² field 63 against 35 µs; S1-S4 of one 256² image at
    J5 L4 5-7 % less CPU time at 512 elements, the same numbers bit for bit;
    docs/performance.md, "Scattering spectra")."""
    old = np.getbufsize()
    np.setbufsize(UFUNC_BUFSIZE)
    try:
        yield
    finally:
        np.setbufsize(old)


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


@lru_cache(maxsize=16)
def _single_bank(bank: FilterBank) -> FilterBank:
    """``bank`` with its filters and Gram weights in float32 (the same points, layouts and
    indices), for float32 fields."""
    def cast(a):
        return None if a is None or a.dtype.kind != "f" else a.astype(np.float32)

    psi = tuple(p.astype(np.float32) for p in bank.psi)
    parts = tuple(tuple(tuple((sub, *(cast(w) for w in ws)) for sub, *ws in pl) for pl in pj)
                  for pj in bank.parts)
    return dataclasses.replace(bank, psi=psi, parts=parts)


def _half_adjoint(g: np.ndarray, m: int, workers, overwrite: bool = False,
                  halve: bool = True) -> np.ndarray:
    """Gradient wrt a real field f (..., m, m) of a loss whose gradient wrt f̃ = rfft2(f)/m² is
    g (..., m, m//2+1): Re(Rᴴ g)/m² = irfft2(g')/2 with g' = g with the k_x = 0 and k_x = m/2
    columns doubled (irfft2 keeps only their real, Hermitian part). ``overwrite``: g may be
    destroyed; ``halve=False`` returns twice the gradient (irfft2(g'), the caller folds the ½)."""
    if not overwrite:
        g = g.copy()
    g[..., 0] *= 2.0
    g[..., -1] *= 2.0
    out = sfft.irfft2(g, s=(m, m), workers=workers, overwrite_x=True)
    if halve:
        out *= 0.5
    return out


def _box(xf: np.ndarray, bank: FilterBank, j: int) -> np.ndarray:
    """x̃ on the frequency box of grid j: (N, m, m) complex in FFT order, C-contiguous."""
    m = bank.side[j]
    X = np.take(xf, bank.box_idx[j], axis=1).reshape(-1, m, m)
    np.conjugate(X[..., m // 2:], out=X[..., m // 2:])
    return X


def _box_adjoint(g_xh: np.ndarray, gX: np.ndarray, bank: FilterBank, j: int) -> None:
    """g_xh (N, T) += adjoint of :func:`_box` applied to gX (N, m, m) (real-gradient convention);
    gX is overwritten."""
    m = bank.side[j]
    np.conjugate(gX[..., m // 2:], out=gX[..., m // 2:])
    idx = bank.box_idx[j].reshape(m, m)
    for half in (slice(0, m // 2), slice(m // 2, m)):          # indices unique within a half
        at = idx[:, half].ravel()
        t = np.take(g_xh, at, axis=1)
        t += gX[..., half].reshape(len(gX), -1)
        g_xh[:, at] = t


def _gather(halves: list, bank: FilterBank, j3: int) -> np.ndarray:
    """The rows {x̃, Ũ_μ (μ <= j3)} on the union of the supports of grid j3 (in its half block), in
    the chunked [Re | Im] layout of :class:`FilterBank`: (N, R, 2P) real (the precision of the
    rows), R = 1 + L (j3 + 1)."""
    N, P2 = halves[0].shape[0], bank.gather[j3][bank.M].size
    A = np.empty((N, 1 + bank.L * (j3 + 1), P2), dtype=halves[0].real.dtype)
    a = 0
    for H in halves[: j3 + 2]:
        _gather_into(A, a, H, bank, j3)
        a += H.shape[1]
    return A


def _gather_into(A: np.ndarray, a: int, H: np.ndarray, bank: FilterBank, j3: int) -> None:
    """A[:, a: a + r] = the rows H (N, r, m, m/2 + 1) (rfft2 half-planes) on the union of the
    supports of grid j3, in the layout of :func:`_gather`; a strided copy (no index array
    read) when that union is grid j3's whole half block and H is on grid j3."""
    N, r = H.shape[:2]
    if bank.full[j3] and H.shape[-2] == bank.side[j3]:
        _copy_block(A[:, a: a + r], H, bank.chunks[j3][0][1] // 2)
        return
    np.take(H.reshape(N, r, -1).view(A.dtype), bank.gather[j3][H.shape[-2]], axis=2,
            out=A[:, a: a + r], mode="clip")


def _copy_block(out: np.ndarray, H: np.ndarray, n: int) -> None:
    """out (N, r, m²) = the rows H (N, r, m, m/2 + 1) on their grid's whole half block (rows in
    FFT order, columns k_x < m/2) in chunks of n points (whole rows), each chunk its real parts
    then its imaginary parts: the layout of :func:`_gather` for a full scale
    (:attr:`FilterBank.full`), by one strided copy."""
    N, r, m, c = H.shape
    h = m // 2
    k = n // h                                                   # rows per chunk
    src = H.view(out.dtype).reshape(N, r, m, c, 2)[:, :, :, :h]
    src = src.reshape(N, r, m // k, k, h, 2).transpose(0, 1, 2, 5, 3, 4)
    np.copyto(out.reshape(N, r, m // k, 2, k, h), src)


def _scatter_add(g_halves: list, gA: np.ndarray, bank: FilterBank, j3: int) -> None:
    """Adjoint of :func:`_gather`: g_halves[i] += the rows of gA (N, R, 2P) put back in place."""
    N = gA.shape[0]
    a = 0
    for gH in g_halves[: j3 + 2]:
        r = gH.shape[1]
        gf = gH.reshape(N * r, -1).view(gA.dtype)
        idx = bank.gather[j3][gH.shape[-2]]
        t = np.take(gf, idx, axis=1)                     # indices unique: gather, add, put back
        t += gA[:, a: a + r].reshape(N * r, -1)
        gf[:, idx] = t
        a += r


@lru_cache(maxsize=64)
def _dense(bank: FilterBank, j3: int) -> tuple:
    """Per chunk of grid j3, the orientations that read the whole chunk (see :class:`FilterBank`)
    with their weights stacked: (ls, E, O, -O), E (n, 2h) the even weights for both halves, O
    (n, h) the odd ones; ``ls`` empty (and None arrays) when there is none."""
    out = []
    for i in range(len(bank.chunks[j3])):
        ls = [l for l in range(bank.L) if bank.parts[j3][l][i][0] is None]
        if not ls:
            out.append(((), None, None, None))
            continue
        E = np.stack([bank.parts[j3][l][i][2] for l in ls])
        O = np.stack([bank.parts[j3][l][i][3] for l in ls])
        out.append((tuple(ls), E, O, -O))
    return tuple(out)


@lru_cache(maxsize=64)
def _pair_weights(bank: FilterBank, j3: int) -> tuple:
    """Per chunk of grid j3, None, or the even weights of every orientation on the whole chunk
    (L, 2h) (zero outside an orientation's support) when Re G is summed from the pair products
    (:func:`_gram`): when many orientations read the whole chunk for the rows,
    R <= 2 × their number + 1."""
    R = 1 + bank.L * (j3 + 1)
    out = []
    for i, (_, w) in enumerate(bank.chunks[j3]):
        ls = _dense(bank, j3)[i][0]
        if not ls or R > 2 * len(ls) + 1:
            out.append(None)
            continue
        E = np.zeros((bank.L, w))
        for l in range(bank.L):
            sub, _, e2, _ = bank.parts[j3][l][i]
            E[l, slice(None) if sub is None else sub] = e2
        E.setflags(write=False)
        out.append(E)
    return tuple(out)


@lru_cache(maxsize=64)
def _gram_plan(bank: FilterBank, j3: int) -> tuple:
    """Per chunk of grid j3, what :func:`_gram` does with it: (start, length, the orientations
    that read the whole chunk as an index (a slice when they are all L), their number, their
    stacked even and odd weights (:func:`_dense`), the pair weights (:func:`_pair_weights`),
    and the (l3, sub, √even, odd) of the orientations that read their support only)."""
    out = []
    for i, (a, w) in enumerate(bank.chunks[j3]):
        ls, E, O, _ = _dense(bank, j3)[i]
        sel = slice(None) if len(ls) == bank.L else list(ls)
        sparse = tuple((l3, sub, se2, o) for l3, (sub, se2, _, o)
                       in enumerate(p[i] for p in bank.parts[j3])
                       if sub is not None and o.size)
        out.append((a, w, sel, len(ls), E, O, _pair_weights(bank, j3)[i], sparse))
    return tuple(out)


def _gram(A: np.ndarray, bank: FilterBank, j3: int) -> np.ndarray:
    """G[n, l3] = Σ_k ψ̂²_(j3,l3)(k) a(k) a(k)* over the full plane for the gathered rows
    A (N, R, 2P), chunk by chunk: Re G = Σ e (ar ar' + ai ai') and Im G = Σ o (ai ar' - ar ai')
    = C - Cᵀ with C = (ai o) arᵀ. The orientations that read the whole chunk are stacked into
    one product each, [A e_1; A e_2; ...] Aᵀ (its upper triangle, :func:`_stacked_upper`) and
    [ai o_1; ...] arᵀ (a few rows against many points: one tall product is far cheaper than one
    small product per orientation); the
    others read their support, Re G = B Bᵀ with B = [ar | ai] √e (BLAS syrk). When many
    orientations read the whole chunk for the rows (:func:`_pair_weights`), Re G of every
    orientation comes from the pair products P = {a_r a_s, r <= s} instead, as P [e_1 e_2 ...]
    (half the products of the symmetric Re G, one product for all L). (N, L, R, R) complex."""
    N, R = A.shape[:2]
    L = bank.L
    Gr = np.zeros((N, L, R, R), dtype=A.dtype)
    C = np.zeros((N, L, R, R), dtype=A.dtype)
    up = np.triu_indices(R)
    Gu = np.zeros((N, up[0].size, L), dtype=A.dtype)           # Re G on r <= s (pair products)
    wmax = max(w for _, w in bank.chunks[j3])
    P = np.empty((up[0].size, wmax), dtype=A.dtype)
    Z = np.empty((L, R, wmax // 2), dtype=A.dtype)
    for n in range(N):
        Gn, Cn, Gun = Gr[n], C[n], Gu[n]
        for a, w, sel, k, E, O, Ep, sparse in _gram_plan(bank, j3):
            Ac = A[n, :, a: a + w]
            h = w // 2
            if Ep is not None:                              # Re G of every orientation
                Gun += _pair_products(Ac, P[:, :w]) @ Ep.T
            if k:
                if Ep is None:
                    _stacked_upper(Gn, sel, Ac, E)
                Zc = np.multiply(Ac[None, :, h:], O[:, None, :], out=Z[:k, :, :h])
                Cn[sel] += (Zc.reshape(k * R, h) @ Ac[:, :h].T).reshape(k, R, R)
            for l3, sub, se2, o in sparse:
                As = Ac[:, sub]
                hs = o.size
                if Ep is None:
                    B = As * se2
                    Gn[l3] += B @ B.T
                Cn[l3] += (As[:, hs:] * o) @ As[:, :hs].T
    Gr[..., up[0], up[1]] += np.swapaxes(Gu, 1, 2)
    Gr[..., up[1], up[0]] = Gr[..., up[0], up[1]]
    return Gr + 1j * (C - C.swapaxes(-1, -2))


def _stacked_upper(G: np.ndarray, sel, Ac: np.ndarray, E: np.ndarray) -> None:
    """G[sel] += Ac diag(e_l) Acᵀ for the k orientations of E (k, w), on the blocks that hold
    the upper triangle only: rows r < R/2 against all rows, then the last rows against
    themselves, each one product stacked over the orientations ([a_r e_1, a_r e_2, ...] row
    by row): a quarter fewer multiply-adds; the lower triangle is left to the caller."""
    R, w = Ac.shape
    k, h = len(E), R // 2
    Y = np.multiply(Ac[:, None, :], E[None, :, :])            # (R, k, w)
    top = (Y[:h].reshape(h * k, w) @ Ac.T).reshape(h, k, R)
    bottom = (Y[h:].reshape((R - h) * k, w) @ Ac[h:].T).reshape(R - h, k, R - h)
    G[sel, :h, :] += top.swapaxes(0, 1)
    G[sel, h:, h:] += bottom.swapaxes(0, 1)


def _pair_products(Ac: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The products a_r a_s, r <= s (in :func:`numpy.triu_indices` order), of the rows of Ac
    (R, w): out (R (R+1)/2, w)."""
    R, o = len(Ac), 0
    for r in range(R):
        np.multiply(Ac[r:], Ac[r], out=out[o: o + R - r])
        o += R - r
    return out


def _gram_adjoint(A: np.ndarray, K: np.ndarray, bank: FilterBank, j3: int) -> np.ndarray:
    """Gradient wrt A (N, R, 2P) of Σ_l3 <gG_l3, G_l3> (real-gradient convention) given
    K[n, l3] = [Hs Ha] (R, 2R), Hs = Re gG + Re gGᵀ, Ha = Im gG - Im gGᵀ:
    ∇ar = Hs (ar e) - Ha (ai o), ∇ai = Hs (ai e) + Ha (ar o), i.e.
    [∇ar | ∇ai] = [Hs Ha] [[ar e, ai e], [-ai o, ar o]] = K_l3 X_l3, chunk by chunk; the
    orientations that read the whole chunk summed in one product [K_1 K_2 ...] [X_1; X_2; ...]."""
    N, R = A.shape[:2]
    gA = np.zeros_like(A)
    dense = _dense(bank, j3)
    for n in range(N):
        for i, (a, w) in enumerate(bank.chunks[j3]):
            Ac = A[n, :, a: a + w]
            gc = gA[n, :, a: a + w]
            h = w // 2
            ls, E, O, mO = dense[i]
            if ls:
                k = len(ls)
                X = np.empty((k, 2 * R, w), dtype=A.dtype)
                np.multiply(Ac[None], E[:, None, :], out=X[:, :R])
                np.multiply(Ac[None, :, h:], mO[:, None, :], out=X[:, R:, :h])
                np.multiply(Ac[None, :, :h], O[:, None, :], out=X[:, R:, h:])
                Kd = np.moveaxis(K[n, list(ls)], 0, 1).reshape(R, k * 2 * R)
                gc += Kd @ X.reshape(k * 2 * R, w)
            for l3 in range(bank.L):
                sub, _, e2, o = bank.parts[j3][l3][i]
                if sub is None or o.size == 0:
                    continue
                As = Ac[:, sub]
                hs = o.size
                X = np.empty((2 * R, 2 * hs), dtype=A.dtype)
                np.multiply(As, e2, out=X[:R])
                np.multiply(As[:, hs:], -o, out=X[R:, :hs])
                np.multiply(As[:, :hs], o, out=X[R:, hs:])
                gc[:, sub] += K[n, l3] @ X                   # indices unique: plain +=
    return gA


@dataclass
class _Forward:
    bank: FilterBank               # in the working precision (:func:`_single_bank` if single)
    single: bool                   # float32 / complex64 working precision
    xh: np.ndarray                 # (N, M, M//2+1) x̃ (complex128)
    phase: list                    # per scale (N, L, m, m) complex W / |W| (0 where W = 0)
    A: list                        # per j3: the gathered rows of :func:`_gather` (N, R, 2P)
    mean: np.ndarray               # (N,)
    S1: np.ndarray                 # (N, J, L)
    S2: np.ndarray                 # (N, J, L)
    S3: np.ndarray                 # (N, J, L, J, L) unnormalised, 0 where j1 > j2
    S4: np.ndarray                 # (N, J, L, J, L, J, L) unnormalised, 0 outside j1<=j2<=j3


def _forward(x: np.ndarray, bank: FilterBank, workers=WORKERS, keep: bool = False,
             single: bool = False, gram_workers=None) -> _Forward:
    """Statistics of the float64 fields x (N, M, M), in float64 or (``single``) float32 working
    precision (see the module docstring); ``keep`` keeps what :func:`_backward` needs. With
    ``keep`` the FFTs of each scale use ``workers`` threads (one below
    :data:`~explorer.core.scattering.wavelet_fft.FFT_THREADED` points), without it the
    orientations are dealt over ``workers`` threads, each FFT on one (:func:`_orientation_rows`);
    the Gram sums (one scale per task) ``gram_workers`` (None: the same)."""
    with _one_blas_thread(), _ufunc_buffers():
        return _forward_impl(np.asarray(x, dtype=np.float64),
                             _single_bank(bank) if single else bank, workers, keep, single,
                             workers if gram_workers is None else gram_workers)


def _forward_impl(x, bank, workers, keep, single, gram_workers) -> _Forward:
    N = x.shape[0]
    J, L = bank.J, bank.L
    xh = sfft.rfft2(x, workers=workers, norm="forward")         # x̃ = DFT(x) / M²
    xs = xh.astype(np.complex64) if single else xh
    xf = xs.reshape(N, -1)
    # the gathered rows of every scale j3 (:func:`_gather`), filled row block by row block as
    # the rows are computed, while each Ũ is still in cache
    As = [np.empty((N, 1 + L * (j3 + 1), bank.gather[j3][bank.M].size), dtype=xs.real.dtype)
          for j3 in range(J)]
    for j3 in range(J):
        _gather_into(As[j3], 0, xs[:, None], bank, j3)
    phases = []
    S1 = np.empty((N, J, L))
    boxes = _boxes(xf, bank)
    if not keep:                      # every thread one share of the orientations, in a loop
        shares = _shares([(j, l) for j in range(J) for l in range(L)], n_threads(workers))
        _map(lambda share: [_orientation_rows(boxes[j], bank, j, l, As, S1) for j, l in share],
             shares, workers)
    for j in range(J if keep else 0):
        m, X = bank.side[j], boxes[j]
        threads = fft_workers(workers, N * L * m * m)
        W = filtered_ifft(X, bank, j, threads)
        U = modulus(W)
        Uh = sfft.rfft2(U, workers=threads, norm="forward")    # Ũ = DFT(U) / m²
        S1[:, j] = Uh[..., 0, 0].real
        for j3 in range(j, J):
            _gather_into(As[j3], 1 + L * j, Uh, bank, j3)
        np.divide(1.0, U, out=U, where=U > 0)                   # W becomes W / |W| in place
        np.multiply(W, U, out=W)
        phases.append(W)
    S2 = np.empty((N, J, L))
    S3 = np.zeros((N, J, L, J, L), dtype=complex)
    S4 = np.zeros((N, J, L, J, L, J, L), dtype=complex)
    Gs = _map(lambda j3: _gram(As[j3], bank, j3), _by_cost(bank), gram_workers)
    for j3, G in zip(_by_cost(bank), Gs):                      # G (N, L, R, R)
        S2[:, j3] = G[:, :, 0, 0].real
        S3[:, : j3 + 1, :, j3] = np.moveaxis(G[:, :, 0, 1:].reshape(N, L, j3 + 1, L), 1, -1)
        S4[:, : j3 + 1, :, : j3 + 1, :, j3] = np.moveaxis(
            G[:, :, 1:, 1:].reshape(N, L, j3 + 1, L, j3 + 1, L), 1, -1)
    jj = np.arange(J)
    S4 *= (jj[:, None] <= jj[None, :])[None, :, None, :, None, None, None]
    return _Forward(bank, single, xh, phases, As if keep else [], xh[:, 0, 0].real.copy(), S1, S2,
                    S3, S4)


def _shares(items: list, n: int) -> list:
    """``items`` (ordered by decreasing cost) dealt round-robin into n lists: one task per
    thread rather than one per item (each task handed to the pool costs tens of µs)."""
    return [items[i::n] for i in range(min(n, len(items)))]


def _boxes(xf: np.ndarray, bank: FilterBank) -> list:
    """x̃ on the box of every grid (:func:`_box`); grids of the same side share it."""
    out: list = []
    for j in range(bank.J):
        share = j and bank.side[j] == bank.side[j - 1]
        out.append(out[-1] if share else _box(xf, bank, j))
    return out


def _orientation_rows(X: np.ndarray, bank: FilterBank, j: int, l: int, As: list,
                      S1: np.ndarray) -> None:
    """The rows Ũ_(j,l) of one orientation, each step reading the previous one's output from
    cache: filtered inverse FFT into a padded buffer, modulus, real FFT, gather into the rows
    As[j3] of every j3 >= j; S1[:, j, l] on the way. One task of the forward without ``keep``
    (nothing of W is kept): the orientations run on the threads, each FFT on one (threads
    sharing every transform paid ~10 % more CPU time for 256² fields)."""
    N, m = X.shape[0], X.shape[-1]
    W = filtered_ifft_one(X, bank, j, l, padded((N, m, m), X.dtype), 1)
    Uh = sfft.rfft2(modulus(W), workers=1, norm="forward")[:, None]
    S1[:, j, l] = Uh[:, 0, 0, 0].real
    for j3 in range(j, bank.J):
        _gather_into(As[j3], 1 + bank.L * j + l, Uh, bank, j3)


def _by_cost(bank: FilterBank) -> list:
    """Scales j3 by decreasing cost of their Gram sums (rows² × points), for the thread pool."""
    cost = [(1 + bank.L * (j + 1)) ** 2 * bank.support[j].size for j in range(bank.J)]
    return sorted(range(bank.J), key=lambda j: -cost[j])


def _backward(fw: _Forward, gS1, gS2, gS3, gS4, gxh=None, workers=WORKERS) -> np.ndarray:
    """Gradient wrt x of a loss with gradients gS1 (N,J,L), gS2 (N,J,L) (real), gS3, gS4 (complex,
    real-gradient convention ∂/∂Re + i ∂/∂Im, unnormalised statistics) and gxh wrt x̃ directly."""
    with _one_blas_thread(), _ufunc_buffers():
        return _backward_impl(fw, gS1, gS2, gS3, gS4, gxh, workers)


def _backward_impl(fw, gS1, gS2, gS3, gS4, gxh, workers) -> np.ndarray:
    bank = fw.bank
    N, M, J, L = fw.xh.shape[0], bank.M, bank.J, bank.L
    cdt = np.complex64 if fw.single else np.complex128
    g_xh = np.zeros((N, M, M // 2 + 1), dtype=cdt)
    g_Uh = [np.zeros((N, L, s, s // 2 + 1), dtype=cdt) for s in bank.side]
    g_halves = [g_xh[:, None]] + g_Uh
    jj = np.arange(J)
    gS4 = gS4 * (jj[:, None] <= jj[None, :])[None, :, None, :, None, None, None]

    def adjoint(j3):
        R = 1 + L * (j3 + 1)
        gG = np.zeros((N, L, R, R), dtype=complex)
        gG[:, :, 0, 0] = gS2[:, j3]
        gG[:, :, 0, 1:] = np.moveaxis(gS3[:, : j3 + 1, :, j3], -1, 1).reshape(N, L, -1)
        gG[:, :, 1:, 1:] = np.moveaxis(gS4[:, : j3 + 1, :, : j3 + 1, :, j3], -1, 1).reshape(
            N, L, R - 1, R - 1)
        K = np.concatenate([gG.real + gG.real.swapaxes(-1, -2),
                            gG.imag - gG.imag.swapaxes(-1, -2)], axis=-1)   # (N, L, R, 2R)
        return _gram_adjoint(fw.A[j3], K.astype(fw.A[j3].dtype), bank, j3)

    order = _by_cost(bank)
    for j3, gA in zip(order, _map(adjoint, order, workers)):
        _scatter_add(g_halves, gA, bank, j3)
    g_xf = g_xh.reshape(N, -1)
    for j in range(J):
        m = bank.side[j]
        g = g_Uh[j]
        g[..., 0, 0] += gS1[:, j]
        gU2 = _half_adjoint(g, m, workers, overwrite=True, halve=False)   # 2 × ∂/∂U
        gW = fw.phase[j]                                        # ∂/∂W = ∂/∂U × W/|W|, in place
        np.multiply(gW, gU2, out=gW)
        gWt = sfft.fft2(gW, workers=workers, overwrite_x=True)
        gX = _sum_filtered(gWt, bank.psi[j])
        gX *= 0.5
        _box_adjoint(g_xf, gX, bank, j)
    g = g_xh.astype(np.complex128) if fw.single else g_xh
    if gxh is not None:
        g += np.asarray(gxh).reshape(N, M, M // 2 + 1)
    return _half_adjoint(g, M, workers, overwrite=True)


def _sum_filtered(Z: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """Σ_l Z[:, l] ψ[l] for complex Z (N, L, m, m) and real filters ψ (L, m, m) (complex × real
    products, without a complex copy of ψ)."""
    out = np.multiply(Z[:, 0], psi[0])
    tmp = np.empty_like(out)
    for l in range(1, len(psi)):
        np.multiply(Z[:, l], psi[l], out=tmp)
        out += tmp
    return out

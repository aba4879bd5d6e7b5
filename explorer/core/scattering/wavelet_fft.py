"""The first layer of the scattering transform in Fourier space: the wavelet coefficients
W = x⋆ψ_(j,l) on each scale's grid by filtered inverse FFTs (:func:`filtered_ifft` for all
orientations of a scale at once, :func:`filtered_ifft_one` for one), their moduli, and the
choices that make them cheap (threads, padded rows, pruned first passes). Used by
:mod:`explorer.core.scattering.transform`; the timings behind every constant:
docs/performance.md, "Scattering spectra".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from explorer.core.scattering.filters import FilterBank

#: the FFTs of a scale with fewer points than this (all its fields together) run on one thread:
#: 4 complex 64² transforms take ~0.1 ms, less than the threads cost in CPU time (+0.03 ms per
#: call on a busy machine, for no gain in wall time)
FFT_THREADED = 128 * 128 * 4

#: an orientation whose filter is non-zero on at most this fraction of the rows (or columns) of
#: its grid does the first pass of its inverse FFT on those lines only
PRUNE = 0.7


def fft_workers(workers, points: int):
    """``workers`` for FFTs of ``points`` points in all, 1 below :data:`FFT_THREADED`."""
    return workers if points >= FFT_THREADED else 1


@lru_cache(maxsize=64)
def lines(bank: FilterBank, j: int) -> tuple:
    """Per orientation of grid j, None, or (axis, lines, ψ̂ on them): the axis (1 rows, 2
    columns) with the fewer lines where ψ̂_(j,l) is non-zero, when at most :data:`PRUNE` of
    them; ψ̂ restricted to those lines, contiguous."""
    out = []
    for f in bank.psi[j]:
        nz = [np.flatnonzero(f.any(axis=1)), np.flatnonzero(f.any(axis=0))]
        ax = int(nz[1].size < nz[0].size)
        idx = nz[ax]
        if idx.size > PRUNE * f.shape[0]:
            out.append(None)
            continue
        sub = np.ascontiguousarray(np.take(f, idx, axis=ax))
        sub.setflags(write=False)
        out.append((ax + 1, idx, sub))
    return tuple(out)


@lru_cache(maxsize=64)
def interleaved(bank: FilterBank, j: int) -> np.ndarray:
    """ψ̂_(j,l) with every value repeated, (L, m, 2m): X ψ̂ for complex X is then the product of
    the real view of X (re, im, re, im, ...) with it, real × real (1.3× faster than complex ×
    real, for which numpy casts ψ̂ to complex chunk by chunk; the same values)."""
    out = np.repeat(bank.psi[j], 2, axis=-1)
    out.setflags(write=False)
    return out


def times_filter(X: np.ndarray, f: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = X ψ̂ for complex X (..., m, m) and ``f`` ψ̂ from :func:`interleaved`, each of X and
    out with its last axis contiguous."""
    real = out.real.dtype
    np.multiply(X.view(real), f, out=out.view(real))
    return out


def padded(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` whose rows are one element longer in memory (a view
    of the first shape[-1] columns): with power-of-two rows, the column pass of a 2-D FFT reads
    addresses a power of two apart, which share cache sets (1.4-1.5 against 0.8-0.9 ms for the
    column pass of 4 complex128 256² transforms). complex64 (the synthesis's single precision)
    gained nothing in the transforms and lost 1 % per loss and gradient: not padded."""
    if np.dtype(dtype).itemsize < 16:
        return np.empty(shape, dtype=dtype)
    full = np.empty((*shape[:-1], shape[-1] + 1), dtype=dtype)
    full[..., -1] = 0
    return full[..., : shape[-1]]


def modulus(W: np.ndarray) -> np.ndarray:
    """|W|; for a padded W (:func:`padded`) computed over the whole buffer in one contiguous
    pass (a view of it returned: 0.24 against 0.36 ms for 4 complex128 256² fields)."""
    full = W.base
    if (isinstance(full, np.ndarray) and full.ndim == W.ndim and full.shape[:-1] == W.shape[:-1]
            and full.shape[-1] == W.shape[-1] + 1 and np.shares_memory(full[..., :1], W[..., :1])):
        return np.abs(full)[..., : W.shape[-1]]
    return np.abs(W)


def in_place(fft, a: np.ndarray, **options) -> None:
    """a = fft(a, **options), in place (scipy.fft writes into ``a`` with ``overwrite_x``; copied
    back should it not)."""
    out = fft(a, overwrite_x=True, **options)
    if out.ctypes.data != a.ctypes.data:
        a[...] = out


def filtered_ifft(X: np.ndarray, bank: FilterBank, j: int, workers) -> np.ndarray:
    """W = x⋆ψ_(j,l) on grid j for every l: (N, L, m, m) complex with padded rows
    (:func:`padded`), from the box X (N, m, m) of x̃ (:func:`filtered_ifft_one`); when no
    orientation is pruned, one product and one batched transform for all L."""
    N, m = X.shape[0], X.shape[-1]
    W = padded((N, bank.L, m, m), X.dtype)
    if all(p is None for p in lines(bank, j)):
        times_filter(X[:, None], interleaved(bank, j), W)
        in_place(sfft.ifft2, W, workers=workers, norm="forward")
        return W
    for l in range(bank.L):
        filtered_ifft_one(X, bank, j, l, W[:, l], workers)
    return W


def filtered_ifft_one(X: np.ndarray, bank: FilterBank, j: int, l: int, out: np.ndarray,
                      workers) -> np.ndarray:
    """out (N, m, m) = W = x⋆ψ_(j,l) on grid j: the inverse DFT, unnormalised (m² x̃ on the box
    X (N, m, m) is the DFT of the subsampled field, and the scalings by powers of two are
    exact), of X ψ̂_(j,l). An orientation with zero lines (:func:`lines`) does its first 1-D pass
    on its non-zero lines only (the others stay zero), the second on all."""
    p = lines(bank, j)[l]
    if p is None:
        times_filter(X, interleaved(bank, j)[l], out)
        in_place(sfft.ifft2, out, workers=workers, norm="forward")
        return out
    ax, idx, sub = p
    T = np.take(X, idx, axis=ax)
    T *= sub
    T = sfft.ifft(T, axis=3 - ax, workers=workers, overwrite_x=True, norm="forward")
    out[...] = 0
    if ax == 1:
        out[:, idx] = T
    else:
        out[..., idx] = T
    in_place(sfft.ifft, out, axis=ax, workers=workers, norm="forward")
    return out

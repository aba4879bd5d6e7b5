"""Exact stationary Gaussian fields on the periodic L x L lattice (docs/fields.md, "Gaussian
fields").

A stationary Gaussian field is fixed by its power spectrum P(k) = <|phi_hat(k)|^2> / L^2.  Samples
are exact (no Markov chain): phi = IFFT( sqrt(P) * FFT(w) ) with w real white noise of unit
variance, so FFT(w) is Hermitian complex white noise with <|w_hat|^2> = L^2 and phi is real.

Two families, each with its closed-form spectrum:
  * the lattice free field  E = 1/2 phi^T(-beta Delta + m^2) phi:
        P(k) = 1 / (m^2 + beta (4 sin^2(k_x/2) + 4 sin^2(k_y/2)))
  * power-law ("multiscale") fields  P(k) = (|k|^2 + m^2)^(-eta/2)  with k = 2 pi n / L;
        for m = 0 the zero mode is set to 0 (zero-mean field).
The energy of the free field is also given (with gradient and Hessian-vector product) because its
Hessian eigenvalues are known exactly: beta * khat^2(k) + m^2.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import numpy as np

from explorer.core.budget import check_memory
from explorer.core.fields.base import FieldSet, check_number
from explorer.core.progress import Progress, run, should_stop


def lattice_wavenumbers(L: int) -> tuple[np.ndarray, np.ndarray]:
    """k_x, k_y = 2 pi n / L on the (L, L) FFT grid (broadcastable)."""
    k = 2.0 * np.pi * np.fft.fftfreq(L)
    return k[:, None], k[None, :]


def laplacian_symbol(L: int) -> np.ndarray:
    """khat^2 = 4 sin^2(k_x/2) + 4 sin^2(k_y/2): eigenvalues of the periodic lattice -Delta."""
    ky, kx = lattice_wavenumbers(L)
    return 4.0 * np.sin(kx / 2) ** 2 + 4.0 * np.sin(ky / 2) ** 2


def free_field_spectrum(L: int, beta: float = 1.0, mass2: float = 0.0) -> np.ndarray:
    """P(k) of the lattice free field on the (L, L) FFT grid.  Needs mass2 > 0 or P(0) is set 0."""
    _check_positive(beta, "beta")
    if mass2 < 0 or not math.isfinite(mass2):
        raise ValueError(f"the squared mass must be finite and >= 0, got {mass2}")
    denom = mass2 + beta * laplacian_symbol(L)
    P = np.zeros((L, L))
    nz = denom > 0
    P[nz] = 1.0 / denom[nz]
    return P


def power_law_spectrum(L: int, eta: float = 2.0, mass: float = 0.0) -> np.ndarray:
    """P(k) = (|k|^2 + m^2)^(-eta/2) on the (L, L) FFT grid, k = 2 pi n / L; P(0) = 0 when m = 0."""
    if not math.isfinite(eta) or eta < 0:
        raise ValueError(f"the spectral slope eta must be finite and >= 0, got {eta}")
    if mass < 0 or not math.isfinite(mass):
        raise ValueError(f"the mass must be finite and >= 0, got {mass}")
    ky, kx = lattice_wavenumbers(L)
    k2 = kx * kx + ky * ky + mass * mass
    P = np.zeros((L, L))
    nz = k2 > 0
    P[nz] = k2[nz] ** (-eta / 2.0)
    return P


def sample_from_spectrum(
    P: np.ndarray, n: int, rng: np.random.Generator | int = 0
) -> np.ndarray:
    """n exact samples (n, L, L), float64, of the zero-mean stationary Gaussian field with spectrum P."""
    rng = np.random.default_rng(rng)
    P = np.asarray(P, dtype=np.float64)
    L = P.shape[-1]
    w = rng.standard_normal((n, L, L))
    return np.fft.ifft2(np.sqrt(P) * np.fft.fft2(w)).real


def spectrum_for(
    size: int, kind: str = "free", beta: float = 1.0, mass: float = 0.0, eta: float = 2.0
) -> np.ndarray:
    """Closed-form P(k) for ``kind`` 'free' (beta, mass^2 = mass**2) or 'powerlaw' (eta, mass)."""
    if kind == "free":
        return free_field_spectrum(size, beta, mass * mass)
    if kind == "powerlaw":
        return power_law_spectrum(size, eta, mass)
    raise ValueError(f"unknown Gaussian spectrum kind {kind!r}; use 'free' or 'powerlaw'")


MIN_SIZE, MAX_SIZE = 8, 1024
#: Bytes per pixel of one field in a chunk: the float64 noise, its FFT, the product and its inverse.
CHUNK_BYTES_PER_PIXEL = 64


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def check_gaussian_params(size, n_samples, kind="powerlaw", eta=2.0, mass=0.0, beta=1.0,
                          chunk=64) -> None:
    """Raise ValueError (one clear message) for any unusable parameter of :func:`iter_gaussian`."""
    if not (_is_int(size) and MIN_SIZE <= size <= MAX_SIZE and size & (size - 1) == 0):
        raise ValueError(f"Gaussian field size must be a power of two between {MIN_SIZE} and "
                         f"{MAX_SIZE}, got {size!r}")
    if not (_is_int(n_samples) and n_samples >= 1):
        raise ValueError(f"number of samples must be an integer >= 1, got {n_samples!r}")
    if not (_is_int(chunk) and chunk >= 1):
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    if kind not in ("free", "powerlaw"):
        raise ValueError(f"unknown Gaussian spectrum kind {kind!r}; use 'free' or 'powerlaw'")
    for name, value, ok, rule in (
            ("the spectral slope eta", eta, lambda v: v >= 0, ">= 0"),
            ("the mass", mass, lambda v: v >= 0, ">= 0"),
            ("beta", beta, lambda v: v > 0, "> 0")):
        check_number(name, value, ok, rule)


def gaussian_memory_bytes(size: int, n_samples: int, chunk: int = 64) -> int:
    """Peak memory of :func:`iter_gaussian`: the float32 output plus one float64 FFT chunk."""
    pixels = int(size) * int(size)
    batch = min(int(chunk), int(n_samples))
    return (4 * int(n_samples) + CHUNK_BYTES_PER_PIXEL * batch + 16) * pixels


def iter_gaussian(
    size: int = 64,
    n_samples: int = 256,
    kind: str = "powerlaw",
    eta: float = 2.0,
    mass: float = 0.0,
    beta: float = 1.0,
    seed: int = 0,
    chunk: int = 64,
    stop: threading.Event | None = None,
) -> Iterator[Progress]:
    """Exact Gaussian samples in chunks; the final report carries a FieldSet.

    Every parameter is checked, and the memory the request needs, before anything is allocated.
    """
    check_gaussian_params(size, n_samples, kind, eta, mass, beta, chunk)
    check_memory(gaussian_memory_bytes(size, n_samples, chunk), "the Gaussian generator",
                 f"{n_samples} fields of {size}x{size}",
                 "ask for fewer samples or a smaller size")
    P = spectrum_for(size, kind, beta, mass, eta)
    rng = np.random.default_rng(seed)
    out = np.empty((n_samples, size, size), dtype=np.float32)
    done = 0
    while done < n_samples:
        if should_stop(stop):
            break
        k = min(chunk, n_samples - done)
        out[done: done + k] = sample_from_spectrum(P, k, rng)
        done += k
        yield Progress(done, n_samples, "sampling", snapshot=out[done - 1])
    params = {"size": size, "kind": kind, "mass": mass}
    params.update({"eta": eta} if kind == "powerlaw" else {"beta": beta})
    spectrum = (
        "P(k) = (|k|^2 + m^2)^(-eta/2), k = 2 pi n / L"
        if kind == "powerlaw"
        else "P(k) = 1 / (m^2 + beta (4 sin^2(kx/2) + 4 sin^2(ky/2)))"
    )
    meta = {"generator": "gaussian", "params": params, "seed": seed, "spectrum": spectrum}
    result = FieldSet(out[:done], meta) if done else None
    yield Progress(done, n_samples, "done", done=True, stopped=done < n_samples, result=result)


def generate_gaussian(*args, callback=None, stop=None, **kwargs) -> FieldSet | None:
    return run(iter_gaussian(*args, stop=stop, **kwargs), callback)


# ---------------------------------------------------------------- free-field energy (exact case)
def free_field_energy(phi: np.ndarray, beta: float = 1.0, mass2: float = 0.0):
    """E = 1/2 phi^T(-beta Delta + m^2) phi for one field (float) or a batch ((N,))."""
    x = np.asarray(phi, dtype=np.float64)
    e = 0.5 * np.sum(x * free_field_hvp(x, beta, mass2), axis=(-2, -1))
    return float(e) if x.ndim == 2 else e


def free_field_hvp(v: np.ndarray, beta: float = 1.0, mass2: float = 0.0) -> np.ndarray:
    """(-beta Delta + m^2) v: the gradient at v, and the Hessian applied to v."""
    v = np.asarray(v, dtype=np.float64)
    lap = (
        np.roll(v, 1, -1) + np.roll(v, -1, -1) + np.roll(v, 1, -2) + np.roll(v, -1, -2) - 4.0 * v
    )
    return -beta * lap + mass2 * v


def free_field_eigenvalues(L: int, beta: float = 1.0, mass2: float = 0.0) -> np.ndarray:
    """Sorted exact Hessian eigenvalues beta * khat^2 + m^2 of the free-field energy."""
    return np.sort((beta * laplacian_symbol(L) + mass2).ravel())


def _check_positive(x: float, name: str) -> None:
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite positive number, got {x}")

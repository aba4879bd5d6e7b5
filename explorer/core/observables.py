"""Observables of field batches and of Markov chains.

Pure numpy functions used by the generators (to choose burn-in and thinning), by
``explorer info`` and later by the diagnostics.  Wavenumbers are in lattice units
(k = 2 pi n / L) unless a box length is given.
"""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------- spectra
def radial_power_spectrum(
    fields: np.ndarray, box: float | None = None, nbins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a batch ``(N, L, L)`` (or one field).

    P(k) = < |F(k)|^2 > / L^2 averaged over the batch and over integer shells
    n = round(|n_vec|), n = 1 .. L/2.  Returns (k, P) with k = 2 pi n / box (box = L by default,
    i.e. lattice units).  ``nbins`` is accepted for symmetry with later binning choices and must
    be None here (integer shells).
    """
    x = np.asarray(fields, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    L = x.shape[-1]
    if x.shape[-2] != L:
        raise ValueError("radial_power_spectrum needs square fields")
    if nbins is not None:
        raise ValueError("only integer shells are supported")
    p2 = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / (L * L)
    n = np.fft.fftfreq(L, 1.0 / L)
    nr = np.rint(np.hypot(n[:, None], n[None, :])).astype(int)
    shells = np.arange(1, L // 2 + 1)
    sums = np.bincount(nr.ravel(), weights=p2.ravel(), minlength=L)
    counts = np.bincount(nr.ravel(), minlength=L)
    P = sums[shells] / counts[shells]
    box = float(L) if box is None else float(box)
    return 2 * np.pi * shells / box, P


def shell_average(values: np.ndarray) -> np.ndarray:
    """Average an (L, L) array given on the FFT grid over the integer shells n = 1 .. L/2."""
    L = values.shape[-1]
    n = np.fft.fftfreq(L, 1.0 / L)
    nr = np.rint(np.hypot(n[:, None], n[None, :])).astype(int)
    shells = np.arange(1, L // 2 + 1)
    sums = np.bincount(nr.ravel(), weights=np.asarray(values, float).ravel(), minlength=L)
    counts = np.bincount(nr.ravel(), minlength=L)
    return sums[shells] / counts[shells]


# ---------------------------------------------------------------- phi^4 / Ising-type
def magnetisation(fields: np.ndarray) -> np.ndarray:
    """Per-field mean m = (1/L^2) sum_x phi_x."""
    x = np.asarray(fields, dtype=np.float64)
    return x.reshape(x.shape[0], -1).mean(axis=1) if x.ndim == 3 else np.array([x.mean()])


def binder_cumulant(m: np.ndarray) -> float:
    """U = 1 - <m^4> / (3 <m^2>^2): 0 for a Gaussian m, 2/3 for two sharp peaks."""
    m = np.asarray(m, dtype=np.float64)
    m2 = np.mean(m**2)
    return float(1.0 - np.mean(m**4) / (3.0 * m2 * m2))


def jackknife(values: np.ndarray, stat, blocks: int = 20) -> tuple[float, float]:
    """Blocked jackknife estimate (value, error) of ``stat(values)`` for a 1D sample.

    Blocks keep correlated neighbours together, so the error is honest for a chain or for a set of
    nearly independent samples.
    """
    v = np.asarray(values)
    n = len(v)
    blocks = max(2, min(blocks, n))
    edges = np.linspace(0, n, blocks + 1).astype(int)
    full = stat(v)
    est = np.array([stat(np.concatenate([v[: edges[i]], v[edges[i + 1]:]])) for i in range(blocks)])
    err = np.sqrt((blocks - 1) / blocks * np.sum((est - est.mean()) ** 2))
    return float(full), float(err)


# ---------------------------------------------------------------- Markov chains
def autocorrelation(series: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation function rho(t), t = 0 .. T-1, of one series or the mean over
    chains for a ``(T, n_chains)`` array (FFT, zero-padded, no wrap-around)."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    T = x.shape[0]
    x = x - x.mean(axis=0)
    nfft = 1 << (2 * T - 1).bit_length()
    f = np.fft.rfft(x, n=nfft, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=nfft, axis=0)[:T].mean(axis=1)
    if acov[0] <= 0:
        return np.ones(T) if T else acov
    return acov / acov[0]


def integrated_autocorrelation_time(
    series: np.ndarray, c: float = 6.0
) -> tuple[float, int]:
    """tau_int = 1 + 2 sum_{t=1}^{W} rho(t) with Sokal's automatic window: the smallest W with
    W >= c * tau_int(W).  Returns (tau_int, W).  ``series`` is (T,) or (T, n_chains).

    With this convention an uncorrelated chain has tau_int = 1 and an AR(1) chain with coefficient
    r has tau_int = (1 + r) / (1 - r); the number of effectively independent samples is T / tau_int.
    """
    rho = autocorrelation(series)
    T = len(rho)
    if T < 2:
        return 1.0, 0
    tau = 2.0 * np.cumsum(rho) - 1.0  # tau[W] = 1 + 2 sum_{t=1}^{W} rho(t)
    ok = np.arange(T) >= c * tau
    W = int(np.argmax(ok)) if ok.any() else T - 1
    return float(max(tau[W], 1e-12)), W


# ---------------------------------------------------------------- non-Gaussian signatures
def kurtosis(fields: np.ndarray) -> float:
    """One-point kurtosis <(x - <x>)^4> / <(x - <x>)^2>^2 over the whole batch (Gaussian: 3)."""
    x = np.asarray(fields, dtype=np.float64).ravel()
    x = x - x.mean()
    return float(np.mean(x**4) / np.mean(x**2) ** 2)


def skewness(fields: np.ndarray) -> float:
    x = np.asarray(fields, dtype=np.float64).ravel()
    x = x - x.mean()
    return float(np.mean(x**3) / np.mean(x**2) ** 1.5)


def increment_flatness(fields: np.ndarray, lags=(1, 2, 4, 8, 16)) -> dict[int, float]:
    """Flatness <dx^4>/<dx^2>^2 of increments dx = x(u + r e) - x(u) along both axes, periodic."""
    x = np.asarray(fields, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    out = {}
    for r in lags:
        d = np.concatenate(
            [(np.roll(x, -r, axis=-1) - x).ravel(), (np.roll(x, -r, axis=-2) - x).ravel()]
        )
        out[int(r)] = float(np.mean(d**4) / np.mean(d**2) ** 2)
    return out


def spectrum_slope(k: np.ndarray, E: np.ndarray, kmin: float, kmax: float) -> float:
    """Least-squares slope of log E against log k over kmin <= k <= kmax."""
    sel = (k >= kmin) & (k <= kmax) & (E > 0)
    if sel.sum() < 2:
        raise ValueError("not enough points in the fitting range")
    return float(np.polyfit(np.log(k[sel]), np.log(E[sel]), 1)[0])

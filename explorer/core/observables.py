"""Observables of field batches and of Markov chains: Binder cumulant with jackknife errors,
autocorrelation and τ_int with Sokal's window, kurtosis, increment flatness, spectral slopes.

Used by the generators (burn-in and thinning), ``explorer info`` and the diagnostics. The radial
power spectrum lives in :mod:`explorer.core.spectra` (re-exported here). The science:
docs/diagnostics.md ("Binder cumulant", "Kurtosis and increment flatness") and docs/sampling.md
("Integrated autocorrelation time").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.core.fields.base import as_batch
from explorer.core.spectra import radial_power_spectrum, shell_average  # noqa: F401  re-exported


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
def autocorrelation(series: np.ndarray, pooled_mean: bool = False) -> np.ndarray:
    """Normalised autocorrelation function rho(t), t = 0 .. T-1, of one series or the mean over
    chains for a ``(T, n_chains)`` array (FFT, zero-padded, no wrap-around).

    By default each chain's own mean is subtracted.  With ``pooled_mean`` the mean over all chains
    and times is subtracted instead: for chains sampling the same distribution this removes the
    O(tau / T) downward bias of per-chain means, and chains that have not forgotten their start
    (or drift together) show up as lasting correlation instead of being hidden.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    T = x.shape[0]
    x = x - (x.mean() if pooled_mean else x.mean(axis=0))
    nfft = 1 << (2 * T - 1).bit_length()
    f = np.fft.rfft(x, n=nfft, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=nfft, axis=0)[:T].mean(axis=1)
    if acov[0] <= 0:
        return np.ones(T) if T else acov
    return acov / acov[0]


@dataclass(frozen=True)
class TauEstimate:
    """Integrated autocorrelation time with Sokal's window, and whether that window fits the data.

    tau = 1 + 2 sum_{t=1}^{W} rho(t); ``window`` is W (T - 1 when no window was found);
    ``window_found``: some W < T satisfies W >= c tau(W); ``measured``: the window was found and
    W <= T / fit.
    """

    tau: float
    window: int
    length: int
    window_found: bool
    measured: bool
    c: float
    fit: float

    @property
    def lower_bound(self) -> float:
        """tau when measured; otherwise T / (c fit): the window did not fit, so the partial sum
        tau(W) exceeds W / c at W = T / fit (and tau_int exceeds it for positive correlations)."""
        return self.tau if self.measured else self.length / (self.c * self.fit)


def tau_estimate(
    series: np.ndarray, c: float = 6.0, fit: float = 2.0, pooled_mean: bool = False
) -> TauEstimate:
    """Sokal's automatic-window estimate of tau_int with a validity check.

    The window is the smallest W with W >= c * tau(W).  The estimate is trusted (``measured``) only
    when such a W exists and W <= T / fit: every lag in the window is then estimated from at least
    T (1 - 1/fit) steps per chain, and the spurious window of a series much shorter than its
    correlation time (W ~ 0.6 T, where the mean-subtracted autocorrelation is forced through zero)
    is rejected.  ``series`` is (T,) or (T, n_chains); ``pooled_mean`` as in :func:`autocorrelation`.
    """
    if not fit >= 1.0:
        raise ValueError(f"fit must be at least 1, got {fit}")
    rho = autocorrelation(series, pooled_mean=pooled_mean)
    T = len(rho)
    if T < 2:
        return TauEstimate(1.0, 0, T, False, False, float(c), float(fit))
    tau = 2.0 * np.cumsum(rho) - 1.0  # tau[W] = 1 + 2 sum_{t=1}^{W} rho(t)
    ok = np.arange(T) >= c * tau
    found = bool(ok.any())
    W = int(np.argmax(ok)) if found else T - 1
    return TauEstimate(
        tau=float(max(tau[W], 1e-12)),
        window=W,
        length=T,
        window_found=found,
        measured=found and W <= T / fit,
        c=float(c),
        fit=float(fit),
    )


def integrated_autocorrelation_time(
    series: np.ndarray, c: float = 6.0
) -> tuple[float, int]:
    """tau_int = 1 + 2 sum_{t=1}^{W} rho(t) with Sokal's automatic window: the smallest W with
    W >= c * tau_int(W).  Returns (tau_int, W).  ``series`` is (T,) or (T, n_chains).

    With this convention an uncorrelated chain has tau_int = 1 and an AR(1) chain with coefficient
    r has tau_int = (1 + r) / (1 - r); the number of effectively independent samples is T / tau_int.
    Whether the window fitted in the series is not reported here: see :func:`tau_estimate`.
    """
    est = tau_estimate(series, c)
    return est.tau, est.window


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
    x = as_batch(fields)
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


PHASE_BOUNDS = {"binder": 0.03, "abs_m_rel": 0.03, "spectrum": 0.1, "tv_sym": 0.05, "std": 0.05}


def phase_metrics(data: np.ndarray, samples: np.ndarray, J: int) -> dict:
    """φ⁴ samples against data, the measures of the phase-diagram checks (docs/models.md,
    "Across the phase diagram"): Binder U of both with the combined jackknife error, ⟨|m|⟩ and its
    relative difference, χ = L² ⟨m²⟩ of both, the mean |log ratio| of the radial spectra, the total
    variation between the sign-symmetrised one-point histograms (bins of 0.1 on [-3.5, 3.5]) and
    the ratios of the detail standard deviations per scale j = 1..J (samples / data);
    ``within_bounds`` against :data:`PHASE_BOUNDS`; ``within_noise`` the same with the bounds on U
    and ⟨|m|⟩ widened to two combined jackknife errors where those are larger."""
    from explorer.core import wavelets as wv

    data, samples = np.asarray(data, np.float64), np.asarray(samples, np.float64)
    _, pd_ = radial_power_spectrum(data)
    _, ps = radial_power_spectrum(samples)
    bins = np.linspace(-3.5, 3.5, 71)
    hd, _ = np.histogram(np.concatenate([data.ravel(), -data.ravel()]), bins, density=True)
    hs, _ = np.histogram(np.concatenate([samples.ravel(), -samples.ravel()]), bins, density=True)
    md, ms = magnetisation(data), magnetisation(samples)
    err = np.hypot(jackknife(md, binder_cumulant)[1], jackknife(ms, binder_cumulant)[1])
    std = (wv.scale_stats(samples, J).detail_std / wv.scale_stats(data, J).detail_std).tolist()
    out = {"binder_data": binder_cumulant(md), "binder_samples": binder_cumulant(ms),
           "binder_err": float(err),
           "abs_m_data": float(np.abs(md).mean()), "abs_m_samples": float(np.abs(ms).mean()),
           "chi_data": float(data.shape[-1] ** 2 * np.mean(md ** 2)),
           "chi_samples": float(samples.shape[-1] ** 2 * np.mean(ms ** 2)),
           "spectrum_log_ratio": float(np.mean(np.abs(np.log(ps / pd_)))),
           "tv_symmetrised": float(0.5 * np.sum(np.abs(hd - hs)) * (bins[1] - bins[0])),
           "detail_std_ratios": std}
    out["abs_m_rel"] = out["abs_m_samples"] / out["abs_m_data"] - 1.0
    # the relative error of the ratio <|m|>_s / <|m|>_d from both jackknife errors
    rel_d = jackknife(np.abs(md), np.mean)[1] / max(out["abs_m_data"], 1e-300)
    rel_s = jackknife(np.abs(ms), np.mean)[1] / max(out["abs_m_samples"], 1e-300)
    out["abs_m_rel_err"] = float((1.0 + out["abs_m_rel"]) * np.hypot(rel_d, rel_s))
    b = PHASE_BOUNDS
    rest = (out["spectrum_log_ratio"] <= b["spectrum"] and out["tv_symmetrised"] <= b["tv_sym"]
            and max(abs(r - 1) for r in std) <= b["std"])
    dU = abs(out["binder_samples"] - out["binder_data"])
    out["within_bounds"] = bool(dU <= b["binder"] and abs(out["abs_m_rel"]) <= b["abs_m_rel"]
                                and rest)
    # the same where the bound is finer than the measurement can resolve: U and <|m|> within
    # their bound or two combined standard errors, whichever is larger (on the disordered side
    # 256 fields give <|m|> to ~5 % and U to ~0.05)
    out["within_noise"] = bool(dU <= max(b["binder"], 2 * out["binder_err"])
                               and abs(out["abs_m_rel"]) <= max(b["abs_m_rel"],
                                                                2 * out["abs_m_rel_err"])
                               and rest)
    return out

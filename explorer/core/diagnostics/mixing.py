"""Mixing of Markov chains: autocorrelation, τ_int with Sokal's window and the effective sample
size (thin wrappers of :mod:`explorer.core.observables`). The science: docs/sampling.md,
"Integrated autocorrelation time".
"""

from __future__ import annotations

import numpy as np

from explorer.core import observables as obs


def autocorrelation_function(series, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation ρ(t), t = 0 .. max_lag, of a series (T,) or chains (T, C)."""
    rho = obs.autocorrelation(series)
    return rho if max_lag is None else rho[: int(max_lag) + 1]


def tau_int(series, c: float = 6.0) -> float:
    """Integrated autocorrelation time 1 + 2 Σ ρ(t) with Sokal's window (AR(1): (1+r)/(1-r))."""
    return obs.integrated_autocorrelation_time(series, c)[0]


def mixing_summary(series, c: float = 6.0) -> dict:
    tau, W = obs.integrated_autocorrelation_time(series, c)
    T = np.asarray(series).shape[0]
    return {"tau_int": tau, "window": int(W), "T": int(T), "n_eff": float(T / tau)}

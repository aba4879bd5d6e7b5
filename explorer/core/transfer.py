"""Learn small, generate large: a WCRG model fitted at side L, sampled at L' = 2^k L. See
docs/models.md, "Size transfer and the fixed point".

* The fitted conditionals j = 1..J are stationary (convolutional): their θ̄_j act on a lattice of
  any size. Their features are rebuilt from their spec at the new side with the same θ̄_j.
* The k extra levels j = J+1..J+k reuse the coarsest fitted conditional θ̄_J in normalised
  variables: E_{J+i}(x̄, x) = E_J(x̄ / r^i, x / r^i), i.e. the law of x̄_{J+i} / σ_{J+i} is that
  of x̄_J / σ_J — the RG fixed point. r = σ_J / σ_{J-1} is the last measured growth of the
  detail standard deviations (2^{1-η/2} = 2^{7/8} ≈ 1.83 expected at β_c), σ_{J+i} = σ_J r^i.
* The coarse factor keeps its side (L / 2^J, 4 x 4 by default) and its θ, on the coarse field
  rescaled by ρ^k: E'(x) = E(x / ρ^k), ρ the last measured growth of the low-pass RMS.
  Finite-size scaling is the reason: at β_c the law of the coarse field with a fixed number of
  sites, normalised, does not depend on L (the Binder cumulant is size independent), and
  χ(2L) / χ(L) = ρ² (= 2^{2-η} = 2^{7/4} at β_c). The alternative, the same θ on a 2x larger
  coarse lattice, would put a finite-size effective energy (fitted on 4 x 4 with wrap-around
  filters) on a lattice it was never fitted on.

Off criticality the factors are not at a fixed point: the extrapolation is only as good as the
last measured ratios are close to their limits (which the transfer records)."""

from __future__ import annotations

import copy

import numpy as np

from explorer.core.features import features_from_spec

EXPECTED_GROWTH_CRITICAL = 2.0 ** (7.0 / 8.0)  # 2^{1 - η/2}, η = 1/4 (2D Ising)


class RescaledFeatures:
    """The energy of ``base`` evaluated on the rescaled variables: U'(v, c) = U(v / s, c / s)
    (and ∇U' = ∇U(v / s, c / s) / s): the law of v / s under U' is that of v under U."""

    def __init__(self, base, scale: float):
        self.base = base
        self.scale = float(scale)
        self.names = list(base.names)
        self.fit_protocol = base.fit_protocol
        self.spec = {**(base.spec or {}), "rescaled_by": self.scale}
        self.level = base.level

    @property
    def n_features(self) -> int:
        return len(self.names)

    def _args(self, v, c):
        s = self.scale
        return np.asarray(v, np.float64) / s, None if c is None else np.asarray(c, np.float64) / s

    def energy(self, theta, v, c=None):
        return self.base.energy(theta, *self._args(v, c))

    def energy_grad(self, theta, v, c=None):
        return self.base.energy_grad(theta, *self._args(v, c)) / self.scale

    def energy_and_grad(self, theta, v, c=None):
        e, g = self.base.energy_and_grad(theta, *self._args(v, c))
        return e, g / self.scale

    def hvp(self, theta, v, w, c=None):
        vv, cc = self._args(v, c)
        return self.base.hvp(theta, vv, np.asarray(w, np.float64), cc) / self.scale ** 2


def _rebuilt(features, side: int):
    spec = dict(features.spec)
    spec["L"] = int(side)
    return features_from_spec(spec)


def growth(values, default: float = 1.0) -> float:
    """Last ratio of a sequence of standard deviations (finest first)."""
    v = [float(a) for a in values if a and np.isfinite(a)]
    return v[-1] / v[-2] if len(v) >= 2 and v[-2] > 0 else default


def check_transfer(model, size: int) -> tuple[int, int, int]:
    """``(L, size, k)`` when the fitted ``model`` can sample side ``size`` = 2^k L with k >= 1;
    else a ValueError saying why (before any work)."""
    L = int(model.stats["L"])
    size = int(size)
    k = int(round(np.log2(size / L))) if size > 0 else -1
    if k < 1 or L * 2 ** k != size:
        raise ValueError(f"a model fitted at {L}x{L} samples at {L}x{L} or at 2^k times that side "
                         f"(k >= 1: {2 * L}, {4 * L}, ...), got {size}")
    if model.J < 1:
        raise ValueError("size transfer needs a WCRG model of depth J >= 1 (its conditionals "
                         "are what is reused); a depth-0 model has none")
    if model.support is not None:
        raise ValueError("size transfer of a model with a spectral support (modes completed "
                         "and projected out) is not implemented; refit with support_floor=None")
    if "low_rms" not in model.stats:
        raise ValueError("this model was fitted before size transfer existed (its low-pass "
                         "statistics are missing): refit it to sample at another size")
    return L, size, k


def transferred(model, size: int):
    """A copy of the fitted ``model`` that samples fields of side ``size`` = 2^k L (k >= 1):
    depth J + k, the conditionals rebuilt at the new sides, k extra levels from the coarsest
    conditional, the coarse factor rescaled (module docstring). Its ``stats["size_transfer"]``
    records what was extrapolated."""
    from explorer.core.model import ScaleModel, WCRGModel  # the model module imports this one

    L, size, k = check_transfer(model, size)
    st = model.stats
    J, J2 = model.J, model.J + k
    sig = list(st["detail_std"])
    r = growth(sig)
    rho = growth(st["low_rms"])
    new = WCRGModel(model.family, J2, model.wavelet, support_floor=None, **model.options)
    conds = []
    for m in model.conditionals:
        conds.append(ScaleModel(m.j, m.level, _rebuilt(m.features, size >> (m.j - 1)),
                                m.theta, m.fit))
    top = model.conditionals[-1]
    for i in range(1, k + 1):
        j = J + i
        feats = RescaledFeatures(_rebuilt(top.features, size >> (j - 1)), r ** i)
        fit = {"bounded": top.fit.get("bounded"), "quadratic_base": top.fit.get("quadratic_base"),
               "extrapolated_from": J, "rescaled_by": r ** i}
        conds.append(ScaleModel(j, "conditional", feats, top.theta, fit))
    coarse = model.coarse
    new.coarse = ScaleModel(J2, "depth0", RescaledFeatures(coarse.features, rho ** k),
                            coarse.theta, {**coarse.fit, "rescaled_by": rho ** k})
    new.conditionals = conds
    s = rho ** k
    new.stats = copy.deepcopy(st)
    new.stats.update(
        L=size, detail_std=sig + [sig[-1] * r ** i for i in range(1, k + 1)],
        coarse_mean=st["coarse_mean"] * s, coarse_std=st["coarse_std"] * s,
        low_rms=list(st["low_rms"]) + [st["low_rms"][-1] * rho ** i for i in range(1, k + 1)])
    for key in ("coarse_m_rms", "coarse_within_std"):
        if key in st:
            new.stats[key] = st[key] * s
    if "coarse_abs_m_quantiles" in st:
        new.stats["coarse_abs_m_quantiles"] = [q * s for q in st["coarse_abs_m_quantiles"]]
    new.provenance = {**model.provenance, "fitted_at": L}
    new.stats["size_transfer"] = {
        "fitted_size": L, "size": size, "levels_added": k, "depth": J2,
        "conditionals_reused": list(range(1, J + 1)),
        "conditionals_extrapolated": {str(J + i): {"from": J, "rescaled_by": r ** i,
                                                   "sigma": sig[-1] * r ** i}
                                      for i in range(1, k + 1)},
        "detail_growth_per_level": r, "detail_growth_log2": float(np.log2(r)),
        "coarse_growth_per_level": rho, "coarse_growth_log2": float(np.log2(rho)),
        "coarse_rescaled_by": s,
        "critical_growth_per_level": EXPECTED_GROWTH_CRITICAL,
        "rule": "conditionals j <= J as fitted; j > J: the coarsest fitted conditional on fields "
                "divided by r^(j-J); the coarse factor (same side) on fields divided by rho^k",
    }
    return new


def size_transfer_check(data: np.ndarray, samples: np.ndarray, transfer: dict) -> dict:
    """Samples of a size transfer (fitted at L, sampled at L' = 2^k L) against the data at L:
    the finite-size-scaling checks of docs/models.md ("Size transfer and the fixed point").
    Binder U of both with jackknife errors (≈ size independent at β_c), χ = L² ⟨m²⟩ of both and
    their ratio next to the critical 2^{7k/4} (γ/ν = 7/4), the extrapolated levels."""
    from explorer.core.observables import binder_cumulant, jackknife, magnetisation

    d, s = np.asarray(data, np.float64), np.asarray(samples, np.float64)
    md, ms = magnetisation(d), magnetisation(s)
    k = int(transfer["levels_added"])
    chi_d = float(d.shape[-1] ** 2 * np.mean(md ** 2))
    chi_s = float(s.shape[-1] ** 2 * np.mean(ms ** 2))
    return {"fitted_size": int(transfer["fitted_size"]), "size": int(transfer["size"]),
            "levels_added": k,
            "extrapolated": sorted(transfer["conditionals_extrapolated"], key=int),
            "binder_data": binder_cumulant(md), "binder_data_err": jackknife(md, binder_cumulant)[1],
            "binder_samples": binder_cumulant(ms),
            "binder_samples_err": jackknife(ms, binder_cumulant)[1],
            "chi_data": chi_d, "chi_samples": chi_s, "chi_ratio": chi_s / chi_d,
            "chi_ratio_critical": 2.0 ** (1.75 * k),
            "detail_growth_log2": float(transfer["detail_growth_log2"])}

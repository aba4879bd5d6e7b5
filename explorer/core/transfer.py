"""Learn small, generate large: a WCRG model fitted at side L, sampled at L' = 2^k L. See
docs/models.md, "Size transfer and the fixed point".

* The fitted conditionals j = 1..J are stationary (convolutional): their θ̄_j act on a lattice of
  any size. Their features are rebuilt from their spec at the new side with the same θ̄_j.
* The k extra levels j = J+1..J+k reuse the coarsest fitted conditional θ̄_J in normalised
  variables: E_{J+i}(x̄, x) = E_J(x̄ / s_i, x / t_i), i.e. the law of (x̄_{J+i} / σ_{J+i},
  x_{J+i} / λ_{J+i}) is that of (x̄_J / σ_J, x_J / λ_J) — the RG fixed point — with
  s_i = σ_{J+i} / σ_J the growth of the detail RMS and t_i = λ_{J+i} / λ_J that of the low-pass
  RMS (the condition of level J+i is the low-pass x_{J+i}).
* The coarse factor keeps its side (L / 2^J, 4 x 4 by default) and its θ, on the coarse field
  with its mean divided by a = sqrt(χ(L') / χ(L)) and its fluctuation around the mean by b, the
  growth of the coarse field's RMS without its k = 0 mode. Finite-size scaling is the reason: at
  β_c the law of the coarse field with a fixed number of sites, normalised, does not depend on L
  (the Binder cumulant is size independent; a = b = 2^{(2-η)k/2}). Off criticality the mean and
  the fluctuation grow differently (the k = 0 mode saturates at χ beyond the correlation length
  while the coarse field's other modes still reach smaller k), hence two factors. The
  alternative, the same θ on a 2x larger coarse lattice, would put a finite-size effective
  energy (fitted on 4 x 4 with wrap-around filters) on a lattice it was never fitted on.
* s_i, t_i, a and b come from the lattice spectrum S(k) = A (k̂² + m²)^(-p) fitted to the measured
  per-scale RMS (:mod:`explorer.core.scale_spectrum`), evaluated at the new side: a constant
  growth 2^p per level where no correlation length shorter than L/2 is resolved (β_c), a growth
  flowing to 1 beyond the correlation length 1/μ (off criticality). Where that form does not
  describe the data (log RMS residual above ``MAX_SPECTRUM_RESIDUAL``, e.g. an ordered field,
  whose k = 0 mode holds a spontaneous magnetisation), the last measured ratios are kept
  (s_i = r^i, t_i = ρ^i, a = b = ρ^k) and the transfer says so.

The transfer records in ``stats["size_transfer"]`` what was extrapolated and how."""

from __future__ import annotations

import copy

import numpy as np

from explorer.core.features import features_from_spec
from explorer.core.scale_spectrum import KAPPA_FINITE_SIZE, extrapolated_ratios, fit_spectrum

EXPECTED_GROWTH_CRITICAL = 2.0 ** (7.0 / 8.0)  # 2^{1 - η/2}, η = 1/4 (2D Ising)
# Largest log RMS residual of the spectral fit for which the transfer uses it (measured here:
# 0.006-0.008 on critical and disordered phi4 at 32²-128², 0.03-0.13 on ordered phi4 at 0.76)
MAX_SPECTRUM_RESIDUAL = 0.02


class RescaledFeatures:
    """The energy of ``base`` evaluated on rescaled variables: U'(v, c) = U(v / s, c / t), s =
    ``scale`` for the variables and t = ``cond_scale`` (default s) for the condition (and
    ∇U' = ∇U(v / s, c / t) / s): the law of v / s given c under U' is that of v given c / t
    under U."""

    def __init__(self, base, scale: float, cond_scale: float | None = None):
        self.base = base
        self.scale = float(scale)
        self.cond_scale = self.scale if cond_scale is None else float(cond_scale)
        self.names = list(base.names)
        self.fit_protocol = base.fit_protocol
        self.spec = {**(base.spec or {}), "rescaled_by": self.scale,
                     "condition_rescaled_by": self.cond_scale}
        self.level = base.level

    @property
    def n_features(self) -> int:
        return len(self.names)

    def _args(self, v, c):
        return (np.asarray(v, np.float64) / self.scale,
                None if c is None else np.asarray(c, np.float64) / self.cond_scale)

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


class MeanSplitFeatures(RescaledFeatures):
    """A factor without a condition evaluated on its field with the spatial mean and the
    fluctuation around it rescaled apart: U'(x) = U(D⁻¹x), D⁻¹x = m(x) / a + (x - m(x)) / b, m
    the mean over the last two axes; D is symmetric, so ∇U' = D⁻¹∇U(D⁻¹x) and the Hessian is
    D⁻¹HD⁻¹. The law of D⁻¹x under U' is that of x under U."""

    def __init__(self, base, mean_scale: float, fluctuation_scale: float):
        super().__init__(base, fluctuation_scale)
        self.mean_scale = float(mean_scale)
        self.spec["mean_rescaled_by"] = self.mean_scale

    def _split(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64)
        m = x.mean(axis=(-2, -1), keepdims=True)
        return m / self.mean_scale + (x - m) / self.scale

    def energy(self, theta, v, c=None):
        return self.base.energy(theta, self._split(v), c)

    def energy_grad(self, theta, v, c=None):
        return self._split(self.base.energy_grad(theta, self._split(v), c))

    def energy_and_grad(self, theta, v, c=None):
        e, g = self.base.energy_and_grad(theta, self._split(v), c)
        return e, self._split(g)

    def hvp(self, theta, v, w, c=None):
        return self._split(self.base.hvp(theta, self._split(v), self._split(w), c))


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


def extrapolation(model, k: int) -> dict:
    """The growth factors of the k levels added on top of the fitted ``model``: ``detail``
    s_i = σ_{J+i} / σ_J and ``low`` t_i = λ_{J+i} / λ_J (i = 1..k), from the lattice spectrum
    fitted to its per-scale RMS, or the last measured ratios where that fit fails (module
    docstring); with the record of how they were obtained."""
    st, J = model.stats, model.J
    sig, low = list(st["detail_std"]), list(st["low_rms"])
    r, rho = growth(sig), growth(low)
    last = {"detail": [r ** i for i in range(1, k + 1)], "low": [rho ** i for i in range(1, k + 1)],
            "mean": rho ** k, "fluctuation": rho ** k}
    record = {"last_measured_detail_growth": r, "last_measured_low_growth": rho}
    try:
        fit = fit_spectrum(int(st["L"]), st.get("detail_std_channels", sig), low, model.wavelet)
    except ValueError as e:   # non-positive statistics: nothing to fit
        return {**last, "method": "last measured ratios", "reason": str(e), **record}
    record["spectrum"] = fit.to_dict()
    if not fit.log_rms_residual <= MAX_SPECTRUM_RESIDUAL:
        return {**last, "method": "last measured ratios", **record,
                "reason": f"the lattice spectrum misses the measured per-scale RMS by "
                          f"{fit.log_rms_residual:.3f} in log (more than {MAX_SPECTRUM_RESIDUAL}): "
                          "the data do not follow its form (an ordered field does not)"}
    ratios = extrapolated_ratios(fit, J, k, model.wavelet)
    xi = fit.correlation_length
    regime = (f"correlation length {xi:.3g} resolved: growth flowing to 1 beyond it"
              if np.isfinite(xi) else
              f"no correlation length below L/{KAPPA_FINITE_SIZE:g} resolved: critical, "
              "constant growth (finite-size mass scaling as 1/L)")
    return {**ratios, "method": "lattice spectrum", "regime": regime, **record}


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
    ext = extrapolation(model, k)
    s_det, s_low = ext.pop("detail"), ext.pop("low")
    new = WCRGModel(model.family, J2, model.wavelet, support_floor=None, **model.options)
    conds = []
    for m in model.conditionals:
        conds.append(ScaleModel(m.j, m.level, _rebuilt(m.features, size >> (m.j - 1)),
                                m.theta, m.fit))
    top = model.conditionals[-1]
    for i in range(1, k + 1):
        j = J + i
        feats = RescaledFeatures(_rebuilt(top.features, size >> (j - 1)), s_det[i - 1],
                                 s_low[i - 1])
        fit = {"bounded": top.fit.get("bounded"), "quadratic_base": top.fit.get("quadratic_base"),
               "extrapolated_from": J, "rescaled_by": s_det[i - 1],
               "condition_rescaled_by": s_low[i - 1]}
        conds.append(ScaleModel(j, "conditional", feats, top.theta, fit))
    a, b = ext.pop("mean"), ext.pop("fluctuation")
    coarse = model.coarse
    new.coarse = ScaleModel(J2, "depth0", MeanSplitFeatures(coarse.features, a, b), coarse.theta,
                            {**coarse.fit, "mean_rescaled_by": a, "rescaled_by": b})
    new.conditionals = conds
    new_sig = sig + [sig[-1] * g for g in s_det]
    new.stats = copy.deepcopy(st)
    new.stats.update(
        L=size, detail_std=new_sig,
        coarse_mean=st["coarse_mean"] * a, coarse_std=st["coarse_std"] * s_low[-1],
        low_rms=list(st["low_rms"]) + [st["low_rms"][-1] * g for g in s_low])
    new.stats.pop("detail_std_channels", None)   # measured at L only
    for key, scale in (("coarse_m_rms", a), ("coarse_within_std", b)):
        if key in st:
            new.stats[key] = st[key] * scale
    if "coarse_abs_m_quantiles" in st:
        new.stats["coarse_abs_m_quantiles"] = [q * a for q in st["coarse_abs_m_quantiles"]]
    new.provenance = {**model.provenance, "fitted_at": L}
    r1 = s_det[0]
    new.stats["size_transfer"] = {
        "fitted_size": L, "size": size, "levels_added": k, "depth": J2,
        "conditionals_reused": list(range(1, J + 1)),
        "conditionals_extrapolated": {
            str(J + i): {"from": J, "rescaled_by": s_det[i - 1],
                         "condition_rescaled_by": s_low[i - 1], "sigma": new_sig[J + i - 1],
                         "detail_growth_log2": float(np.log2(new_sig[J + i - 1]
                                                             / new_sig[J + i - 2]))}
            for i in range(1, k + 1)},
        "detail_growth_per_level": r1, "detail_growth_log2": float(np.log2(r1)),
        "coarse_growth_per_level": s_low[0], "coarse_growth_log2": float(np.log2(s_low[0])),
        "coarse_rescaled_by": a, "coarse_fluctuation_rescaled_by": b,
        "critical_growth_per_level": EXPECTED_GROWTH_CRITICAL,
        "extrapolation": ext,
        "rule": "conditionals j <= J as fitted; j > J: the coarsest fitted conditional on the "
                "details divided by s_(j-J) and the condition divided by t_(j-J); the coarse "
                "factor (same side) on its field with the mean divided by a and the fluctuation "
                "around it by b; s, t the growth of the detail and low-pass RMS from level J, a "
                "that of sqrt(chi), b that of the coarse fluctuation (extrapolation['method'])",
    }
    return new


def size_transfer_check(data: np.ndarray, samples: np.ndarray, transfer: dict) -> dict:
    """Samples of a size transfer (fitted at L, sampled at L' = 2^k L) against the data at L:
    the finite-size-scaling checks of docs/models.md ("Size transfer and the fixed point").
    Binder U of both with jackknife errors (≈ size independent at β_c), χ = L² ⟨m²⟩ of both and
    their ratio next to the critical 2^{7k/4} (γ/ν = 7/4), the extrapolated levels and how the
    per-scale normalisation was extrapolated."""
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
            "detail_growth_log2": float(transfer["detail_growth_log2"]),
            "extrapolation_method": transfer.get("extrapolation", {}).get("method"),
            "extrapolation_regime": (transfer.get("extrapolation", {}).get("regime")
                                     or transfer.get("extrapolation", {}).get("reason"))}

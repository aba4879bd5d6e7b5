"""The maximum-likelihood refinement of a fitted model's coarse conditionals on the coarse fields
the model itself generates (docs/performance.md, "Interactive fitting defaults", "Routes to 2 %").

Data-condition maximum likelihood fixes a conditional's feature means with its condition x_j
drawn from the data; sampling uses it with x_j drawn from the model's coarser factors. Each
factor exp(-θ·Φ)/Z(x_j) is the law of largest entropy with fixed feature means, so refining θ so
that the data's means are matched on the generated conditions makes the generated x_{j-1}
reproduce the data's moments of Φ_j (among them the per-channel detail variances) even where
the family is misspecified."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.defaults import DEFAULT_REFINE_ITERATIONS, DEFAULT_STEPS
from explorer.core.fit.likelihood import refine_maximum_likelihood
from explorer.core.fit.policy import boundedness_check, fit_warnings, quadratic_base_check
from explorer.core.evaluation import shared_evaluation
from explorer.core.sampling import SamplerDiverged, langevin

if TYPE_CHECKING:
    from explorer.core.model import WCRGModel

#: data fields below which the target (the data's feature means) is refused: with fewer, its
#: noise is as large as the excess the refinement removes (two halves of 128 critical phi^4
#: 64^2 fields differ by 0.7 and 1.4 % in their detail stds at j = 2, 3)
MIN_DATA_FIELDS = 32

#: generated coarse fields of the measured recipe: with 128 instead of 256 the refined scale-4
#: conditional of critical phi^4 64^2 (73 parameters) ran away in sampling
DEFAULT_GENERATED = 256

#: generated fields per parameter of the largest refined conditional, at least: 128 fields for
#: the 70-73 parameters of a radius-1 phi4 conditional (32^2 and 64^2) diverged, 256 did not
GENERATED_PER_PARAMETER = 3

#: families it applies to: measured on phi4, whose conditionals' boundedness the fit decides
#: (leading polynomial power, couplings); a family whose rule proves nothing could not keep
#: the refusal of an unbounded refinement
FAMILIES = ("phi4",)


def default_levels(J: int) -> tuple[int, ...]:
    """The measured levels: the three coarsest conditionals j = J, J-1, J-2 (those that exist)."""
    return tuple(range(J, max(J - 3, 0), -1))


def precheck(family: str, J: int, n_fields: int, wanted: bool = True) -> None:
    """ValueError saying why the refinement cannot apply to a fit of ``family`` at depth ``J`` on
    ``n_fields`` data fields: what can be refused before the fit runs (nothing if not ``wanted``,
    so that a pipeline can call it unconditionally)."""
    if not wanted:
        return
    if family not in FAMILIES:
        raise ValueError(f"refinement on generated fields: only for the {', '.join(FAMILIES)} "
                         f"family (measured there, and its boundedness check decides whether a "
                         f"refinement is kept); the model is of the {family!r} family")
    if J < 1:
        raise ValueError("refinement on generated fields: the model has no conditionals "
                         f"(depth {J}); it refines conditionals given coarse fields")
    if n_fields < MIN_DATA_FIELDS:
        raise ValueError(f"refinement on generated fields: {n_fields} data fields, at least "
                         f"{MIN_DATA_FIELDS} needed (the data's feature means are its target; "
                         f"with fewer, their noise is as large as the bias it removes)")


def check_applies(model: WCRGModel, x: np.ndarray, levels: tuple[int, ...],
                  what: str = "refinement on generated fields") -> None:
    """ValueError saying why a refinement on generated fields (``what``, for the message) cannot
    apply to ``model``, the data ``x`` and the ``levels`` (J, J-1, ... coarse to fine, down to 1
    at most, without gaps): what this module's and :mod:`.variances`' refinements both need."""
    if not model.fitted:
        raise ValueError(f"{what}: the model is not fitted yet")
    precheck(model.family, len(model.conditionals), len(x))
    if model.support is not None:
        raise ValueError(f"{what}: not for a model with a spectral support (its fit completed "
                         f"the data's missing modes with noise, which the data's feature means "
                         f"here would not contain)")
    if x.ndim != 3 or x.shape[-1] != model.stats["L"] or x.shape[-2] != model.stats["L"]:
        raise ValueError(f"{what}: the data must be the fit's fields, "
                         f"(n, {model.stats['L']}, {model.stats['L']}), got {x.shape}")
    want = list(range(model.J, model.J - len(levels), -1))
    if not levels or list(levels) != want or min(levels) < 1:
        raise ValueError(f"{what}: levels must be J, J-1, ... down to 1 at most, without gaps "
                         f"(J = {model.J}), got {list(levels)}")


def _check(model: WCRGModel, x: np.ndarray, levels: tuple[int, ...], n: int) -> None:
    """ValueError saying why the refinement cannot apply to ``model`` and the data ``x``."""
    check_applies(model, x, levels)
    k = max(model.conditionals[j - 1].features.n_features for j in levels)
    if n < GENERATED_PER_PARAMETER * k:
        raise ValueError(f"refinement on generated fields: {n} generated fields for a "
                         f"conditional of {k} parameters; at least {GENERATED_PER_PARAMETER * k} "
                         f"needed (the Newton matrix is their within-condition covariance: "
                         f"with 128 fields for 70-73 parameters its steps diverged)")


def _conditional_samples(m, cond: np.ndarray, sigma: float, steps: int, seed: int) -> np.ndarray:
    """Details of the conditional ``m`` sampled by MALA given the coarse fields ``cond`` (noise
    start of the data's detail std ``sigma``, ``steps`` burn-in and ``steps`` steps, as the
    model's sampler runs a conditional)."""
    rng = np.random.default_rng(seed)
    v0 = sigma * rng.standard_normal((len(cond), 3) + cond.shape[1:])
    energy, grad = shared_evaluation(lambda v: m.features.energy_and_grad(m.theta, v, cond))
    res = langevin(energy, grad, v0, n_steps=steps, burn_in=steps, seed=seed, x_scale=sigma)
    return res.x


def _generated_coarse(model: WCRGModel, n: int, steps: int, seed: int) -> np.ndarray:
    """``n`` coarse fields x_J sampled from ``model``'s coarse factor alone (its own schedule:
    replica exchange where the data's coarse fields cross zero)."""
    coarse_only = copy.copy(model)
    coarse_only.conditionals, coarse_only.support = [], None
    return coarse_only.sample(n, steps=steps, burn_in=steps, seed=seed).fields.astype(np.float64)


def _refine_level(m, target, v, xj, v_data, c_data, seed: int, fixed=(),
                  chains: list | None = None) -> dict:
    """Refine the conditional ``m`` in place towards ``target`` from the chains ``v`` on the
    generated conditions ``xj`` (the parameters ``fixed`` held); kept only when bounded below
    on the generated and on the data's conditions (``v_data``, ``c_data``). Returns what was
    done at this level; ``chains``, if given, receives the refinement's final chains."""
    try:
        theta, extra = refine_maximum_likelihood(m.features, v, xj, m.theta,
                                                 iterations=DEFAULT_REFINE_ITERATIONS,
                                                 seed=seed, target=target, fixed=fixed,
                                                 return_chains=chains is not None)
    except SamplerDiverged as e:
        return {"kept": False, "reason": f"refinement chains diverged ({e})"}
    if chains is not None:
        chains.append(extra["chains"])
    info = {"mismatch_before": extra["ml_refine_first_mismatch"],
            "mismatch": extra["ml_refine_last_mismatch"],
            "relative_change": extra["ml_refine_relative_change"]}
    if not info["mismatch"] < info["mismatch_before"]:
        return {**info, "kept": False, "reason": "the Newton steps did not bring the feature "
                                                 "means closer to the target"}
    for where, (vv, cc) in (("generated", (v, xj)), ("data", (v_data, c_data))):
        check = boundedness_check(m.features, theta, vv, cc)
        if check is not None and check.get("bounded") is False:
            return {**info, "kept": False, "reason": f"not bounded below on the {where} "
                    f"conditions: {check.get('reason', '')}".rstrip(": ")}
    m.fit.update(theta_before_generated=m.fit.get("theta"),
                 theta=dict(zip(m.features.names, map(float, theta))),
                 quadratic_base=quadratic_base_check(m.features, theta, v_data, c_data),
                 bounded=boundedness_check(m.features, theta, v_data, c_data))
    m.fit["warnings"] = fit_warnings(m.fit)
    m.theta = theta
    return {**info, "kept": True}


def refine_on_generated(model: WCRGModel, fields, levels=None, n: int = DEFAULT_GENERATED,
                        steps: int = DEFAULT_STEPS, seed: int = 100) -> WCRGModel:
    """A copy of the fitted ``model`` whose conditionals ``levels`` (default
    :func:`default_levels`: j = J, J-1, J-2) are refined by maximum likelihood on coarse fields
    the model generates instead of the data's.

    ``fields``: the data the model was fitted to, in the model's variables (after any
    dequantisation or Gaussian anamorphosis). ``n`` coarse fields x_J are sampled from the coarse
    factor; at each level j, coarse to fine, the conditional's details are sampled given the
    current x_j (``steps`` burn-in and ``steps`` MALA steps), :func:`refine_maximum_likelihood`
    (:data:`~explorer.core.defaults.DEFAULT_REFINE_ITERATIONS` Newton steps) matches the data's
    feature means from those starts on those conditions (``target``), and x_{j-1} is the
    refined conditional's sample. A refinement whose energy is not bounded below (on the
    generated or on the data's conditions), whose chains diverge or whose Newton steps end
    farther from the target than they started is not kept: that level keeps its parameters (and
    the finer levels are refined on the fields it generates). Measured on critical phi^4 64^2 at
    depth 4 (256 fields, the default fit): every per-scale detail std within 1 % (512 samples),
    for ~12 CPU s on top of the fit's ~4.

    Records ``provenance["refine_generated"] = {"levels", "n", "steps", "seed", "iterations",
    "cpu_seconds", "seconds", "per_level": {"j=J": {"mismatch_before", "mismatch",
    "relative_change", "kept", "reason"?}}, "kept_previous": [levels left at their previous
    parameters]}``, the mismatches being the RMS z-score of the feature means against the target
    at the first and the last Newton iteration; a kept level's ``fit`` gets the new θ, its
    checks and warnings, and ``theta_before_generated``. Raises ValueError where it cannot apply
    (see :func:`_check`)."""
    x = np.asarray(fields, np.float64)
    levels = default_levels(model.J) if levels is None else tuple(sorted(map(int, levels),
                                                                         reverse=True))
    _check(model, x, levels, int(n))
    c0, t0 = time.process_time(), time.perf_counter()
    out = copy.deepcopy(model)
    xj = _generated_coarse(out, int(n), steps, seed)
    lows = wv.low_passes(x, out.J, out.wavelet)
    _, details = wv.decompose(x, out.J, out.wavelet)
    per_level: dict[str, dict] = {}
    for j in sorted(levels, reverse=True):
        m = out.conditionals[j - 1]
        sigma = out.stats["detail_std"][j - 1]
        target = m.features.phi(m.features.prepare(details[j - 1], lows[j])).mean(axis=0)
        try:
            v = _conditional_samples(m, xj, sigma, steps, seed + 10 * j)
        except SamplerDiverged as e:
            per_level[f"j={j}"] = {"kept": False, "reason": f"sampling on generated fields "
                                                            f"failed ({e})"}
            break
        per_level[f"j={j}"] = _refine_level(m, target, v, xj, details[j - 1], lows[j],
                                            seed + 10 * j + 1)
        if j > min(levels):
            try:
                xj = wv.synthesis(xj, _conditional_samples(m, xj, sigma, steps,
                                                           seed + 10 * j + 2), out.wavelet)
            except SamplerDiverged as e:
                per_level[f"j={j - 1}"] = {"kept": False, "reason": f"sampling of the "
                                                                    f"conditions failed ({e})"}
                break
    for j in levels:   # levels never reached keep their parameters too
        per_level.setdefault(f"j={j}", {"kept": False, "reason": "not reached"})
    out.provenance["refine_generated"] = {
        "levels": sorted(levels, reverse=True), "n": int(n), "steps": int(steps),
        "seed": int(seed), "iterations": DEFAULT_REFINE_ITERATIONS,
        "per_level": per_level, "kept_previous": [j for j in sorted(levels, reverse=True)
                                                  if not per_level[f"j={j}"]["kept"]],
        "cpu_seconds": time.process_time() - c0, "seconds": time.perf_counter() - t0}
    return out

"""Wavelet conditional renormalisation group (WCRG) energy models: p(x) = p(x_J) Π_j p(x̄_j | x_j),
each factor an exponential family of the same feature family with its own θ, fitted scale by
scale (the fit of one factor: :func:`explorer.core.fit.fit_factor`), sampled coarse to fine, saved
to one ``.npz`` (JSON header + θ arrays, never unpickled). See docs/models.md, "Wavelet
conditional RG" and "Spectral support"."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.evaluation import shared_evaluation
from explorer.core.features import (FAMILY_DATA_OPTIONS, Features, features_from_spec, fit_range,
                                    make_features)
from explorer.core.fields.base import FieldSet, as_batch
# the fit's checks are re-exported here, where callers found them before explorer.core.fit.policy
from explorer.core.fit import (DEFINITE_MARGIN, DEGENERATE_KAPPA, boundedness_check,
                               couplings_block, fit_factor, fit_warnings, gaussian_start,
                               quadratic_base_check)
from explorer.core.fit import variances
from explorer.core.io import json_default
from explorer.core.progress import Progress, run, should_stop
from explorer.core.sampling import iter_langevin
from explorer.core.tempering import (MIN_SIGN_CROSSING, RARE_SIGN_CROSSING, coarse_magnetisation,
                                     crossing_depth, geometric_ladder, iter_tempered,
                                     sign_crossing)
from explorer.core.support import DEFAULT_FLOOR, SpectralSupport

__all__ = ["WCRGModel", "ScaleModel", "UnboundedModelError", "unbounded_factors", "factor_name",
           "DEEPEST_DEPTH_GENERATORS", "max_depth", "default_depth", "crossing_depth",
           "RARE_SIGN_CROSSING", "FORMAT", "VERSION",
           # re-exported from explorer.core.fit
           "DEFINITE_MARGIN", "DEGENERATE_KAPPA", "boundedness_check", "fit_factor", "fit_warnings",
           "gaussian_start", "quadratic_base_check",
           # from explorer.core.tempering
           "MIN_SIGN_CROSSING", "sign_crossing"]

FORMAT = "explorer-wcrg-model"
VERSION = 1


@dataclass
class ScaleModel:
    """One factor: the coarse p(x_J) (``j = J``, level depth0) or a conditional p(xbar_j | x_j)."""

    j: int
    level: str  # "depth0" (coarse factor) or "conditional"
    features: Features
    theta: np.ndarray
    fit: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.features.names)

    def energy(self, v, c=None) -> np.ndarray:
        return self.features.energy(self.theta, v, c)

    def grad(self, v, c=None) -> np.ndarray:
        return self.features.energy_grad(self.theta, v, c)

    def to_dict(self) -> dict:
        return {"j": self.j, "level": self.level, "spec": self.features.spec,
                "theta": dict(zip(self.names, map(float, self.theta))), "fit": self.fit}


def _shared_energy_and_grad(m: ScaleModel, cond):
    """(energy, grad) callables for the sampler that share one evaluation (for the phi4 family
    both need the same reconstruction of the finer field): :func:`shared_evaluation`."""
    return shared_evaluation(lambda v: m.features.energy_and_grad(m.theta, v, cond),
                             lambda v: m.grad(v, cond))


def _projected_energy_and_grad(m: ScaleModel, project, sigma: float):
    """(energy, grad) of U(P v) + |v - P v|² / (2 σ²) for a factor without conditioning: exactly
    the fitted law on the support P (the directions the data have power in), and an independent
    Gaussian of the data's scale off it, which is projected out of the samples. Without it a
    direction the data never visit (e.g. the mean of zero-mean data) follows whatever curvature
    the fit left there, possibly negative: a slow runaway."""
    inv = 1.0 / float(sigma) ** 2

    def both(v):
        pv = project(v)
        r = v - pv
        e, g = m.features.energy_and_grad(m.theta, pv, None)
        return e + 0.5 * inv * (r * r).sum(axis=(-2, -1)), project(g) + inv * r

    return shared_evaluation(both)


def unbounded_factors(model: WCRGModel) -> list[tuple[str, str]]:
    """(factor name, reason) of every factor the fit found not bounded below."""
    out = []
    for f in model.factors():
        b = f.fit.get("bounded")
        q = f.fit.get("quadratic_base") or {}
        if b is not None and b.get("bounded") is False:
            out.append((factor_name(model, f), b.get("reason", "")))
        elif b is None and q.get("indefinite"):
            out.append((factor_name(model, f), "its quadratic couplings are indefinite "
                        f"(lambda_min <= {q.get('ritz_min', float('nan')):.3g})"))
    return out


def factor_name(model: WCRGModel, f: ScaleModel) -> str:
    return (f"scale {f.j} (coarsest, {model.stats['L'] >> model.J}x{model.stats['L'] >> model.J})"
            if f.level == "depth0" else f"scale {f.j} (conditional)")


#: data whose spectrum keeps rising towards large scales (a massless power law, turbulence's
#: peaked low band): a short-range coarse factor fits them only when it is small, so their depth
#: is the deepest (at depth 2 the Gaussian asset's 16x16 coarse factor fits an energy unbounded
#: below, which sampling refuses)
DEEPEST_DEPTH_GENERATORS = ("gaussian", "turbulence", "phi4")


def max_depth(L: int) -> int:
    """Deepest WCRG depth offered for L x L fields: a coarse field of at least 4 x 4."""
    return max(0, min(wv.max_levels(L), int(np.log2(L)) - 2))


def default_depth(L: int, generator: str | None = None, fields: np.ndarray | None = None) -> int:
    """The depth the app and the command line start from: the deepest (a 4 x 4 coarse field) for
    ``DEEPEST_DEPTH_GENERATORS``, otherwise 2, within :func:`max_depth`. For φ⁴ at 64² the
    deepest is both more accurate and cheaper than depth 2 on either side of β_c (64 samples,
    100 steps per scale: Binder U 0.603 vs 0.652 against the data's 0.608 at β_c, spectrum 0.031
    vs 0.53 at β = 0.76); its ordered-phase coarse factor is sampled with exact sign flips
    (docs/models.md, "Across the phase diagram"). Given the φ⁴ ``fields``, the deepest depth
    outside the rare-crossing band (:func:`crossing_depth`)."""
    jmax = max_depth(L)
    if generator == "phi4" and fields is not None and jmax >= 1:
        return crossing_depth(fields, jmax)["depth"]
    return jmax if generator in DEEPEST_DEPTH_GENERATORS else min(2, jmax)


#: starts of the coarse chains of :meth:`WCRGModel.iter_sample`
COARSE_STARTS = ("magnetised", "noise")


class UnboundedModelError(ValueError):
    """Sampling refused: a factor of the model is not bounded below."""


class WCRGModel:
    """A WCRG model of (family, J, wavelet, options).

    The coarsest field x_J (side L / 2^J) gets the family's depth-0 features, each conditional
    p(x̄_j | x_j) its conditional features on the reconstructed finer field x_{j-1}, varying in
    the details only; J = 0 is the single-scale model, through the same code. θ is in the units
    of the data; the per-scale standard deviations σ_j are recorded in ``stats`` (the samplers'
    initial noise and runaway scale; docs/models.md, "Per-scale normalisation σ_j"). Modes off
    the data's spectral support are completed for the fit and projected out of the samples
    (:mod:`explorer.core.support`; ``support_floor=None`` turns this off).
    """

    def __init__(self, family: str = "phi4", J: int = 0, wavelet: str = wv.DEFAULT_WAVELET,
                 support_floor: float | None = DEFAULT_FLOOR, **options):
        if not isinstance(J, (int, np.integer)) or J < 0:
            raise ValueError(f"the depth J must be a non-negative integer, got {J!r}")
        self.family = family
        self.J = int(J)
        self.wavelet = wv.check_wavelet(wavelet)
        self.options = dict(options)
        if support_floor is not None and not 0.0 <= float(support_floor) < 1.0:
            raise ValueError(f"support_floor must be in [0, 1) or None, got {support_floor!r}")
        self.support_floor = None if support_floor is None else float(support_floor)
        self.support: SpectralSupport | None = None
        make_features(family, level="depth0", L=None, wavelet=self.wavelet,
                      **self._options_for(None))  # validates family and options early
        self.coarse: ScaleModel | None = None
        self.conditionals: list[ScaleModel] = []  # index j-1 for j = 1..J
        self.stats: dict[str, Any] = {}
        self.provenance: dict[str, Any] = {}

    # -------------------------------------------------------------- features per scale
    def _options_for(self, fine: np.ndarray | None, level: str = "depth0") -> dict:
        opts = dict(self.options)
        if opts.get("potential") == "windows" and ("vmin" not in opts or "vmax" not in opts):
            lo, hi = fit_range(fine) if fine is not None else (-1.0, 1.0)
            opts.setdefault("vmin", lo)
            opts.setdefault("vmax", hi)
        hook = FAMILY_DATA_OPTIONS.get(self.family)
        if hook is not None and fine is not None:
            opts = hook(opts, level, fine, self.wavelet)
        return opts

    def _support_projector(self, level: str):
        """Projector onto the data's spectral support for a factor's variables, or None: the
        support itself at depth 0, and the removal of the mean for the coarse factor of a deeper
        model when the data have no mean mode (a zero-mean data set). Details carry no mean."""
        sup = self.support
        if sup is None or level != "depth0":
            return None
        if self.J == 0:
            return sup.project
        if sup.mask[0, 0]:
            return None
        return lambda w: w - w.mean(axis=(-2, -1), keepdims=True)

    @property
    def fitted(self) -> bool:
        return self.coarse is not None

    def factors(self) -> list[ScaleModel]:
        """Coarse factor first, then conditionals from coarse (j = J) to fine (j = 1)."""
        return [self.coarse, *reversed(self.conditionals)] if self.fitted else []

    # -------------------------------------------------------------- fitting
    def iter_fit(self, fields: np.ndarray, method: str = "score", ridge: float = 1e-6,
                 batch_size: int = 16, ml_iterations: int = 100, ml_steps: int = 10,
                 seed: int = 0, stop: threading.Event | None = None,
                 provenance: dict | None = None, ml_refine: int | None = None,
                 ml_refine_iterations: int = 30, refine_variances: bool = False,
                 min_sign_crossing: float = MIN_SIGN_CROSSING) -> Iterator[Progress]:
        """Fit every factor; yields one report per factor, the last one carrying ``self``.

        ``ml_refine=j0`` (score matching only): every conditional with j >= j0, and the coarse
        factor of a model of depth J >= 1 whose coarse data cross zero (``stats[
        "coarse_sign_crossing"] >= min_sign_crossing``), is refined by a few maximum-likelihood
        steps from the score-matching theta (:func:`explorer.core.fit.refine_maximum_likelihood`).
        Single-signed coarse data keep the score-matching coarse factor: their feature moments
        are dominated by the magnetisation and barely see the within-field fluctuations
        (measured: the refinement doubled the coarse fluctuations of 32² data at beta 0.76). The fit of each factor, its checks and warnings:
        :func:`explorer.core.fit.fit_factor`.

        ``min_sign_crossing`` (``phi4`` polynomial potential, score matching): a conditional whose
        data cross zero, given their condition, at fewer than this fraction of sites
        (:func:`sign_crossing`) keeps its polynomial potential at 0 — the data show only one
        well, so the height and width of the barrier of a fitted double well would be pure
        extrapolation (docs/fitting.md, "Blindness to mode weights"); 0 never does this.

        ``refine_variances``: then the on-site couplings and the potential of the coarsest
        conditionals are refined on coarse fields the model generates
        (:func:`explorer.core.fit.variances.refine_variances`, seed ``100 + seed``), recorded in
        ``provenance["refine_variances"]`` (``{"skipped": reason}`` where it cannot apply).
        """
        if method not in ("score", "ml"):
            raise ValueError(f"method must be 'score' or 'ml', got {method!r}")
        x = as_batch(fields, "fit data")
        L = x.shape[-1]
        wv.check_size(L, self.J)
        t0 = time.perf_counter()
        self.support = None
        if self.support_floor is not None:
            sup = SpectralSupport.of(x, self.support_floor)
            if not sup.complete:
                self.support = sup
                x = sup.completed(x, np.random.default_rng([seed, 1]))
        lows = wv.low_passes(x, self.J, self.wavelet)
        _, details = wv.decompose(x, self.J, self.wavelet) if self.J else (x, [])
        st = wv.scale_stats(x, self.J, self.wavelet) if self.J else None
        self.stats = {"L": L, "n_fields": len(x),
                      "detail_std": [] if st is None else [float(s) for s in st.detail_std],
                      "detail_std_channels": ([] if st is None
                                              else st.detail_std_channels.tolist()),
                      "coarse_mean": float(lows[-1].mean()), "coarse_std": float(lows[-1].std()),
                      **coarse_magnetisation(lows[-1]),
                      "low_rms": [float(np.sqrt(np.mean(w * w))) for w in lows],
                      "support": None if self.support is None else self.support.summary()}
        self.provenance = dict(provenance or {})
        total = self.J + 1 + (len(variances.default_levels(self.J)) if refine_variances else 0)
        conditionals: list[ScaleModel] = []
        plan = [(j, "conditional") for j in range(1, self.J + 1)] + [(self.J, "depth0")]
        for i, (j, level) in enumerate(plan):
            if should_stop(stop):
                yield Progress(i, total, "fit", done=True, stopped=True)
                return
            fixed: list[int] = []
            crossing = None
            if level == "conditional":
                fine, v, c = lows[j - 1], details[j - 1], lows[j]
                side = fine.shape[-1]
                crossing = sign_crossing(fine, c, self.wavelet)
            else:
                fine = v = lows[self.J]
                c = None
                side = v.shape[-1]
            feats = make_features(self.family, level=level, L=side, wavelet=self.wavelet,
                                  **self._options_for(fine, level))
            if (crossing is not None and crossing < min_sign_crossing and method == "score"
                    and self.family == "phi4" and self.options.get("potential",
                                                                   "polynomial") == "polynomial"):
                fixed = list(range(couplings_block(feats)[0].n_features, feats.n_features))
            theta, summary = fit_factor(
                feats, v, c, method=method, ridge=ridge, batch_size=batch_size,
                ml_iterations=ml_iterations, ml_steps=ml_steps,
                ml_refine=ml_refine is not None and (
                    level == "conditional" and j >= ml_refine
                    or level == "depth0" and self.J >= 1
                    and self.stats["coarse_sign_crossing"] >= min_sign_crossing),
                ml_refine_iterations=ml_refine_iterations, seed=seed + j, stop=stop,
                project=self._support_projector(level), fixed_zero=fixed)
            if crossing is not None:
                summary["sign_crossing"] = crossing
                summary["potential_held_at_zero"] = bool(fixed)
            warns = summary["warnings"]
            sm_model = ScaleModel(j, level, feats, theta, summary)
            if level == "conditional":
                conditionals.append(sm_model)
            else:
                self.coarse = sm_model
            name = f"scale {j} ({'coarsest' if level == 'depth0' else 'conditional'})"
            info = {"scale": name, "parameters": len(theta), "seconds": summary["seconds"]}
            if warns:
                info["warning"] = "; ".join(warns)
            yield Progress(i + 1, total, "fit", info=info)
        self.conditionals = conditionals
        if refine_variances:
            yield from self._refine_variances(x, seed, stop, total)
            if self.provenance["refine_variances"].get("stopped"):
                yield Progress(total, total, "fit", done=True, stopped=True)
                return
        self.provenance["fit_seconds"] = time.perf_counter() - t0
        self.provenance["method"] = method
        self.provenance["ml_refine"] = ml_refine
        yield Progress(total, total, "done", done=True, result=self)

    def _refine_variances(self, x: np.ndarray, seed: int, stop, total: int) -> Iterator[Progress]:
        """The fit's variance refinement (:func:`~.fit.variances.iter_refine_variances`), one
        report per level; its record in ``provenance["refine_variances"]`` (``{"skipped":
        reason}`` where it cannot apply, ``"stopped": True`` where ``stop`` was set)."""
        step = self.J + 1
        try:
            for j, rec in variances.iter_refine_variances(self, x, seed=100 + seed, stop=stop):
                if j is None:
                    self.provenance["refine_variances"] = rec
                    return
                step += 1
                yield Progress(step, total, "fit", info={"kept": bool(rec.get("kept")), "scale":
                                                         f"scale {j} (variances on generated "
                                                         f"fields)"})
        except ValueError as e:
            self.provenance["refine_variances"] = {"skipped": str(e)}

    def fit(self, fields, callback=None, **kwargs) -> WCRGModel:
        return run(self.iter_fit(fields, **kwargs), callback, allow_partial=False)

    # -------------------------------------------------------------- energies
    def _check_fitted(self):
        if not self.fitted:
            raise RuntimeError("the model is not fitted yet")

    def scale_energies(self, fields: np.ndarray) -> dict[str, np.ndarray]:
        """Energy of each factor at each field: ``{"coarse": (N,), "j=1": (N,), ...}``.

        For J = 0 ``coarse`` is the energy of the single-scale model (up to one constant).  For
        J >= 1 the sum of the factors is the full energy only up to the free energies log Z_j(x_j),
        which are not fitted: the factors are reported separately.
        """
        self._check_fitted()
        x = as_batch(fields)
        if x.shape[-1] != self.stats["L"]:
            raise ValueError(f"the model was fitted on {self.stats['L']}x{self.stats['L']} fields, "
                             f"got {x.shape[-1]}x{x.shape[-1]}")
        lows = wv.low_passes(x, self.J, self.wavelet)
        out = {"coarse": self.coarse.energy(lows[-1])}
        if self.J:
            _, details = wv.decompose(x, self.J, self.wavelet)
            for m in self.conditionals:
                out[f"j={m.j}"] = m.energy(details[m.j - 1], lows[m.j])
        return out

    # -------------------------------------------------------------- sampling
    def iter_sample(self, n: int, steps: int = 200, burn_in: int = 200, method: str = "mala",
                    seed: int = 0, stop: threading.Event | None = None,
                    report_every: int = 10, coarse_boost: int = 16, detail_boost: int = 1,
                    allow_unbounded: bool = False, coarse_start: str = "magnetised",
                    sign_flip: bool | None = None, temperatures: int | None = None,
                    t_max: float = 64.0, size: int | None = None) -> Iterator[Progress]:
        """Coarse-to-fine sampling; the final report carries a FieldSet of n fields.

        ``steps`` and ``burn_in`` are per scale at the finest scale. The coarse factor (4^J times
        fewer variables) gets min(coarse_boost, 4^J) times more (cheap, and its large-scale,
        non-convex structure is where the mixing is slow); a conditional j gets
        min(detail_boost, 4^(j-1)) times more, by default 1: their relaxation from the noise start
        takes about as many MALA steps at every scale (critical phi^4 64^2, depth 4: integrated
        autocorrelation times of the per-orientation detail variances 45-60 steps at j = 1..4,
        docs/sampling.md, "Steps per scale"), so more steps at coarse j bought nothing
        (``detail_boost=16`` is the earlier schedule).

        Refused (:class:`UnboundedModelError`, before any work) when the fit found a factor not
        bounded below, unless ``allow_unbounded``. Each scale's chains are stopped as runaways
        when their RMS leaves the data's std at that scale (:func:`~explorer.core.sampling.
        x_limit_sigmas`), and raise when they froze (acceptance far below target or a collapsed
        step): no diverged or frozen chains are returned as samples.

        The coarse factor (J >= 1, MALA): its chains start at ``coarse_start="magnetised"``
        fields, a random sign times the data's RMS magnetisation of x_J plus noise of the data's
        within-field standard deviation (``"noise"``: the pooled mean and std, as before), and
        every step adds an exact sign flip x_J -> -x_J with probability 1/2 when the factor is
        even (``sign_flip`` None; False never, True requires it): MALA keeps a magnetised coarse
        field in its basin and the flip gives the two signs the weights 1/2 exactly.
        ``temperatures`` > 1 adds replica exchange on a geometric ladder up to ``t_max``
        (:mod:`explorer.core.tempering`; docs/sampling.md, "Separated modes"); None (auto): 8
        temperatures when the data's coarse fields cross zero (``stats["coarse_sign_crossing"]``
        >= MIN_SIGN_CROSSING: the model has seen the barrier, its global law is trusted and
        replica exchange samples it) for the ``phi4`` family, 1 otherwise (single-signed data:
        the fitted factor is trusted in the basin of the data only, which MALA from the
        magnetised start samples; other families: plain MALA + flips).

        ``size``: the side of the fields to generate; None or the fitted side: as fitted; 2^k
        times it: the size transfer of :func:`explorer.core.transfer.transferred` (conditionals
        reused, k levels added from the coarsest conditional, the coarse factor rescaled), with
        what was extrapolated recorded in the samples' ``meta["size_transfer"]``.
        """
        if size is not None and int(size) != self.stats.get("L"):
            self._check_fitted()
            from explorer.core.transfer import transferred
            big = transferred(self, int(size))
            for rep in big.iter_sample(n, steps=steps, burn_in=burn_in, method=method, seed=seed,
                                       stop=stop, report_every=report_every,
                                       coarse_boost=coarse_boost, detail_boost=detail_boost,
                                       allow_unbounded=allow_unbounded, coarse_start=coarse_start,
                                       sign_flip=sign_flip, temperatures=temperatures,
                                       t_max=t_max):
                if rep.done and isinstance(rep.result, FieldSet):
                    rep.result.meta["size_transfer"] = big.stats["size_transfer"]
                    rep.result.meta["params"]["size"] = int(size)
                yield rep
            return
        self._check_fitted()
        if n < 1:
            raise ValueError(f"the number of samples must be at least 1, got {n}")
        if int(coarse_boost) < 1 or int(detail_boost) < 1:
            raise ValueError(f"coarse_boost and detail_boost must be at least 1, got "
                             f"{coarse_boost}, {detail_boost}")
        if coarse_start not in COARSE_STARTS:
            raise ValueError(f"coarse_start must be one of {COARSE_STARTS}, got {coarse_start!r}")
        if temperatures is None:
            crossing = self.stats.get("coarse_sign_crossing", 0.0)
            temperatures = 8 if self.family == "phi4" and crossing >= MIN_SIGN_CROSSING else 1
        ladder = geometric_ladder(temperatures, t_max)
        bad = unbounded_factors(self)
        if bad and not allow_unbounded:
            where = "; ".join(f"{name}: {why}" for name, why in bad)
            raise UnboundedModelError(
                f"refusing to sample: the fitted energy is not bounded below at {where}. Refit "
                "with another depth, a smaller coupling radius, the default support floor or "
                "another family (or allow it explicitly for experiments: --allow-unbounded)")
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        L = self.stats["L"]
        Lc = L >> self.J
        tempered = method == "mala" and self.J >= 1
        per_scale = []
        if coarse_start == "magnetised" and "coarse_m_rms" in self.stats:
            sign = rng.choice([-1.0, 1.0], size=(n, 1, 1))
            q = self.stats.get("coarse_abs_m_quantiles")
            m0 = (np.interp(rng.random((n, 1, 1)), np.linspace(0, 1, len(q)), q) if q
                  else self.stats["coarse_m_rms"])
            x0 = (sign * m0
                  + self.stats["coarse_within_std"] * rng.standard_normal((n, Lc, Lc)))
        else:
            x0 = (self.stats["coarse_mean"]
                  + self.stats["coarse_std"] * rng.standard_normal((n, Lc, Lc)))
        stages = [(self.coarse, None)] + [(m, m.j) for m in reversed(self.conditionals)]
        x = None
        for idx, (m, j) in enumerate(stages):
            label = f"scale {self.J} (coarsest)" if j is None else f"scale {j}"
            if j is None:
                v0, cond = x0, None
                sigma = float(np.hypot(self.stats["coarse_mean"], self.stats["coarse_std"]))
            else:
                sigma = self.stats["detail_std"][j - 1]
                v0 = sigma * rng.standard_normal((n, 3, x.shape[-1], x.shape[-1]))
                cond = x
            boost = (min(coarse_boost, 4 ** self.J) if j is None
                     else min(detail_boost, 4 ** (j - 1)))
            proj = self._support_projector(m.level)
            energy, grad = (_shared_energy_and_grad(m, cond) if proj is None
                            else _projected_energy_and_grad(m, proj, sigma))
            result = None
            chain_seed = int(rng.integers(2**31))
            if j is None and tempered:
                runner = iter_tempered(energy, grad, v0, n_steps=steps * boost,
                                       burn_in=burn_in * boost, temperatures=ladder,
                                       flip=sign_flip,
                                       seed=chain_seed, report_every=report_every, stop=stop,
                                       label=label, x_scale=sigma if sigma > 0 else None)
            else:
                runner = iter_langevin(energy, grad, v0, n_steps=steps * boost,
                                       burn_in=burn_in * boost,
                                       method=method, seed=chain_seed,
                                       report_every=report_every, stop=stop, label=label,
                                       x_scale=sigma if sigma > 0 else None)
            for rep in runner:
                if rep.done:
                    result = rep.result
                    break
                snap = rep.snapshot
                if j is not None and snap is not None:
                    snap = wv.synthesis(cond[:1], snap[None].astype(np.float64), self.wavelet)[0]
                if snap is not None and self.support is not None and snap.shape[-1] == L:
                    snap = self.support.project(snap)
                yield Progress(rep.step, rep.total, rep.stage,  # "scale j: burn-in" / ": sampling"
                               snapshot=None if snap is None else np.asarray(snap, np.float32),
                               info={**rep.info, "scale_index": idx, "n_scales": len(stages)})
            if result is None or result.stopped:
                yield Progress(idx, len(stages), label, done=True, stopped=True)
                return
            per_scale.append({"scale": label, "acceptance": float(result.acceptance),
                              "step": float(result.step), "initial_step": float(result.initial_step),
                              "gradient_evaluations": int(result.n_grad),
                              "rms_ratio": (float(np.sqrt(np.mean(result.x ** 2)) / sigma)
                                            if sigma > 0 else None),
                              "recovered": bool(result.recovered),
                              **({"sampler": ("MALA + sign flips" if len(result.temperatures) == 1
                                              else "replica exchange + sign flips"),
                                  "temperatures": result.temperatures,
                                  "swap_rate": result.swap_rate, "sign_flip": result.flip}
                                 if j is None and tempered else {})})
            x = result.x if j is None else wv.synthesis(cond, result.x, self.wavelet)
        if self.support is not None:
            x = self.support.project(x)
        meta = {"generator": "wcrg-sample",
                "params": {"family": self.family, "J": self.J, "wavelet": self.wavelet,
                           "steps": steps, "burn_in": burn_in, "method": method, "n": n,
                           "coarse_start": coarse_start, "temperatures": temperatures,
                           "allow_unbounded": bool(allow_unbounded), "unbounded": bad},
                "seed": seed,
                "sampling": {"scales": per_scale, "seconds": time.perf_counter() - t0,
                             "gradient_evaluations": sum(s["gradient_evaluations"] for s in per_scale)},
                "model": {"family": self.family, "J": self.J, "provenance": self.provenance}}
        yield Progress(len(stages), len(stages), "done", snapshot=np.asarray(x[0], np.float32),
                       done=True, result=FieldSet(np.asarray(x, np.float32), meta))

    def sample(self, n: int, callback=None, **kwargs) -> FieldSet:
        return run(self.iter_sample(n, **kwargs), callback, allow_partial=False)

    # -------------------------------------------------------------- summary, save, load
    def summary(self) -> dict:
        self._check_fitted()
        return {"family": self.family, "J": self.J, "wavelet": self.wavelet,
                "options": self.options, "support_floor": self.support_floor,
                "stats": self.stats, "provenance": self.provenance,
                "scales": [f.to_dict() for f in self.factors()],
                "parameters_per_scale": {f"j={f.j}" if f.level == "conditional" else "coarse":
                                         len(f.theta) for f in self.factors()}}

    def save(self, path: str | Path) -> Path:
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"a model is saved as .npz, got {path.name!r}")
        header = {"format": FORMAT, "version": VERSION, **self.summary()}
        arrays = {"theta_coarse": self.coarse.theta}
        arrays.update({f"theta_j{m.j}": m.theta for m in self.conditionals})
        if self.support is not None:
            arrays.update(support_mask=self.support.mask, support_fill=self.support.fill)
        with open(path, "wb") as fh:
            np.savez(fh, header=np.array(json.dumps(header, default=json_default)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> WCRGModel:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"][()]))
                thetas = {k: np.array(z[k], dtype=np.float64) for k in z.files if k != "header"}
                support = ((np.array(z["support_mask"], dtype=bool), thetas.pop("support_fill"))
                           if "support_mask" in z.files else None)
                thetas.pop("support_mask", None)
        except FileNotFoundError:
            raise ValueError(f"Cannot load model '{path}': no such file.") from None
        except KeyError as e:
            raise ValueError(f"Cannot load model '{path}': not a model file "
                             f"({e.args[0] if e.args else e}).") from None
        except (OSError, ValueError, json.JSONDecodeError) as e:
            raise ValueError(f"Cannot load model '{path}': not a model file ({e}).") from None
        if header.get("format") != FORMAT:
            raise ValueError(f"Cannot load model '{path}': not an explorer WCRG model file.")
        m = cls(header["family"], header["J"], header["wavelet"],
                support_floor=header.get("support_floor"), **header.get("options", {}))
        m.stats, m.provenance = header["stats"], header.get("provenance", {})
        try:
            m.support = None if support is None else SpectralSupport(*support)
        except ValueError as e:
            raise ValueError(f"Cannot load model '{path}': {e}.") from None
        if m.support is not None and m.support.mask.shape != (m.stats["L"],) * 2:
            raise ValueError(f"Cannot load model '{path}': its spectral support does not match "
                             f"the {m.stats['L']}x{m.stats['L']} fields it was fitted on.")
        for s in header["scales"]:
            feats = features_from_spec(s["spec"])
            key = "theta_coarse" if s["level"] == "depth0" else f"theta_j{s['j']}"
            sm = ScaleModel(s["j"], s["level"], feats, thetas[key], s.get("fit", {}))
            if s["level"] == "depth0":
                m.coarse = sm
            else:
                m.conditionals.append(sm)
        m.conditionals.sort(key=lambda f: f.j)
        return m

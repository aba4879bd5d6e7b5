"""Wavelet conditional renormalisation group (WCRG) energy models (SCIENCE.md §4).

p(x) = p(x_J) prod_{j=1..J} p(xbar_j | x_j), each factor an exponential family with the same feature
family and its own theta:
  * the coarsest field x_J (side L / 2^J) gets the depth-0 features of the family;
  * each conditional p(xbar_j | x_j) gets the family's conditional features, evaluated on the
    reconstructed finer field x_{j-1} = W^-1(x_j, xbar_j), varying in the details xbar_j only.
Depth J = 0 is the ordinary single-scale model and runs through the same code (only the coarse
factor, on the pixel field).

Fitting: score matching (default) or maximum likelihood, scale by scale.  Sampling: coarse to fine,
MALA (or ULA) at each scale given the coarser field, then reconstruction.  Units: the wavelet
transform is orthogonal and not normalised, so theta is in the units of the field as given; the
per-scale standard deviations sigma_j are recorded (they set the sampler's initial noise and are
the constant Jacobian of the normalised variables xbar_j / sigma_j used in the talk).

Saved as one ``.npz``: a JSON ``header`` (family, depth, wavelet, options, per-scale feature specs,
names, fit summaries, scale statistics, provenance) and one float64 theta array per factor.  Loading
never unpickles.

Spectral support (:mod:`explorer.core.support`): modes where the data have (almost) no power, e.g.
beyond a spectral solver's dealiasing band, are completed with independent Gaussian noise for
fitting and sampling and projected out of the samples; ``support_floor=None`` turns this off.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.linalg import lanczos_extremes
from explorer.core.features import (FAMILY_DATA_OPTIONS, FeatureSum, Features, PolynomialBasis,
                                    QuadraticCouplings, ScalarPotential, features_from_spec,
                                    fit_range, make_features)
from explorer.core.fields.base import FieldSet
from explorer.core.fit import (fit_score_matching, iter_maximum_likelihood, refine_maximum_likelihood,
                               solve_score_matching_nonnegative)
from explorer.core.io import json_default
from explorer.core.progress import Progress, run, should_stop
from explorer.core.sampling import iter_langevin
from explorer.core.support import DEFAULT_FLOOR, SpectralSupport

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
    """(energy, grad) callables for the sampler that share one evaluation: the sampler asks for
    the energy and then the gradient of the same proposal, and for the phi4 family both need the
    same reconstruction of the finer field."""
    last: dict[str, Any] = {}

    def energy(v):
        e, g = m.features.energy_and_grad(m.theta, v, cond)
        last["v"], last["g"] = v, g
        return e

    def grad(v):
        if last.get("v") is v:
            return last["g"]
        return m.grad(v, cond)

    return energy, grad


def _projected_energy_and_grad(m: ScaleModel, project, sigma: float):
    """(energy, grad) of U(P v) + |v - P v|² / (2 σ²) for a factor without conditioning: exactly
    the fitted law on the support P (the directions the data have power in), and an independent
    Gaussian of the data's scale off it, which is projected out of the samples. Without it a
    direction the data never visit (e.g. the mean of zero-mean data) follows whatever curvature
    the fit left there, possibly negative: a slow runaway."""
    inv = 1.0 / float(sigma) ** 2
    last: dict[str, Any] = {}

    def both(v):
        pv = project(v)
        r = v - pv
        e, g = m.features.energy_and_grad(m.theta, pv, None)
        return e + 0.5 * inv * (r * r).sum(axis=(-2, -1)), project(g) + inv * r

    def energy(v):
        e, g = both(v)
        last["v"], last["g"] = v, g
        return e

    def grad(v):
        if last.get("v") is v:
            return last["g"]
        return both(v)[1]

    return energy, grad


def quadratic_base_check(features: Features, theta: np.ndarray, v: np.ndarray,
                         c: np.ndarray | None = None, steps: int = 40,
                         project=None) -> dict | None:
    """Is the energy bounded below? Decided by the positive definiteness of its quadratic part
    when that part dominates: the whole energy of a purely quadratic set (``gaussian``), or the
    first block of a staged set whose other terms grow at most linearly (``base_decides_bound``,
    the ``scattering`` family without products). None for other sets (e.g. a quartic potential,
    whose negative curvature near the data is the physics, not a defect).

    Lanczos (``steps`` HVPs at the first configuration; the Hessian of a quadratic is constant):
    ``indefinite`` True proves a negative eigenvalue, i.e. an energy unbounded below that no
    sampler can sample; False means none was found.

    ``project``: orthogonal projector onto the directions the model lives on (the data's spectral
    support, e.g. without the mean of a zero-mean data set); curvature off it does not count."""
    if isinstance(features, QuadraticCouplings):
        F, th = features, np.asarray(theta)
    elif getattr(features, "base_decides_bound", False) and isinstance(features.blocks[0],
                                                                       QuadraticCouplings):
        F = features.blocks[0]
        th = np.asarray(theta)[: F.n_features]
    else:
        return None
    return _couplings_check(F, th, v, c, steps, project)


def _couplings_check(F: QuadraticCouplings, th, v, c, steps: int = 40, project=None) -> dict:
    v1 = np.asarray(v, np.float64)[:1]
    c1 = None if c is None else np.asarray(c, np.float64)[:1]
    lo, hi = lanczos_extremes(lambda w: F.hvp(th, v1, w, c1), v1.shape[1:], steps)
    if project is not None:
        # P H P on the support, the largest curvature off it: the directions the model does not
        # live on can neither be the softest nor hide a negative eigenvalue
        shift = max(abs(hi), abs(lo), 1e-300)

        def hvp(w):
            pw = project(w)
            return project(F.hvp(th, v1, pw, c1)) + shift * (w - pw)

        lo, hi = lanczos_extremes(hvp, v1.shape[1:], steps)
    return {"ritz_min": lo, "ritz_max": hi, "indefinite": bool(lo < 0)}


def boundedness_check(features: Features, theta: np.ndarray, v: np.ndarray,
                      c: np.ndarray | None = None, project=None) -> dict:
    """Is the factor's energy bounded below, i.e. is exp(-U) a probability density at all?

    Returns {"bounded": True | False | None, "reason": str, ...}:
      * a polynomial scalar potential with a non-zero coefficient decides by its leading term: an
        even power with a positive coefficient dominates every quadratic coupling (bounded); an odd
        leading power or a negative leading coefficient sends U to -inf along a constant field (or
        along any detail vector, in a conditional);
      * otherwise the quadratic couplings decide when every other term is bounded or grows at
        most linearly (``gaussian``; ``phi4`` with windows or a zero potential; ``scattering``
        without products): Lanczos on the couplings (:func:`quadratic_base_check`);
      * None when neither applies (nothing proven either way).
    ``project`` as in :func:`quadratic_base_check`.
    """
    theta = np.asarray(theta, np.float64)
    blocks = features.blocks if isinstance(features, FeatureSum) else [features]
    offsets = np.cumsum([0] + [b.n_features for b in blocks])
    for b, a in zip(blocks, offsets[:-1]):
        if isinstance(b, ScalarPotential) and isinstance(b.basis, PolynomialBasis):
            coef = theta[a: a + b.n_features]
            nz = [(p, t, n) for p, t, n in zip(b.basis.powers, coef, b.names) if t != 0.0]
            if nz:
                p, t, name = max(nz)
                if p % 2 == 0 and t > 0:
                    return {"bounded": True, "reason": f"leading potential term {name} has "
                            f"coefficient {t:.3g} > 0", "leading": name, "coefficient": float(t)}
                why = "an odd power" if p % 2 else f"a negative coefficient {t:.3g}"
                return {"bounded": False, "leading": name, "coefficient": float(t),
                        "reason": f"the leading potential term {name} has {why}, so the energy "
                                  "falls to -inf for large fields"}
    check = quadratic_base_check(features, theta, v, c, project=project)
    if isinstance(features, FeatureSum) and check is None:
        # couplings plus bounded one-point terms (windows, or a polynomial fitted to zero)
        quad = [b for b in blocks if isinstance(b, QuadraticCouplings)]
        others_bounded = all(isinstance(b, (QuadraticCouplings, ScalarPotential)) for b in blocks)
        if len(quad) == 1 and others_bounded:
            a = int(offsets[blocks.index(quad[0])])
            check = _couplings_check(quad[0], theta[a: a + quad[0].n_features], v, c,
                                     project=project)
    if check is None:
        return {"bounded": None, "reason": "not decided by the couplings or a polynomial "
                                           "potential"}
    if check["indefinite"]:
        return {"bounded": False, "ritz_min": check["ritz_min"],
                "reason": f"its quadratic couplings are indefinite (lambda_min <= "
                          f"{check['ritz_min']:.3g})"}
    return {"bounded": True, "ritz_min": check["ritz_min"],
            "reason": "its quadratic couplings are positive definite"}


#: score-matching systems whose Jacobi-preconditioned condition number exceeds this are degenerate
#: (features nearly collinear on the data: e.g. a field of a few distinct values, where phi^2 and
#: phi^4 are constants)
DEGENERATE_KAPPA = 1e12


def fit_warnings(summary: dict) -> list[str]:
    """Human-readable warnings about one factor's fit (its energy bound, its linear system)."""
    out = []
    b = summary.get("bounded")
    if b is None and (summary.get("quadratic_base") or {}).get("indefinite"):
        b = {"bounded": False, "reason": "its quadratic couplings are indefinite"}
    if b and b.get("bounded") is False:
        out.append(f"energy not bounded below: {b['reason']}; no sampler can sample it")
    kappa = summary.get("kappa_H_preconditioned")
    if kappa is not None and not (np.isfinite(kappa) and kappa < DEGENERATE_KAPPA):
        out.append(f"score-matching system degenerate (kappa(H) = {kappa:.3g} after Jacobi "
                   f"preconditioning, > {DEGENERATE_KAPPA:.0e}): the features are nearly "
                   "collinear on these data, e.g. a field of few distinct values (add small noise "
                   "to dequantise it) or a family too rich for them (choose another)")
    return out


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
DEEPEST_DEPTH_GENERATORS = ("gaussian", "turbulence")


def max_depth(L: int) -> int:
    """Deepest WCRG depth offered for L x L fields: a coarse field of at least 4 x 4."""
    return max(0, min(wv.max_levels(L), int(np.log2(L)) - 2))


def default_depth(L: int, generator: str | None = None) -> int:
    """The depth the app and the command line start from: the deepest for
    ``DEEPEST_DEPTH_GENERATORS``, otherwise 2 (phi4 and unknown data; the coarse phi4 factors of
    the ordered phase are not reliable deeper), within :func:`max_depth`."""
    jmax = max_depth(L)
    return jmax if generator in DEEPEST_DEPTH_GENERATORS else min(2, jmax)


class UnboundedModelError(ValueError):
    """Sampling refused: a factor of the model is not bounded below."""


# The softest curvature of the quadratic part may fall to this fraction of the couplings-alone
# fit's: a Gaussian with these couplings has its softest mode at most 2x wider, the factor the
# per-scale sanity checks allow.
DEFINITE_MARGIN = 0.25


def _definite_path(feats: Features, sm, ridge: float, v, c, summary: dict) -> np.ndarray:
    """Score-matching θ of a staged set whose joint first stage (``feats.stage_first``: the
    quadratic couplings plus bounded one-point terms) may soften the couplings too much.

    θ₁ = ``sm.theta`` (the joint fit, its ``feats.nonnegative`` coefficients kept >= 0); θ₀: the
    couplings fitted alone (their ``feats.stage_base`` parameters), then the rest given them.
    Returns θ₁ when its couplings keep a smallest Ritz value >= DEFINITE_MARGIN × that of θ₀,
    otherwise the point θ₀ + t (θ₁ - θ₀) of the segment with the largest such t (bisection). The
    score-matching loss is convex, so it decreases from θ₀ to θ₁: this is the best fit on the
    segment that stays well posed. Records {"t", "ritz_min_joint", "ritz_min_base"} as
    ``summary["definite_path"]`` when it moves θ."""
    th1 = np.asarray(sm.theta, np.float64)
    th0, _ = solve_score_matching_nonnegative(sm.H, sm.b, feats.stage_base,
                                              getattr(feats, "nonnegative", ()), ridge)
    check0 = quadratic_base_check(feats, th0, v, c)
    if check0 is None or check0["ritz_min"] <= 0:   # couplings do not decide, or cannot help
        return th1
    ritz = lambda th: quadratic_base_check(feats, th, v, c)["ritz_min"]  # noqa: E731
    r0, r1 = check0["ritz_min"], ritz(th1)
    floor = DEFINITE_MARGIN * r0
    if r1 >= floor:
        return th1
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ritz(th0 + mid * (th1 - th0)) >= floor else (lo, mid)
    theta = th0 + lo * (th1 - th0)
    summary.update(definite_path={"t": lo, "ritz_min_joint": r1, "ritz_min_base": r0},
                   theta=dict(zip(feats.names, map(float, theta))),
                   loss=float(0.5 * theta @ sm.H @ theta - theta @ sm.b))
    return theta


def gaussian_start(features: Features, v: np.ndarray) -> np.ndarray:
    """A normalisable starting theta for maximum likelihood: independent Gaussian variables with
    the data's variance (on-site quadratic terms), every other coefficient 0."""
    theta = np.zeros(len(features.names))
    var = float(np.mean(np.asarray(v, np.float64) ** 2))
    for k, name in enumerate(features.names):
        if name == "phi^2/2" or re.fullmatch(r"coupling\[(\w+),\1\]\(0,0\)", name):
            theta[k] = 1.0 / var
        elif name == "phi^2":
            theta[k] = 0.5 / var
    return theta


class WCRGModel:
    """A WCRG model of (family, J, wavelet, options); see the module docstring."""

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
                 ml_refine_iterations: int = 30) -> Iterator[Progress]:
        """Fit every factor; yields one report per factor, the last one carrying ``self``.

        ``ml_refine=j0`` (score matching only): every conditional with j >= j0 is refined by a
        few maximum-likelihood steps from the score-matching theta
        (:func:`explorer.core.fit.refine_maximum_likelihood`); the coarse factor is not.
        """
        if method not in ("score", "ml"):
            raise ValueError(f"method must be 'score' or 'ml', got {method!r}")
        x = np.asarray(fields, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1] != x.shape[2]:
            raise ValueError(f"fit needs square fields (N, L, L), got shape {x.shape}")
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
                      "coarse_mean": float(lows[-1].mean()), "coarse_std": float(lows[-1].std()),
                      "support": None if self.support is None else self.support.summary()}
        self.provenance = dict(provenance or {})
        total = self.J + 1
        conditionals: list[ScaleModel] = []
        plan = [(j, "conditional") for j in range(1, self.J + 1)] + [(self.J, "depth0")]
        for i, (j, level) in enumerate(plan):
            if should_stop(stop):
                yield Progress(i, total, "fit", done=True, stopped=True)
                return
            if level == "conditional":
                fine, v, c = lows[j - 1], details[j - 1], lows[j]
                side = fine.shape[-1]
            else:
                fine = v = lows[self.J]
                c = None
                side = v.shape[-1]
            feats = make_features(self.family, level=level, L=side, wavelet=self.wavelet,
                                  **self._options_for(fine, level))
            t1 = time.perf_counter()
            if method == "score":
                sm = fit_score_matching(feats, (v, c), ridge=ridge, batch_size=batch_size)
                theta, summary = sm.theta, sm.summary()
                if getattr(feats, "stage_base", None) is not None:
                    theta = _definite_path(feats, sm, ridge, v, c, summary)
                if ml_refine is not None and level == "conditional" and j >= ml_refine:
                    theta, extra = refine_maximum_likelihood(
                        feats, v, c, theta, iterations=ml_refine_iterations, seed=seed + j)
                    summary.update(extra, theta_score=summary["theta"],
                                   theta=dict(zip(feats.names, map(float, theta))))
            else:
                ml = run(iter_maximum_likelihood(feats, v, c, theta0=gaussian_start(feats, v),
                                                 iterations=ml_iterations, mala_steps=ml_steps,
                                                 seed=seed + j, stop=stop))
                theta, summary = ml.theta, ml.summary()
            summary["seconds"] = time.perf_counter() - t1
            proj = self._support_projector(level)
            summary["quadratic_base"] = quadratic_base_check(feats, theta, v, c, project=proj)
            summary["bounded"] = boundedness_check(feats, theta, v, c, project=proj)
            summary["warnings"] = warns = fit_warnings(summary)
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
        self.provenance["fit_seconds"] = time.perf_counter() - t0
        self.provenance["method"] = method
        self.provenance["ml_refine"] = ml_refine
        yield Progress(total, total, "done", done=True, result=self)

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
        x = np.asarray(fields, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
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
                    report_every: int = 10, coarse_boost: int = 16,
                    allow_unbounded: bool = False) -> Iterator[Progress]:
        """Coarse-to-fine sampling; the final report carries a FieldSet of n fields.

        ``steps`` and ``burn_in`` are per scale at the finest scale; a scale with 4^k times fewer
        variables gets min(coarse_boost, 4^k) times more (same cost per scale, far better mixing
        where the field's large-scale, non-convex structure lives).

        Refused (:class:`UnboundedModelError`, before any work) when the fit found a factor not
        bounded below, unless ``allow_unbounded``. Each scale's chains are stopped as runaways
        when their RMS leaves the data's std at that scale (:func:`~explorer.core.sampling.
        x_limit_sigmas`), and raise when they froze (acceptance far below target or a collapsed
        step): no diverged or frozen chains are returned as samples.
        """
        self._check_fitted()
        if n < 1:
            raise ValueError(f"the number of samples must be at least 1, got {n}")
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
        per_scale = []
        x0 = self.stats["coarse_mean"] + self.stats["coarse_std"] * rng.standard_normal((n, Lc, Lc))
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
            boost = min(coarse_boost, 4 ** (self.J if j is None else j - 1))
            proj = self._support_projector(m.level)
            energy, grad = (_shared_energy_and_grad(m, cond) if proj is None
                            else _projected_energy_and_grad(m, proj, sigma))
            result = None
            for rep in iter_langevin(energy, grad, v0, n_steps=steps * boost,
                                     burn_in=burn_in * boost,
                                     method=method, seed=int(rng.integers(2**31)),
                                     report_every=report_every, stop=stop, label=label,
                                     x_scale=sigma if sigma > 0 else None):
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
                              "recovered": bool(result.recovered)})
            x = result.x if j is None else wv.synthesis(cond, result.x, self.wavelet)
        if self.support is not None:
            x = self.support.project(x)
        meta = {"generator": "wcrg-sample",
                "params": {"family": self.family, "J": self.J, "wavelet": self.wavelet,
                           "steps": steps, "burn_in": burn_in, "method": method, "n": n,
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

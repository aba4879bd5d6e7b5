"""The fit of one energy factor as the project does it (:func:`fit_factor`): score matching or
maximum likelihood as the family's :class:`~explorer.core.features.FitProtocol` declares, the
definite path, the boundedness checks and the warnings a fit reports. See docs/fitting.md,
"Constrained coefficients", "Boundedness of a fitted energy" and "Degenerate systems"."""

from __future__ import annotations

import threading
import time

import numpy as np

from explorer.core.features import (FeatureSum, Features, PolynomialBasis, QuadraticCouplings,
                                    ScalarPotential)
from explorer.core.fit.likelihood import iter_maximum_likelihood, refine_maximum_likelihood
from explorer.core.fit.score import (ScoreMatchingFit, fit_score_matching, solve_score_matching,
                                     solve_score_matching_nonnegative)
from explorer.core.linalg import lanczos_extremes
from explorer.core.progress import run

#: score-matching systems whose Jacobi-preconditioned condition number exceeds this are degenerate
#: (features nearly collinear on the data: e.g. a field of a few distinct values, where phi^2 and
#: phi^4 are constants)
DEGENERATE_KAPPA = 1e12

#: the softest curvature of the quadratic part may fall to this fraction of the couplings-alone
#: fit's: a Gaussian with these couplings has its softest mode at most 2x wider, the factor the
#: per-scale sanity checks allow
DEFINITE_MARGIN = 0.25

METHODS = ("score", "ml")


# ------------------------------------------------------------------ boundedness
def _blocks(features: Features) -> list[Features]:
    return features.blocks if isinstance(features, FeatureSum) else [features]


def couplings_block(features: Features) -> tuple[QuadraticCouplings, int] | None:
    """The quadratic-couplings block of a feature set and the index of its first parameter, or
    None when there is not exactly one."""
    blocks = _blocks(features)
    offsets = np.cumsum([0] + [b.n_features for b in blocks])
    found = [(b, int(a)) for b, a in zip(blocks, offsets[:-1]) if isinstance(b, QuadraticCouplings)]
    return found[0] if len(found) == 1 else None


def couplings_check(F: QuadraticCouplings, th, v, c, steps: int = 40, project=None) -> dict:
    """Lanczos extremes of the couplings' (constant) Hessian at the first configuration:
    {"ritz_min", "ritz_max", "indefinite"}; ``project`` as in :func:`quadratic_base_check`."""
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


def quadratic_base_check(features: Features, theta: np.ndarray, v: np.ndarray,
                         c: np.ndarray | None = None, steps: int = 40,
                         project=None) -> dict | None:
    """Is the energy bounded below, decided by its quadratic couplings? Only for a family whose
    protocol declares ``bound="couplings"`` (every other term bounded or growing at most
    linearly: ``gaussian``, ``phi4`` with windows, ``modulus`` without products); None for the
    others (e.g. a quartic potential, whose negative curvature near the data is the physics).

    Lanczos (``steps`` HVPs at the first configuration; the Hessian of a quadratic is constant):
    ``indefinite`` True proves a negative eigenvalue, i.e. an energy unbounded below that no
    sampler can sample; False means none was found.

    ``project``: orthogonal projector onto the directions the model lives on (the data's spectral
    support, e.g. without the mean of a zero-mean data set); curvature off it does not count."""
    found = couplings_block(features)
    if features.fit_protocol.bound != "couplings" or found is None:
        return None
    F, a = found
    return couplings_check(F, np.asarray(theta)[a: a + F.n_features], v, c, steps, project)


def _leading_polynomial(features: Features, theta: np.ndarray) -> dict | None:
    """The verdict of the leading non-zero term of a polynomial potential, or None (no such
    term)."""
    blocks = _blocks(features)
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
    return None


def boundedness_check(features: Features, theta: np.ndarray, v: np.ndarray,
                      c: np.ndarray | None = None, project=None) -> dict:
    """Is the factor's energy bounded below, i.e. is exp(-U) a probability density at all?

    Decided by the rule the family declares (``features.fit_protocol.bound``):
      * ``"leading_polynomial"``: a polynomial potential with a non-zero coefficient decides by
        its leading term (an even power with a positive coefficient dominates every quadratic
        coupling; an odd power or a negative coefficient sends U to -inf along a constant field,
        or along any detail vector in a conditional); a potential fitted to zero leaves the
        decision to the couplings;
      * ``"couplings"``: Lanczos on the couplings (:func:`quadratic_base_check`);
      * None: nothing proven either way.
    Returns {"bounded": True | False | None, "reason": str, ...}; ``project`` as in
    :func:`quadratic_base_check`.
    """
    theta = np.asarray(theta, np.float64)
    rule = features.fit_protocol.bound
    check = None
    if rule == "leading_polynomial":
        verdict = _leading_polynomial(features, theta)
        if verdict is not None:
            return verdict
        found = couplings_block(features)
        if found is not None:
            F, a = found
            check = couplings_check(F, theta[a: a + F.n_features], v, c, project=project)
    elif rule == "couplings":
        check = quadratic_base_check(features, theta, v, c, project=project)
    if check is None:
        return {"bounded": None, "reason": "not decided by the couplings or a polynomial "
                                           "potential"}
    if check["indefinite"]:
        return {"bounded": False, "ritz_min": check["ritz_min"],
                "reason": f"its quadratic couplings are indefinite (lambda_min <= "
                          f"{check['ritz_min']:.3g})"}
    return {"bounded": True, "ritz_min": check["ritz_min"],
            "reason": "its quadratic couplings are positive definite"}


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


# ------------------------------------------------------------------ fit policy
def definite_path(feats: Features, sm: ScoreMatchingFit, ridge: float, v, c,
                  summary: dict) -> np.ndarray:
    """Score-matching θ of a family declaring ``fit_protocol.stage_base``, whose joint first
    stage (the couplings plus bounded one-point terms) may soften the couplings too much.

    θ₁ = ``sm.theta`` (the joint fit, its ``nonnegative`` coefficients kept >= 0); θ₀: the
    couplings fitted alone (the first ``stage_base`` parameters), then the rest given them.
    Returns θ₁ when its couplings keep a smallest Ritz value >= DEFINITE_MARGIN × that of θ₀,
    otherwise the point θ₀ + t (θ₁ - θ₀) of the segment with the largest such t (bisection). The
    score-matching loss is convex, so it decreases from θ₀ to θ₁: this is the best fit on the
    segment that stays well posed. Records {"t", "ritz_min_joint", "ritz_min_base"} as
    ``summary["definite_path"]`` when it moves θ."""
    protocol = feats.fit_protocol
    th1 = np.asarray(sm.theta, np.float64)
    th0, _ = solve_score_matching_nonnegative(sm.H, sm.b, protocol.stage_base,
                                              protocol.nonnegative, ridge)
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
    """A normalisable starting θ for maximum likelihood: independent Gaussian variables with the
    data's variance (every on-site term w Σ x_c² of a varying channel, coupling or power-2
    potential, gets 1 / (2 w var)), every other coefficient 0."""
    theta = np.zeros(features.n_features)
    var = float(np.mean(np.asarray(v, np.float64) ** 2))
    a = 0
    for b in _blocks(features):
        if isinstance(b, QuadraticCouplings):
            for k, terms in enumerate(b.terms):
                if len(terms) == 1:
                    ((ch, d, s), w), = terms.items()
                    if ch == d and s == (0, 0) and ch < b.n_varying:
                        theta[a + k] = 0.5 / (w * var)
        elif isinstance(b, ScalarPotential) and isinstance(b.basis, PolynomialBasis):
            for k, p in enumerate(b.basis.powers):
                if p == 2:
                    theta[a + k] = 0.5 / var
        a += b.n_features
    return theta


def far_well(features: Features, theta, v: np.ndarray, project=None) -> str | None:
    """Why the energy of a factor without condition is not one the sampler can use, or None: its
    constant field of least energy (amplitudes 0 to twice the sampler's runaway threshold
    :func:`~explorer.core.sampling.x_limit_sigmas`, in units of the data ``v``'s std; projected
    by ``project`` when given) lies beyond that threshold, where every chain would be stopped
    as a runaway. Fits of φ⁴ data have theirs at 0 (disordered) or ~1 std; a maximum-likelihood
    refinement on 16 unsettled 32² fields (coarse 4 x 4) put it at 9 std: quartic ~0, mass far
    negative."""
    from explorer.core.sampling import x_limit_sigmas

    v = np.asarray(v, np.float64)
    sd = float(np.std(v))
    if not sd > 0:
        return None
    limit = x_limit_sigmas(int(np.prod(v.shape[1:])))
    s = np.linspace(0.0, 2.0 * limit, 161)
    fields = s.reshape(-1, *([1] * (v.ndim - 1))) * sd * np.ones((1, *v.shape[1:]))
    if project is not None:
        fields = project(fields)
    best = float(s[int(np.argmin(features.energy(theta, fields)))])
    if best <= limit:
        return None
    return (f"its constant field of least energy is {best:.3g} x the data's std, beyond the "
            f"sampler's runaway threshold {limit:.3g}")


def fit_factor(features: Features, v: np.ndarray, c: np.ndarray | None = None, *,
               method: str = "score", ridge: float = 1e-6, batch_size: int = 16,
               ml_iterations: int = 100, ml_steps: int = 10, ml_refine: bool = False,
               ml_refine_iterations: int = 30, seed: int = 0,
               stop: threading.Event | None = None, project=None,
               fixed_zero=()) -> tuple[np.ndarray, dict]:
    """Fit one factor's θ on its data (varying ``v``, condition ``c`` or None) and check it.

    ``method="score"``: score matching as the features' ``fit_protocol`` declares (staged,
    coefficients kept >= 0, then :func:`definite_path` when it declares ``stage_base``), then,
    with ``ml_refine``, ``ml_refine_iterations`` maximum-likelihood steps from that θ
    (:func:`~explorer.core.fit.refine_maximum_likelihood`). ``method="ml"``: maximum likelihood
    from :func:`gaussian_start` (``ml_iterations`` iterations of ``ml_steps`` MALA steps;
    ``stop`` ends it early). Then the checks: ``quadratic_base`` (:func:`quadratic_base_check`),
    ``bounded`` (:func:`boundedness_check`, on the support ``project`` when given) and
    ``warnings`` (:func:`fit_warnings`). ``fixed_zero``: indices of parameters
    held at 0 (score matching solved without them, the refinement does not move them; e.g. a
    potential the data cannot identify). Returns (θ, summary)."""
    if method not in METHODS:
        raise ValueError(f"method must be 'score' or 'ml', got {method!r}")
    t1 = time.perf_counter()
    fixed_zero = sorted(int(k) for k in fixed_zero)
    if fixed_zero and method != "score":
        raise ValueError("parameters held at 0 need method='score'")
    if method == "score":
        sm = fit_score_matching(features, (v, c), ridge=ridge, batch_size=batch_size)
        theta, summary = sm.theta, sm.summary()
        if fixed_zero:
            keep = np.ones(len(theta), dtype=bool)
            keep[fixed_zero] = False
            theta = np.zeros(len(theta))
            theta[keep] = solve_score_matching(sm.H[np.ix_(keep, keep)], sm.b[keep], ridge)[0]
            summary.update(theta=dict(zip(features.names, map(float, theta))),
                           held_at_zero=[features.names[k] for k in fixed_zero],
                           loss=float(0.5 * theta @ sm.H @ theta - theta @ sm.b))
        elif features.fit_protocol.stage_base is not None:
            theta = definite_path(features, sm, ridge, v, c, summary)
        if ml_refine:
            refined, extra = refine_maximum_likelihood(
                features, v, c, theta, iterations=ml_refine_iterations, seed=seed,
                fixed=fixed_zero)
            check = boundedness_check(features, refined, v, c, project=project)
            far = None if c is not None else far_well(features, refined, v, project)
            if check is not None and check.get("bounded") is False:
                # a refinement that leaves the energy unbounded (noisy moments of a nearly
                # Gaussian factor can push the quartic to 0 and the couplings past definite)
                # is not kept: the score-matching θ stays
                extra["ml_refine_rejected"] = check.get("reason", "not bounded below")
            elif far is not None:
                # nor one whose wells the sampler would call a runaway (the same push, bounded
                # by a quartic left at ~0)
                extra["ml_refine_rejected"] = far
            else:
                theta = refined
            summary.update(extra, theta_score=summary["theta"],
                           theta=dict(zip(features.names, map(float, theta))))
    else:
        ml = run(iter_maximum_likelihood(features, v, c, theta0=gaussian_start(features, v),
                                         iterations=ml_iterations, mala_steps=ml_steps,
                                         seed=seed, stop=stop))
        theta, summary = ml.theta, ml.summary()
    summary["seconds"] = time.perf_counter() - t1
    summary["quadratic_base"] = quadratic_base_check(features, theta, v, c, project=project)
    summary["bounded"] = boundedness_check(features, theta, v, c, project=project)
    summary["warnings"] = fit_warnings(summary)
    return theta, summary

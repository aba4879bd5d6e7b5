"""What the app and the command line do without options, where it is not the library's own
default: the sampler's steps per scale and the short maximum-likelihood refinements of a φ⁴ fit
(measured in docs/performance.md, "Interactive fitting defaults")."""

from __future__ import annotations

#: MALA steps per scale of `explorer sample` and the app (the burn-in as many again; the coarse
#: factor runs min(16, 4^J) times more, :meth:`explorer.core.model.WCRGModel.iter_sample`)
DEFAULT_STEPS = 100

#: Newton iterations of :func:`default_refinement`: on critical phi^4 64^2 at depth 4, 10
#: iterations bring the conditional detail stds of j = 3, 4 as close to the data's as 15 or 30 do
#: (1.000 and 1.004 +- 0.008, against 1.023 and 1.052 by score matching alone)
DEFAULT_REFINE_ITERATIONS = 10

#: Newton iterations of the coarse factor's refinement at depth 3 (8 x 8 coarse fields at 64^2,
#: where the app goes in the rare-crossing band, beta ~ 0.70): on one beta = 0.70 data set, 10
#: left the coarse field's finest detail std 1.31-1.34 times the data's and the spectrum at
#: 0.096, 30 gave 0.95 and 0.056 (the 4 x 4 coarse factor of depth 4 is kept at 10, as measured)
DEPTH3_REFINE_ITERATIONS = 30


def default_refinement(family: str, J: int, generator: str | None = None,
                       method: str = "score") -> dict:
    """Fit keywords the app and the command line add to a fit: for a score-matching fit of the
    ``phi4`` family to φ⁴ data (``generator``) at depth J >= 3, a short maximum-likelihood
    refinement (:data:`DEFAULT_REFINE_ITERATIONS` Newton iterations, at depth 3
    :data:`DEPTH3_REFINE_ITERATIONS`) of the coarse factor when its data cross zero
    (``ml_refine=J + 1``: no conditional on the data's conditions), then ``refine_variances``: the
    on-site couplings and the potential of the three coarsest conditionals refined by maximum
    likelihood on coarse fields the model generates
    (:func:`explorer.core.fit.variances.refine_variances`); otherwise none. Only where it was
    measured (64^2 at depth 4 and 3, 32^2 at depth 3, and 64^2 -> 128^2 with ``sample --size``):
    at depth 2 (16^2) the data-condition refinement of the conditionals froze or ran away when
    extrapolated to a larger lattice.

    Score matching alone leaves the coarse conditional variances too high (critical phi^4 64^2,
    depth 4, each conditional sampled to convergence on the data's own conditions: detail stds
    1.052, 1.023, 1.014 and 0.999 times the data's at j = 4, 3, 2, 1), and refining them on the
    data's conditions (the previous default, ``ml_refine=J - 1``) left j = 2, 3 about 3 % high
    in the full coarse-to-fine chain, whose coarse fields are the model's, not the data's.
    Refined on the model's own coarse fields, every per-scale detail std of 128 samples is within
    1.4 % (two sampling seeds), for a fit ~1.2 times the previous default's CPU time
    (docs/performance.md, "Interactive fitting defaults"); checked on the 64^2 assets at
    beta = 0.50, 0.68 and 0.76 (at 0.76, below the ordered coarser conditionals, with the
    potential's condition-only part taken on the generated conditions: within 1 % at scale 2
    over three refinement seeds, :func:`explorer.core.fit.variances.detail_part_target`).
    At depth 3 — the app's depth for 64^2 data in the rare-crossing band (beta ~ 0.70) and the
    deepest at 32^2 — score matching alone gave the coarse 8 x 8 field's finest detail std
    1.4-2.0 times the data's, spectrum 0.12-0.26 and <|m|> 4-16 % low at beta = 0.70 (two data
    sets); with this refinement 0.95-0.99, 0.056-0.068 and 0.5-1.1 % high, and at 32^2
    (beta = 0.50, 0.68, 0.76) equal or closer on every measure, for a fit of 7-8 CPU s at 64^2
    (2.6 unrefined) and 3.5-4 at 32^2 (0.6)."""
    if method != "score" or family != "phi4" or generator != "phi4" or J < 3:
        return {}
    iterations = DEPTH3_REFINE_ITERATIONS if J == 3 else DEFAULT_REFINE_ITERATIONS
    return {"ml_refine": J + 1, "ml_refine_iterations": iterations, "refine_variances": True}

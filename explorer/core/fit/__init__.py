"""Fitting energies U_θ = θᵀΦ (docs/fitting.md): score matching (:mod:`.score`), maximum likelihood
(:mod:`.likelihood`), the fit of one factor as the project does it, with its boundedness checks
and warnings (:mod:`.policy`, :func:`fit_factor`), and the refinement of a fitted model's
conditionals on the coarse fields it generates (:mod:`.generated`; of their variances only, as
the default φ⁴ fit does: :mod:`.variances`)."""

from explorer.core.fit.generated import refine_on_generated
from explorer.core.fit.likelihood import (MaximumLikelihoodFit, feature_means,
                                          iter_maximum_likelihood, refine_maximum_likelihood)
from explorer.core.fit.policy import (DEFINITE_MARGIN, DEGENERATE_KAPPA, boundedness_check,
                                      couplings_block, couplings_check, definite_path, fit_factor,
                                      fit_warnings, gaussian_start, quadratic_base_check)
from explorer.core.fit.score import (ScoreMatchingFit, fit_score_matching,
                                     score_matching_statistics, solve_score_matching,
                                     solve_score_matching_nonnegative, solve_score_matching_staged)
from explorer.core.fit.variances import refine_variances, refine_variances_on_generated

__all__ = [
    "refine_on_generated", "refine_variances", "refine_variances_on_generated",
    "MaximumLikelihoodFit", "feature_means", "iter_maximum_likelihood", "refine_maximum_likelihood",
    "DEFINITE_MARGIN", "DEGENERATE_KAPPA", "boundedness_check", "couplings_block",
    "couplings_check", "definite_path", "fit_factor", "fit_warnings", "gaussian_start",
    "quadratic_base_check", "ScoreMatchingFit", "fit_score_matching", "score_matching_statistics",
    "solve_score_matching", "solve_score_matching_nonnegative", "solve_score_matching_staged",
]

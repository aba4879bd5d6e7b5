"""A test helper shared by the refinements' tests: the detail stds a model's conditionals
generate, coarse to fine, from given coarse fields."""

from __future__ import annotations

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.fit.generated import _conditional_samples


def generated_std_ratios(model, x: np.ndarray, coarse: np.ndarray, levels=(3, 2),
                         steps: int = 100, seed: int = 0) -> np.ndarray:
    """Detail std ratios (generated / data ``x``) at ``levels`` (coarse to fine) of ``model``'s
    chain from the coarse fields ``coarse``, the sampler's schedule (``steps`` burn-in and
    ``steps`` steps) at each conditional, seed ``seed + j`` at level j."""
    _, details = wv.decompose(x, model.J, model.wavelet)
    xj, ratios = coarse, []
    for j in levels:
        m = model.conditionals[j - 1]
        v = _conditional_samples(m, xj, model.stats["detail_std"][j - 1], steps, seed + j)
        ratios.append(v.std() / details[j - 1].std())
        xj = wv.synthesis(xj, v, model.wavelet)
    return np.array(ratios)

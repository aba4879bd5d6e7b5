"""What a fitted energy learned: the scalar potential V(φ) per scale and the quadratic coupling
kernels of a factor, as arrays to plot. The science: docs/models.md, "Scalar potentials" and
"Quadratic couplings".
"""

from __future__ import annotations

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.features import QuadraticCouplings


def _blocks(features):
    blocks = getattr(features, "blocks", [features])
    out, a = [], 0
    for b in blocks:
        out.append((b, slice(a, a + b.n_features)))
        a += b.n_features
    return out


def _scale_key(scale) -> str:
    return "coarse" if scale.level == "depth0" else f"j={scale.j}"


def learned_potential(model_or_scale, grid) -> dict | np.ndarray:
    """Per-site scalar potential V(φ) = Σ_k θ_k ρ_k(φ) of the fitted potential features,
    evaluated on the values ``grid`` (the energy per site of a constant field φ from those
    features). For a factor: an array like ``grid`` (zeros if it has no potential features); for a
    model: ``{"coarse": V, "j=1": V, ...}``. In a conditional, φ is the value of the finer field
    x_{j-1}; the quadratic couplings are not included (see :func:`quadratic_kernels`)."""
    if hasattr(model_or_scale, "factors"):
        return {_scale_key(s): learned_potential(s, grid) for s in model_or_scale.factors()}
    g = np.asarray(grid, dtype=np.float64)
    V = np.zeros_like(g)
    theta = np.asarray(model_or_scale.theta, np.float64)
    for b, sl in _blocks(model_or_scale.features):
        basis = getattr(b, "basis", None)
        if basis is not None:
            V = V + basis.combine(theta[sl], g, (0,))[0]
    return V


def quadratic_kernels(scale) -> dict:
    """Quadratic couplings of a factor as small images: K[c, d] (2R+1, 2R+1) with
    K[c, d][dy + R, dx + R] the precision entry between x_c(i) and x_d(i - (dy, dx)), so that the
    quadratic energy is ½ Σ_{c,d,s} K_cd(s) Σ_i x_c(i) x_d(i - s) (symmetric: K_dc(-s) = K_cd(s)).
    Channels: ["x"] at depth 0, ["HL", "LH", "HH", "LL"] in a conditional (LL x LL is zero:
    constant in the details). Only the :class:`~explorer.core.features.QuadraticCouplings` blocks
    count (any family: gaussian, phi4, scattering); potentials and modulus terms are skipped."""
    theta = np.asarray(scale.theta, np.float64)
    quads = [(b, sl) for b, sl in _blocks(scale.features) if isinstance(b, QuadraticCouplings)]
    if not quads:
        raise ValueError("this factor has no quadratic coupling features")
    C = quads[0][0].n_channels
    n = quads[0][0].n
    R = max(max(abs(s[0]), abs(s[1])) for b, _ in quads for t in b.terms for (_c, _d, s) in t)
    K = np.zeros((C, C, 2 * R + 1, 2 * R + 1))

    def same(s1, s2):
        if n is None:
            return s1 == s2
        return (s1[0] - s2[0]) % n == 0 and (s1[1] - s2[1]) % n == 0

    for b, sl in quads:
        for th, terms in zip(theta[sl], b.terms):
            for (c, d, s), w in terms.items():
                ms = (-s[0], -s[1])
                if c == d and same(s, ms):
                    if ms == s:  # on-site term
                        K[c, c, R, R] += 2 * w * th
                    else:  # s = -s modulo a tiny lattice: one coupling drawn on two pixels
                        K[c, c, s[0] + R, s[1] + R] += w * th
                        K[c, c, ms[0] + R, ms[1] + R] += w * th
                else:
                    K[c, d, s[0] + R, s[1] + R] += w * th
                    K[d, c, ms[0] + R, ms[1] + R] += w * th
    names = ["x"] if C == 1 else list(wv.DETAIL_CHANNELS) + [wv.LOW_CHANNEL]
    return {"channels": names, "radius": int(R), "kernels": K}

"""Score matching for U_θ = θᵀΦ: the statistics H = E[∇Φ ∇Φᵀ], b = E[ΔΦ] streamed over batches and
the Jacobi-preconditioned solve of Hθ = b, joint, staged or with coefficients kept >= 0. See
docs/fitting.md, "Score matching"."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

@dataclass
class ScoreMatchingFit:
    theta: np.ndarray
    names: list[str]
    H: np.ndarray
    b: np.ndarray
    n_samples: int
    cond_raw: float
    cond_preconditioned: float
    ridge: float
    seconds: float
    loss: float = float("nan")  # 1/2 theta^T H theta - theta^T b (Fisher divergence up to a constant)
    fixed_at_zero: list[int] = field(default_factory=list)  # ``nonnegative`` ones that hit 0

    def summary(self) -> dict:
        extra = ({"fixed_at_zero": [self.names[k] for k in self.fixed_at_zero]}
                 if self.fixed_at_zero else {})
        return {**extra,
            "method": "score",
            "theta": dict(zip(self.names, map(float, self.theta))),
            "n_parameters": len(self.theta),
            "n_samples": self.n_samples,
            "kappa_H_raw": self.cond_raw,
            "kappa_H_preconditioned": self.cond_preconditioned,
            "ridge": self.ridge,
            "seconds": self.seconds,
            "loss": self.loss,
        }


def _batches(data, batch_size: int):
    """Accept (v, c) tuples, a list of them, or a bare array of v; yield (v, c) batches."""
    if isinstance(data, np.ndarray):
        data = (data, None)
    if isinstance(data, tuple):
        v, c = data
        for s in range(0, len(v), batch_size):
            yield v[s: s + batch_size], None if c is None else c[s: s + batch_size]
    else:
        yield from data


def score_matching_statistics(features, data, batch_size: int = 32):
    """H = E[grad Phi . grad Phi^T] (K, K), b = E[Laplacian Phi] (K,), streamed over batches."""
    K = len(features.names)
    H = np.zeros((K, K))
    b = np.zeros(K)
    n = 0
    for v, c in _batches(data, batch_size):
        ctx = features.prepare(np.asarray(v, dtype=np.float64),
                               None if c is None else np.asarray(c, dtype=np.float64))
        G = features.grad(ctx).reshape(len(v), K, -1)
        H += np.einsum("nkv,nlv->kl", G, G)
        b += features.laplacian(ctx).sum(axis=0)
        n += len(v)
    if n == 0:
        raise ValueError("no data to fit")
    return H / n, b / n, n


def solve_score_matching(H: np.ndarray, b: np.ndarray, ridge: float = 1e-6):
    """theta solving (H + ridge) theta = b in the Jacobi-preconditioned basis.

    Returns theta, kappa(H), kappa(D^-1/2 H D^-1/2).  The ridge is relative: it is added to the
    unit diagonal of the preconditioned matrix.
    """
    d = np.sqrt(np.clip(np.diag(H), 0.0, None))
    d[d == 0] = 1.0
    Hp = H / np.outer(d, d)
    theta_p = np.linalg.solve(Hp + ridge * np.eye(len(b)), b / d)
    return theta_p / d, float(np.linalg.cond(H)), float(np.linalg.cond(Hp))


def solve_score_matching_staged(H: np.ndarray, b: np.ndarray, first: int, ridge: float = 1e-6):
    """Block-coordinate score matching: the first ``first`` parameters alone (H₁₁ θ₁ = b₁, the
    fit of that sub-family by itself), then the rest given them (H₂₂ θ₂ = b₂ - H₂₁ θ₁). Used by
    families declaring ``fit_protocol.stage_first`` (e.g. a Gaussian base that must stay
    positive definite plus bounded corrections). Returns theta, kappa(H), kappa of the
    preconditioned H."""
    k = int(first)
    t1, _, _ = solve_score_matching(H[:k, :k], b[:k], ridge)
    t2, _, _ = solve_score_matching(H[k:, k:], b[k:] - H[k:, :k] @ t1, ridge)
    d = np.sqrt(np.clip(np.diag(H), 0.0, None))
    d[d == 0] = 1.0
    return np.concatenate([t1, t2]), float(np.linalg.cond(H)), float(np.linalg.cond(H / np.outer(d, d)))


def solve_score_matching_nonnegative(H: np.ndarray, b: np.ndarray, first: int | None,
                                     nonnegative=(), ridge: float = 1e-6):
    """Staged score matching (``first`` as in :func:`solve_score_matching_staged`; None or out of
    range: one joint solve) with the parameters listed in ``nonnegative`` kept >= 0: those that
    come out negative are fixed at 0 and the rest is solved again without them (exact for one
    constrained parameter, an active-set step for more). Returns (theta, indices fixed at 0)."""
    K = len(b)

    def solve(keep):
        idx = np.flatnonzero(keep)
        f = int(np.count_nonzero(keep[:first])) if first is not None else 0
        Hk, bk = H[np.ix_(idx, idx)], b[idx]
        t = (solve_score_matching_staged(Hk, bk, f, ridge) if 0 < f < len(idx)
             else solve_score_matching(Hk, bk, ridge))[0]
        out = np.zeros(K)
        out[idx] = t
        return out

    keep = np.ones(K, dtype=bool)
    theta = solve(keep)
    dropped = [int(k) for k in nonnegative if theta[k] < 0]
    if dropped:
        keep[dropped] = False
        theta = solve(keep)
    return theta, dropped


def fit_score_matching(features, data, ridge: float = 1e-6, batch_size: int = 32) -> ScoreMatchingFit:
    """Score-matching θ of ``features`` on ``data`` (batches ``(v, c)``, see :func:`_batches`),
    staged and constrained as the features' ``fit_protocol`` declares (``stage_first``,
    ``nonnegative``)."""
    t0 = time.perf_counter()
    H, b, n = score_matching_statistics(features, data, batch_size)
    protocol = features.fit_protocol
    first, nonneg = protocol.stage_first, protocol.nonnegative
    if first is not None and 0 < first < len(b):
        theta, c_raw, c_pre = solve_score_matching_staged(H, b, first, ridge)
    else:
        first = None
        theta, c_raw, c_pre = solve_score_matching(H, b, ridge)
    fixed: list[int] = []
    if any(theta[k] < 0 for k in nonneg):
        theta, fixed = solve_score_matching_nonnegative(H, b, first, nonneg, ridge)
    return ScoreMatchingFit(theta=theta, names=list(features.names), H=H, b=b, n_samples=n,
                            cond_raw=c_raw, cond_preconditioned=c_pre, ridge=ridge,
                            seconds=time.perf_counter() - t0,
                            loss=float(0.5 * theta @ H @ theta - theta @ b), fixed_at_zero=fixed)

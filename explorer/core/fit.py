"""Fitting exponential-family energies U_theta = theta^T Phi (SCIENCE.md §5).

Score matching (Hyvarinen): minimise E_p[1/2 |grad U|^2 - Laplacian U] = 1/2 theta^T H theta - theta^T b
with H = E[grad Phi grad Phi^T] and b = E[Laplacian Phi]: one linear system H theta = b, no
sampling.  It is solved with Jacobi preconditioning D = diag(H) and a small ridge, and the
condition numbers of H before and after preconditioning are reported.

Maximum likelihood: the gradient of the negative log-likelihood is E_p[Phi] - E_{p_theta}[Phi]
(moment matching); E_{p_theta} is estimated with persistent MALA chains.  It needs samples of the
model at every iteration: this is the slow reference score matching is compared with.

Both take the data as an iterable of batches ``(v, c)`` (varying variables, condition or None), so
they can stream over data sets larger than memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from explorer.core.progress import Progress, should_stop
from explorer.core.sampling import SamplerDiverged, mala_step


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
    families declaring ``stage_first`` (e.g. a Gaussian base that must stay positive definite plus
    bounded corrections). Returns theta, kappa(H), kappa of the preconditioned H."""
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
    t0 = time.perf_counter()
    H, b, n = score_matching_statistics(features, data, batch_size)
    first = getattr(features, "stage_first", None)
    nonneg = getattr(features, "nonnegative", ())
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


# ------------------------------------------------------------------ maximum likelihood
def _advance_chains(features, theta, chains, cond, h, mala_steps: int, rng, it: int,
                    stage: str):
    """``mala_steps`` MALA steps of persistent chains under the current θ, shared by maximum
    likelihood and its refinement: step size initialised from the gradient scale when ``h`` is
    None, then nudged towards acceptance 0.574 once per call. Returns (chains, h, mean
    acceptance, gradient evaluations); raises SamplerDiverged if a chain leaves the finite numbers."""
    energy = lambda x: features.energy(theta, x, cond)  # noqa: E731
    grad = lambda x: features.energy_grad(theta, x, cond)  # noqa: E731
    e, g = energy(chains), grad(chains)
    if h is None:
        h = 0.1 * float(np.mean(chains**2)) / max(1.0, float(np.sqrt(np.mean(g**2))))
    acc = 0.0
    for _ in range(mala_steps):
        r = mala_step(energy, grad, chains, e, g, h, rng)
        chains, e, g = r.x, r.energy, r.grad
        acc += r.accepted.mean() / mala_steps
    h *= float(np.exp(np.clip(acc - 0.574, -0.5, 0.5)))
    if not np.all(np.isfinite(chains)):
        raise SamplerDiverged(f"{stage} chains became non-finite", it, stage=stage, step_size=h)
    return chains, h, acc, 1 + mala_steps


def refine_maximum_likelihood(features, v_data: np.ndarray, c_data: np.ndarray | None,
                              theta0: np.ndarray, iterations: int = 30, mala_steps: int = 10,
                              copies: int = 2, damping: float = 0.7, ridge: float = 1e-3,
                              average: float = 0.5, seed: int = 0) -> tuple[np.ndarray, dict]:
    """A few maximum-likelihood (moment-matching) Newton steps starting at ``theta0`` (the
    score-matching solution): removes the bias of score matching under misspecification.

    ``copies`` persistent MALA chains per data condition start at the data; the Newton matrix is
    the WITHIN-condition covariance of Phi (the Fisher information of a conditional model; the
    covariance across all chains adds the spread of E[Phi | c] over conditions and makes the steps
    far too short).  Jacobi-preconditioned, ``ridge`` on its unit diagonal; theta is the average
    of the last ``average`` fraction of the iterates (the moment estimates are noisy).
    """
    if copies < 2:
        raise ValueError("copies must be >= 2 (within-condition covariance)")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    v_data = np.asarray(v_data, np.float64)
    n = len(v_data)
    chains = np.concatenate([v_data] * copies)
    cond = None if c_data is None else np.concatenate([np.asarray(c_data, np.float64)] * copies)
    target = features.phi(features.prepare(v_data, c_data)).mean(axis=0)
    K = len(target)
    theta = np.array(theta0, dtype=np.float64)
    iterates, h, mismatch = [], None, float("nan")
    for it in range(iterations):
        chains, h, _, _ = _advance_chains(features, theta, chains, cond, h, mala_steps, rng, it,
                                       "ML refinement")
        phi = features.phi(features.prepare(chains, cond)).reshape(copies, n, K)
        dev = phi - phi.mean(axis=0, keepdims=True)
        cov = np.einsum("anK,anL->KL", dev, dev) / (n * (copies - 1))
        sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
        z = (target - phi.mean(axis=(0, 1))) / sd
        mismatch = float(np.sqrt(np.mean(z**2)))
        theta = theta - damping * np.linalg.solve(cov / np.outer(sd, sd) + ridge * np.eye(K), z) / sd
        iterates.append(theta.copy())
    theta = np.mean(iterates[int(iterations * (1.0 - average)):], axis=0)
    return theta, {"ml_refine_iterations": iterations, "ml_refine_mala_steps": mala_steps,
                   "ml_refine_copies": copies, "ml_refine_last_mismatch": mismatch,
                   "ml_refine_relative_change": float(np.linalg.norm(theta - theta0)
                                                      / max(np.linalg.norm(theta0), 1e-300)),
                   "ml_refine_seconds": time.perf_counter() - t0}


@dataclass
class MaximumLikelihoodFit:
    theta: np.ndarray
    names: list[str]
    iterations: int
    gradient_evaluations: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    converged: bool = False

    def summary(self) -> dict:
        return {
            "method": "ml",
            "theta": dict(zip(self.names, map(float, self.theta))),
            "n_parameters": len(self.theta),
            "iterations": self.iterations,
            "gradient_evaluations": self.gradient_evaluations,
            "converged": self.converged,
            "seconds": self.seconds,
        }


def feature_means(features, data, batch_size: int = 64) -> tuple[np.ndarray, int]:
    K = len(features.names)
    total = np.zeros(K)
    n = 0
    for v, c in _batches(data, batch_size):
        ctx = features.prepare(np.asarray(v, np.float64), None if c is None else np.asarray(c, np.float64))
        total += features.phi(ctx).sum(axis=0)
        n += len(v)
    return total / n, n


def iter_maximum_likelihood(
    features,
    v_data: np.ndarray,
    c_data: np.ndarray | None = None,
    theta0: np.ndarray | None = None,
    iterations: int = 100,
    mala_steps: int = 10,
    n_chains: int | None = None,
    damping: float = 0.5,
    ridge: float = 1e-3,
    tol: float = 0.01,
    average: float = 0.25,
    seed: int = 0,
    stop: threading.Event | None = None,
) -> Iterator[Progress]:
    """Moment matching with persistent MALA chains and damped Newton (natural-gradient) steps.

    For an exponential family the Hessian of the negative log-likelihood is Cov_{p_theta}(Phi), so
    theta <- theta - damping * (Cov + ridge)^-1 (E_p Phi - E_{p_theta} Phi), with the covariance and
    the model moments estimated on the chains.  Chains persist across iterations, start at data
    samples, and keep the condition of each data sample (conditional energies).  Stops when the
    moment mismatch, in units of the model's standard deviations, is below ``tol`` (averaged over
    a few iterations) or after ``iterations``.  The returned theta is the average of the iterates
    over the last ``average`` fraction of the iterations (Polyak averaging: the moment estimates
    are noisy, the average is not).
    """
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    v_data = np.asarray(v_data, np.float64)
    n = len(v_data)
    C = min(n, n_chains or n)
    idx = rng.choice(n, size=C, replace=False)
    chains = v_data[idx].copy()
    cond = None if c_data is None else np.asarray(c_data, np.float64)[idx]
    target, _ = feature_means(features, (v_data, c_data))
    K = len(target)
    theta = np.zeros(K) if theta0 is None else np.array(theta0, dtype=np.float64)
    history: list[dict] = []
    h = None  # MALA step, adapted on the fly towards acceptance 0.574 (chains are persistent)
    grads = 0
    converged = False
    mismatch_avg = np.inf
    for it in range(iterations):
        if should_stop(stop):
            break
        chains, h, acc, n_grad = _advance_chains(features, theta, chains, cond, h, mala_steps,
                                                 rng, it, "maximum likelihood")
        grads += n_grad
        phi = features.phi(features.prepare(chains, cond))
        model = phi.mean(axis=0)
        cov = np.cov(phi, rowvar=False).reshape(K, K)
        sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
        mismatch = float(np.sqrt(np.mean(((target - model) / sd) ** 2)))
        mismatch_avg = mismatch if it == 0 else 0.7 * mismatch_avg + 0.3 * mismatch
        covp = cov / np.outer(sd, sd) + ridge * np.eye(K)
        step = np.linalg.solve(covp, (target - model) / sd) / sd
        theta = theta - damping * step
        history.append({"iteration": it, "mismatch": mismatch, "acceptance": acc, "step": h,
                        "theta": theta.tolist()})
        yield Progress(it + 1, iterations, "maximum likelihood",
                       info={"mismatch": mismatch, "acceptance": acc})
        if it >= 10 and mismatch_avg < tol:
            converged = True
            break
    if history:
        tail = max(1, int(round(average * len(history))))
        theta = np.mean([h["theta"] for h in history[-tail:]], axis=0)
    result = MaximumLikelihoodFit(theta=theta, names=list(features.names), iterations=len(history),
                                  gradient_evaluations=grads, seconds=time.perf_counter() - t0,
                                  history=history, converged=converged)
    yield Progress(len(history), iterations, "done", done=True, stopped=should_stop(stop),
                   result=result)

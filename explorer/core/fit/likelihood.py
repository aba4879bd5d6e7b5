"""Maximum likelihood for U_θ = θᵀΦ by moment matching with persistent MALA chains and damped
Newton steps, and its short refinement of a score-matching θ. See docs/fitting.md, "Maximum
likelihood"."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from explorer.core.fit.score import _batches
from explorer.core.progress import Progress, should_stop
from explorer.core.evaluation import shared_evaluation
from explorer.core.sampling import SamplerDiverged, mala_step

def _advance_chains(features, theta, chains, cond, h, mala_steps: int, rng, it: int,
                    stage: str):
    """``mala_steps`` MALA steps of persistent chains under the current θ, shared by maximum
    likelihood and its refinement: step size initialised from the gradient scale when ``h`` is
    None, then nudged towards acceptance 0.574 once per call. Returns (chains, h, mean
    acceptance, gradient evaluations); raises SamplerDiverged if a chain leaves the finite numbers."""
    # one pass for the energy and the gradient of each proposal, as in the sampler
    energy, grad = shared_evaluation(lambda x: features.energy_and_grad(theta, x, cond))
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
                              average: float = 0.5, seed: int = 0,
                              start: str = "data", fixed=(),
                              target: np.ndarray | None = None,
                              return_chains: bool = False) -> tuple[np.ndarray, dict]:
    """A few maximum-likelihood (moment-matching) Newton steps starting at ``theta0`` (the
    score-matching solution): removes the bias of score matching under misspecification.

    ``copies`` persistent MALA chains per data condition start at the data; the Newton matrix is
    the WITHIN-condition covariance of Phi (the Fisher information of a conditional model; the
    covariance across all chains adds the spread of E[Phi | c] over conditions and makes the steps
    far too short).  Jacobi-preconditioned, ``ridge`` on its unit diagonal; theta is the average
    of the last ``average`` fraction of the iterates (the moment estimates are noisy).
    ``fixed``: indices of parameters kept at their value in ``theta0`` (e.g. a potential held
    at 0); the Newton steps move the others. The features' ``nonnegative`` parameters (the
    leading power, which keeps the energy bounded) are kept >= 0 after every step.

    ``target``: the feature means to match; None, those of ``(v_data, c_data)``. Given, the
    chains run on the conditions ``c_data`` (and start at ``v_data``) while the moments matched
    are another set's, e.g. the data's moments on conditions a coarser model generated, with
    ``v_data`` that model's own details there (docs/performance.md, "Interactive fitting
    defaults").

    ``return_chains``: the persistent chains at the end, ``(copies * n, ...)`` copy by copy, in
    the returned dict under ``"chains"`` (close to samples of the last iterate: a coarse-to-fine
    refinement can take them as the next level's details instead of sampling again).
    """
    if copies < 2:
        raise ValueError("copies must be >= 2 (within-condition covariance)")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    v_data = np.asarray(v_data, np.float64)
    n = len(v_data)
    if start not in ("data", "noise"):
        raise ValueError(f"start must be 'data' or 'noise', got {start!r}")
    chains = np.concatenate([v_data] * copies)
    if start == "noise":
        # where the sampler starts: noise of the data's scale, so that the chains find (and the
        # Newton steps remove) wells of the model far from the data, which chains started at the
        # data never visit (docs/fitting.md, "Blindness to mode weights")
        chains = float(np.sqrt(np.mean(v_data ** 2))) * rng.standard_normal(chains.shape)
    cond = None if c_data is None else np.concatenate([np.asarray(c_data, np.float64)] * copies)
    if target is None:
        target = features.phi(features.prepare(v_data, c_data)).mean(axis=0)
    target = np.asarray(target, np.float64)
    K = len(target)
    if K != features.n_features:
        raise ValueError(f"target has {K} moments, the features {features.n_features}")
    theta = np.array(theta0, dtype=np.float64)
    free = np.ones(K, dtype=bool)
    free[list(fixed)] = False
    nonneg = list(features.fit_protocol.nonnegative)
    iterates, h, mismatch, first = [], None, float("nan"), float("nan")
    for it in range(iterations):
        chains, h, _, _ = _advance_chains(features, theta, chains, cond, h, mala_steps, rng, it,
                                       "ML refinement")
        phi = features.phi(features.prepare(chains, cond)).reshape(copies, n, K)
        if cond is None:   # no condition: the covariance over all chains is the Fisher matrix
            cov = np.cov(phi.reshape(copies * n, K), rowvar=False).reshape(K, K)
        else:
            dev = phi - phi.mean(axis=0, keepdims=True)
            cov = np.einsum("anK,anL->KL", dev, dev) / (n * (copies - 1))
        sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
        z = (target - phi.mean(axis=(0, 1))) / sd
        mismatch = float(np.sqrt(np.mean(z[free] ** 2)))
        first = mismatch if it == 0 else first   # at theta0, before any Newton step
        cp = (cov / np.outer(sd, sd))[np.ix_(free, free)]
        theta[free] -= damping * np.linalg.solve(cp + ridge * np.eye(int(free.sum())),
                                                 z[free]) / sd[free]
        theta[nonneg] = np.maximum(theta[nonneg], 0.0)   # the leading power stays >= 0
        iterates.append(theta.copy())
    theta = np.mean(iterates[int(iterations * (1.0 - average)):], axis=0)
    theta[~free] = np.asarray(theta0, np.float64)[~free]   # exactly, not the average's round-off
    extra = {"chains": chains} if return_chains else {}
    return theta, {**extra, "ml_refine_iterations": iterations, "ml_refine_start": start, "ml_refine_mala_steps": mala_steps,
                   "ml_refine_copies": copies, "ml_refine_first_mismatch": first,
                   "ml_refine_last_mismatch": mismatch,
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

"""Linear algebra on Hessians given only as batched Hessian-vector products (HVPs): dense
matrices, scipy operators, Lanczos extremes and stochastic Lanczos quadrature. Shared by the fit
(is an energy bounded below?) and the diagnostics (Hessian spectra); see docs/diagnostics.md,
"Hessian eigenvalues: pixel basis vs conditionals"."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator

HVP = Callable[[np.ndarray], np.ndarray]  # (B, *shape) -> (B, *shape)


def dense_hessian(hvp: HVP, shape: tuple, batch: int = 256) -> np.ndarray:
    """The (n, n) matrix of a batched Hessian-vector product, n = prod(shape), by applying it to
    the identity basis in batches; symmetrised (H + Hᵀ)/2."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape))
    H = np.empty((n, n))
    for a in range(0, n, batch):
        m = min(batch, n - a)
        E = np.zeros((m, n))
        E[np.arange(m), a + np.arange(m)] = 1.0
        H[a: a + m] = np.asarray(hvp(E.reshape((m,) + shape))).reshape(m, n)
    return 0.5 * (H + H.T)


def hessian_operator(hvp: HVP, shape: tuple) -> LinearOperator:
    """A symmetric scipy ``LinearOperator`` applying one Hessian-vector product at a time."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape))

    def mv(x):
        return np.asarray(hvp(np.asarray(x, np.float64).reshape((1,) + shape))).reshape(n)

    return LinearOperator((n, n), matvec=mv, rmatvec=mv, dtype=np.float64)


def lanczos_quadrature(hvp: HVP, shape: tuple, n_probe: int = 8, steps: int = 80,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature (SLQ) of the spectral density of a symmetric Hessian.

    For ``n_probe`` random unit vectors v (Rademacher) run ``steps`` Lanczos iterations (all probes
    as one batch of HVPs, full reorthogonalisation); with T = Q diag(θ) Qᵀ the tridiagonal matrix,
    vᵀ f(H) v ≈ Σ_i Q_{0i}² f(θ_i) (Gauss quadrature). Averaged over probes, the nodes θ with
    weights Q_{0i}² / n_probe (summing to 1) approximate the empirical eigenvalue distribution
    (1/n) Σ_k δ(λ - λ_k): any histogram bin or the share of negative eigenvalues is estimated
    with an error of order the largest weight near its edges (~1/steps) plus probe noise
    (~1/√(n · n_probe)). The extreme nodes converge to λ_min, λ_max first.

    Cost: ``steps`` batched HVPs of ``n_probe`` vectors, O(steps² n n_probe) reorthogonalisation;
    a 64 x 64 field takes a fraction of a second where the dense spectrum takes seconds to tens of
    seconds. Returns (nodes, weights), both (n_probe * m,), m = min(steps, n).
    """
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape))
    m = int(min(steps, n))
    if m < 1 or n_probe < 1:
        raise ValueError("need steps >= 1 and n_probe >= 1")
    rng = np.random.default_rng(seed)
    V = rng.choice([-1.0, 1.0], size=(n_probe, n)) / np.sqrt(n)
    Q = np.zeros((m, n_probe, n))
    alpha = np.zeros((n_probe, m))
    beta = np.zeros((n_probe, m))
    q = V
    for i in range(m):
        Q[i] = q
        w = np.asarray(hvp(q.reshape((n_probe,) + shape)), np.float64).reshape(n_probe, n)
        alpha[:, i] = np.einsum("pn,pn->p", w, q)
        # full reorthogonalisation against all previous Lanczos vectors (twice is enough)
        for _ in range(2):
            w = w - np.einsum("ip,ipn->pn", np.einsum("ipn,pn->ip", Q[: i + 1], w), Q[: i + 1])
        b = np.linalg.norm(w, axis=1)
        beta[:, i] = b
        q = w / np.where(b > 0, b, 1.0)[:, None]
    nodes, weights = [], []
    for p in range(n_probe):
        # a breakdown (beta ~ 0) means the Krylov space is exhausted: keep the exact part only
        k = m
        small = np.nonzero(beta[p, : m - 1] <= 1e-12 * max(1.0, np.abs(alpha[p]).max()))[0]
        if small.size:
            k = int(small[0]) + 1
        theta, S = scipy.linalg.eigh_tridiagonal(alpha[p, :k], beta[p, : k - 1])
        nodes.append(theta)
        weights.append(S[0] ** 2 / n_probe)
    return np.concatenate(nodes), np.concatenate(weights)


def lanczos_extremes(hvp: HVP, shape: tuple, steps: int = 40, seed: int = 0) -> tuple[float, float]:
    """Smallest and largest Ritz values after ``steps`` Lanczos iterations from one random vector.

    They lie inside [λ_min, λ_max] and converge to the extremes first: a negative smallest Ritz
    value PROVES a negative eigenvalue (the converse needs convergence). ``steps`` HVPs."""
    nodes, _ = lanczos_quadrature(hvp, shape, 1, steps, seed)
    return float(nodes.min()), float(nodes.max())

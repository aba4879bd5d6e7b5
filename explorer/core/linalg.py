"""Linear algebra on Hessians given only as batched Hessian-vector products (HVPs): dense
matrices, scipy operators, Lanczos extremes, stochastic Lanczos quadrature (SLQ), eigenvalues and
eigenvalue distributions with their summaries and pooled histograms. Shared by the fit (is an
energy bounded below?) and the diagnostics (Hessian spectra); see docs/diagnostics.md, "Hessian
eigenvalues: pixel basis vs conditionals".

Cost: a dense Hessian is n/batch batched HVPs; ``eigvalsh`` of n = 1024 takes ~0.1 s
single-threaded (seconds when a multi-threaded BLAS competes for a small machine's cores).
Lanczos extremes cost a few hundred HVPs, SLQ ``steps`` batched HVPs of ``n_probe`` vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, eigsh

HVP = Callable[[np.ndarray], np.ndarray]  # (B, *shape) -> (B, *shape)

#: dense Hessians are built and diagonalised up to this many variables (64 x 64 pixels)
DENSE_MAX = 4096
#: spectra (histograms) of larger Hessians are estimated by stochastic Lanczos quadrature
SLQ_ABOVE = 1024
#: default SLQ settings: histogram TV ~0.04 (40 bins) and negative share within ~0.005 of the
#: dense spectrum for φ⁴ at β_c, L = 32 and 64 (tests and benchmarks/bench_diagnostics.py)
SLQ_STEPS = 150
SLQ_PROBES = 8


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


# ---------------------------------------------------------------- eigenvalues and distributions
def hessian_eigenvalues(hvp: HVP, shape: tuple, method: str = "auto", k: int = 6,
                        batch: int = 256, tol: float = 1e-8, seed: int = 0) -> np.ndarray:
    """Sorted eigenvalues of the Hessian given by ``hvp`` on variables of ``shape``.

    ``method="dense"``: all n eigenvalues (dense matrix + ``eigvalsh``); ``"lanczos"``: the k
    smallest and the k largest only (``eigsh``, which="SA"/"LA"; exactly degenerate eigenvalues,
    e.g. of a translation-invariant Hessian, may be returned once only: use them for λ_min, λ_max
    and the condition number, not for counting); ``"auto"``: dense up to :data:`DENSE_MAX`
    variables.
    """
    n = int(np.prod(shape))
    if method == "auto":
        method = "dense" if n <= DENSE_MAX else "lanczos"
    if method == "dense":
        return scipy.linalg.eigvalsh(dense_hessian(hvp, shape, batch), check_finite=True)
    if method != "lanczos":
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if 2 * k >= n:  # the extremes would overlap: all eigenvalues, densely
        return hessian_eigenvalues(hvp, shape, "dense", k, batch)
    op = hessian_operator(hvp, shape)
    v0 = np.random.default_rng(seed).standard_normal(n)
    lo = eigsh(op, k=k, which="SA", tol=tol, v0=v0, return_eigenvectors=False)
    hi = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(np.concatenate([lo, hi]))


class Spectrum(NamedTuple):
    """An eigenvalue distribution: exact eigenvalues (``weights`` None, each counts 1/n) or SLQ
    quadrature nodes with weights summing to 1 (:func:`lanczos_quadrature`)."""

    values: np.ndarray
    weights: np.ndarray | None = None
    method: str = "dense"


def _values_weights(s) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(s, Spectrum):
        v = np.asarray(s.values, np.float64).ravel()
        w = np.full(v.size, 1.0 / v.size) if s.weights is None else np.asarray(s.weights, np.float64)
        return v, w
    v = np.asarray(s, np.float64).ravel()
    return v, np.full(v.size, 1.0 / v.size)


def eigen_summary(eigs, complete: bool = True) -> dict:
    """min, max, share of negative eigenvalues, condition numbers.

    ``condition_number`` = λ_max / λ_min only when every eigenvalue is positive (else None: a
    Hessian with negative curvature has no meaningful condition number and is *not* convex);
    ``condition_positive`` = max / min of the positive part (exact spectra only: SLQ nodes do not
    resolve the smallest positive eigenvalue when the spectrum crosses zero, so it is None). With
    ``complete=False`` (Lanczos extremes only) the negative share is not defined (None). ``eigs``
    may be a :class:`Spectrum` (SLQ: the share is the quadrature estimate, ``estimated`` True).
    """
    e, w = _values_weights(eigs)
    estimated = isinstance(eigs, Spectrum) and eigs.method == "slq"
    pos = e[e > 0]
    lo, hi = float(e.min()), float(e.max())
    return {
        "n": int(e.size),
        "complete": bool(complete),
        "estimated": bool(estimated),
        "min": lo,
        "max": hi,
        "negative_share": float(w[e < 0].sum() / w.sum()) if complete else None,
        "positive_definite": bool(lo > 0),
        "condition_number": float(hi / lo) if lo > 0 else None,
        "condition_positive": (float(pos.max() / pos.min()) if pos.size and not estimated
                               else None),
    }


def hessian_spectrum(hvp: HVP, shape: tuple, method: str = "auto", steps: int = SLQ_STEPS,
                     n_probe: int = SLQ_PROBES, seed: int = 0) -> Spectrum:
    """The eigenvalue distribution of a Hessian for histograms: ``"dense"`` (exact, all n),
    ``"slq"`` (:func:`lanczos_quadrature`), ``"auto"``: dense up to :data:`SLQ_ABOVE` variables."""
    n = int(np.prod(shape))
    if method == "auto":
        method = "dense" if n <= SLQ_ABOVE else "slq"
    if method == "dense":
        return Spectrum(hessian_eigenvalues(hvp, shape, "dense"), None, "dense")
    if method == "slq":
        nodes, weights = lanczos_quadrature(hvp, shape, n_probe, steps, seed)
        return Spectrum(nodes, weights, "slq")
    raise ValueError(f"method must be 'auto', 'dense' or 'slq', got {method!r}")


def eigenvalue_histogram(spectra, bins: int = 60, range_: tuple | None = None,
                         complete: bool = True) -> dict:
    """Pooled histogram (density, each field weighted equally) of the eigenvalues of many samples
    plus :func:`eigen_summary` of the pooled distribution. ``spectra``: arrays of eigenvalues
    and/or :class:`Spectrum` estimates; pass ``complete=False`` for Lanczos extremes."""
    pairs = [_values_weights(e) for e in spectra]
    if not pairs:
        raise ValueError("no spectra to histogram")
    vals = np.concatenate([v for v, _ in pairs])
    wts = np.concatenate([w / w.sum() / len(pairs) for _, w in pairs])
    if range_ is None:
        range_ = (float(vals.min()), float(vals.max()))
        if range_[1] <= range_[0]:
            range_ = (range_[0] - 0.5, range_[1] + 0.5)
    h, edges = np.histogram(vals, bins=bins, range=range_, weights=wts)
    h = h / np.diff(edges)
    methods = {s.method if isinstance(s, Spectrum) else "exact" for s in spectra}
    estimated = "slq" in methods
    summ = eigen_summary(Spectrum(vals, wts, "slq") if estimated else Spectrum(vals, wts, "pooled"),
                         complete)
    summ["estimated"] = estimated
    summ["n"] = int(sum(len(v) for v, _ in pairs))
    summ["n_fields"] = len(pairs)
    summ["per_sample_negative_share"] = (
        [float(w[v < 0].sum() / w.sum()) for v, w in pairs] if complete else None)
    return {"edges": edges.tolist(), "density": h.tolist(), "summary": summ}

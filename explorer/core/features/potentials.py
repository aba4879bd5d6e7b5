"""Scalar potentials V = Σ_k θ_k Σ_i ρ_k(x(i)) on the field (depth 0) or on the reconstructed finer
field x_{j-1} of a WCRG conditional: polynomial, localised-window and one-point log bases. See
docs/models.md, "Scalar potentials", and docs/fitting.md, "Laplacian of a scalar potential in a
conditional"."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from explorer.core import wavelets as wv
from explorer.core.features.base import Context, Features

class PotentialBasis:
    """A basis ρ_k of scalar functions with first and second derivatives."""

    names: list[str]

    def evaluate(self, k: int, x: np.ndarray, order: int) -> list[np.ndarray]:
        """[ρ_k(x), ρ_k'(x), ρ_k''(x)][: order + 1]."""
        raise NotImplementedError

    def combine(self, theta: np.ndarray, x: np.ndarray, orders: Sequence[int]) -> dict:
        """{m: Σ_k θ_k ρ_k^(m)(x)} for m in ``orders`` (⊂ {0, 1, 2}); never builds a (K, ...) array."""
        top = max(orders)
        acc = {m: np.zeros_like(x) for m in orders}
        for k, t in enumerate(theta):
            if t == 0.0:
                continue
            vals = self.evaluate(k, x, top)
            for m in orders:
                acc[m] += t * vals[m]
        return acc

    def energy_and_derivative(self, theta: np.ndarray, x: np.ndarray, chain_axis: int,
                              out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Σ_i Σ_k θ_k ρ_k(x(i)) per chain, the sites i being every axis of ``x`` but
        ``chain_axis``, and ``out`` = Σ_k θ_k ρ_k'(x) written in place (``work``, of x's shape, is
        scratch). This one combines by :meth:`combine` a few chains at a time (its temporaries
        then stay in cache); subclasses may avoid the temporaries altogether."""
        sites = tuple(a for a in range(x.ndim) if a != chain_axis)
        per_chain = max(1, x.size // max(1, x.shape[chain_axis]))
        step = max(1, (1 << 15) // per_chain)
        energy = np.empty(x.shape[chain_axis])
        for a in range(0, x.shape[chain_axis], step):
            part = [slice(None)] * x.ndim
            part[chain_axis] = slice(a, a + step)
            part = tuple(part)
            acc = self.combine(theta, x[part], (0, 1))
            out[part] = acc[1]
            energy[a: a + step] = acc[0].sum(axis=sites)
        return energy

    def spec(self) -> dict:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.names)


class PolynomialBasis(PotentialBasis):
    """ρ_p(x) = x^p for the given powers p >= 1. Names "phi" (p = 1), "phi^p"."""

    def __init__(self, powers: Sequence[int]):
        powers = [int(p) for p in powers]
        if not powers or any(p < 1 for p in powers) or len(set(powers)) != len(powers):
            raise ValueError(f"powers must be distinct integers >= 1, got {powers}")
        self.powers = powers
        self.names = ["phi" if p == 1 else f"phi^{p}" for p in powers]

    def evaluate(self, k, x, order):
        p = self.powers[k]
        if p == 1:
            return [x, np.ones_like(x), np.zeros_like(x)][: order + 1]
        xp2 = np.ones_like(x) if p == 2 else x.copy()
        for _ in range(p - 3):  # repeated products: much faster than float pow
            xp2 *= x
        xp1 = xp2 * x
        out = [xp1 * x]
        if order >= 1:
            out.append(p * xp1)
        if order >= 2:
            out.append(p * (p - 1) * xp2)
        return out

    def energy_and_derivative(self, theta, x, chain_axis, out, work):
        # Horner's rule in place: out = Σ_p p θ_p x^(p-1); the energy Σ θ_p x^p = Σ x · q(x) with
        # q = Σ θ_p x^(p-1), which is out / p when a single power is used (the phi4 default).
        coef = {p: float(t) for p, t in zip(self.powers, theta) if t != 0.0}
        if not coef:
            out.fill(0.0)
            return np.zeros(x.shape[chain_axis])
        _horner(x, {p - 1: p * t for p, t in coef.items()}, out)
        idx = list(range(x.ndim))
        if len(coef) == 1:
            (p,) = coef
            return np.einsum(x, idx, out, idx, [chain_axis]) / p
        _horner(x, {p - 1: t for p, t in coef.items()}, work)
        return np.einsum(x, idx, work, idx, [chain_axis])

    def spec(self):
        return {"kind": "polynomial", "powers": list(self.powers)}


def _horner(x: np.ndarray, coef: dict, out: np.ndarray) -> None:
    """out = Σ_d coef[d] x^d (d >= 0), evaluated in place by Horner's rule."""
    top = max(coef)
    if top == 0:
        out.fill(coef[0])
        return
    np.multiply(x, coef[top], out=out)
    for d in range(top - 1, 0, -1):
        if coef.get(d, 0.0) != 0.0:
            out += coef[d]
        out *= x
    if coef.get(0, 0.0) != 0.0:
        out += coef[0]


class WindowBasis(PotentialBasis):
    """Smooth localised windows ρ_k(x) = ρ((x - c_k) / w) on a grid of centres c_k.

    kinds: ``"sigmoid"`` ρ(t) = 1/(1 + e^-t) (the public WCRG code's choice, Marchand et al.
    2023), ``"gaussian"`` ρ(t) = exp(-t²/2), ``"bspline"`` the cubic B-spline (C², support
    |t| < 2). On a uniform grid
    with w equal to the spacing the B-splines are the classical cubic spline basis and every x
    touches only four of them, so θ-contracted evaluations cost O(1) per site whatever the number
    of windows; sigmoids cost one exp per site plus a few operations per window.
    """

    KINDS = ("sigmoid", "gaussian", "bspline")
    LABELS = {"sigmoid": "sigmoid", "gaussian": "bump", "bspline": "spline"}

    def __init__(self, centres: Sequence[float], width: float, kind: str = "sigmoid"):
        if kind not in self.KINDS:
            raise ValueError(f"window must be one of {self.KINDS}, got {kind!r}")
        centres = np.asarray(centres, dtype=np.float64)
        if centres.ndim != 1 or centres.size < 1 or not np.all(np.isfinite(centres)):
            raise ValueError("window centres must be a non-empty 1D array of finite numbers")
        if len(np.unique(centres)) != centres.size:
            raise ValueError("window centres must be distinct")
        width = float(width)
        if not (width > 0 and math.isfinite(width)):
            raise ValueError(f"window width must be positive and finite, got {width}")
        self.centres = centres
        self.width = width
        self.kind = kind
        self.names = _unique_labels(self.LABELS[kind], centres)
        # fast paths
        self._mid = 0.5 * (centres.min() + centres.max())
        self._sig_factorised = kind == "sigmoid" and np.abs(centres - self._mid).max() / width < 600
        if self._sig_factorised:
            self._sig_a = np.exp((centres - self._mid) / width)
        steps = np.diff(centres)
        self._table_cache: tuple | None = None   # (θ bytes, spline table) of the last θ
        self._uniform_spline = (
            kind == "bspline" and
            (centres.size == 1 or np.allclose(steps, width, rtol=1e-12, atol=0))
        )

    def evaluate(self, k, x, order):
        w = self.width
        t = (x - self.centres[k]) / w
        if self.kind == "sigmoid":
            s = expit(t)
            out = [s]
            if order >= 1:
                ds = s * (1.0 - s)
                out.append(ds / w)
                if order >= 2:
                    out.append(ds * (1.0 - 2.0 * s) / (w * w))
        elif self.kind == "gaussian":
            g = np.exp(-0.5 * t * t)
            out = [g]
            if order >= 1:
                out.append(-t * g / w)
            if order >= 2:
                out.append((t * t - 1.0) * g / (w * w))
        else:  # cubic B-spline: B = (p³ - 4q³)/6, p = (2 - |t|)+, q = (1 - |t|)+
            a = np.abs(t)
            p = np.clip(2.0 - a, 0.0, None)
            q = np.clip(1.0 - a, 0.0, None)
            out = [(p**3 - 4.0 * q**3) / 6.0]
            if order >= 1:
                out.append(np.sign(t) * (4.0 * q * q - p * p) / (2.0 * w))
            if order >= 2:
                out.append((p - 4.0 * q) / (w * w))
        return out

    def combine(self, theta, x, orders):
        if self._uniform_spline:
            return self._combine_spline(theta, x, orders)
        if self._sig_factorised:
            return self._combine_sigmoid(theta, x, orders)
        return super().combine(theta, x, orders)

    def _combine_sigmoid(self, theta, x, orders):
        # expit((x - c_k)/w) = 1 / (1 + E a_k) with E = exp(-(x - m)/w), a_k = exp((c_k - m)/w):
        # one exp per site; E = inf or 0 far outside the range gives the right limits 0 and 1.
        w = self.width
        with np.errstate(over="ignore"):
            E = np.exp(-(x - self._mid) / w)
        acc = {m: np.zeros_like(x) for m in orders}
        s = np.empty_like(x)
        ds = np.empty_like(x)
        tmp = np.empty_like(x)
        for k, t in enumerate(theta):
            if t == 0.0:
                continue
            np.multiply(E, self._sig_a[k], out=s)
            s += 1.0
            np.reciprocal(s, out=s)
            if 0 in orders:
                np.multiply(s, t, out=tmp)
                acc[0] += tmp
            if 1 in orders or 2 in orders:
                np.subtract(1.0, s, out=ds)
                ds *= s
                if 1 in orders:
                    np.multiply(ds, t / w, out=tmp)
                    acc[1] += tmp
                if 2 in orders:
                    np.multiply(s, -2.0, out=tmp)
                    tmp += 1.0
                    tmp *= ds
                    tmp *= t / (w * w)
                    acc[2] += tmp
        return acc

    def _spline_table(self, theta) -> np.ndarray:
        """Per-cell cubic coefficients (4, K + 5) of Σ θ_k B_k for the cells i = -3 .. K + 1."""
        key = theta.tobytes()
        cached = self._table_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        K = len(self.centres)
        th = np.zeros(K + 8)
        th[4: K + 4] = theta
        t0, t1, t2, t3 = (th[j: j + K + 5] for j in range(4))  # θ_{i-1}, θ_i, θ_{i+1}, θ_{i+2}
        table = np.stack([t0 + 4 * t1 + t2, 3 * (t2 - t0), 3 * (t0 - 2 * t1 + t2),
                          -t0 + 3 * t1 - 3 * t2 + t3]) / 6.0
        self._table_cache = (key, table)
        return table

    def _combine_spline(self, theta, x, orders):
        # Uniform cubic B-splines: on cell i (c_0 + i h <= x < c_0 + (i+1) h) only windows
        # i-1 .. i+2 are non-zero and Σ θ_k B_k is a cubic a0 + a1 f + a2 f² + a3 f³ in the
        # fractional position f; the coefficients are tabulated once per θ.
        h = self.width
        K = len(self.centres)
        table = self._spline_table(theta)
        u = (x - self.centres[0]) / h
        np.clip(u, -2.5, K + 1.5, out=u)                       # beyond: every window is 0
        i = np.floor(u)
        f = u - i
        idx = i.astype(np.intp)
        idx += 3
        a0, a1, a2, a3 = (np.take(table[j], idx) for j in range(4))
        acc = {}
        if 0 in orders:
            acc[0] = ((a3 * f + a2) * f + a1) * f + a0
        if 1 in orders:
            acc[1] = ((3.0 * a3) * f + 2.0 * a2) * f + a1
            acc[1] /= h
        if 2 in orders:
            acc[2] = (6.0 * a3) * f + 2.0 * a2
            acc[2] /= h * h
        return acc

    def spec(self):
        return {"kind": self.kind, "centres": self.centres.tolist(), "width": self.width}


class LogBasis(PotentialBasis):
    """ρ_k(x) = log(1 + ((x - μ) / s_k)²): a Student-t (Cauchy-like) one-point term, the classic
    sparse-image potential. With θ_k > 0 it sharpens the core of the one-point law and thickens
    its tails relative to the core (kurtosis > 3); it grows only logarithmically, so whatever
    the sign of θ_k an energy whose quadratic part is positive definite stays bounded below."""

    def __init__(self, scales: Sequence[float], centre: float = 0.0):
        scales = [float(s) for s in scales]
        if not scales or not all(s > 0 and math.isfinite(s) for s in scales):
            raise ValueError(f"log-potential scales must be positive finite numbers, got {scales}")
        if not math.isfinite(float(centre)):
            raise ValueError(f"log-potential centre must be finite, got {centre}")
        self.scales = scales
        self.centre = float(centre)
        self.names = (["log(1+(x/s)^2)"] if len(scales) == 1 else
                      [f"log(1+(x/{s:.6g})^2)" for s in scales])
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"log-potential scales must be distinct, got {scales}")

    def evaluate(self, k, x, order):
        s2 = self.scales[k] ** 2
        y = x - self.centre
        y2 = y * y
        out = [np.log1p(y2 / s2)]
        if order >= 1:
            q = s2 + y2
            out.append(2.0 * y / q)
            if order >= 2:
                out.append(2.0 * (s2 - y2) / (q * q))
        return out

    def spec(self):
        return {"kind": "log", "scales": list(self.scales), "centre": self.centre}


def _unique_labels(label: str, centres: np.ndarray) -> list[str]:
    for digits in range(3, 18):
        names = [f"{label}(c={c:+.{digits}g})" for c in centres]
        if len(set(names)) == len(names):
            return names
    return [f"{label}(c={c!r})" for c in centres.tolist()]


def fit_range(data, quantile: float = 0.0) -> tuple[float, float]:
    """(vmin, vmax) of the values in ``data`` (the field the potential acts on at that level).

    ``quantile`` > 0 uses the [q, 1 - q] quantiles instead of min/max (robust to outliers).
    """
    x = np.asarray(data, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("cannot fit a range to empty data")
    if not np.all(np.isfinite(x)):
        raise ValueError("data contain NaN or inf")
    if not 0.0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), got {quantile}")
    if quantile > 0:
        lo, hi = np.quantile(x, [quantile, 1.0 - quantile])
    else:
        lo, hi = x.min(), x.max()
    if not hi > lo:
        raise ValueError(f"data are constant ({lo}); no range to place windows on")
    return float(lo), float(hi)


class ScalarPotential(Features):
    """Φ_k = Σ_i ρ_k(x(i)) with x the field (depth 0) or x_{j-1} = synthesis(c, v) (conditional).

    In a conditional ∇_v Σ_i ρ(x_{j-1}(i)) = details of analysis(ρ'(x_{j-1})) (the transform is
    orthogonal) and Δ_v Σ_i ρ(x_{j-1}(i)) = Σ_i ρ''(x_{j-1}(i)) d_i, d the diagonal of the
    projector onto the detail space (:func:`explorer.core.wavelets.detail_projector_diagonal`).
    θ-contracted evaluations cost one synthesis + one analysis plus O(K) (polynomials, sigmoids)
    or O(1) (splines) elementwise passes per site.
    """

    def __init__(self, basis: PotentialBasis, level: str = "depth0", L: int | None = None,
                 wavelet: str = wv.DEFAULT_WAVELET):
        super().__init__(level, L, wavelet)
        self.basis = basis
        self.names = list(basis.names)

    # the map between the field and the varying variables
    def _to_vars(self, g: np.ndarray, ctx: Context) -> np.ndarray:
        """Adjoint of v -> field: identity at depth 0, details of analysis(g) in a conditional."""
        if self.level == "depth0":
            return g
        return wv.analysis(g, ctx.wavelet)[1]

    def _from_vars(self, w: np.ndarray, ctx: Context) -> np.ndarray:
        if self.level == "depth0":
            return w
        return wv.synthesis(None, w, ctx.wavelet)

    def _diag(self, ctx: Context):
        if self.level == "depth0":
            return None
        return wv.detail_projector_diagonal(ctx.L, ctx.wavelet)

    def phi(self, ctx):
        x = ctx.fine()
        out = np.empty((ctx.N, len(self.basis)))
        for k in range(len(self.basis)):
            out[:, k] = self.basis.evaluate(k, x, 0)[0].sum(axis=(-2, -1))
        return out

    def grad(self, ctx):
        x = ctx.fine()
        N, L = ctx.N, ctx.L
        K = len(self.basis)
        G = np.empty((N, K, L, L))
        for k in range(K):
            G[:, k] = self.basis.evaluate(k, x, 1)[1]
        if self.level == "depth0":
            return G
        det = wv.analysis(G.reshape(N * K, L, L), ctx.wavelet)[1]
        return det.reshape((N, K) + det.shape[1:])

    def laplacian(self, ctx):
        x = ctx.fine()
        D = self._diag(ctx)
        out = np.empty((ctx.N, len(self.basis)))
        for k in range(len(self.basis)):
            d2 = self.basis.evaluate(k, x, 2)[2]
            out[:, k] = d2.sum(axis=(-2, -1)) if D is None else np.einsum("nij,ij->n", d2, D)
        return out

    # θ-contracted evaluations: the basis combines Σ_k θ_k ρ_k^(m) site by site, in chunks of the
    # batch small enough for the temporaries to stay in cache (about 2x faster at 64 x 64 x 64).
    CHUNK_SITES = 1 << 15

    def _combine(self, theta, x, orders) -> dict:
        step = max(1, self.CHUNK_SITES // max(1, x[0].size))
        if step >= len(x):
            return self.basis.combine(theta, x, orders)
        out = {m: np.empty_like(x) for m in orders}
        for a in range(0, len(x), step):
            part = self.basis.combine(theta, x[a: a + step], orders)
            for m in orders:
                out[m][a: a + step] = part[m]
        return out

    def _energy_and_grad(self, theta, ctx):
        acc = self._combine(theta, ctx.fine(), (0, 1))
        return acc[0].sum(axis=(-2, -1)), self._to_vars(acc[1], ctx)

    def _energy(self, theta, ctx):
        return self._combine(theta, ctx.fine(), (0,))[0].sum(axis=(-2, -1))

    def _energy_grad(self, theta, ctx):
        return self._to_vars(self._combine(theta, ctx.fine(), (1,))[1], ctx)

    def _hvp(self, theta, ctx, w):
        h = self._combine(theta, ctx.fine(), (2,))[2]
        return self._to_vars(h * self._from_vars(w, ctx), ctx)

"""Stationary quadratic couplings Φ_(c,d,s) = ½ Σ_i x_c(i) x_d(i - s) over channel pairs and short
periodic shifts: the ``gaussian`` family and the quadratic part of every other family. See
docs/models.md, "Quadratic couplings"."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft as sfft

from explorer.core import wavelets as wv
from explorer.core.features.base import CONDITIONAL_CHANNELS, Context, Features, FitProtocol
from explorer.core.features.products import matmul

Term = tuple  # (c, d, (dy, dx)): Σ_i x_c(i) x_d(i - s)


def _rep(t: int, n: int | None) -> int:
    """Representative of a shift component modulo n in (-n/2, n/2] (unchanged if n is None)."""
    if n is None:
        return int(t)
    r = int(t) % n
    return r - n if r > n // 2 else r


def _canonical_term(c: int, d: int, s: tuple, n: int | None) -> Term:
    s1 = (_rep(s[0], n), _rep(s[1], n))
    s2 = (_rep(-s[0], n), _rep(-s[1], n))
    return min((c, d, s1), (d, c, s2))


def _canonical_feature(terms: dict, n: int | None) -> dict:
    """Merge {(c, d, s): w} into canonical terms, dropping zeros."""
    out: dict = {}
    for (c, d, s), w in terms.items():
        key = _canonical_term(c, d, s, n)
        out[key] = out.get(key, 0.0) + w
    return {k: w for k, w in out.items() if w != 0.0}


def _feature_key(terms: dict) -> tuple:
    """Key identifying a feature up to a non-zero factor."""
    items = sorted(terms.items())
    w0 = items[0][1]
    return tuple((t, round(w / w0, 12)) for t, w in items)


def _square_window(radius: int) -> list[tuple[int, int]]:
    """Shifts with max(|dy|, |dx|) <= radius, nearest first (so a merged feature keeps its
    shortest name on tiny lattices)."""
    shifts = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    return sorted(shifts, key=lambda s: (s[0] ** 2 + s[1] ** 2, not _positive(s), s))


def _positive(s: tuple[int, int]) -> bool:
    return s[0] > 0 or (s[0] == 0 and s[1] >= 0)


class QuadraticCouplings(Features):
    """Quadratic features Φ_k = Σ_{(c, d, s) ∈ terms_k} w · Σ_i x_c(i) x_d(i - s).

    ``specs`` is a list of (name, {(c, d, (dy, dx)): weight}) with channel indices into
    [x] (depth 0) or [HL, LH, HH, LL] (conditional; LL is fixed). Terms are merged into a canonical
    form and features that coincide (up to a factor) are dropped, keeping the first.
    Use :meth:`gaussian` for the standard family.

    θ-contracted evaluations (the sampler's hot loop) are one FFT convolution of the channel
    stack, independent of the radius and of the number of pairs. A purely quadratic energy is
    bounded below iff its couplings are positive definite (``fit_protocol.bound = "couplings"``).
    """

    fit_protocol = FitProtocol(bound="couplings")

    def __init__(self, specs: Sequence, level: str = "depth0", L: int | None = None,
                 wavelet: str = wv.DEFAULT_WAVELET):
        super().__init__(level, L, wavelet)
        self.n_channels = 1 if level == "depth0" else 4
        self.n_varying = 1 if level == "depth0" else 3
        n = self.n
        names, feats, seen = [], [], set()
        for name, terms in specs:
            for (c, d, _s) in terms:
                if not (0 <= c < self.n_channels and 0 <= d < self.n_channels):
                    raise ValueError(f"feature {name!r}: channel index out of range in {(c, d)}")
            terms = {t: w for t, w in _canonical_feature(dict(terms), n).items()
                     if t[0] < self.n_varying or t[1] < self.n_varying}
            if not terms:
                continue
            key = _feature_key(terms)
            if key in seen:
                continue
            seen.add(key)
            names.append(name)
            feats.append(terms)
        if not feats:
            raise ValueError("no quadratic feature left (all constant or duplicates)")
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique: {names}")
        self.names = names
        self.terms = feats
        self._build_tables()

    # ---------------------------------------------------------------- factories
    @classmethod
    def gaussian(cls, level: str = "depth0", L: int | None = None, wavelet: str = wv.DEFAULT_WAVELET,
                 radius: int = 1, isotropic: bool = False) -> QuadraticCouplings:
        """The standard stationary Gaussian family: every coupling (c, d, s) with
        max(|dy|, |dx|) <= ``radius``, summed over its symmetric copies {(c, d, s), (d, c, -s)},
        so that θ_k is the entry K_cd(s) of the precision kernel of ½ xᵀKx. Duplicates (s and -s
        for a self pair, shifts equal modulo a tiny lattice's side) are removed; LL × LL terms
        are constant in the details and dropped. ``isotropic=True`` (depth 0 only) sums the
        shifts of one orbit of the square lattice's symmetry group into one feature. Names:

            depth 0:      "phi^2/2" (= ½ Σ φ²), "coupling(dy,dx)";  isotropic: "phi^2/2", "nn"
                          (= Σ_<xy> φ_x φ_y), "nnn", "shell(a,b)" (a >= b >= 0, a >= 2)
            conditional:  "coupling[HL,LH](dy,dx)", ..., "coupling[HH,LL](dy,dx)"
        """
        if not isinstance(radius, (int, np.integer)) or isinstance(radius, bool) or radius < 0:
            raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
        radius = int(radius)
        if level == "depth0":
            specs = _isotropic_specs(radius) if isotropic else _depth0_specs(radius)
        else:
            if isotropic:
                raise ValueError(
                    "isotropic=True is only available at depth 0 (the detail channels are not "
                    "mapped onto each other by lattice rotations for Daubechies wavelets)"
                )
            specs = _conditional_specs(radius)
        return cls(specs, level=level, L=L, wavelet=wavelet)

    # ---------------------------------------------------------------- tables
    def _build_tables(self) -> None:
        K, C, A = len(self.terms), self.n_channels, self.n_varying
        # phi: per shift s, M[s][k, c, d] so that Φ_k = Σ_s Σ_cd M[s][k,c,d] Σ_i X_c(i) X_d(i-s)
        self._phi_tab: dict = {}
        # grad: per roll t, G[t][k, a, e] so that ∇_{X_a} Φ_k = Σ_t Σ_e G[t][k,a,e] roll(X_e, t)
        self._grad_tab: dict = {}
        self._lap_terms: list = []  # (k, s, w) for self terms of a varying channel
        for k, terms in enumerate(self.terms):
            for (c, d, s), w in terms.items():
                self._phi_tab.setdefault(s, np.zeros((K, C, C)))[k, c, d] += w
                if c < A:
                    self._grad_tab.setdefault(s, np.zeros((K, A, C)))[k, c, d] += w
                if d < A:
                    ms = (-s[0], -s[1])
                    self._grad_tab.setdefault(ms, np.zeros((K, A, C)))[k, d, c] += w
                if c == d and c < A:
                    self._lap_terms.append((k, s, w))
        self._lap_cache: dict = {}
        self._kernel_cache: tuple | None = None
        self._grad_entries = {
            t: [(int(k), int(a), int(e), float(T[k, a, e])) for k, a, e in zip(*np.nonzero(T))]
            for t, T in self._grad_tab.items()
        }

    @staticmethod
    def _roll(X: np.ndarray, s: tuple) -> np.ndarray:
        if s == (0, 0):
            return X
        return np.roll(X, s, axis=(-2, -1))

    # ---------------------------------------------------------------- features
    def phi(self, ctx: Context) -> np.ndarray:
        X = ctx.channels()
        out = np.zeros((ctx.N, len(self.terms)))
        for s, M in self._phi_tab.items():
            used = np.flatnonzero(M.any(axis=(0, 1)))  # channels d used at this shift
            P = np.einsum("ncij,ndij->ncd", X, self._roll(X[:, used], s))
            out += np.einsum("ncd,kcd->nk", P, M[:, :, used])
        return out

    def grad(self, ctx: Context) -> np.ndarray:
        # each feature has one or two terms: O(K N n²) axpys, one roll per shift
        X = ctx.channels()
        n = ctx.n
        G = np.zeros((ctx.N, len(self.terms), self.n_varying, n, n))
        for t, entries in self._grad_entries.items():
            R = self._roll(X, t)
            for k, a, e, w in entries:
                G[:, k, a] += w * R[:, e]
        return G if self.level == "conditional" else G[:, :, 0]

    def laplacian(self, ctx: Context) -> np.ndarray:
        n = ctx.n
        lap = self._lap_cache.get(n)
        if lap is None:
            lap = np.zeros(len(self.terms))
            for k, s, w in self._lap_terms:
                if s[0] % n == 0 and s[1] % n == 0:
                    lap[k] += 2.0 * w * n * n
            self._lap_cache[n] = lap
        return np.tile(lap, (ctx.N, 1))

    # ---------------------------------------------------------------- θ-contracted
    # The θ-contracted operations are one convolution: ∇_{X_a} U_θ = Σ_e k_ae ⋆ X_e with the kernel
    # k_ae(t) = Σ_k θ_k G[t][k, a, e]. It is applied by FFT, so the cost is independent of the
    # number of shifts (two real FFTs of the batch instead of one roll + axpy per shift and pair).
    def _kernel_spectrum(self, theta: np.ndarray, n: int) -> np.ndarray:
        """rfft2 of the real-space kernel (A, C, n, n) for this θ (cached for the last θ, n)."""
        key = (theta.tobytes(), n)
        cached = self._kernel_cache  # one read: safe if another thread replaces it meanwhile
        if cached is not None and cached[0] == key:
            return cached[1]
        ker = np.zeros((self.n_varying, self.n_channels, n, n))
        for t, T in self._grad_tab.items():
            ker[:, :, t[0] % n, t[1] % n] += np.tensordot(theta, T, axes=(0, 0))
        spec = np.fft.rfft2(ker)
        self._kernel_cache = (key, spec)
        return spec

    def _convolve(self, theta: np.ndarray, X: np.ndarray, channels: slice) -> np.ndarray:
        """Spectrum (N, A, n, n//2+1) of Σ_{e in channels} k_ae ⋆ X_e (X holds those channels)."""
        n = X.shape[-1]
        return _apply_kernel(self._kernel_spectrum(theta, n)[:, channels], sfft.rfft2(X))

    def _to_output(self, Y: np.ndarray) -> np.ndarray:
        return Y if self.level == "conditional" else Y[:, 0]

    def _energy_and_grad(self, theta: np.ndarray, ctx: Context):
        # one forward FFT of every channel, one inverse FFT of the gradient; the linear term's
        # energy b^T v by Parseval on the half spectrum (no second inverse FFT)
        X = ctx.channels()
        n, A = ctx.n, self.n_varying
        v = X[:, :A]
        Xh = sfft.rfft2(X)
        Kh = self._kernel_spectrum(theta, n)
        # the products are fresh arrays (and Xh is not used again): the inverse FFT may overwrite
        # them and the one-channel product is taken in place (fewer fresh pages: see
        # docs/performance.md, "Gradient floor")
        if self.n_channels == A:
            g = sfft.irfft2(_apply_kernel(Kh, Xh, in_place=True), s=(n, n), overwrite_x=True)
            e = 0.5 * np.einsum("naij,naij->n", v, g)                # U = ½ vᵀQv
        else:
            Yl = _apply_kernel(Kh[:, A:], Xh[:, A:])                 # linear part (condition)
            g = sfft.irfft2(_apply_kernel(Kh[:, :A], Xh[:, :A]) + Yl, s=(n, n), overwrite_x=True)
            # U = ½ vᵀQv + bᵀv = ½ vᵀ(Qv + b) + ½ bᵀv
            e = 0.5 * (np.einsum("naij,naij->n", v, g) + _real_inner(Xh[:, :A], Yl, n))
        return e, self._to_output(g)

    def _energy(self, theta: np.ndarray, ctx: Context) -> np.ndarray:
        return self._energy_and_grad(theta, ctx)[0]

    def _energy_grad(self, theta: np.ndarray, ctx: Context) -> np.ndarray:
        X = ctx.channels()
        n = ctx.n
        g = sfft.irfft2(self._convolve(theta, X, slice(None)), s=(n, n))
        return self._to_output(g)

    def _hvp(self, theta: np.ndarray, ctx: Context, w: np.ndarray) -> np.ndarray:
        W = w[:, None] if self.level == "depth0" else w
        n = ctx.n
        h = sfft.irfft2(self._convolve(theta, W, slice(0, self.n_varying)), s=(n, n))
        return self._to_output(h)


def _depth0_specs(radius: int) -> list:
    specs = []
    for s in _square_window(radius):
        if not _positive(s):
            continue
        name = "phi^2/2" if s == (0, 0) else f"coupling({s[0]},{s[1]})"
        specs.append((name, _symmetrised(0, 0, s)))
    return specs


def _isotropic_specs(radius: int) -> list:
    specs = []
    for a in range(radius + 1):
        for b in range(a + 1):
            orbit = {(sy * p, sx * q) for (p, q) in ((a, b), (b, a)) for sy in (1, -1) for sx in (1, -1)}
            terms: dict = {}
            for s in orbit:
                terms[(0, 0, s)] = terms.get((0, 0, s), 0.0) + 0.5
            if (a, b) == (0, 0):
                name = "phi^2/2"
            elif (a, b) == (1, 0):
                name = "nn"
            elif (a, b) == (1, 1):
                name = "nnn"
            else:
                name = f"shell({a},{b})"
            specs.append((name, terms))
    return specs


def _conditional_specs(radius: int) -> list:
    names = CONDITIONAL_CHANNELS
    pairs = [(c, d) for c in range(3) for d in range(c, 3)] + [(c, 3) for c in range(3)]
    specs = []
    for c, d in pairs:
        for s in _square_window(radius):
            if c == d and not _positive(s):
                continue
            specs.append((f"coupling[{names[c]},{names[d]}]({s[0]},{s[1]})", _symmetrised(c, d, s)))
    return specs


def _symmetrised(c: int, d: int, s: tuple) -> dict:
    """½ Σ over {(c, d, s), (d, c, -s)} (merged later into the canonical form)."""
    ms = (-s[0], -s[1])
    if (c, d, s) == (d, c, ms):  # the on-site term (c, c, 0) is its own mirror image
        return {(c, d, s): 0.5}
    return {(c, d, s): 0.5, (d, c, ms): 0.5}


def _apply_kernel(Kh: np.ndarray, Xh: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Y[n, a] = Σ_e Kh[a, e] Xh[n, e] for spectra Kh (A, E, *k) and Xh (N, E, *k): one batched
    matrix product over the frequencies (faster than einsum for these small channel counts), or
    for a single channel E = 1 an elementwise product (the batched product of 1 × 1 matrices
    cost ten times as much: 1.4 ms against 0.13 ms for 64 fields of 64²), written into Xh when
    ``in_place`` and A = E = 1."""
    A, E = Kh.shape[:2]
    N = Xh.shape[0]
    if E == 1:  # one input channel (the depth-0 factors): a product per frequency, no matrices
        if in_place and A == 1 and Xh.shape[1] == 1:
            return np.multiply(Xh, Kh[None, :, 0], out=Xh)
        return Kh[None, :, 0] * Xh[:, :1]
    K = Kh.reshape(A, E, -1).transpose(2, 0, 1)            # (k, A, E)
    Xt = Xh.reshape(N, E, -1).transpose(2, 1, 0)           # (k, E, N)
    return matmul(K, Xt).transpose(2, 1, 0).reshape((N, A) + Xh.shape[2:])


def _real_inner(Ah: np.ndarray, Bh: np.ndarray, n: int) -> np.ndarray:
    """Σ_{c, x} a_c(x) b_c(x) per sample from the rfft2 spectra (N, C, n, n//2+1) of two real
    fields of side n (Parseval: the columns 1 .. ceil(n/2) - 1 stand for their mirror images too)."""
    w = np.full(Ah.shape[-1], 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    prod = (Ah.real * Bh.real + Ah.imag * Bh.imag) @ w        # (N, C, n)
    return prod.sum(axis=(1, 2)) / (n * n)

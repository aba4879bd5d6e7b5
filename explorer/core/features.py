"""Stationary feature families for energies U_θ = θᵀΦ (SCIENCE.md §3, §5).

One :class:`Features` object is one family instantiated for one *level*:

* ``level="depth0"``: the varying variables ``v`` are the pixel field (N, L, L); no condition.
* ``level="conditional"`` (a WCRG conditional at some scale j): ``v`` = the details x̄_j
  (N, 3, L/2, L/2), the condition ``c`` = the low-pass x_j (N, L/2, L/2), and the features are
  functions of the finer field x_{j-1} = synthesis(c, v) of side ``L``. Derivatives are in ``v`` only.

Every family exposes the same methods, so fitting, sampling and diagnostics never look inside::

    ctx = F.prepare(v, c)              # validated float64 inputs + cache shared by all blocks
    F.phi(ctx)        -> (N, K)        # Φ_k
    F.grad(ctx)       -> (N, K, *var)  # ∇_v Φ_k            (score matching; small batches)
    F.laplacian(ctx)  -> (N, K)        # Δ_v Φ_k, exact
    F.energy(θ, v, c)      -> (N,)     # θᵀΦ
    F.energy_grad(θ, v, c) -> (N, *var)  # Σ_k θ_k ∇Φ_k without building the (N, K, *var) array
    F.energy_and_grad(θ, v, c)         # both, sharing the reconstruction (MALA)
    F.hvp(θ, v, w, c) -> (N, *var)     # (∇²_v U_θ) w

Families (build them with :func:`make_features`; new ones, e.g. scattering, plug in with
:func:`register_family`):

``gaussian`` — stationary quadratic couplings (:class:`QuadraticCouplings`). Channels: depth 0 the
pixel field; conditional the three detail channels HL, LH, HH (varying) and the low-pass LL (fixed).
A coupling (c, d, s), s = (dy, dx) a periodic shift with max(|dy|, |dx|) <= ``radius``, is

    Φ = ½ Σ_i x_c(i) x_d(i - s)   summed over its symmetric copies {(c, d, s), (d, c, -s)},

i.e. Σ_i x_c(i) x_d(i - s) for distinct (c, d, s), and ½ Σ_i x_c(i)² for the on-site term
(c, c, 0). With this normalisation θ_k is the entry K_{cd}(s) of the precision matrix of the
Gaussian energy ½ xᵀKx. Duplicates (s and -s for a self pair, (c, d, s) ≡ (d, c, -s), and shifts
equal modulo the lattice side on tiny lattices) are removed; LL × LL terms are constant in v and
dropped. ``isotropic=True`` (depth 0 only) sums the shifts of one orbit of the square lattice's
symmetry group (rotations by 90°, reflections) into one feature. Names:

    depth 0:      "phi^2/2" (= ½ Σ φ²), "coupling(dy,dx)";  isotropic: "phi^2/2", "nn", "nnn",
                  "shell(a,b)" (a >= b >= 0 the orbit representative, a >= 2)
    conditional:  "coupling[HL,LH](dy,dx)", ..., "coupling[HH,LL](dy,dx)"

``"nn"`` is exactly Σ_<xy> φ_x φ_y over the 2L² nearest-neighbour bonds.

``phi4`` — ``gaussian`` plus a scalar potential Σ_i ρ_k(x_{j-1}(i)) evaluated on the finer field
(depth 0: on the field itself), :class:`ScalarPotential`. Bases:

* ``potential="polynomial"`` (default), ``degree=4``, ``parity="even"`` (φ⁴ is Z2-symmetric) or
  ``"all"``: the powers p <= degree of that parity, *except* p = 2 (Σ x_{j-1}² = ‖v‖² + ‖c‖² is
  already the sum of the on-site couplings: keeping it would make H singular) and, in conditionals,
  p = 1 (Σ_i x_{j-1}(i) does not depend on the details). Names "phi^4", "phi^3", "phi".
* ``potential="windows"``: ``n_windows`` (default 30) smooth windows on a uniform grid of centres
  spanning [``vmin``, ``vmax``] (the range of x_{j-1} in the data, see :func:`fit_range`), of width
  w = ``width`` or the grid spacing: ``window="sigmoid"`` (default, as in the anchor code;
  ρ = expit((x - c)/w)), ``"gaussian"`` (ρ = exp(-(x - c)²/(2w²))) or ``"bspline"`` (cubic B-splines,
  C², compact support; θ-contracted evaluations cost O(1) per site whatever n_windows, about twice
  as fast as 30 sigmoids). Names "sigmoid(c=+0.25)", "bump(c=+0.25)", "spline(c=+0.25)".

In a conditional, ∇_v Σ_i ρ(x_{j-1}(i)) = details of analysis(ρ'(x_{j-1})) (the transform is
orthogonal) and Δ_v Σ_i ρ(x_{j-1}(i)) = Σ_i ρ''(x_{j-1}(i)) d_i, d the diagonal of the projector onto
the detail space (:func:`explorer.core.wavelets.detail_projector_diagonal`).

:func:`phi4_ansatz` is the well-specified depth-0 φ⁴ ansatz ["nn", "phi^2", "phi^4"] =
[Σ_<xy> φ_x φ_y, Σ φ², Σ φ⁴]; the canonical energy E = -β Σ_<xy> φ_x φ_y + Σ [φ² + λ(φ² - 1)²]
is θ = (-β, 1 - 2λ, λ) plus the constant λ L².

Sizes: ``L`` is the side of the field the features act on (depth 0: the field; conditional: the
finer field x_{j-1}, so v has side L/2). ``L=None`` accepts any size (duplicates are then removed
for the infinite lattice only; give L to also remove shifts that coincide on a tiny lattice).

Normalisation of x̄_j by σ_j is left to the model: evaluating the features at v = σ z, the energy
in z has gradient σ ∇_v and Laplacian σ² Δ_v, so the score-matching objective is multiplied by σ²
and its minimiser θ is unchanged.

Cost (θ-contracted methods, the sampler's hot loop): the quadratic part is one FFT convolution of
the channel stack (independent of the radius and of the number of pairs); a scalar potential costs
one synthesis + one analysis in a conditional plus O(K) (polynomials, sigmoids) or O(1) (splines)
elementwise passes per site. ``grad`` builds (N, K, *var) with O(K N vars) work and is meant for
the small batches of score matching.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import expit

from explorer.core import wavelets as wv

LEVELS = ("depth0", "conditional")
CONDITIONAL_CHANNELS = wv.DETAIL_CHANNELS + (wv.LOW_CHANNEL,)


# ================================================================== context
class Context:
    """Validated inputs of one batch and a cache shared by the blocks of a feature set."""

    __slots__ = ("v", "c", "level", "wavelet", "_cache")

    def __init__(self, v: np.ndarray, c: np.ndarray | None, level: str, wavelet: str):
        self.v = v
        self.c = c
        self.level = level
        self.wavelet = wavelet
        self._cache: dict = {}

    @property
    def N(self) -> int:
        return self.v.shape[0]

    @property
    def n(self) -> int:
        """Side of the lattice of the varying variables."""
        return self.v.shape[-1]

    @property
    def L(self) -> int:
        """Side of the field the features act on (x at depth 0, x_{j-1} in a conditional)."""
        return self.n if self.level == "depth0" else 2 * self.n

    def fine(self) -> np.ndarray:
        """The field (N, L, L): v itself at depth 0, synthesis(c, v) in a conditional."""
        if "fine" not in self._cache:
            if self.level == "depth0":
                self._cache["fine"] = self.v
            else:
                self._cache["fine"] = wv.synthesis(self.c, self.v, self.wavelet)
        return self._cache["fine"]

    def channels(self) -> np.ndarray:
        """Stack (N, C, n, n) of channels: [x] at depth 0, [HL, LH, HH, LL] in a conditional."""
        if "channels" not in self._cache:
            if self.level == "depth0":
                X = self.v[:, None]
            else:
                X = np.concatenate([self.v, self.c[:, None]], axis=1)
            self._cache["channels"] = X
        return self._cache["channels"]


# ================================================================== base class
class Features:
    """A feature family Φ (K features) for one level; see the module docstring for the interface."""

    names: list[str]

    def __init__(self, level: str = "depth0", L: int | None = None, wavelet: str = wv.DEFAULT_WAVELET):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.wavelet = wv.check_wavelet(wavelet)
        if L is not None:
            L = int(L)
            if L < 1 or (level == "conditional" and L % 2):
                raise ValueError(
                    f"L must be a positive integer{' and even' if level == 'conditional' else ''}, "
                    f"got {L}"
                )
        self.L = L
        self.spec: dict | None = None  # set by make_features (for save/load)

    # ---------------------------------------------------------------- shapes
    @property
    def n_features(self) -> int:
        return len(self.names)

    @property
    def conditional(self) -> bool:
        return self.level == "conditional"

    @property
    def n(self) -> int | None:
        """Side of the lattice of the varying variables (None: any)."""
        if self.L is None:
            return None
        return self.L if self.level == "depth0" else self.L // 2

    @property
    def var_shape(self) -> tuple | None:
        n = self.n
        if n is None:
            return None
        return (n, n) if self.level == "depth0" else (3, n, n)

    @property
    def cond_shape(self) -> tuple | None:
        if self.level == "depth0" or self.n is None:
            return None
        return (self.n, self.n)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(level={self.level!r}, L={self.L}, wavelet={self.wavelet!r}, "
                f"K={self.n_features})")

    # ---------------------------------------------------------------- inputs
    def prepare(self, v, c=None) -> Context:
        """Validate (N, *var_shape) varying variables and the (N, n, n) condition; build a context."""
        v = np.asarray(v, dtype=np.float64)
        if self.level == "depth0":
            if c is not None:
                raise ValueError("depth-0 features take no condition (c must be None)")
            if v.ndim != 3 or v.shape[1] != v.shape[2]:
                raise ValueError(f"depth-0 features expect a batch of fields (N, L, L), got {v.shape}")
            if self.L is not None and v.shape[1] != self.L:
                raise ValueError(f"these features were built for L = {self.L}, got fields of side {v.shape[1]}")
            return Context(v, None, self.level, self.wavelet)
        if v.ndim != 4 or v.shape[1] != 3 or v.shape[2] != v.shape[3]:
            raise ValueError(f"conditional features expect details (N, 3, n, n), got {v.shape}")
        n = v.shape[-1]
        if self.L is not None and 2 * n != self.L:
            raise ValueError(
                f"these features were built for L = {self.L} (details of side {self.L // 2}), "
                f"got details of side {n}"
            )
        if c is None:
            raise ValueError("conditional features need the low-pass condition c (N, n, n)")
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 2:
            c = c[None]
        if c.ndim != 3 or c.shape[1:] != (n, n) or c.shape[0] not in (1, v.shape[0]):
            raise ValueError(f"condition c must have shape ({v.shape[0]}, {n}, {n}), got {c.shape}")
        if c.shape[0] != v.shape[0]:
            c = np.broadcast_to(c, (v.shape[0], n, n))
        return Context(v, c, self.level, self.wavelet)

    def _theta(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.n_features,):
            raise ValueError(f"theta must have shape ({self.n_features},), got {theta.shape}")
        return theta

    def _check_w(self, w, ctx: Context) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        if w.shape != ctx.v.shape:
            raise ValueError(f"direction w must have the shape of v {ctx.v.shape}, got {w.shape}")
        return w

    # ---------------------------------------------------------------- per-feature (subclasses)
    def phi(self, ctx: Context) -> np.ndarray:
        raise NotImplementedError

    def grad(self, ctx: Context) -> np.ndarray:
        raise NotImplementedError

    def laplacian(self, ctx: Context) -> np.ndarray:
        raise NotImplementedError

    # ---------------------------------------------------------------- θ-contracted (subclasses may specialise)
    def _energy(self, theta: np.ndarray, ctx: Context) -> np.ndarray:
        return self.phi(ctx) @ theta

    def _energy_grad(self, theta: np.ndarray, ctx: Context) -> np.ndarray:
        raise NotImplementedError

    def _energy_and_grad(self, theta: np.ndarray, ctx: Context):
        return self._energy(theta, ctx), self._energy_grad(theta, ctx)

    def _hvp(self, theta: np.ndarray, ctx: Context, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---------------------------------------------------------------- public θ-contracted API
    def energy(self, theta, v, c=None) -> np.ndarray:
        """U_θ = θᵀΦ for each sample: (N,)."""
        return self._energy(self._theta(theta), self.prepare(v, c))

    def energy_grad(self, theta, v, c=None) -> np.ndarray:
        """∇_v U_θ = Σ_k θ_k ∇Φ_k: (N, *var_shape), computed without the per-feature array."""
        return self._energy_grad(self._theta(theta), self.prepare(v, c))

    def energy_and_grad(self, theta, v, c=None) -> tuple[np.ndarray, np.ndarray]:
        """(U_θ (N,), ∇_v U_θ (N, *var_shape)) from one context (one reconstruction)."""
        return self._energy_and_grad(self._theta(theta), self.prepare(v, c))

    def hvp(self, theta, v, w, c=None) -> np.ndarray:
        """Hessian-vector product (∇²_v U_θ)(v) w: (N, *var_shape)."""
        ctx = self.prepare(v, c)
        return self._hvp(self._theta(theta), ctx, self._check_w(w, ctx))

    def __add__(self, other: Features) -> FeatureSum:
        return FeatureSum([self, other])


# ================================================================== quadratic couplings
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
    """

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
        """The standard stationary Gaussian family (see the module docstring)."""
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
        Kh = self._kernel_spectrum(theta, n)[:, channels]
        return np.einsum("aekl,nekl->nakl", Kh, np.fft.rfft2(X))

    def _to_output(self, Y: np.ndarray) -> np.ndarray:
        return Y if self.level == "conditional" else Y[:, 0]

    def _energy_and_grad(self, theta: np.ndarray, ctx: Context):
        X = ctx.channels()
        n, A = ctx.n, self.n_varying
        v = X[:, :A]
        Yq = self._convolve(theta, v, slice(0, A))              # quadratic part of the gradient
        if self.n_channels == A:
            g = np.fft.irfft2(Yq, s=(n, n))
            e = 0.5 * np.sum(v * g, axis=(1, 2, 3))             # U = ½ vᵀQv
        else:
            Yl = self._convolve(theta, X[:, A:], slice(A, None))  # linear part (from the condition)
            g, lin = np.fft.irfft2(np.stack([Yq + Yl, Yl]), s=(n, n))
            e = 0.5 * np.sum(v * (g + lin), axis=(1, 2, 3))     # U = ½ vᵀQv + bᵀv
        return e, self._to_output(g)

    def _energy(self, theta: np.ndarray, ctx: Context) -> np.ndarray:
        return self._energy_and_grad(theta, ctx)[0]

    def _energy_grad(self, theta: np.ndarray, ctx: Context) -> np.ndarray:
        X = ctx.channels()
        n = ctx.n
        g = np.fft.irfft2(self._convolve(theta, X, slice(None)), s=(n, n))
        return self._to_output(g)

    def _hvp(self, theta: np.ndarray, ctx: Context, w: np.ndarray) -> np.ndarray:
        W = w[:, None] if self.level == "depth0" else w
        n = ctx.n
        h = np.fft.irfft2(self._convolve(theta, W, slice(0, self.n_varying)), s=(n, n))
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


# ================================================================== scalar potentials
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

    def spec(self):
        return {"kind": "polynomial", "powers": list(self.powers)}


class WindowBasis(PotentialBasis):
    """Smooth localised windows ρ_k(x) = ρ((x - c_k) / w) on a grid of centres c_k.

    kinds: ``"sigmoid"`` ρ(t) = 1/(1 + e^-t) (the anchor code's choice), ``"gaussian"``
    ρ(t) = exp(-t²/2), ``"bspline"`` the cubic B-spline (C², support |t| < 2). On a uniform grid
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
        cached = getattr(self, "_table_cache", None)
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
    """Φ_k = Σ_i ρ_k(x(i)) with x the field (depth 0) or x_{j-1} = synthesis(c, v) (conditional)."""

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


# ================================================================== sums of blocks
class FeatureSum(Features):
    """Concatenation of feature blocks for the same level (θ is split in block order)."""

    def __init__(self, blocks: Sequence[Features]):
        flat: list[Features] = []
        for b in blocks:
            flat.extend(b.blocks if isinstance(b, FeatureSum) else [b])
        if not flat:
            raise ValueError("a feature sum needs at least one block")
        first = flat[0]
        for b in flat[1:]:
            if (b.level, b.L, b.wavelet) != (first.level, first.L, first.wavelet):
                raise ValueError(
                    "blocks must share level, L and wavelet: "
                    f"{(first.level, first.L, first.wavelet)} vs {(b.level, b.L, b.wavelet)}"
                )
        super().__init__(first.level, first.L, first.wavelet)
        self.blocks = flat
        self.names = [name for b in flat for name in b.names]
        if len(set(self.names)) != len(self.names):
            dup = sorted({x for x in self.names if self.names.count(x) > 1})
            raise ValueError(f"feature names must be unique across blocks; duplicated: {dup}")
        bounds = np.cumsum([0] + [b.n_features for b in flat])
        self._slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def phi(self, ctx):
        return np.concatenate([b.phi(ctx) for b in self.blocks], axis=1)

    def grad(self, ctx):
        return np.concatenate([b.grad(ctx) for b in self.blocks], axis=1)

    def laplacian(self, ctx):
        return np.concatenate([b.laplacian(ctx) for b in self.blocks], axis=1)

    def _energy(self, theta, ctx):
        return sum(b._energy(theta[s], ctx) for b, s in zip(self.blocks, self._slices))

    def _energy_grad(self, theta, ctx):
        return sum(b._energy_grad(theta[s], ctx) for b, s in zip(self.blocks, self._slices))

    def _energy_and_grad(self, theta, ctx):
        e, g = 0.0, 0.0
        for b, s in zip(self.blocks, self._slices):
            eb, gb = b._energy_and_grad(theta[s], ctx)
            e = e + eb
            g = g + gb
        return e, g

    def _hvp(self, theta, ctx, w):
        return sum(b._hvp(theta[s], ctx, w) for b, s in zip(self.blocks, self._slices))


# ================================================================== families and factory
FamilyBuilder = Callable[..., Features]
FAMILIES: dict[str, FamilyBuilder] = {}
#: optional per-family hooks ``(options, level, fine, wavelet) -> options`` that fill options from
#: the data of one WCRG level (``fine`` = the field the features act on), e.g. smoothing widths
FAMILY_DATA_OPTIONS: dict[str, Callable] = {}


def register_family(name: str, builder: FamilyBuilder, data_options: Callable | None = None) -> None:
    """Register ``builder(level, L, wavelet, **options) -> Features`` under ``name``; optionally a
    ``data_options(options, level, fine, wavelet)`` hook used by the WCRG model."""
    FAMILIES[name] = builder
    if data_options is not None:
        FAMILY_DATA_OPTIONS[name] = data_options


def make_features(family: str, level: str = "depth0", L: int | None = None,
                  wavelet: str = wv.DEFAULT_WAVELET, **options) -> Features:
    """Build a registered feature family for one level; records a JSON-able ``spec`` on it.

    ``family``: "gaussian" (options radius=1, isotropic=False), "phi4" (the gaussian options plus
    potential="polynomial" with degree=4, parity="even"|"all", or potential="windows" with
    n_windows=30, vmin, vmax, window="sigmoid"|"gaussian"|"bspline", width=None),
    "phi4_ansatz" (depth 0, no options). ``L`` is the side of the field the features act on
    (conditional: the finer field x_{j-1}); None accepts any size.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown feature family {family!r}; available: {sorted(FAMILIES)}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    wavelet = wv.check_wavelet(wavelet)
    builder = FAMILIES[family]
    try:
        inspect.signature(builder).bind(level=level, L=L, wavelet=wavelet, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for feature family {family!r}: {exc}") from None
    F = builder(level=level, L=L, wavelet=wavelet, **options)
    F.spec = {"family": family, "level": level, "L": None if L is None else int(L),
              "wavelet": wavelet, "options": _jsonable(options)}
    return F


def features_from_spec(spec: dict) -> Features:
    """Rebuild a feature set from its ``spec`` (e.g. read from a saved model's JSON header)."""
    return make_features(spec["family"], level=spec["level"], L=spec.get("L"),
                         wavelet=spec.get("wavelet", wv.DEFAULT_WAVELET), **spec.get("options", {}))


def _jsonable(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _gaussian_family(level, L, wavelet, radius=1, isotropic=False):
    return QuadraticCouplings.gaussian(level, L, wavelet, radius=radius, isotropic=isotropic)


def polynomial_powers(level: str, degree: int = 4, parity: str = "even") -> list[int]:
    """Powers of the phi4 family's polynomial potential (see the module docstring)."""
    if parity not in ("even", "all"):
        raise ValueError(f"parity must be 'even' or 'all', got {parity!r}")
    if not isinstance(degree, (int, np.integer)) or isinstance(degree, bool):
        raise ValueError(f"degree must be an integer, got {degree!r}")
    powers = [p for p in range(1, int(degree) + 1)
              if (parity == "all" or p % 2 == 0) and p != 2 and not (p == 1 and level == "conditional")]
    if not powers:
        raise ValueError(
            f"degree {degree} with parity {parity!r} leaves no potential term beyond the quadratic "
            "couplings (x^2 is already there); use degree >= 3 (odd) or >= 4 (even)"
        )
    return powers


def _phi4_family(level, L, wavelet, radius=1, isotropic=False, potential="polynomial", degree=4,
                 parity="even", n_windows=30, vmin=None, vmax=None, window="sigmoid", width=None):
    quad = QuadraticCouplings.gaussian(level, L, wavelet, radius=radius, isotropic=isotropic)
    if potential == "polynomial":
        basis: PotentialBasis = PolynomialBasis(polynomial_powers(level, degree, parity))
    elif potential == "windows":
        if vmin is None or vmax is None:
            raise ValueError("windows need the data range: pass vmin and vmax (see fit_range(data))")
        vmin, vmax = float(vmin), float(vmax)
        if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
            raise ValueError(f"need finite vmin < vmax, got {vmin}, {vmax}")
        n_windows = int(n_windows)
        if n_windows < 2:
            raise ValueError(f"n_windows must be >= 2, got {n_windows}")
        centres = np.linspace(vmin, vmax, n_windows)
        basis = WindowBasis(centres, width if width is not None else centres[1] - centres[0], window)
    else:
        raise ValueError(f"potential must be 'polynomial' or 'windows', got {potential!r}")
    feats = FeatureSum([quad, ScalarPotential(basis, level, L, wavelet)])
    if potential == "polynomial" and max(basis.powers) % 2 == 0:
        # the leading even power decides whether the energy is bounded below: fitted >= 0 (a
        # negative one, e.g. -4e-5 on Gaussian data, would make exp(-U) improper)
        feats.nonnegative = (quad.n_features + basis.powers.index(max(basis.powers)),)
    return feats


def _phi4_ansatz_family(level="depth0", L=None, wavelet=wv.DEFAULT_WAVELET):
    if level != "depth0":
        raise ValueError("the phi4 ansatz is a depth-0 feature set")
    nn = QuadraticCouplings([spec for spec in _isotropic_specs(1) if spec[0] == "nn"],
                            level="depth0", L=L, wavelet=wavelet)
    pot = ScalarPotential(PolynomialBasis([2, 4]), level="depth0", L=L, wavelet=wavelet)
    return FeatureSum([nn, pot])


register_family("gaussian", _gaussian_family)
register_family("phi4", _phi4_family)
register_family("phi4_ansatz", _phi4_ansatz_family)


def phi4_ansatz(L: int | None = None) -> Features:
    """Depth-0 φ⁴ ansatz ["nn", "phi^2", "phi^4"] = [Σ_<xy> φ_x φ_y, Σ φ², Σ φ⁴].

    The canonical energy -β Σ_<xy> φ_x φ_y + Σ [φ² + λ(φ² - 1)²] is θ = (-β, 1 - 2λ, λ) + λ L².
    """
    return make_features("phi4_ansatz", level="depth0", L=L)


def canonical_phi4_theta(beta: float, lam: float = 1.0) -> np.ndarray:
    """θ of the canonical φ⁴ energy in :func:`phi4_ansatz` coordinates: (-β, 1 - 2λ, λ)."""
    return np.array([-beta, 1.0 - 2.0 * lam, lam], dtype=np.float64)


# the scattering-Gaussian family lives in its own module and registers itself as "scattering"
from explorer.core import scattering_features as _scattering_features  # noqa: E402,F401

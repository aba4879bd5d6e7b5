"""The interface every feature family implements: a batch's :class:`Context`, the
:class:`Features` base class, :class:`FeatureSum` of blocks, and the :class:`FitProtocol` a family
declares for its fit. The energies are U_θ = θᵀΦ; see docs/models.md, "Exponential-family
energies" and "Conditional energies on the reconstructed field"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from explorer.core import wavelets as wv

LEVELS = ("depth0", "conditional")
CONDITIONAL_CHANNELS = wv.DETAIL_CHANNELS + (wv.LOW_CHANNEL,)
#: the rules :attr:`FitProtocol.bound` can name
BOUNDS = ("couplings", "leading_polynomial")


# ================================================================== fit protocol
@dataclass(frozen=True)
class FitProtocol:
    """How a family's θ is fitted and how its boundedness is decided, declared by the family's
    builder (docs/fitting.md, "Constrained coefficients" and "Boundedness of a fitted energy").
    Parameters are counted in the order of ``Features.names``.

    ``stage_first``: staged score matching, the first ``stage_first`` parameters solved alone
    (H₁₁θ₁ = b₁), then the others given them (H₂₂θ₂ = b₂ - H₂₁θ₁); None: one joint solve.

    ``stage_base``: the definite path. The first ``stage_base`` parameters (the quadratic
    couplings) fitted alone, then the others given them, is the base θ₀; if the score-matching
    fit θ₁ softens the couplings below a margin of θ₀'s, the fit moves back along the segment
    θ₀ → θ₁ (:func:`explorer.core.fit.definite_path`). None: θ₁ is kept as it is.

    ``nonnegative``: parameters kept >= 0 (fixed at 0 when the free fit makes them negative).

    ``bound``: how the fit decides whether exp(-U_θ) is normalisable
    (:func:`explorer.core.fit.boundedness_check`):

    * ``"couplings"`` — every term but the quadratic couplings is bounded or grows at most
      linearly, so U is bounded below iff the couplings are positive definite (Lanczos; recorded
      as the fit's ``quadratic_base``);
    * ``"leading_polynomial"`` — the leading non-zero term of the polynomial potential decides; a
      potential fitted to zero leaves the decision to the couplings;
    * None — nothing is claimed.
    """

    stage_first: int | None = None
    stage_base: int | None = None
    nonnegative: tuple[int, ...] = ()
    bound: Literal["couplings", "leading_polynomial"] | None = None

    def __post_init__(self):
        for name in ("stage_first", "stage_base"):
            k = getattr(self, name)
            if k is not None and (not isinstance(k, (int, np.integer)) or isinstance(k, bool)
                                  or k < 0):
                raise ValueError(f"{name} must be None or an integer >= 0, got {k!r}")
        object.__setattr__(self, "nonnegative", tuple(int(k) for k in self.nonnegative))
        if self.bound is not None and self.bound not in BOUNDS:
            raise ValueError(f"bound must be one of {BOUNDS} or None, got {self.bound!r}")


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
    """A feature family Φ (K features) for one *level*.

    * ``level="depth0"``: the varying variables ``v`` are the pixel field (N, L, L); no condition.
    * ``level="conditional"`` (a WCRG conditional at some scale j): ``v`` = the details x̄_j
      (N, 3, L/2, L/2), the condition ``c`` = the low-pass x_j (N, L/2, L/2), and the features
      are functions of the finer field x_{j-1} = synthesis(c, v) of side ``L``. Derivatives are
      in ``v`` only.

    ``L`` is the side of the field the features act on (depth 0: the field; conditional: the finer
    field x_{j-1}); None accepts any size. Every family exposes the same methods, so fitting,
    sampling and diagnostics never look inside::

        ctx = F.prepare(v, c)              # validated float64 inputs + cache shared by all blocks
        F.phi(ctx)        -> (N, K)        # Φ_k
        F.grad(ctx)       -> (N, K, *var)  # ∇_v Φ_k            (score matching; small batches)
        F.laplacian(ctx)  -> (N, K)        # Δ_v Φ_k, exact
        F.energy(θ, v, c)      -> (N,)     # θᵀΦ
        F.energy_grad(θ, v, c) -> (N, *var)  # Σ_k θ_k ∇Φ_k without the (N, K, *var) array
        F.energy_and_grad(θ, v, c)         # both, sharing the reconstruction (MALA)
        F.hvp(θ, v, w, c) -> (N, *var)     # (∇²_v U_θ) w

    Declared fields: ``names`` (K unique feature names), ``fit_protocol`` (the family's
    :class:`FitProtocol`, given to the constructor; default: nothing staged, constrained or
    claimed) and ``spec`` (the JSON-able recipe recorded by
    :func:`~explorer.core.features.make_features`, for save/load).
    """

    names: list[str]
    fit_protocol: FitProtocol = FitProtocol()

    def __init__(self, level: str = "depth0", L: int | None = None,
                 wavelet: str = wv.DEFAULT_WAVELET, fit_protocol: FitProtocol | None = None):
        if fit_protocol is not None:
            if not isinstance(fit_protocol, FitProtocol):
                raise TypeError(f"fit_protocol must be a FitProtocol, got {fit_protocol!r}")
            self.fit_protocol = fit_protocol
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

    # read-only views of the fit protocol (older code and tests read them on the features)
    @property
    def stage_first(self) -> int | None:
        return self.fit_protocol.stage_first

    @property
    def stage_base(self) -> int | None:
        return self.fit_protocol.stage_base

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



# ================================================================== sums of blocks
class FeatureSum(Features):
    """Concatenation of feature blocks for the same level (θ is split in block order)."""

    def __init__(self, blocks: Sequence[Features], fit_protocol: FitProtocol | None = None):
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
        super().__init__(first.level, first.L, first.wavelet, fit_protocol)
        self.blocks = flat
        self.names = [name for b in flat for name in b.names]
        if len(set(self.names)) != len(self.names):
            dup = sorted({x for x in self.names if self.names.count(x) > 1})
            raise ValueError(f"feature names must be unique across blocks; duplicated: {dup}")
        bounds = np.cumsum([0] + [b.n_features for b in flat])
        self._slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        # couplings + potentials in a conditional: energy and gradient in one pass (the sampler's
        # hot loop); None: block by block
        from explorer.core.features.onepass import ConditionalPass
        self.one_pass: ConditionalPass | None = ConditionalPass.of(flat, self._slices)

    def phi(self, ctx):
        return np.concatenate([b.phi(ctx) for b in self.blocks], axis=1)

    def grad(self, ctx):
        return np.concatenate([b.grad(ctx) for b in self.blocks], axis=1)

    def laplacian(self, ctx):
        return np.concatenate([b.laplacian(ctx) for b in self.blocks], axis=1)

    def _energy(self, theta, ctx):
        return sum(b._energy(theta[s], ctx) for b, s in zip(self.blocks, self._slices))

    def _energy_grad(self, theta, ctx):
        if self.one_pass is not None:
            return self.one_pass.energy_and_grad(theta, ctx)[1]
        return sum(b._energy_grad(theta[s], ctx) for b, s in zip(self.blocks, self._slices))

    def _energy_and_grad(self, theta, ctx):
        if self.one_pass is not None:
            return self.one_pass.energy_and_grad(theta, ctx)
        e, g = 0.0, 0.0
        for b, s in zip(self.blocks, self._slices):
            eb, gb = b._energy_and_grad(theta[s], ctx)
            e = e + eb
            g = g + gb
        return e, g

    def _hvp(self, theta, ctx, w):
        return sum(b._hvp(theta[s], ctx, w) for b, s in zip(self.blocks, self._slices))


"""The registry of feature families and the factory :func:`make_features`; the ``gaussian``,
``phi4`` and ``phi4_ansatz`` families, and the registration of the ``modulus`` family (alias
``"scattering"``). See docs/models.md, "Exponential-family energies"."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np

from explorer.core import wavelets as wv
from explorer.core.features.base import LEVELS, Features, FeatureSum, FitProtocol
from explorer.core.features.couplings import QuadraticCouplings, _isotropic_specs
from explorer.core.features.modulus import modulus_data_options, modulus_family
from explorer.core.features.potentials import (PolynomialBasis, PotentialBasis, ScalarPotential,
                                               WindowBasis)

# ================================================================== registry and factory
FamilyBuilder = Callable[..., Features]
#: builders by family name, aliases included (a family renamed keeps its former name as an alias,
#: so saved models naming it still load)
FAMILIES: dict[str, FamilyBuilder] = {}
#: optional per-family hooks ``(options, level, fine, wavelet) -> options`` that fill options from
#: the data of one WCRG level (``fine`` = the field the features act on), e.g. smoothing widths
FAMILY_DATA_OPTIONS: dict[str, Callable] = {}
#: former name -> current name
FAMILY_ALIASES: dict[str, str] = {}


def register_family(name: str, builder: FamilyBuilder, data_options: Callable | None = None,
                    aliases: tuple[str, ...] = ()) -> None:
    """Register ``builder(level, L, wavelet, **options) -> Features`` under ``name`` (and under
    each of ``aliases``); optionally a ``data_options(options, level, fine, wavelet)`` hook used by
    the WCRG model. The builder declares the family's fit in the returned features'
    ``fit_protocol`` (:class:`~explorer.core.features.FitProtocol`)."""
    for key in (name, *aliases):
        FAMILIES[key] = builder
        if data_options is not None:
            FAMILY_DATA_OPTIONS[key] = data_options
    for alias in aliases:
        FAMILY_ALIASES[alias] = name


def canonical_family(name: str) -> str:
    """The current name of a family (``"scattering"`` -> ``"modulus"``); other names unchanged."""
    return FAMILY_ALIASES.get(name, name)


def make_features(family: str, level: str = "depth0", L: int | None = None,
                  wavelet: str = wv.DEFAULT_WAVELET, **options) -> Features:
    """Build a registered feature family for one level; records a JSON-able ``spec`` on it.

    ``family``: "gaussian" (options radius=1, isotropic=False), "phi4" (the gaussian options plus
    potential="polynomial" with degree=4, parity="even"|"all", or potential="windows" with
    n_windows=30, vmin, vmax, window="sigmoid"|"gaussian"|"bspline", width=None),
    "phi4_ansatz" (depth 0, no options), "modulus" (alias "scattering"; options of
    :func:`~explorer.core.features.modulus.modulus_family`). ``L`` is the side of the field the
    features act on (conditional: the finer field x_{j-1}); None accepts any size. The spec
    records the family's current name.
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
    F.spec = {"family": canonical_family(family), "level": level, "L": None if L is None else int(L),
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
    """Powers of the phi4 family's polynomial potential: those p <= degree of that parity, except
    p = 2 (Σ x² is already the sum of the on-site couplings: H would be singular) and, in
    conditionals, p = 1 (Σ_i x_{j-1}(i) does not depend on the details)."""
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
    """Builder of the ``phi4`` family: the gaussian couplings plus a scalar potential of the field
    (depth 0) or of the reconstructed finer field x_{j-1} (conditional).

    ``potential="polynomial"``: the powers of :func:`polynomial_powers` (names "phi^4", "phi^3",
    "phi"); the leading even power is kept >= 0 and decides boundedness.
    ``potential="windows"``: ``n_windows`` windows on a uniform grid of centres spanning
    [``vmin``, ``vmax``] (the data range, :func:`~explorer.core.features.fit_range`), of width
    ``width`` or the grid spacing, ``window`` = "sigmoid" | "gaussian" | "bspline" (names
    "sigmoid(c=+0.25)", "bump(c=+0.25)", "spline(c=+0.25)"); bounded, so the couplings decide.
    """
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
    if potential == "polynomial":
        # the leading even power decides whether the energy is bounded below: fitted >= 0 (a
        # negative one would make exp(-U) improper; docs/fitting.md, "Constrained coefficients")
        top = max(basis.powers)
        protocol = FitProtocol(
            nonnegative=(quad.n_features + basis.powers.index(top),) if top % 2 == 0 else (),
            bound="leading_polynomial")
    else:
        protocol = FitProtocol(bound="couplings")   # windows are bounded
    return FeatureSum([quad, ScalarPotential(basis, level, L, wavelet)], fit_protocol=protocol)


def _phi4_ansatz_family(level="depth0", L=None, wavelet=wv.DEFAULT_WAVELET):
    if level != "depth0":
        raise ValueError("the phi4 ansatz is a depth-0 feature set")
    nn = QuadraticCouplings([spec for spec in _isotropic_specs(1) if spec[0] == "nn"],
                            level="depth0", L=L, wavelet=wavelet)
    pot = ScalarPotential(PolynomialBasis([2, 4]), level="depth0", L=L, wavelet=wavelet)
    return FeatureSum([nn, pot], fit_protocol=FitProtocol(bound="leading_polynomial"))


register_family("gaussian", _gaussian_family)
register_family("phi4", _phi4_family)
register_family("phi4_ansatz", _phi4_ansatz_family)
register_family("modulus", modulus_family, data_options=modulus_data_options,
                aliases=("scattering",))


def phi4_ansatz(L: int | None = None) -> Features:
    """Depth-0 φ⁴ ansatz ["nn", "phi^2", "phi^4"] = [Σ_<xy> φ_x φ_y, Σ φ², Σ φ⁴].

    The canonical energy -β Σ_<xy> φ_x φ_y + Σ [φ² + λ(φ² - 1)²] is θ = (-β, 1 - 2λ, λ) + λ L².
    """
    return make_features("phi4_ansatz", level="depth0", L=L)


def canonical_phi4_theta(beta: float, lam: float = 1.0) -> np.ndarray:
    """θ of the canonical φ⁴ energy in :func:`phi4_ansatz` coordinates: (-β, 1 - 2λ, λ)."""
    return np.array([-beta, 1.0 - 2.0 * lam, lam], dtype=np.float64)

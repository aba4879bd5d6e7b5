"""Energy features Φ for U_θ = θᵀΦ, at depth 0 and inside the WCRG conditionals (docs/models.md,
"Exponential-family energies" and "Wavelet conditional RG").

- :mod:`.base` — the interface (:class:`Features`, :class:`Context`, :class:`FeatureSum`) and the
  :class:`FitProtocol` a family declares;
- :mod:`.couplings` — quadratic couplings (the ``gaussian`` family);
- :mod:`.potentials` — scalar potentials (polynomial, windows, one-point log);
- :mod:`.modulus` — the ``modulus`` family (alias ``"scattering"``);
- :mod:`.families` — the registry, :func:`make_features`, and the ``phi4`` families.
"""

from explorer.core.features.base import (BOUNDS, CONDITIONAL_CHANNELS, LEVELS, Context, Features,
                                         FeatureSum, FitProtocol)
from explorer.core.features.couplings import QuadraticCouplings
from explorer.core.features.families import (FAMILIES, FAMILY_ALIASES, FAMILY_DATA_OPTIONS,
                                             canonical_family, canonical_phi4_theta,
                                             features_from_spec, make_features, phi4_ansatz,
                                             polynomial_powers, register_family)
from explorer.core.features.modulus import ModulusFeatures, modulus_data_options, modulus_family
from explorer.core.features.potentials import (LogBasis, PolynomialBasis, PotentialBasis,
                                               ScalarPotential, WindowBasis, fit_range)

__all__ = [
    "BOUNDS", "CONDITIONAL_CHANNELS", "LEVELS", "Context", "Features", "FeatureSum", "FitProtocol",
    "QuadraticCouplings", "FAMILIES", "FAMILY_ALIASES", "FAMILY_DATA_OPTIONS", "canonical_family",
    "canonical_phi4_theta", "features_from_spec", "make_features", "phi4_ansatz",
    "polynomial_powers", "register_family", "ModulusFeatures", "modulus_data_options",
    "modulus_family", "LogBasis", "PolynomialBasis", "PotentialBasis", "ScalarPotential",
    "WindowBasis", "fit_range",
]

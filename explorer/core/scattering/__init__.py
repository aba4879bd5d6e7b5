"""Scattering spectra S1–S4 and microcanonical synthesis (Cheng et al. 2024; the science:
docs/diagnostics.md, "Scattering spectra" and "Microcanonical synthesis").

Modules: :mod:`.filters` (the Morlet filter bank), :mod:`.wavelet_fft` (the wavelet coefficients by
filtered inverse FFTs), :mod:`.transform` (forward pass and its exact adjoint),
:mod:`.statistics` (S1–S4, reductions, coefficient names), :mod:`.synthesis` (microcanonical
synthesis by L-BFGS). Every public name is re-exported here.

Conventions: batches (N, M, M), M a power of two >= 2^J (in practice >= 2^(J+1)); float64 (the
synthesis's loss and gradient in float32 where :data:`PRECISIONS` "single" says so).
"""

from explorer.core.scattering.filters import (SIGMA0, TOL, XI0, FilterBank, filter_bank,
                                              morlet_bank, morlet_transform)
from explorer.core.scattering.statistics import (REDUCTIONS, ScatteringSpectra,
                                                 ScatteringStatistics, coefficient_name, default_J,
                                                 isotropic_count, reduce_spectra,
                                                 scattering_spectra, scattering_statistics,
                                                 snr_threshold)
from explorer.core.scattering.synthesis import (PRECISIONS, SUPPORT_FLOOR, SynthesisObjective,
                                                gaussian_synthesis, iter_synthesize, n_shells,
                                                shell_spectrum, synthesize)
from explorer.core.scattering.transform import WORKERS
from explorer.core.spectra import phase_randomise

__all__ = [
    "PRECISIONS", "REDUCTIONS", "SIGMA0", "SUPPORT_FLOOR", "TOL", "WORKERS", "XI0",
    "FilterBank", "ScatteringSpectra", "ScatteringStatistics", "SynthesisObjective",
    "coefficient_name", "default_J", "filter_bank", "gaussian_synthesis", "isotropic_count",
    "iter_synthesize", "morlet_bank", "morlet_transform", "n_shells", "phase_randomise",
    "reduce_spectra", "scattering_spectra", "scattering_statistics", "shell_spectrum",
    "snr_threshold", "synthesize",
]

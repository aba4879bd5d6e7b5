"""Diagnostics of data against samples and of fitted energies: the consumer of the primitives
(:mod:`explorer.core.spectra`, :mod:`explorer.core.linalg`, :mod:`explorer.core.scattering`,
:mod:`explorer.core.observables`); no other core module imports it. The science:
docs/diagnostics.md.

Modules: :mod:`.distances` (spectra, histograms, per-scale statistics, Binder), :mod:`.coupling`
(scale-coupling matrices), :mod:`.hessians` (Hessian spectra of φ⁴ and of fitted factors),
:mod:`.learned` (learned potentials and kernels), :mod:`.mixing` (τ_int), :mod:`.report`
(:func:`compare`, :func:`diagnose`). Every public name is re-exported here, with the primitives
it used to define (Hessian spectra, Morlet bank, phase randomisation).
"""

from explorer.core.diagnostics.coupling import (adjacent_scale_correlations, coupling_report,
                                                cross_scale_max, morlet_scale_coupling,
                                                wavelet_scale_coupling)
from explorer.core.diagnostics.distances import (KL_FLOOR, binder_difference, common_histograms,
                                                 corner_power_ratio, corner_power_share,
                                                 data_support_mask, kl_divergence, power_spectrum,
                                                 scale_kurtosis, scale_std_ratios, scale_stds,
                                                 spectrum_2d_log_ratio, spectrum_2d_noise,
                                                 spectrum_log_ratio, total_variation)
from explorer.core.diagnostics.hessians import (model_hessian_spectra, phi4_conditional_hvp,
                                                phi4_hessian_spectra, phi4_pixel_hvp, scale_hvp)
from explorer.core.diagnostics.learned import learned_potential, quadratic_kernels
from explorer.core.diagnostics.mixing import autocorrelation_function, mixing_summary, tau_int
from explorer.core.diagnostics.report import compare, diagnose, hessian_report
from explorer.core.linalg import (DENSE_MAX, HVP, SLQ_ABOVE, SLQ_PROBES, SLQ_STEPS, Spectrum,
                                  dense_hessian, eigen_summary, eigenvalue_histogram,
                                  hessian_eigenvalues, hessian_operator, hessian_spectrum,
                                  lanczos_extremes, lanczos_quadrature)
from explorer.core.scattering.filters import morlet_bank, morlet_transform
from explorer.core.spectra import phase_randomise
from explorer.core.support import DEFAULT_FLOOR, modal_power

__all__ = [
    # distances
    "KL_FLOOR", "binder_difference", "common_histograms", "corner_power_ratio",
    "corner_power_share", "data_support_mask", "kl_divergence", "power_spectrum", "scale_kurtosis",
    "scale_std_ratios", "scale_stds", "spectrum_2d_log_ratio", "spectrum_2d_noise",
    "spectrum_log_ratio", "total_variation", "DEFAULT_FLOOR", "modal_power",
    # scale coupling
    "adjacent_scale_correlations", "coupling_report", "cross_scale_max", "morlet_scale_coupling",
    "wavelet_scale_coupling", "morlet_bank", "morlet_transform", "phase_randomise",
    # Hessians
    "model_hessian_spectra", "phi4_conditional_hvp", "phi4_hessian_spectra", "phi4_pixel_hvp",
    "scale_hvp", "DENSE_MAX", "HVP", "SLQ_ABOVE", "SLQ_PROBES", "SLQ_STEPS", "Spectrum",
    "dense_hessian", "eigen_summary", "eigenvalue_histogram", "hessian_eigenvalues",
    "hessian_operator", "hessian_spectrum", "lanczos_extremes", "lanczos_quadrature",
    # learned energies, mixing, reports
    "learned_potential", "quadratic_kernels", "autocorrelation_function", "mixing_summary",
    "tau_int", "compare", "diagnose", "hessian_report",
]

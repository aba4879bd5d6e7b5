"""Per-scale wavelet statistics of a stationary field from its power spectrum, and the lattice
spectrum fitted to the measured ones: what a size transfer extrapolates the per-scale
normalisation with (docs/models.md, "Size transfer and the fixed point").

**Band variances.** On the periodic lattice a detail channel of level j is the field filtered by
the cascade's equivalent filter and subsampled by 2^j; subsampling a stationary field leaves its
variance unchanged, so var = mean_k S(k) |F(k)|², where the equivalent 1D filters are
Φ_{j-1}(ω) G(2^{j-1}ω) (high pass) and Φ_j(ω) = Π_{i<j} H(2^i ω) (low pass), H and G the
wavelet's analysis filters, and a 2D channel is the product of one along each axis (HL: high
pass along axis -2). This is exact for the orthogonal periodic transform of
:mod:`explorer.core.wavelets` (no Monte Carlo). The low-pass mean square includes the k = 0 mode
(S(0) = L² ⟨m²⟩ = χ).

**Lattice spectrum.** S(k) = A (k̂² + m²)^(-p), k̂² = 4 sin²(k_x/2) + 4 sin²(k_y/2): at m = 0 the
critical power law |k|^(-(2-η)) (p = 1 - η/2), at k << m the flat spectrum of a finite
correlation length ξ = 1/m (white noise at scales beyond ξ). Fitted by least squares in log to
the detail RMS per channel and the low-pass RMS of every level j >= 1.

**Finite size.** With one lattice size a mass m ~ 1/L cannot be told from the finite-size
rounding of a critical spectrum. The fitted mass is split as m_L² = μ² + m_fs², the finite-size
part m_fs <= KAPPA_FINITE_SIZE / L scaling as 1/L, the rest a bulk mass μ that does not change
with L: a field whose fitted correlation length is longer than L / KAPPA_FINITE_SIZE is taken as
critical (μ = 0), and its spectrum at side L' = 2^k L has the mass m_L L / L'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pywt
from scipy.optimize import least_squares

from explorer.core.wavelets import check_wavelet

# Largest finite-size mass times L. Measured here on critical phi4 cluster data (beta 0.68,
# 256 fields, db4): the fitted m_L L is 0.85, 0.92, 1.00 at L = 32, 64, 128 (the second-moment
# correlation length of the critical 2D Ising torus is about 0.9 L); 2 leaves room for the noise
# and the drift of m_L L, and takes any correlation length above L / 2 as not resolved.
KAPPA_FINITE_SIZE = 2.0


@lru_cache(maxsize=32)
def _responses(L: int, J: int, wavelet: str) -> tuple[np.ndarray, np.ndarray]:
    """|Φ_j(ω)|² for j = 0..J (low) and |Φ_{j-1}(ω) G(2^{j-1}ω)|² for j = 1..J (high), on the
    L frequencies ω = 2π n / L; arrays (J + 1, L) and (J, L)."""
    w = pywt.Wavelet(wavelet)
    h, g = np.asarray(w.dec_lo, np.float64), np.asarray(w.dec_hi, np.float64)
    omega = 2.0 * np.pi * np.fft.fftfreq(L)
    taps = np.arange(len(h))

    def gain(f, stride):
        return np.abs(np.exp(-1j * np.outer(omega * stride, taps)) @ f) ** 2

    low, high = [np.ones(L)], []
    for j in range(1, J + 1):
        high.append(low[-1] * gain(g, 2 ** (j - 1)))
        low.append(low[-1] * gain(h, 2 ** (j - 1)))
    return np.array(low), np.array(high)


def band_rms(spectrum: np.ndarray, J: int, wavelet: str = "db4") -> tuple[np.ndarray, np.ndarray]:
    """RMS of the detail channels (J, 3: HL, LH, HH) and of the low-passes (J + 1: x_0..x_J) of a
    stationary field with power spectrum ``spectrum`` (L, L; numpy FFT order, S(0) = L² ⟨m²⟩)."""
    S = np.asarray(spectrum, np.float64)
    L = S.shape[-1]
    low, high = _responses(L, int(J), check_wavelet(wavelet))
    n = float(L * L)
    det = np.array([[np.einsum("ab,a,b->", S, high[j], low[j + 1]),
                     np.einsum("ab,a,b->", S, low[j + 1], high[j]),
                     np.einsum("ab,a,b->", S, high[j], high[j])] for j in range(J)]) / n
    lows = np.array([np.einsum("ab,a,b->", S, low[j], low[j]) for j in range(J + 1)]) / n
    return np.sqrt(det.reshape(J, 3)), np.sqrt(lows)


def lattice_k2(L: int) -> np.ndarray:
    """k̂² = 4 sin²(k_x / 2) + 4 sin²(k_y / 2) on the L x L frequencies (numpy FFT order)."""
    s = 4.0 * np.sin(np.pi * np.fft.fftfreq(L)) ** 2
    return s[:, None] + s[None, :]


def lattice_spectrum(L: int, amplitude: float, mass2: float, exponent: float) -> np.ndarray:
    """S(k) = A (k̂² + m²)^(-p) on the L x L lattice (m² > 0 keeps S(0) finite)."""
    return amplitude * (lattice_k2(L) + mass2) ** (-exponent)


@dataclass
class SpectrumFit:
    """The lattice spectrum fitted at side ``L`` and its finite-size split (module docstring)."""

    L: int
    amplitude: float
    mass2: float            # m_L², the fitted mass at side L
    exponent: float         # p; 1 - η/2 at a critical point
    bulk_mass2: float       # μ², the part that does not scale with L
    log_rms_residual: float
    n_targets: int

    @property
    def finite_size_mass2(self) -> float:
        return self.mass2 - self.bulk_mass2

    @property
    def correlation_length(self) -> float:
        """1/μ (inf when no correlation length shorter than L / KAPPA_FINITE_SIZE is resolved)."""
        return float(1.0 / np.sqrt(self.bulk_mass2)) if self.bulk_mass2 > 0 else float("inf")

    def mass2_at(self, side: int) -> float:
        """m² of the spectrum at another side: μ² + m_fs² (L / side)²."""
        return self.bulk_mass2 + self.finite_size_mass2 * (self.L / float(side)) ** 2

    def spectrum(self, side: int) -> np.ndarray:
        return lattice_spectrum(side, self.amplitude, self.mass2_at(side), self.exponent)

    def to_dict(self) -> dict:
        xi = self.correlation_length
        return {**asdict(self), "finite_size_mass2": self.finite_size_mass2,
                "correlation_length": xi if np.isfinite(xi) else None,
                "eta_effective": 2.0 - 2.0 * self.exponent,
                "kappa_finite_size": KAPPA_FINITE_SIZE,
                "form": "S(k) = A (khat^2 + m^2)^(-p), khat^2 = 4 sin^2(kx/2) + 4 sin^2(ky/2)"}


def fit_spectrum(L: int, detail_rms, low_rms, wavelet: str = "db4") -> SpectrumFit:
    """Fit the lattice spectrum to the measured per-scale RMS of fields of side ``L``:
    ``detail_rms`` (J, 3) per channel or (J,) averaged over the channels (RMS of the three),
    ``low_rms`` (J + 1,) including the field itself (x_0, not fitted: it is all scales at
    once). Least squares on the log RMS, a few starts; then the finite-size split."""
    d = np.asarray(detail_rms, np.float64)
    lo = np.asarray(low_rms, np.float64)[1:]
    J = len(d)
    if J < 1 or len(lo) != J or not (np.all(d > 0) and np.all(lo > 0)):
        raise ValueError("the spectral fit needs positive detail and low-pass RMS at J >= 1 levels")
    per_channel = d.ndim == 2

    def residuals(q):
        det, low = band_rms(lattice_spectrum(L, np.exp(q[0]), np.exp(q[1]), q[2]), J, wavelet)
        if not per_channel:
            det = np.sqrt(np.mean(det ** 2, axis=1))
        return np.concatenate([np.log(det / d).ravel(), np.log(low[1:] / lo)])

    best = None
    for log_m2 in (np.log(1.0 / L ** 2), np.log(0.05), np.log(1.0)):
        for p in (0.9, 1.1):
            r = least_squares(residuals, [0.0, log_m2, p],
                              bounds=([-30.0, np.log(1e-4 / L ** 2), 0.05], [30.0, 5.0, 2.5]))
            if best is None or r.cost < best.cost:
                best = r
    amplitude, mass2, exponent = float(np.exp(best.x[0])), float(np.exp(best.x[1])), float(best.x[2])
    bulk = max(0.0, mass2 - (KAPPA_FINITE_SIZE / L) ** 2)
    return SpectrumFit(L=int(L), amplitude=amplitude, mass2=mass2, exponent=exponent,
                       bulk_mass2=bulk, log_rms_residual=float(np.sqrt(np.mean(best.fun ** 2))),
                       n_targets=int(best.fun.size))


def extrapolated_ratios(fit: SpectrumFit, J: int, k: int, wavelet: str = "db4") -> dict:
    """Growth factors of fields of side 2^k L against the fitted side L, from the fitted spectrum
    at the mass of each side: ``detail`` (levels J+1..J+k: detail RMS averaged over the channels,
    divided by that of level J at L), ``low`` (the same for the low-pass RMS), ``mean`` (the
    RMS of the coarse field's mean, sqrt(S_L'(0) / S_L(0)) = sqrt(χ(L') / χ(L))) and
    ``fluctuation`` (the RMS of the coarse field around its mean at level J+k against level J:
    the low-pass without its k = 0 mode)."""
    side = fit.L * 2 ** int(k)
    S_L, S_2 = fit.spectrum(fit.L), fit.spectrum(side)
    det_L, low_L = band_rms(S_L, J, wavelet)
    det_2, low_2 = band_rms(S_2, J + k, wavelet)
    mean_L = np.sqrt(np.mean(det_L ** 2, axis=1))
    mean_2 = np.sqrt(np.mean(det_2 ** 2, axis=1))
    zero_L, zero_2 = S_L.copy(), S_2.copy()
    zero_L[0, 0] = zero_2[0, 0] = 0.0
    fluct_L = band_rms(zero_L, J, wavelet)[1][J]
    fluct_2 = band_rms(zero_2, J + k, wavelet)[1][J + k]
    return {"detail": [float(mean_2[J + i - 1] / mean_L[J - 1]) for i in range(1, k + 1)],
            "low": [float(low_2[J + i] / low_L[J]) for i in range(1, k + 1)],
            "mean": float(np.sqrt(S_2[0, 0] / S_L[0, 0])),
            "fluctuation": float(fluct_2 / fluct_L)}

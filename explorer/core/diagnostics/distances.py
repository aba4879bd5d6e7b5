"""Distances between a data batch ``a`` and a sample batch ``b``: radial and 2D power spectra on
the data's spectral support, power in the corners |k| > L/2, one-point histograms (total
variation, KL), per-scale standard deviations and kurtosis, Binder cumulant. The science:
docs/diagnostics.md, "Power spectra", "One-point histograms and distances", "Binder cumulant",
"Scale-by-scale standard deviations and kurtosis". Batches (N, L, L), float64.
"""

from __future__ import annotations

import numpy as np
import scipy.integrate
import scipy.stats

from explorer.core import observables as obs
from explorer.core import wavelets as wv
from explorer.core.fields.base import as_batch
from explorer.core.spectra import radial_power_spectrum
from explorer.core.support import DEFAULT_FLOOR, ZERO_POWER, SpectralSupport, modal_power

#: probability floor of :func:`kl_divergence` (added to every bin, then renormalised)
KL_FLOOR = 1e-10


def power_spectrum(fields, log_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum (k, P) in lattice units:
    :func:`explorer.core.spectra.radial_power_spectrum` (integer shells n = 1 .. L/2, or
    ``log_bins`` logarithmic bins)."""
    return radial_power_spectrum(fields, log_bins=log_bins)


def _shell_powers(a, b, log_bins: int | None, floor: float):
    """(k, P_a, P_b, used): radial spectra of a and b and the shells on a's spectral support
    (P_a > ``floor`` × max P_a, and P_b > 0)."""
    floor = _check_floor(floor)
    ka, pa = power_spectrum(a, log_bins)
    kb, pb = power_spectrum(b, log_bins)
    if ka.shape != kb.shape or not np.allclose(ka, kb):
        raise ValueError("a and b must have the same field size")
    if not (pa > 0).any():
        raise ValueError("power spectra vanish (constant fields?)")
    used = (pa > floor * pa.max()) & (pb > 0)
    if not used.any():
        raise ValueError("power spectra vanish (constant fields?)")
    return ka, pa, pb, used


def _check_floor(floor) -> float:
    floor = float(floor)
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"the support floor must be in [0, 1), got {floor}")
    return floor


def spectrum_log_ratio(a, b, log_bins: int | None = None, floor: float = DEFAULT_FLOOR) -> float:
    """Mean over shells (or log bins) of |log P_b(k) / P_a(k)|; 0 for identical spectra.

    Only shells on the spectral support of ``a`` count: P_a(k) > ``floor`` × max_k P_a (default
    :data:`explorer.core.support.DEFAULT_FLOOR`; ``floor=0`` keeps every shell with power). Shells
    where the data have almost no power (beyond a dealiased solver band) would otherwise compare
    rounding noise and dominate the mean. Data with power on every shell are unaffected."""
    _, pa, pb, used = _shell_powers(a, b, log_bins, floor)
    return float(np.mean(np.abs(np.log(pb[used] / pa[used]))))


def data_support_mask(fields, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """Boolean (L, L) FFT-ordered mask of the Fourier modes k != 0 on the spectral support of a
    batch: the criterion of :meth:`explorer.core.support.SpectralSupport.of` (mean power of the
    3 × 3 neighbourhood above ``floor`` × the largest modal power, and the mode's own power
    above float rounding), with the mean mode k = 0 excluded from the maximum and from the mask."""
    x = as_batch(fields)
    x = x - x.mean(axis=(-2, -1), keepdims=True)      # k = 0 only; every other mode is unchanged
    mask = SpectralSupport.of(x, _check_floor(floor)).mask.copy()
    mask[0, 0] = False
    return mask


def _corners(L: int) -> np.ndarray:
    n = np.fft.fftfreq(L, 1.0 / L)
    return np.hypot(n[:, None], n[None, :]) > L / 2


def corner_power_ratio(a, b) -> float | None:
    """Mean modal power of ``b`` over the corners |k| > L/2 of the DFT plane (beyond the radial
    spectrum's last shell: checkerboards live there) divided by that of ``a``; None when ``a`` has
    exactly no power there."""
    pa, pb = modal_power(as_batch(a)), modal_power(as_batch(b))
    if pa.shape != pb.shape:
        raise ValueError("a and b must have the same field size")
    c = _corners(pa.shape[-1])
    da = float(pa[c].mean())
    return float(pb[c].mean() / da) if da > 0 else None


def corner_power_share(fields) -> float:
    """Share of the fluctuation power (k != 0) in the corners |k| > L/2."""
    p = modal_power(as_batch(fields))
    p[0, 0] = 0.0
    tot = float(p.sum())
    return float(p[_corners(p.shape[-1])].sum() / tot) if tot > 0 else 0.0


def spectrum_2d_log_ratio(a, b, floor: float = DEFAULT_FLOOR) -> float:
    """Mean over the 2D Fourier modes k != 0 on the spectral support of ``a``
    (:func:`data_support_mask`) of |log P_b(k) / P_a(k)|, P the modal power |FFT|² averaged over
    the fields and symmetrised under k -> -k (exact for real fields). Unlike
    :func:`spectrum_log_ratio` it covers the corners |k| > L/2 and sees anisotropy (no average
    over the lattice rotations, so that anisotropic samples of isotropic data are not hidden).
    P_b is floored at 1e-12 × max P_a (a mode the samples lack costs ~28, not inf). For two
    independent batches of one Gaussian law it is not 0 but :func:`spectrum_2d_noise`."""
    pa, pb = modal_power(as_batch(a)), modal_power(as_batch(b))
    if pa.shape != pb.shape:
        raise ValueError("a and b must have the same field size")
    mask = data_support_mask(a, floor)
    pa, pb = pa[mask], pb[mask]
    if pa.size == 0 or not np.all(pa > 0):
        raise ValueError("power spectra vanish (constant fields?)")
    pb = np.maximum(pb, ZERO_POWER * pa.max())
    return float(np.mean(np.abs(np.log(pb / pa))))


def spectrum_2d_noise(n_a: int, n_b: int) -> float:
    """Expected :func:`spectrum_2d_log_ratio` of two independent batches of n_a and n_b fields of
    one stationary Gaussian law: each mode's averaged periodogram is P χ²_{2n}/(2n), so the ratio
    is F(2 n_b, 2 n_a)-distributed and the value is E|log F| (numerical quadrature; ~√(4/(π n))
    for n_a = n_b = n large). Non-Gaussian fields have the same law asymptotically."""
    n_a, n_b = int(n_a), int(n_b)
    if n_a < 1 or n_b < 1:
        raise ValueError(f"the numbers of fields must be positive, got {n_a}, {n_b}")
    d = scipy.stats.f(2 * n_b, 2 * n_a)

    def g(y):  # |y| × the density of y = log F
        return abs(y) * np.exp(d.logpdf(np.exp(y)) + y)

    return float(sum(scipy.integrate.quad(g, lo, hi, limit=200)[0]
                     for lo, hi in ((-60.0, 0.0), (0.0, 60.0))))


def common_histograms(a, b, bins: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges, p_a, p_b): probabilities of the values of a and b over common bins spanning both."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("empty input")
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("inputs contain NaN or inf")
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, int(bins) + 1)
    ha = np.histogram(a, edges)[0] / a.size
    hb = np.histogram(b, edges)[0] / b.size
    return edges, ha, hb


def total_variation(a, b, bins: int = 64) -> float:
    """Total variation ½ Σ |p_a - p_b| of the one-point histograms on common bins (in [0, 1])."""
    _, pa, pb = common_histograms(a, b, bins)
    return float(0.5 * np.abs(pa - pb).sum())


def kl_divergence(a, b, bins: int = 64, floor: float = KL_FLOOR) -> float:
    """KL(p_a || p_b) = Σ p_a log(p_a / p_b) of the one-point histograms on common bins.

    ``floor`` is added to every bin probability of both histograms (which are then renormalised)
    so that bins empty in b stay finite: an empty bin of b costs at most about p_a log(p_a/floor).
    """
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor}")
    _, pa, pb = common_histograms(a, b, bins)
    pa = (pa + floor) / (1 + floor * len(pa))
    pb = (pb + floor) / (1 + floor * len(pb))
    return float(np.sum(pa * np.log(pa / pb)))


def scale_stds(x, J: int, wavelet: str = wv.DEFAULT_WAVELET) -> np.ndarray:
    """[std(x̄_1), ..., std(x̄_J), std(x_J)]: root mean square of the details per scale, then the
    standard deviation of the coarsest low-pass."""
    x = as_batch(x)
    low, details = wv.decompose(x, J, wavelet)
    return np.array([np.sqrt(np.mean(d * d)) for d in details] + [low.std()])


def scale_std_ratios(a, b, J: int, wavelet: str = wv.DEFAULT_WAVELET) -> np.ndarray:
    """Per-scale ratio std_b / std_a of :func:`scale_stds` (J detail scales, then the low-pass)."""
    sa, sb = scale_stds(a, J, wavelet), scale_stds(b, J, wavelet)
    with np.errstate(divide="ignore", invalid="ignore"):
        return sb / sa


def scale_kurtosis(x, J: int, wavelet: str = wv.DEFAULT_WAVELET) -> dict:
    """Where the one-point non-Gaussianity lives, scale by scale: {"low": [K(x_0), ..., K(x_J)],
    "details": [K(x̄_1), ..., K(x̄_J)]} with K the one-point kurtosis pooled over the batch (for
    the details, the mean over the three channels, whose variances differ); 3 for any Gaussian
    field.

    A field can be Gaussian at small scales and heavy-tailed in its low-passes (coherent vortices
    of 2D turbulence) or the other way round (intermittent details); a model that matches the
    kurtosis of x_0 only by luck is exposed here. For independent pixels of excess kurtosis κ
    the low-pass x_j has excess κ Σ_i w_i⁴ with w the (unit-norm) wavelet filter of one x_j
    coefficient; this is the check in the tests."""
    x = as_batch(x)
    wv.check_size(x.shape[-1], J)
    lows, details = [x], []
    for _ in range(J):  # one pass through the pyramid for both
        low, d = wv.analysis(lows[-1], wavelet)
        lows.append(low)
        details.append(d)
    tiny = 1e-6 * float(x.std())   # float32 rounding of a zero mean stays far below

    def k(v):  # None for a constant field (e.g. the 1 x 1 low-pass of zero-mean data)
        return obs.kurtosis(v) if float(np.std(v)) > tiny else None

    def kd(d):  # channels have their own variances (anisotropy): average their kurtoses
        ks = [k(d[:, c]) for c in range(d.shape[1])]
        return None if None in ks else float(np.mean(ks))

    return {"low": [k(lo) for lo in lows], "details": [kd(d) for d in details]}


def binder_difference(a, b) -> float:
    """U(b) - U(a) of the Binder cumulants of the magnetisations."""
    return float(obs.binder_cumulant(obs.magnetisation(as_batch(b)))
                 - obs.binder_cumulant(obs.magnetisation(as_batch(a))))

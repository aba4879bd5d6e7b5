"""Diagnostics of data against samples and of energies (SCIENCE.md §7).

Pure functions on arrays and on fitted models (numpy / scipy / PyWavelets only):

* distances between a data batch ``a`` and a sample batch ``b`` (radial and 2D power spectra on
  the data's spectral support, power in the corners |k| > L/2, one-point histograms, per-scale
  standard deviations, Binder cumulant), bundled by :func:`compare`;
* Hessian eigenvalues from batched Hessian-vector products: dense (identity basis applied in
  batches, then ``eigvalsh``) up to :data:`DENSE_MAX` variables, Lanczos extremes
  (``scipy.sparse.linalg.eigsh`` on a ``LinearOperator``) beyond; for the true φ⁴ energy in the
  pixel basis, for its finest-scale conditional energy in the details x̄_1, and for the factors of a
  fitted :class:`~explorer.core.model.WCRGModel`;
* scale-coupling matrices of orthogonal wavelet coefficients and of their moduli (co-located: the
  coarser scale upsampled to the finest detail grid), the same for an undecimated Fourier-domain
  Morlet bank, and a phase-randomised surrogate (same spectrum, random phases) to compare against;
* mixing of Markov chains (thin wrappers of :mod:`explorer.core.observables`);
* the learned scalar potential V(φ) and the quadratic coupling kernels of a fitted factor.

Conventions: batches are ``(N, L, L)``; everything is computed in float64.

Cost: building a dense Hessian is n/batch batched HVPs (cheap); ``eigvalsh`` of n = 1024 takes
~0.1 s single-threaded but can take seconds when a multi-threaded BLAS competes with other
processes for a small machine's cores. Lanczos extremes cost a few hundred HVPs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.stats
from scipy.sparse.linalg import eigsh

from explorer.core import observables as obs
from explorer.core import wavelets as wv
from explorer.core.features import QuadraticCouplings
from explorer.core.fields import phi4 as _phi4
from explorer.core.fields.base import as_batch
from explorer.core.linalg import (HVP, dense_hessian, hessian_operator,  # noqa: F401
                                  lanczos_extremes, lanczos_quadrature)  # re-exported
from explorer.core.support import DEFAULT_FLOOR, ZERO_POWER, SpectralSupport, modal_power

#: dense Hessians are built and diagonalised up to this many variables (64 x 64 pixels)
DENSE_MAX = 4096
#: spectra (histograms) of larger Hessians are estimated by stochastic Lanczos quadrature
SLQ_ABOVE = 1024
#: default SLQ settings: histogram TV ~0.04 (40 bins) and negative share within ~0.005 of the
#: dense spectrum for φ⁴ at β_c, L = 32 and 64 (tests and benchmarks/bench_diagnostics.py)
SLQ_STEPS = 150
SLQ_PROBES = 8
#: probability floor of :func:`kl_divergence` (added to every bin, then renormalised)
KL_FLOOR = 1e-10


_batch = as_batch  # float64 (N, L, L), validated


# ====================================================================== distances
def power_spectrum(fields, log_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum (k, P).

    ``log_bins=None``: integer shells n = 1 .. L/2 (:func:`observables.radial_power_spectrum`).
    ``log_bins=B``: B logarithmically spaced bins of |n| between 1 and L/2 (edges geometric;
    empty bins dropped); k is the mean wavenumber of the modes in a bin, P their mean power.
    """
    x = _batch(fields)
    if log_bins is None:
        return obs.radial_power_spectrum(x)
    log_bins = int(log_bins)
    if log_bins < 1:
        raise ValueError(f"log_bins must be a positive integer, got {log_bins}")
    L = x.shape[-1]
    p2 = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / (L * L)
    n = np.fft.fftfreq(L, 1.0 / L)
    r = np.hypot(n[:, None], n[None, :]).ravel()
    edges = np.geomspace(1.0, L / 2 + 0.5, log_bins + 1)
    idx = np.digitize(r, edges) - 1
    ok = (idx >= 0) & (idx < log_bins)
    counts = np.bincount(idx[ok], minlength=log_bins)
    psum = np.bincount(idx[ok], weights=p2.ravel()[ok], minlength=log_bins)
    rsum = np.bincount(idx[ok], weights=r[ok], minlength=log_bins)
    keep = counts > 0
    return 2 * np.pi * rsum[keep] / counts[keep] / L, psum[keep] / counts[keep]


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
    x = _batch(fields)
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
    pa, pb = modal_power(_batch(a)), modal_power(_batch(b))
    if pa.shape != pb.shape:
        raise ValueError("a and b must have the same field size")
    c = _corners(pa.shape[-1])
    da = float(pa[c].mean())
    return float(pb[c].mean() / da) if da > 0 else None


def corner_power_share(fields) -> float:
    """Share of the fluctuation power (k != 0) in the corners |k| > L/2."""
    p = modal_power(_batch(fields))
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
    pa, pb = modal_power(_batch(a)), modal_power(_batch(b))
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
    x = _batch(x)
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
    x = _batch(x)
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
    return float(obs.binder_cumulant(obs.magnetisation(_batch(b)))
                 - obs.binder_cumulant(obs.magnetisation(_batch(a))))


def compare(data, samples, J: int | None = None, wavelet: str = wv.DEFAULT_WAVELET,
            bins: int = 64, log_bins: int = 12, couplings: bool = False,
            floor: float = DEFAULT_FLOOR) -> dict:
    """All distances of ``samples`` to ``data`` as a JSON-serialisable dict.

    J defaults to the number of levels leaving a coarsest side of at least 4. With
    ``couplings=True`` (and J >= 1) the wavelet scale-coupling matrices of coefficients and of
    moduli for both batches are added, with their largest cross-scale entries.

    Spectra: ``spectrum_log_ratio`` over the integer shells on the data's support (``floor``,
    :func:`spectrum_log_ratio`; which ones in ``spectrum_shells_used`` and ``spectrum["used"]``);
    ``spectrum_2d_log_ratio`` over the 2D modes on the data's support, corners |k| > L/2 included,
    next to ``spectrum_2d_noise``, its value for independent Gaussian batches of these sizes;
    ``corner_power_ratio`` (samples / data) and ``corner_power_share`` of the corners |k| > L/2.
    """
    a, b = _batch(data, "data"), _batch(samples, "samples")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"data and samples differ in size: {a.shape[1:]} vs {b.shape[1:]}")
    L = a.shape[-1]
    if J is None:
        J = max(0, min(wv.max_levels(L), int(np.log2(L)) - 2))
    ka, pa, pb, used = _shell_powers(a, b, None, floor)
    mask = data_support_mask(a, floor)
    ratios = scale_std_ratios(a, b, J, wavelet)
    return {
        "L": int(L), "n_data": int(len(a)), "n_samples": int(len(b)), "J": int(J),
        "wavelet": wavelet,
        "spectrum_log_ratio": float(np.mean(np.abs(np.log(pb[used] / pa[used])))),
        "spectrum_log_ratio_logbins": spectrum_log_ratio(a, b, log_bins, floor),
        "spectrum_support_floor": float(floor),
        "spectrum_shells_used": {"used": int(used.sum()), "of": int(used.size),
                                 "k_max": float(ka[used].max())},
        "spectrum": {"k": ka.tolist(), "data": pa.tolist(), "samples": pb.tolist(),
                     "used": used.tolist()},
        "spectrum_2d_log_ratio": spectrum_2d_log_ratio(a, b, floor),
        "spectrum_2d_noise": spectrum_2d_noise(len(a), len(b)),
        "spectrum_2d_modes": {"used": int(mask.sum()), "of": int(mask.size - 1)},
        "corner_power_ratio": corner_power_ratio(a, b),
        "corner_power_share": {"data": corner_power_share(a), "samples": corner_power_share(b)},
        "total_variation": total_variation(a, b, bins),
        "kl_divergence": kl_divergence(a, b, bins),
        "kl_floor": KL_FLOOR,
        "scale_std_ratios": [float(r) for r in ratios],
        "binder_difference": binder_difference(a, b),
        "kurtosis": {"data": obs.kurtosis(a), "samples": obs.kurtosis(b)},
        "scale_kurtosis": {"data": scale_kurtosis(a, J, wavelet),
                           "samples": scale_kurtosis(b, J, wavelet)},
        **({"coupling": coupling_report(a, b, J, wavelet)} if couplings and J >= 1 else {}),
    }


def coupling_report(data, samples, J: int, wavelet: str = wv.DEFAULT_WAVELET) -> dict:
    """Scale-coupling matrices (:func:`wavelet_scale_coupling`) of coefficients and moduli of the
    data and of the samples, and the largest |entry| between different scales of each."""
    out: dict = {"J": int(J), "wavelet": wavelet}
    for name, x in (("data", data), ("samples", samples)):
        entry = {}
        for kind, modulus in (("coefficients", False), ("moduli", True)):
            corr, labels = wavelet_scale_coupling(x, J, wavelet, modulus=modulus)
            entry[kind] = corr.tolist()
            entry[f"{kind}_cross_scale_max"] = cross_scale_max(corr)
            out["labels"] = labels
        out[name] = entry
    return out


# ====================================================================== Hessians
def hessian_eigenvalues(hvp: HVP, shape: tuple, method: str = "auto", k: int = 6,
                        batch: int = 256, tol: float = 1e-8, seed: int = 0) -> np.ndarray:
    """Sorted eigenvalues of the Hessian given by ``hvp`` on variables of ``shape``.

    ``method="dense"``: all n eigenvalues (dense matrix + ``eigvalsh``); ``"lanczos"``: the k
    smallest and the k largest only (``eigsh``, which="SA"/"LA"; exactly degenerate eigenvalues,
    e.g. of a translation-invariant Hessian, may be returned once only: use them for λ_min, λ_max
    and the condition number, not for counting); ``"auto"``: dense up to :data:`DENSE_MAX`
    variables.
    """
    n = int(np.prod(shape))
    if method == "auto":
        method = "dense" if n <= DENSE_MAX else "lanczos"
    if method == "dense":
        return scipy.linalg.eigvalsh(dense_hessian(hvp, shape, batch), check_finite=True)
    if method != "lanczos":
        raise ValueError(f"method must be 'auto', 'dense' or 'lanczos', got {method!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if 2 * k >= n:  # the extremes would overlap: all eigenvalues, densely
        return hessian_eigenvalues(hvp, shape, "dense", k, batch)
    op = hessian_operator(hvp, shape)
    v0 = np.random.default_rng(seed).standard_normal(n)
    lo = eigsh(op, k=k, which="SA", tol=tol, v0=v0, return_eigenvectors=False)
    hi = eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(np.concatenate([lo, hi]))


class Spectrum(NamedTuple):
    """An eigenvalue distribution: exact eigenvalues (``weights`` None, each counts 1/n) or SLQ
    quadrature nodes with weights summing to 1 (:func:`lanczos_quadrature`)."""

    values: np.ndarray
    weights: np.ndarray | None = None
    method: str = "dense"


def _values_weights(s) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(s, Spectrum):
        v = np.asarray(s.values, np.float64).ravel()
        w = np.full(v.size, 1.0 / v.size) if s.weights is None else np.asarray(s.weights, np.float64)
        return v, w
    v = np.asarray(s, np.float64).ravel()
    return v, np.full(v.size, 1.0 / v.size)


def eigen_summary(eigs, complete: bool = True) -> dict:
    """min, max, share of negative eigenvalues, condition numbers.

    ``condition_number`` = λ_max / λ_min only when every eigenvalue is positive (else None: a
    Hessian with negative curvature has no meaningful condition number and is *not* convex);
    ``condition_positive`` = max / min of the positive part (exact spectra only: SLQ nodes do not
    resolve the smallest positive eigenvalue when the spectrum crosses zero, so it is None). With
    ``complete=False`` (Lanczos extremes only) the negative share is not defined (None). ``eigs``
    may be a :class:`Spectrum` (SLQ: the share is the quadrature estimate, ``estimated`` True).
    """
    e, w = _values_weights(eigs)
    estimated = isinstance(eigs, Spectrum) and eigs.method == "slq"
    pos = e[e > 0]
    lo, hi = float(e.min()), float(e.max())
    return {
        "n": int(e.size),
        "complete": bool(complete),
        "estimated": bool(estimated),
        "min": lo,
        "max": hi,
        "negative_share": float(w[e < 0].sum() / w.sum()) if complete else None,
        "positive_definite": bool(lo > 0),
        "condition_number": float(hi / lo) if lo > 0 else None,
        "condition_positive": (float(pos.max() / pos.min()) if pos.size and not estimated
                               else None),
    }


def hessian_spectrum(hvp: HVP, shape: tuple, method: str = "auto", steps: int = SLQ_STEPS,
                     n_probe: int = SLQ_PROBES, seed: int = 0) -> Spectrum:
    """The eigenvalue distribution of a Hessian for histograms: ``"dense"`` (exact, all n),
    ``"slq"`` (:func:`lanczos_quadrature`), ``"auto"``: dense up to :data:`SLQ_ABOVE` variables."""
    n = int(np.prod(shape))
    if method == "auto":
        method = "dense" if n <= SLQ_ABOVE else "slq"
    if method == "dense":
        return Spectrum(hessian_eigenvalues(hvp, shape, "dense"), None, "dense")
    if method == "slq":
        nodes, weights = lanczos_quadrature(hvp, shape, n_probe, steps, seed)
        return Spectrum(nodes, weights, "slq")
    raise ValueError(f"method must be 'auto', 'dense' or 'slq', got {method!r}")


# ---------------------------------------------------------------- true φ⁴ energy
def phi4_pixel_hvp(phi, beta: float, lam: float = 1.0) -> HVP:
    """Batched HVP of the true φ⁴ energy in the pixel basis at one field ``phi`` (L, L)."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2:
        raise ValueError(f"phi must be one field (L, L), got shape {phi.shape}")
    return lambda w: _phi4.hvp(phi, w, beta, lam)


def phi4_conditional_hvp(phi, beta: float, lam: float = 1.0,
                         wavelet: str = wv.DEFAULT_WAVELET) -> HVP:
    """Batched HVP in the finest details v = x̄_1 of E(synthesis(x_1, v)) at one field ``phi``:
    w ↦ details(analysis(H synthesis(0, w))), i.e. the Hessian W_d H W_dᵀ (E is quadratic-plus-
    local, the low-pass x_1 is held fixed)."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2:
        raise ValueError(f"phi must be one field (L, L), got shape {phi.shape}")
    wavelet = wv.check_wavelet(wavelet)

    def hvp(w):
        x = wv.synthesis(None, w, wavelet)
        return wv.analysis(_phi4.hvp(phi, x, beta, lam), wavelet)[1]

    return hvp


def _spectrum(hvp: HVP, shape: tuple, method: str, k: int):
    """Exact eigenvalues as an array (``dense``, ``lanczos`` extremes, ``auto`` on a small n) or
    a :class:`Spectrum` of SLQ nodes (``slq``, ``auto`` above :data:`SLQ_ABOVE`)."""
    n = int(np.prod(shape))
    if method == "lanczos" or method == "dense" or (method == "auto" and n <= SLQ_ABOVE):
        return hessian_eigenvalues(hvp, shape, "lanczos" if method == "lanczos" else "dense", k)
    if method in ("auto", "slq"):
        return hessian_spectrum(hvp, shape, "slq")
    raise ValueError(f"method must be 'auto', 'dense', 'slq' or 'lanczos', got {method!r}")


def phi4_hessian_spectra(fields, beta: float, lam: float = 1.0, basis: str = "pixel",
                         wavelet: str = wv.DEFAULT_WAVELET, method: str = "auto",
                         k: int = 6) -> list:
    """Eigenvalues at each field of the true φ⁴ energy: ``basis="pixel"`` (L² variables) or
    ``"conditional"`` (finest details x̄_1, 3 (L/2)² variables). ``method``: ``"dense"`` (all
    eigenvalues, arrays), ``"lanczos"`` (k extremes each side, arrays), ``"slq"`` (:class:`Spectrum`
    estimates) or ``"auto"`` (dense up to :data:`SLQ_ABOVE` variables, SLQ beyond)."""
    x = _batch(fields)
    L = x.shape[-1]
    out = []
    for phi in x:
        if basis == "pixel":
            out.append(_spectrum(phi4_pixel_hvp(phi, beta, lam), (L, L), method, k))
        elif basis == "conditional":
            out.append(_spectrum(phi4_conditional_hvp(phi, beta, lam, wavelet),
                                 (3, L // 2, L // 2), method, k))
        else:
            raise ValueError(f"basis must be 'pixel' or 'conditional', got {basis!r}")
    return out


# ---------------------------------------------------------------- fitted factors
def scale_hvp(scale, v, c=None) -> HVP:
    """Batched HVP of a fitted factor (:class:`ScaleModel`) at one configuration: ``v`` the
    variables (*var_shape) (the coarse field, or the details x̄_j (3, n, n)), ``c`` the condition
    x_j (n, n) of a conditional (None for the coarse factor)."""
    v = np.asarray(v, dtype=np.float64)[None]
    c = None if c is None else np.asarray(c, dtype=np.float64)[None]

    def hvp(w):
        B = w.shape[0]
        vb = np.broadcast_to(v, (B,) + v.shape[1:])
        cb = None if c is None else np.broadcast_to(c, (B,) + c.shape[1:])
        return scale.features.hvp(scale.theta, vb, w, cb)

    return hvp


def model_hessian_spectra(model, fields, method: str = "auto", k: int = 6) -> dict:
    """Eigenvalues of every factor of a fitted model at each field:
    ``{"coarse": [eigs per field], "j=1": [...], ...}`` (coarse = the depth-0 energy for J = 0)."""
    if not model.fitted:
        raise RuntimeError("the model is not fitted yet")
    x = _batch(fields)
    lows = wv.low_passes(x, model.J, model.wavelet)
    coarse = lows[-1]
    n = coarse.shape[-1]
    out = {"coarse": [_spectrum(scale_hvp(model.coarse, f), (n, n), method, k) for f in coarse]}
    if model.J:
        _, details = wv.decompose(x, model.J, model.wavelet)
        for m in model.conditionals:
            d, c = details[m.j - 1], lows[m.j]
            out[f"j={m.j}"] = [_spectrum(scale_hvp(m, d[i], c[i]), d.shape[1:], method, k)
                               for i in range(len(x))]
    return out


def eigenvalue_histogram(spectra, bins: int = 60, range_: tuple | None = None,
                         complete: bool = True) -> dict:
    """Pooled histogram (density, each field weighted equally) of the eigenvalues of many samples
    plus :func:`eigen_summary` of the pooled distribution. ``spectra``: arrays of eigenvalues
    and/or :class:`Spectrum` estimates; pass ``complete=False`` for Lanczos extremes."""
    pairs = [_values_weights(e) for e in spectra]
    if not pairs:
        raise ValueError("no spectra to histogram")
    vals = np.concatenate([v for v, _ in pairs])
    wts = np.concatenate([w / w.sum() / len(pairs) for _, w in pairs])
    if range_ is None:
        range_ = (float(vals.min()), float(vals.max()))
        if range_[1] <= range_[0]:
            range_ = (range_[0] - 0.5, range_[1] + 0.5)
    h, edges = np.histogram(vals, bins=bins, range=range_, weights=wts)
    h = h / np.diff(edges)
    methods = {s.method if isinstance(s, Spectrum) else "exact" for s in spectra}
    estimated = "slq" in methods
    summ = eigen_summary(Spectrum(vals, wts, "slq") if estimated else Spectrum(vals, wts, "pooled"),
                         complete)
    summ["estimated"] = estimated
    summ["n"] = int(sum(len(v) for v, _ in pairs))
    summ["n_fields"] = len(pairs)
    summ["per_sample_negative_share"] = (
        [float(w[v < 0].sum() / w.sum()) for v, w in pairs] if complete else None)
    return {"edges": edges.tolist(), "density": h.tolist(), "summary": summ}


# ====================================================================== scale coupling
def _upsample(x: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return x
    return np.repeat(np.repeat(x, f, axis=-2), f, axis=-1)


def _corr(V: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix of the rows of V (variables x observations)."""
    V = V - V.mean(axis=1, keepdims=True)
    C = V @ V.T
    d = np.sqrt(np.clip(np.diag(C), 1e-300, None))
    return C / np.outer(d, d)


def wavelet_scale_coupling(fields, J: int, wavelet: str = wv.DEFAULT_WAVELET,
                           modulus: bool = False) -> tuple[np.ndarray, list[str]]:
    """Correlation matrix (3J x 3J) of the orthogonal wavelet details x̄_j (channel HL/LH/HH) —
    or of their moduli |x̄_j| — across scales and orientations, co-located: each x̄_j is upsampled
    (by repetition) to the grid of x̄_1. Rows ordered (j=1: HL, LH, HH), (j=2: ...), ...
    Returns (corr, labels)."""
    x = _batch(fields)
    if J < 1:
        raise ValueError("need J >= 1")
    _, details = wv.decompose(x, J, wavelet)
    rows, labels = [], []
    for j, d in enumerate(details, start=1):
        u = _upsample(d, 2 ** (j - 1))
        if modulus:
            u = np.abs(u)
        for ch, name in enumerate(wv.DETAIL_CHANNELS):
            rows.append(u[:, ch].ravel())
            labels.append(f"j={j} {name}")
    return _corr(np.asarray(rows)), labels


def adjacent_scale_correlations(corr: np.ndarray, J: int, n_orient: int = 3) -> np.ndarray:
    """Same-orientation correlations between scales j and j+1: array (J-1, n_orient)."""
    corr = np.asarray(corr)
    return np.array([[corr[j * n_orient + o, (j + 1) * n_orient + o] for o in range(n_orient)]
                     for j in range(J - 1)]).reshape(J - 1, n_orient)


def cross_scale_max(corr: np.ndarray, n_orient: int = 3, absolute: bool = True) -> float:
    """Largest (|·|) entry of a scale-coupling matrix between *different* scales."""
    corr = np.asarray(corr)
    s = np.arange(corr.shape[0]) // n_orient
    mask = s[:, None] != s[None, :]
    vals = np.abs(corr[mask]) if absolute else corr[mask]
    return float(vals.max()) if vals.size else 0.0


def morlet_bank(L: int, J: int, n_orient: int = 4, xi0: float = 3 * np.pi / 4,
                sigma0: float = 0.8, slant: float = 0.5) -> np.ndarray:
    """Fourier-domain Morlet-type filters (J * n_orient, L, L) on the FFT grid.

    ψ̂_{j,θ}(ω) = g(2^j R_θ ω - ξ0 e_1) - g(ξ0 e_1) g(2^j R_θ ω) with g(u) = exp(-σ0² (u_1² +
    u_2²/slant²)/2): an anisotropic Gabor at centre frequency ξ0 / 2^j, direction θ = πl/n_orient,
    corrected to zero mean. Analytic (one-sided in frequency): x ⋆ ψ is complex."""
    w = 2 * np.pi * np.fft.fftfreq(L)
    wy, wx = np.meshgrid(w, w, indexing="ij")
    out = []

    def g(u1, u2):
        return np.exp(-0.5 * sigma0**2 * (u1**2 + (u2 / slant) ** 2))

    for j in range(J):
        s = 2.0**j
        for o in range(n_orient):
            t = np.pi * o / n_orient
            u1 = s * (np.cos(t) * wx + np.sin(t) * wy)
            u2 = s * (-np.sin(t) * wx + np.cos(t) * wy)
            out.append(g(u1 - xi0, u2) - g(xi0, 0.0) * g(u1, u2))
    return np.asarray(out)


def morlet_transform(fields, J: int, n_orient: int = 4, **bank) -> np.ndarray:
    """Undecimated complex coefficients x ⋆ ψ_{j,θ}: (N, J * n_orient, L, L)."""
    x = _batch(fields)
    psi = morlet_bank(x.shape[-1], J, n_orient, **bank)
    return np.fft.ifft2(np.fft.fft2(x)[:, None] * psi[None])


def morlet_scale_coupling(fields, J: int, n_orient: int = 4, modulus: bool = False,
                          **bank) -> tuple[np.ndarray, list[str]]:
    """Scale-coupling matrix (J n_orient square) of undecimated Morlet coefficients:
    |⟨a b*⟩| / √(⟨|a|²⟩⟨|b|²⟩) for the complex coefficients, Pearson correlation for the moduli.
    Overlapping filters correlate adjacent scales even for Gaussian fields: compare with
    :func:`phase_randomise` (SCIENCE.md §7)."""
    W = morlet_transform(fields, J, n_orient, **bank)
    K = W.shape[1]
    V = np.moveaxis(W, 1, 0).reshape(K, -1)
    labels = [f"j={j + 1} θ={o}" for j in range(J) for o in range(n_orient)]
    if modulus:
        return _corr(np.abs(V)), labels
    C = V @ V.conj().T
    d = np.sqrt(np.real(np.diag(C)))
    return np.abs(C) / np.outer(d, d), labels


def phase_randomise(fields, seed=0) -> np.ndarray:
    """Surrogate fields with exactly the same Fourier amplitudes |x̂(k)| and random phases
    (Hermitian-symmetric, taken from the FFT of real white noise; the mean is kept)."""
    x = _batch(fields)
    rng = np.random.default_rng(seed)
    f = np.fft.fft2(x)
    z = np.fft.fft2(rng.standard_normal(x.shape))
    ph = z / np.maximum(np.abs(z), 1e-300)
    ph[..., 0, 0] = 1.0
    return np.real(np.fft.ifft2(f * ph))


# ====================================================================== mixing
def autocorrelation_function(series, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation ρ(t), t = 0 .. max_lag, of a series (T,) or chains (T, C)."""
    rho = obs.autocorrelation(series)
    return rho if max_lag is None else rho[: int(max_lag) + 1]


def tau_int(series, c: float = 6.0) -> float:
    """Integrated autocorrelation time 1 + 2 Σ ρ(t) with Sokal's window (AR(1): (1+r)/(1-r))."""
    return obs.integrated_autocorrelation_time(series, c)[0]


def mixing_summary(series, c: float = 6.0) -> dict:
    tau, W = obs.integrated_autocorrelation_time(series, c)
    T = np.asarray(series).shape[0]
    return {"tau_int": tau, "window": int(W), "T": int(T), "n_eff": float(T / tau)}


# ====================================================================== learned energies
def _blocks(features):
    blocks = getattr(features, "blocks", [features])
    out, a = [], 0
    for b in blocks:
        out.append((b, slice(a, a + b.n_features)))
        a += b.n_features
    return out


def _scale_key(scale) -> str:
    return "coarse" if scale.level == "depth0" else f"j={scale.j}"


def learned_potential(model_or_scale, grid) -> dict | np.ndarray:
    """Per-site scalar potential V(φ) = Σ_k θ_k ρ_k(φ) of the fitted potential features,
    evaluated on the values ``grid`` (the energy per site of a constant field φ from those
    features). For a factor: an array like ``grid`` (zeros if it has no potential features); for a
    model: ``{"coarse": V, "j=1": V, ...}``. In a conditional, φ is the value of the finer field
    x_{j-1}; the quadratic couplings are not included (see :func:`quadratic_kernels`)."""
    if hasattr(model_or_scale, "factors"):
        return {_scale_key(s): learned_potential(s, grid) for s in model_or_scale.factors()}
    g = np.asarray(grid, dtype=np.float64)
    V = np.zeros_like(g)
    theta = np.asarray(model_or_scale.theta, np.float64)
    for b, sl in _blocks(model_or_scale.features):
        basis = getattr(b, "basis", None)
        if basis is not None:
            V = V + basis.combine(theta[sl], g, (0,))[0]
    return V


def quadratic_kernels(scale) -> dict:
    """Quadratic couplings of a factor as small images: K[c, d] (2R+1, 2R+1) with
    K[c, d][dy + R, dx + R] the precision entry between x_c(i) and x_d(i - (dy, dx)), so that the
    quadratic energy is ½ Σ_{c,d,s} K_cd(s) Σ_i x_c(i) x_d(i - s) (symmetric: K_dc(-s) = K_cd(s)).
    Channels: ["x"] at depth 0, ["HL", "LH", "HH", "LL"] in a conditional (LL x LL is zero:
    constant in the details). Only the :class:`~explorer.core.features.QuadraticCouplings` blocks
    count (any family: gaussian, phi4, scattering); potentials and modulus terms are skipped."""
    theta = np.asarray(scale.theta, np.float64)
    quads = [(b, sl) for b, sl in _blocks(scale.features) if isinstance(b, QuadraticCouplings)]
    if not quads:
        raise ValueError("this factor has no quadratic coupling features")
    C = quads[0][0].n_channels
    n = quads[0][0].n
    R = max(max(abs(s[0]), abs(s[1])) for b, _ in quads for t in b.terms for (_c, _d, s) in t)
    K = np.zeros((C, C, 2 * R + 1, 2 * R + 1))

    def same(s1, s2):
        if n is None:
            return s1 == s2
        return (s1[0] - s2[0]) % n == 0 and (s1[1] - s2[1]) % n == 0

    for b, sl in quads:
        for th, terms in zip(theta[sl], b.terms):
            for (c, d, s), w in terms.items():
                ms = (-s[0], -s[1])
                if c == d and same(s, ms):
                    if ms == s:  # on-site term
                        K[c, c, R, R] += 2 * w * th
                    else:  # s = -s modulo a tiny lattice: one coupling drawn on two pixels
                        K[c, c, s[0] + R, s[1] + R] += w * th
                        K[c, c, ms[0] + R, ms[1] + R] += w * th
                else:
                    K[c, d, s[0] + R, s[1] + R] += w * th
                    K[d, c, ms[0] + R, ms[1] + R] += w * th
    names = ["x"] if C == 1 else list(wv.DETAIL_CHANNELS) + [wv.LOW_CHANNEL]
    return {"channels": names, "radius": int(R), "kernels": K}


# ====================================================================== one report per model
def hessian_report(summary: dict) -> dict:
    """The JSON entry of one energy's pooled eigenvalue summary (names of the command line)."""
    return {"condition_number": summary["condition_number"],
            "min_eigenvalue": summary["min"], "max_eigenvalue": summary["max"],
            "negative_share": summary["negative_share"],
            "positive_definite": summary["positive_definite"],
            "condition_number_positive_part": summary["condition_positive"],
            "estimated": summary["estimated"], "n_fields": summary["n_fields"]}


def diagnose(model, fields, n_fields: int = 4, method: str = "auto", bins: int = 60,
             grid_points: int = 201) -> dict:
    """Everything measured on a fitted model at data fields, JSON-serialisable:

    * ``hessian``: for depth 0 ``{"pixel": {...}}``; for depth >= 1 ``{"scales": [{"j", ...}
      for every conditional j = 1..J], "coarse": {...}}``, each entry with ``condition_number``
      (λ_max/λ_min, None unless positive definite), ``min_eigenvalue``, ``max_eigenvalue``,
      ``negative_share``, the condition number of the positive part (exact spectra only) and
      whether the spectrum is an SLQ estimate; Hessians at the first ``n_fields`` fields;
    * ``histograms``: the pooled eigenvalue histograms behind those numbers;
    * ``potential``: the learned V(φ) per scale on a grid spanning the data range;
    * ``kernels``: the quadratic coupling kernels per scale.
    """
    x = _batch(fields)
    n = max(1, min(int(n_fields), len(x)))
    spectra = model_hessian_spectra(model, x[:n], method=method)
    hists = {k: eigenvalue_histogram(v, bins=bins) for k, v in spectra.items()}
    if model.J == 0:
        hessian = {"pixel": hessian_report(hists["coarse"]["summary"])}
        hists = {"pixel": hists["coarse"]}
    else:
        hessian = {"scales": [{"j": m.j, **hessian_report(hists[f"j={m.j}"]["summary"])}
                              for m in model.conditionals],
                   "coarse": {"j": model.J, "size": int(x.shape[-1] >> model.J),
                              **hessian_report(hists["coarse"]["summary"])}}
    lim = float(np.abs(x).max())
    grid = np.linspace(-lim, lim, int(grid_points))
    kernels = {}
    for f in model.factors():
        try:
            k = quadratic_kernels(f)
        except ValueError:
            continue
        kernels[_scale_key(f)] = {"channels": k["channels"], "radius": k["radius"],
                                  "kernels": k["kernels"].tolist()}
    return {"family": model.family, "J": model.J, "wavelet": model.wavelet,
            "n_fields": n, "L": int(x.shape[-1]), "hessian": hessian, "histograms": hists,
            "potential": {"grid": grid.tolist(),
                          "V": {k: v.tolist() for k, v in learned_potential(model, grid).items()}},
            "kernels": kernels}

"""Per-scale wavelet RMS from a power spectrum and the lattice spectrum fitted to them
(explorer/core/scale_spectrum.py), and the size transfer's extrapolation off criticality
(docs/models.md, "Size transfer and the fixed point")."""

from pathlib import Path

import numpy as np
import pytest

from explorer.core import wavelets as wv
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel
from explorer.core.scale_spectrum import (KAPPA_FINITE_SIZE, band_rms, extrapolated_ratios,
                                          fit_spectrum, lattice_spectrum)
from explorer.core.transfer import MeanSplitFeatures, transferred

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def gaussian_fields(S: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    L = S.shape[-1]
    return np.fft.ifft2(np.sqrt(S) * np.fft.fft2(rng.standard_normal((n, L, L)))).real


def test_band_rms_is_the_wavelet_statistics_of_a_gaussian_field():
    S = lattice_spectrum(32, 1.0, 0.05, 0.9)
    x = gaussian_fields(S, 400, 0)
    det, low = band_rms(S, 3, "db4")
    st = wv.scale_stats(x, 3, "db4")
    # 400 fields: the coarsest channels have 400 x 16 coefficients (1-2 % noise)
    np.testing.assert_allclose(st.detail_std_channels / det, 1.0, atol=0.03)
    np.testing.assert_allclose(np.hypot(st.low_std, st.low_mean) / low, 1.0, atol=0.04)
    # white noise: unit RMS at every level, whatever the wavelet (orthonormal transform)
    det, low = band_rms(np.ones((16, 16)), 2, "haar")
    np.testing.assert_allclose(det, 1.0)
    np.testing.assert_allclose(low, 1.0)


@pytest.mark.parametrize("mass2,exponent", [(0.5, 1.0), (5e-4, 0.875)])
def test_fit_recovers_the_spectrum_it_was_given(mass2, exponent):
    L, J = 64, 4
    det, low = band_rms(lattice_spectrum(L, 2.0, mass2, exponent), J)
    fit = fit_spectrum(L, det, low)
    assert fit.log_rms_residual < 1e-6
    assert fit.exponent == pytest.approx(exponent, rel=1e-3)
    assert fit.mass2 == pytest.approx(mass2, rel=1e-2)
    # a model saved without the per-channel RMS: the channel average carries the same spectrum
    mean = fit_spectrum(L, np.sqrt(np.mean(det ** 2, axis=1)), low)
    assert mean.exponent == pytest.approx(exponent, rel=1e-2)
    if mass2 * L ** 2 > KAPPA_FINITE_SIZE ** 2:   # resolved: a bulk mass, the growth dies out
        assert fit.correlation_length == pytest.approx(mass2 ** -0.5, rel=0.01)
        r = extrapolated_ratios(fit, J, 2)
        assert 1.0 < r["detail"][1] / r["detail"][0] < r["detail"][0]
        assert r["mean"] == pytest.approx(1.0, abs=1e-3)   # χ saturated
    else:   # m L = 1.4 < KAPPA: finite size, scale invariant: growth 2^p per level, χ by 4^p
        assert fit.correlation_length == float("inf")
        r = extrapolated_ratios(fit, J, 2)
        assert np.log2(r["detail"][0]) == pytest.approx(exponent, abs=0.03)
        assert np.log2(r["detail"][1]) == pytest.approx(2 * exponent, abs=0.06)
        assert r["mean"] == pytest.approx(4.0 ** exponent, rel=1e-6)


def test_mean_split_features_have_the_gradient_and_hessian_of_their_energy():
    x = np.random.default_rng(1).standard_normal((32, 16, 16))
    coarse = WCRGModel("phi4", 2, "db4", radius=1).fit(x).coarse
    f = MeanSplitFeatures(coarse.features, 1.7, 0.6)
    rng = np.random.default_rng(2)
    v, w = rng.standard_normal((2, 3, 4, 4)) + 0.3
    e, g = f.energy_and_grad(coarse.theta, v)
    eps = 1e-6
    num = (f.energy(coarse.theta, v + eps * w) - f.energy(coarse.theta, v - eps * w)) / (2 * eps)
    np.testing.assert_allclose(np.sum(g * w, axis=(1, 2)), num, rtol=1e-6)
    hv = f.hvp(coarse.theta, v, w)
    num = (f.energy_grad(coarse.theta, v + eps * w)
           - f.energy_grad(coarse.theta, v - eps * w)) / (2 * eps)
    np.testing.assert_allclose(hv, num, atol=1e-6 * np.abs(hv).max())
    # the law: mean and fluctuation of D⁻¹x are those of x under the base energy
    fluct = np.eye(4)[None] - 0.25   # zero mean
    np.testing.assert_allclose(f._split(1.7 * 2.0 + 0.6 * fluct), 2.0 + fluct, atol=1e-12)


# a few seconds: 128 disordered 32² fields, a depth-3 score-matching fit, no sampling
def test_off_critical_transfer_predicts_the_larger_lattice_statistics():
    """Fitted at 32², β = 0.50 (correlation length ≈ 1.4): the level added for 64² must have
    the detail RMS of the 64² data (the last measured growth, 2^0.53, put it 15 % too high) and
    the magnetisation must not grow (χ saturates beyond the correlation length; the last
    measured low-pass growth gave χ × 1.43)."""
    x = generate_phi4(size=32, n_samples=128, beta=0.5, seed=5).fields.astype(np.float64)
    y = load_fields(ASSETS / "phi4_L64_beta0.50.npz").fields.astype(np.float64)
    model = WCRGModel("phi4", 3, "db4", radius=1).fit(x)
    tr = transferred(model, 64).stats["size_transfer"]
    ext = tr["extrapolation"]
    print(ext)
    assert ext["method"] == "lattice spectrum"
    assert 1.0 < ext["spectrum"]["correlation_length"] < 2.0
    sigma4 = tr["conditionals_extrapolated"]["4"]["sigma"]
    data4 = wv.scale_stats(y, 4).detail_std[3]
    assert sigma4 == pytest.approx(data4, rel=0.05)
    assert tr["coarse_rescaled_by"] ** 2 == pytest.approx(1.0, abs=0.05)
    # and the data agree: χ(64) / χ(32) within its statistical error of 1
    chi = [f.shape[-1] ** 2 * np.mean(f.mean(axis=(1, 2)) ** 2) for f in (x, y)]
    err = np.sqrt(2 / len(x) + 2 / len(y))
    assert abs(np.log(chi[1] / chi[0])) < 3 * err

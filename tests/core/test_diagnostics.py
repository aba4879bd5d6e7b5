"""Diagnostics: distances, Hessian spectra (exact free field, φ⁴ pixel vs conditional), scale
coupling (Gaussian vs turbulence, Morlet vs surrogate), mixing, learned potentials and kernels."""

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.core import diagnostics as dg
from explorer.core import wavelets as wv
from explorer.core.diagnostics.learned import _scale_key
from explorer.core.features import QuadraticCouplings, make_features
from explorer.core.fields import phi4 as phi4_mod
from explorer.core.fields.gaussian import free_field_eigenvalues, free_field_hvp
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.io import load_fields
from explorer.core.model import ScaleModel, WCRGModel

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def asset(name: str) -> np.ndarray:
    return load_fields(ASSETS / f"{name}.npz").fields.astype(np.float64)


# ---------------------------------------------------------------- distances
def test_distances_vanish_for_identical_batches_and_detect_differences():
    x = asset("gaussian_L64_eta2")[:64]
    assert dg.spectrum_log_ratio(x, x) == 0.0
    assert dg.spectrum_log_ratio(x, x, log_bins=10) == 0.0
    assert dg.total_variation(x, x) == 0.0
    assert abs(dg.kl_divergence(x, x)) < 1e-12
    assert np.allclose(dg.scale_std_ratios(x, x, 3), 1.0)
    assert dg.binder_difference(x, x) == 0.0
    # doubling the field: spectrum ratio log 4 on every shell, stds ratio 2
    assert dg.spectrum_log_ratio(x, 2 * x) == pytest.approx(np.log(4.0), rel=1e-12)
    assert dg.spectrum_log_ratio(x, 2 * x, log_bins=8) == pytest.approx(np.log(4.0), rel=1e-12)
    assert np.allclose(dg.scale_std_ratios(x, 2 * x, 3), 2.0)
    assert dg.total_variation(x, 2 * x) > 0.1
    assert dg.kl_divergence(x, 2 * x) > 0.05


def test_log_binned_spectrum_matches_integer_shells_for_white_noise():
    x = np.random.default_rng(0).standard_normal((128, 32, 32))
    k, P = dg.power_spectrum(x, log_bins=6)
    assert np.all(np.diff(k) > 0) and len(k) <= 6
    # white noise of unit variance: P = 1; the first bin (|n| in [1, 1.78)) holds 8 modes, 4
    # independent per field: relative error 1/sqrt(4 * 128) = 0.044, tolerance 4.5 sigma
    assert np.allclose(P, 1.0, atol=0.2)
    assert np.average(P) == pytest.approx(1.0, abs=0.05)


def test_histograms_tv_and_kl_closed_forms():
    a = np.array([0.0, 0.0, 1.0, 1.0])
    b = np.array([0.0, 1.0, 1.0, 1.0])
    edges, pa, pb = dg.common_histograms(a, b, bins=2)
    assert np.allclose(pa, [0.5, 0.5]) and np.allclose(pb, [0.25, 0.75])
    assert dg.total_variation(a, b, bins=2) == pytest.approx(0.25)
    kl = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert dg.kl_divergence(a, b, bins=2) == pytest.approx(kl, rel=1e-8)
    # disjoint supports: finite thanks to the documented floor
    assert np.isfinite(dg.kl_divergence(np.zeros(10), np.ones(10), bins=2))


def test_compare_is_json_serialisable():
    x = asset("phi4_L64_beta0.68")[:32]
    y = asset("phi4_L64_beta0.50")[:32]
    out = dg.compare(x, y)
    json.dumps(out)
    assert out["J"] == 4 and len(out["scale_std_ratios"]) == 5
    assert out["spectrum_log_ratio"] > 0.1  # beta 0.50 is far from critical
    assert dg.compare(x, x)["spectrum_log_ratio"] == 0.0
    with pytest.raises(ValueError):
        dg.compare(x, y[:, :32, :32])


def _gaussian_batch(n: int, L: int, seed: int, mass2: float = 0.1) -> np.ndarray:
    """n fields of the lattice free field with spectrum 1 / (k̂² + m²) (k̂² = Σ 4 sin²(k/2))."""
    k = 2 * np.pi * np.fft.fftfreq(L)
    lap = 4 * np.sin(k[:, None] / 2) ** 2 + 4 * np.sin(k[None, :] / 2) ** 2
    w = np.fft.fft2(np.random.default_rng(seed).standard_normal((n, L, L)))
    return np.fft.ifft2(w / np.sqrt(lap + mass2)).real


def test_2d_spectrum_distance_sees_a_checkerboard_that_the_radial_one_misses():
    L, n = 32, 16
    a, b = _gaussian_batch(n, L, 0), _gaussian_batch(n, L, 1)
    # same law: the chi-square noise of two n-field periodograms, E|log F(2n, 2n)| = 0.286;
    # the mean over ~510 independent modes scatters by ~0.01
    noise = dg.spectrum_2d_noise(n, n)
    assert noise == pytest.approx(0.2858, abs=1e-3)
    d_same = dg.spectrum_2d_log_ratio(a, b)
    assert abs(d_same - noise) < 0.05
    assert 0.85 < dg.corner_power_ratio(a, b) < 1.18
    # a checkerboard-modulated smooth field: (-1)^(i+j) g with g band-limited to |k| <= 6 puts
    # power only within 6 of the corner (16, 16), i.e. at |k| >= 16.6: beyond every radial shell
    kk = np.fft.fftfreq(L, 1.0 / L)
    low = np.hypot(kk[:, None], kk[None, :]) <= 6
    g = np.fft.ifft2(np.fft.fft2(np.random.default_rng(2).standard_normal((n, L, L))) * low).real
    i = np.arange(L)
    cb = (-1.0) ** (i[:, None] + i[None, :]) * g
    hit = np.roll(low, (L // 2, L // 2), axis=(0, 1))      # the modes the checkerboard fills
    pa, pc = dg.modal_power(a), dg.modal_power(cb)
    cb *= np.sqrt(50 * pa[hit].mean() / pc[hit].mean())           # 50 x the data's power there
    b2 = b + cb
    assert abs(dg.spectrum_log_ratio(a, b2) - dg.spectrum_log_ratio(a, b)) < 1e-3
    d_cb = dg.spectrum_2d_log_ratio(a, b2)
    # ~11 % of the modes gain log(50) ~ 3.9: about +0.4
    assert d_cb > d_same + 0.3, (d_same, d_cb)
    assert dg.corner_power_ratio(a, b2) > 10
    out = dg.compare(a, b2)
    json.dumps(out)
    assert out["spectrum_2d_log_ratio"] == pytest.approx(d_cb)
    assert out["spectrum_2d_noise"] == pytest.approx(noise)
    assert out["spectrum_2d_modes"] == {"used": L * L - 1, "of": L * L - 1}
    assert out["corner_power_share"]["samples"] > 5 * out["corner_power_share"]["data"] > 0


def test_spectrum_2d_noise_matches_monte_carlo_periodograms():
    rng = np.random.default_rng(5)
    for na, nb in ((1, 1), (1, 2), (4, 16)):
        ga, gb = rng.gamma(na, size=400_000) / na, rng.gamma(nb, size=400_000) / nb
        mc = np.abs(np.log(gb / ga)).mean()
        assert dg.spectrum_2d_noise(na, nb) == pytest.approx(mc, abs=0.005)
    assert dg.spectrum_2d_noise(1, 1) == pytest.approx(2 * np.log(2), rel=1e-8)


@pytest.mark.parametrize("name,other", [("phi4_L64_beta0.68", "phi4_L64_beta0.50"),
                                        ("gaussian_L64_eta2", "phi4_L64_beta0.68")])
def test_radial_spectrum_distance_is_unchanged_for_data_with_full_support(name, other):
    x, y = asset(name)[:64], asset(other)[64:128]
    k, pa = dg.power_spectrum(x)
    _, pb = dg.power_spectrum(y)
    every_shell = float(np.mean(np.abs(np.log(pb / pa))))
    out = dg.compare(x, y)
    assert out["spectrum_shells_used"] == {"used": 32, "of": 32, "k_max": pytest.approx(np.pi)}
    assert all(out["spectrum"]["used"])
    assert out["spectrum_log_ratio"] == pytest.approx(every_shell, rel=1e-12)
    assert dg.spectrum_log_ratio(x, y, floor=0.0) == pytest.approx(every_shell, rel=1e-12)
    assert out["spectrum_2d_modes"]["used"] == 64 * 64 - 1


def test_radial_spectrum_distance_ignores_shells_off_the_data_support():
    """The 128² turbulence asset has no power beyond its solver band (|k| ~ 48-60). Samples equal
    to other snapshots plus noise at 1e-6 of the field's std (physically invisible) filled those
    shells and made the distance of every shell 0.68; on the data's support it is that of the
    snapshots themselves."""
    t = asset("turbulence_L128")
    noisy = t[8:] + 1e-6 * t.std() * np.random.default_rng(0).standard_normal(t[8:].shape)
    clean = dg.compare(t[:8], t[8:])
    out = dg.compare(t[:8], noisy)
    assert dg.spectrum_log_ratio(t[:8], noisy, floor=0.0) > 0.5          # every shell
    assert out["spectrum_log_ratio"] == pytest.approx(clean["spectrum_log_ratio"], abs=1e-4)
    assert out["spectrum_log_ratio"] < 0.2
    used = out["spectrum_shells_used"]
    assert used["of"] == 64 and 40 <= used["used"] < 60
    _, pa = dg.power_spectrum(t[:8])
    on = np.array(out["spectrum"]["used"])
    assert np.all(pa[on] > 1e-5 * pa.max()) and np.all(pa[~on] <= 1e-5 * pa.max())
    # the 2D distance uses the same support: the noise in the dead band does not count there
    assert out["spectrum_2d_log_ratio"] == pytest.approx(clean["spectrum_2d_log_ratio"], abs=1e-3)


def _filter_fourth_power_sum(L: int, j: int, channel: int | None = None) -> float:
    """Σ w⁴ of the unit-norm filter of one level-j coefficient (low-pass when channel is None):
    the synthesis of a delta, the rows of the orthogonal analysis being its columns."""
    if j == 0:
        return 1.0
    details = [np.zeros((3, L >> k, L >> k)) for k in range(1, j + 1)]
    low = np.zeros((L >> j, L >> j))
    if channel is None:
        low[0, 0] = 1.0
    else:
        details[j - 1][channel, 0, 0] = 1.0
    w = wv.reconstruct(low, details)
    assert np.sum(w * w) == pytest.approx(1.0, rel=1e-12)
    return float(np.sum(w**4))


def test_scale_kurtosis_of_independent_pixels_follows_the_filter_cumulant_rule():
    """Independent Laplace pixels (excess kurtosis 3): a unit-norm linear combination Σ w_i x_i has
    excess kurtosis 3 Σ w_i⁴, so each low-pass and each detail scale has a kurtosis fixed by its
    db4 filter (3.54 at j = 1, 3.13 at j = 2, 3.03 at j = 3); measured within 0.05 (0.15 for the
    pixels themselves, whose estimator is the noisiest)."""
    L, J = 64, 3
    x = np.random.default_rng(1).laplace(size=(128, L, L))
    r = dg.scale_kurtosis(x, J)
    assert len(r["low"]) == J + 1 and len(r["details"]) == J
    for j in range(J + 1):
        expect = 3.0 + 3.0 * _filter_fourth_power_sum(L, j)
        assert abs(r["low"][j] - expect) < (0.15 if j == 0 else 0.05), (j, r["low"][j], expect)
    for j in range(1, J + 1):
        # the mean over the channels of their kurtoses
        expect = 3.0 + 3.0 * np.mean([_filter_fourth_power_sum(L, j, c) for c in range(3)])
        assert abs(r["details"][j - 1] - expect) < 0.05, (j, r["details"][j - 1], expect)
    assert r["low"][1] - 3 > 3 * (r["low"][2] - 3) > 0  # ~4x less excess per level


def test_scale_kurtosis_gaussian_vs_turbulence():
    """A Gaussian field is Gaussian at every scale; the 2D turbulence asset is heavy-tailed in its
    coarse low-passes (coherent vortices: 4.3 at 16 x 16 against 3.8 for the pixels) and in its
    details (intermittency). The constant 1 x 1 low-pass of zero-mean data has no kurtosis (None)."""
    g = dg.scale_kurtosis(asset("gaussian_L64_eta2"), 4)
    assert np.all(np.abs(np.array(g["low"] + g["details"]) - 3.0) < 0.15), g
    t = dg.scale_kurtosis(asset("turbulence_L128"), 7)
    assert t["low"][3] > 4.0 and t["low"][3] > t["low"][0] + 0.3, t["low"]
    assert min(t["details"][:3]) > 5.0, t["details"]
    assert t["low"][7] is None
    out = dg.compare(asset("turbulence_L128")[:8], asset("turbulence_L128")[8:])
    json.dumps(out)
    assert set(out["scale_kurtosis"]) == {"data", "samples"}
    assert len(out["scale_kurtosis"]["data"]["low"]) == out["J"] + 1


# ---------------------------------------------------------------- Hessians
@pytest.mark.parametrize("beta, m2", [(1.0, 0.0), (0.7, 0.3)])
def test_dense_free_field_hessian_eigenvalues_are_exact(beta, m2):
    L = 16
    e = dg.hessian_eigenvalues(lambda w: free_field_hvp(w, beta, m2), (L, L), "dense", batch=100)
    kx = 2 * np.pi * np.fft.fftfreq(L)
    exact = np.sort((beta * (4 * np.sin(kx[:, None] / 2) ** 2 + 4 * np.sin(kx[None, :] / 2) ** 2)
                     + m2).ravel())
    assert np.allclose(exact, free_field_eigenvalues(L, beta, m2))
    assert np.max(np.abs(e - exact)) < 1e-8


def test_lanczos_extremes_match_dense():
    L = 16
    hvp = lambda w: free_field_hvp(w, 0.7, 0.3)  # noqa: E731
    e = dg.hessian_eigenvalues(hvp, (L, L), "lanczos", k=3)
    exact = free_field_eigenvalues(L, 0.7, 0.3)
    assert e.min() == pytest.approx(exact[0], abs=1e-7)
    assert e.max() == pytest.approx(exact[-1], abs=1e-7)
    s = dg.eigen_summary(e, complete=False)
    assert s["negative_share"] is None
    assert s["condition_positive"] == pytest.approx(exact[-1] / exact[0], rel=1e-6)


def test_conditional_free_field_hessian_is_well_conditioned():
    # docs/diagnostics.md, "Hessian eigenvalues: pixel basis vs conditionals": massless free field,
    # finest conditional, kappa = 4.00 for any Daubechies wavelet
    L = 16
    hvp = lambda w: wv.analysis(free_field_hvp(wv.synthesis(None, w)), "db4")[1]  # noqa: E731
    e = dg.hessian_eigenvalues(hvp, (3, L // 2, L // 2), "dense")
    assert dg.eigen_summary(e)["condition_positive"] == pytest.approx(4.0, abs=0.01)
    assert e.min() > 0


def test_phi4_pixel_vs_conditional_negative_curvature():
    fields = generate_phi4(size=32, n_samples=4, beta=0.68, seed=7).fields
    pix = dg.eigenvalue_histogram(dg.phi4_hessian_spectra(fields, 0.68, basis="pixel"))["summary"]
    cond = dg.eigenvalue_histogram(
        dg.phi4_hessian_spectra(fields, 0.68, basis="conditional", wavelet="db4"))["summary"]
    print(f"phi4 L=32 beta=0.68 db4: pixel negative share {pix['negative_share']:.3f} "
          f"(lambda_min {pix['min']:.2f}), finest conditional {cond['negative_share']:.3f} "
          f"(lambda_min {cond['min']:.2f})")
    assert pix["n"] == 4 * 32 * 32 and cond["n"] == 4 * 3 * 16 * 16
    assert pix["negative_share"] > 0.05  # phi4 at beta_c is *not* convex in the pixel basis
    assert cond["negative_share"] <= 0.5 * pix["negative_share"]
    assert cond["min"] > pix["min"]


def test_phi4_hvps_match_finite_differences_of_the_energy_gradient():
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((8, 8))
    w = rng.standard_normal((1, 3, 4, 4))
    hvp = dg.phi4_conditional_hvp(phi, 0.68)
    g = lambda v: wv.analysis(phi4_mod.grad(wv.synthesis(wv.analysis(phi)[0], v), 0.68))[1]  # noqa
    v0 = wv.analysis(phi)[1]
    eps = 1e-6
    fd = (g(v0 + eps * w[0]) - g(v0 - eps * w[0])) / (2 * eps)
    assert np.allclose(hvp(w)[0], fd, atol=1e-6)


def test_fitted_depth0_ansatz_hessian_equals_the_true_energy_hessian():
    from explorer.core.features import canonical_phi4_theta, phi4_ansatz
    F = phi4_ansatz(L=8)
    scale = ScaleModel(0, "depth0", F, canonical_phi4_theta(0.68))
    phi = np.random.default_rng(2).standard_normal((8, 8))
    e_model = dg.hessian_eigenvalues(dg.scale_hvp(scale, phi), (8, 8))
    e_true = dg.hessian_eigenvalues(dg.phi4_pixel_hvp(phi, 0.68), (8, 8))
    assert np.allclose(e_model, e_true, atol=1e-10)


@pytest.fixture(scope="module")
def small_model():
    x = generate_phi4(size=16, n_samples=32, beta=0.68, seed=0).fields
    return WCRGModel("phi4", J=1).fit(x), x


def test_model_hessian_spectra_and_histogram(small_model):
    model, x = small_model
    S = dg.model_hessian_spectra(model, x[:2])
    assert set(S) == {"coarse", "j=1"}
    assert S["coarse"][0].shape == (64,) and S["j=1"][0].shape == (3 * 64,)
    # Lanczos extremes agree with the dense spectrum of the same conditional
    lows, (d,) = wv.low_passes(x[:1], 1), wv.decompose(x[:1], 1)[1]
    hvp = dg.scale_hvp(model.conditionals[0], d[0], lows[1][0])
    lz = dg.hessian_eigenvalues(hvp, (3, 8, 8), "lanczos", k=2)
    assert lz.min() == pytest.approx(S["j=1"][0].min(), abs=1e-6)
    assert lz.max() == pytest.approx(S["j=1"][0].max(), abs=1e-6)
    h = dg.eigenvalue_histogram(S["j=1"], bins=20)
    json.dumps(h)
    assert np.sum(np.array(h["density"]) * np.diff(h["edges"])) == pytest.approx(1.0)


# ---------------------------------------------------------------- scale coupling
def test_gaussian_fields_have_no_cross_scale_coupling():
    x = asset("gaussian_L64_eta2")
    c, labels = dg.wavelet_scale_coupling(x, 4)
    m, _ = dg.wavelet_scale_coupling(x, 4, modulus=True)
    assert c.shape == (12, 12) and labels[0] == "j=1 HL"
    assert np.allclose(np.diag(c), 1.0)
    print(f"gaussian: cross-scale |corr| coefficients {dg.cross_scale_max(c):.4f}, "
          f"moduli {dg.cross_scale_max(m):.4f}")
    assert dg.cross_scale_max(c) < 0.05
    assert dg.cross_scale_max(m) < 0.05


def test_turbulence_moduli_couple_adjacent_scales_but_coefficients_do_not():
    x = asset("turbulence_L256")
    c, _ = dg.wavelet_scale_coupling(x, 3)
    m, _ = dg.wavelet_scale_coupling(x, 3, modulus=True)
    adj = dg.adjacent_scale_correlations(m, 3)
    print(f"turbulence 256: coefficient cross-scale max {dg.cross_scale_max(c):.4f}; modulus "
          f"adjacent correlations {np.round(adj, 3).tolist()}")
    assert dg.cross_scale_max(c) < 0.05
    assert np.all(adj[0] > 0.2)


def test_morlet_coupling_is_an_artefact_of_overlap_for_gaussian_fields():
    x = asset("gaussian_L64_eta2")[:64]
    s = dg.phase_randomise(x, seed=3)
    # the surrogate keeps every Fourier amplitude
    assert np.allclose(np.abs(np.fft.fft2(s)), np.abs(np.fft.fft2(x)), rtol=1e-9, atol=1e-9)
    mc, _ = dg.morlet_scale_coupling(x, 3, n_orient=4)
    sc, _ = dg.morlet_scale_coupling(s, 3, n_orient=4)
    mm, _ = dg.morlet_scale_coupling(x, 3, n_orient=4, modulus=True)
    sm, _ = dg.morlet_scale_coupling(s, 3, n_orient=4, modulus=True)
    a_c, a_m = dg.adjacent_scale_correlations(mc, 3, 4), dg.adjacent_scale_correlations(mm, 3, 4)
    print(f"gaussian Morlet adjacent: coefficients {a_c[0, 0]:.3f}, moduli {a_m[0, 0]:.3f}")
    assert a_c.min() > 0.3 and a_m.min() > 0.2  # overlapping filters correlate ...
    assert np.allclose(mc, sc, atol=1e-9)  # ... identically for the surrogate (same spectrum)
    assert np.max(np.abs(mm - sm)) < 0.05


def test_morlet_filters_have_zero_mean():
    psi = dg.morlet_bank(32, 3, 4)
    assert psi.shape == (12, 32, 32)
    assert np.allclose(psi[:, 0, 0], 0.0, atol=1e-12)


# ---------------------------------------------------------------- mixing
def test_tau_int_of_ar1_series():
    rho, T, C = 0.8, 20000, 4
    rng = np.random.default_rng(0)
    x = np.empty((T, C))
    x[0] = rng.standard_normal(C) / np.sqrt(1 - rho**2)
    noise = rng.standard_normal((T, C))
    for t in range(1, T):
        x[t] = rho * x[t - 1] + noise[t]
    tau, exact = dg.tau_int(x), (1 + rho) / (1 - rho)
    print(f"AR(1) rho={rho}: tau_int {tau:.3f} vs exact {exact:.3f}")
    assert abs(tau / exact - 1) < 0.10
    acf = dg.autocorrelation_function(x, max_lag=10)
    assert acf.shape == (11,) and acf[0] == 1.0
    assert np.allclose(acf[:6], rho ** np.arange(6), atol=0.03)
    assert dg.mixing_summary(x)["n_eff"] == pytest.approx(T / tau)


# ---------------------------------------------------------------- learned potential and kernels
def test_learned_potential_equals_constant_field_energy_of_the_potential_features():
    F = make_features("phi4", level="depth0", L=8)
    theta = np.random.default_rng(0).standard_normal(len(F.names))
    scale = ScaleModel(0, "depth0", F, theta)
    grid = np.linspace(-2, 2, 9)
    V = dg.learned_potential(scale, grid)
    k4 = F.names.index("phi^4")
    assert np.allclose(V, theta[k4] * grid**4)
    Fw = make_features("phi4", level="depth0", L=8, potential="windows", vmin=-2, vmax=2,
                       n_windows=7, window="bspline")
    tw = np.random.default_rng(1).standard_normal(len(Fw.names))
    pot = Fw.blocks[1]
    sl = slice(len(Fw.names) - len(pot.names), None)
    e = np.array([pot.energy(tw[sl], np.full((1, 8, 8), g))[0] / 64 for g in grid])
    assert np.allclose(dg.learned_potential(ScaleModel(0, "depth0", Fw, tw), grid), e)


def test_learned_potential_and_kernels_of_a_fitted_model(small_model):
    model, _ = small_model
    V = dg.learned_potential(model, np.linspace(-2, 2, 11))
    assert set(V) == {"coarse", "j=1"} and V["j=1"].shape == (11,)
    q = dg.quadratic_kernels(model.conditionals[0])
    assert q["channels"] == ["HL", "LH", "HH", "LL"] and q["kernels"].shape == (4, 4, 3, 3)
    assert np.all(q["kernels"][3, 3] == 0.0)


@pytest.mark.parametrize("level", ["depth0", "conditional"])
def test_quadratic_kernels_reproduce_the_quadratic_energy(level):
    L = 16
    F = make_features("gaussian", level=level, L=L, radius=2)
    rng = np.random.default_rng(4)
    theta = rng.standard_normal(len(F.names))
    q = dg.quadratic_kernels(ScaleModel(1, level, F, theta))
    K, R = q["kernels"], q["radius"]
    assert R == 2
    if level == "depth0":
        v, c = rng.standard_normal((1, L, L)), None
        X = v[:, None]
    else:
        v, c = rng.standard_normal((1, 3, L // 2, L // 2)), rng.standard_normal((1, L // 2, L // 2))
        X = np.concatenate([v, c[:, None]], axis=1)
    e = 0.0
    for a in range(K.shape[0]):
        for b in range(K.shape[1]):
            for dy in range(-R, R + 1):
                for dx in range(-R, R + 1):
                    sh = np.roll(X[0, b], (dy, dx), axis=(0, 1))  # x_b(i - s)
                    e += 0.5 * K[a, b, dy + R, dx + R] * np.sum(X[0, a] * sh)
    if level == "conditional":  # LL x LL is not a feature (constant in the details)
        assert np.all(K[3, 3] == 0.0)
    # symmetry K_ab(s) = K_ba(-s)
    assert np.allclose(K, np.transpose(K, (1, 0, 2, 3))[:, :, ::-1, ::-1])
    assert e == pytest.approx(F.energy(theta, v, c)[0], rel=1e-10)


def _kernel_energy(K: np.ndarray, X: np.ndarray) -> float:
    """½ Σ_{a,b,s} K_ab(s) Σ_i X_a(i) X_b(i - s) for one configuration X (C, n, n)."""
    R = (K.shape[-1] - 1) // 2
    e = 0.0
    for a in range(K.shape[0]):
        for b in range(K.shape[1]):
            for dy in range(-R, R + 1):
                for dx in range(-R, R + 1):
                    if K[a, b, dy + R, dx + R] != 0.0:
                        sh = np.roll(X[b], (dy, dx), axis=(0, 1))
                        e += 0.5 * K[a, b, dy + R, dx + R] * np.sum(X[a] * sh)
    return e


@pytest.mark.parametrize("family", ["gaussian", "phi4", "scattering"])
def test_kernels_of_every_family_come_from_its_quadratic_couplings_block(family):
    """Kernels and ``diagnose`` at J = 2 for every family (the scattering family's modulus terms
    and log potential once crashed them): the kernel energy equals that of the family's
    QuadraticCouplings block with its own θ slice; the other blocks are skipped."""
    x = generate_phi4(size=32, n_samples=8, beta=0.68, seed=1).fields.astype(np.float64)
    model = WCRGModel(family, J=2).fit(x)
    rep = dg.diagnose(model, x, n_fields=1)
    assert set(rep["kernels"]) == {"coarse", "j=1", "j=2"}
    rng = np.random.default_rng(7)
    skipped = 0
    for f in model.factors():
        blocks = getattr(f.features, "blocks", [f.features])
        starts = np.cumsum([0] + [b.n_features for b in blocks])
        (i,) = [i for i, b in enumerate(blocks) if isinstance(b, QuadraticCouplings)]
        skipped += len(blocks) - 1
        quad, th = blocks[i], np.asarray(f.theta)[starts[i]: starts[i + 1]]
        q = dg.quadratic_kernels(f)
        assert np.allclose(np.asarray(rep["kernels"][_scale_key(f)]["kernels"]), q["kernels"])
        if f.level == "depth0":
            n = x.shape[-1] >> model.J
            v, c = rng.standard_normal((1, n, n)), None
            X = v[0][None]
        else:
            n = x.shape[-1] >> f.j
            v, c = rng.standard_normal((1, 3, n, n)), rng.standard_normal((1, n, n))
            X = np.concatenate([v[0], c])
        assert q["radius"] == 1 and np.abs(q["kernels"]).max() > 0
        assert _kernel_energy(q["kernels"], X) == pytest.approx(quad.energy(th, v, c)[0], rel=1e-10)
    # gaussian: couplings only; phi4: + potential per factor; scattering: + log potential and
    # modulus terms where the lattice is at least 8 x 8
    assert (skipped == 0) if family == "gaussian" else (skipped >= 3)


# ---------------------------------------------------------------- stochastic Lanczos quadrature
def test_lanczos_quadrature_integrates_polynomials_exactly():
    # Gauss quadrature with m nodes is exact for degree <= 2m - 1: sum_i w_i θ_i^p = <v, H^p v>
    rng = np.random.default_rng(3)
    lam = np.sort(rng.uniform(-1.0, 2.0, 300))
    hvp = lambda w: w * lam  # noqa: E731  (a diagonal Hessian on shape (300,))
    m, P = 8, 3
    nodes, weights = dg.lanczos_quadrature(hvp, (300,), n_probe=P, steps=m, seed=5)
    assert nodes.shape == weights.shape == (P * m,)
    assert weights.sum() == pytest.approx(1.0)
    V = np.random.default_rng(5).choice([-1.0, 1.0], size=(P, 300)) / np.sqrt(300)
    for p in range(2 * m):
        exact = np.mean(np.sum(V**2 * lam**p, axis=1))
        assert np.sum(weights * nodes**p) == pytest.approx(exact, rel=1e-8, abs=1e-12)


def test_slq_histogram_matches_the_dense_spectrum_of_critical_phi4():
    x = asset("phi4_L64_beta0.68")[:1, ::2, ::2].astype(np.float64)  # one 32x32 field
    for basis, shape in (("pixel", (32, 32)), ("conditional", (3, 16, 16))):
        hvp = (dg.phi4_pixel_hvp(x[0], 0.68) if basis == "pixel"
               else dg.phi4_conditional_hvp(x[0], 0.68, wavelet="db4"))
        exact = dg.hessian_eigenvalues(hvp, shape, "dense")
        est = dg.hessian_spectrum(hvp, shape, "slq")
        assert est.method == "slq"
        rng_ = (exact.min() - 0.1, exact.max() + 0.1)
        he = dg.eigenvalue_histogram([exact], bins=40, range_=rng_)
        hs = dg.eigenvalue_histogram([est], bins=40, range_=rng_)
        w = np.diff(he["edges"])
        tv = 0.5 * np.sum(np.abs(np.array(he["density"]) - np.array(hs["density"])) * w)
        se, ss = he["summary"], hs["summary"]
        print(f"{basis}: negative share dense {se['negative_share']:.4f} slq {ss['negative_share']:.4f},"
              f" TV {tv:.3f}, min {se['min']:.3f}/{ss['min']:.3f}")
        assert tv < 0.08  # measured ~0.04 (quadrature nodes fall in discrete bins)
        assert ss["negative_share"] == pytest.approx(se["negative_share"], abs=0.01)
        assert ss["min"] == pytest.approx(se["min"], abs=1e-3)  # extremes converge first
        assert ss["max"] == pytest.approx(se["max"], abs=1e-3)
        assert ss["estimated"] and not se["estimated"]
        assert ss["condition_positive"] is None  # not resolved by SLQ across zero
        assert se["condition_number"] is None and not se["positive_definite"]


def test_fitted_wcrg_conditionals_are_closer_to_convex_than_the_pixel_energy():
    """φ⁴ at β = 0.68, L = 32, Daubechies-4, at data samples (docs/diagnostics.md, "Hessian
    eigenvalues: pixel basis vs conditionals"). Reported per scale: share of negative eigenvalues and the condition number of the positive
    part; the fitted finest conditional must follow the true one and keep at most half the
    pixel share. No scale is claimed convex: the shares are measured and printed."""
    fields = generate_phi4(size=32, n_samples=64, beta=0.68, seed=11).fields.astype(np.float64)
    pixel_model = WCRGModel("phi4", J=0).fit(fields)
    wcrg = WCRGModel("phi4", J=3).fit(fields)
    at = fields[:4]
    pix = dg.eigenvalue_histogram(dg.model_hessian_spectra(pixel_model, at)["coarse"])["summary"]
    true_pix = dg.eigenvalue_histogram(dg.phi4_hessian_spectra(at, 0.68))["summary"]
    true_cond = dg.eigenvalue_histogram(
        dg.phi4_hessian_spectra(at, 0.68, basis="conditional", wavelet="db4"))["summary"]
    spectra = dg.model_hessian_spectra(wcrg, at)
    rows = {k: dg.eigenvalue_histogram(v)["summary"] for k, v in spectra.items()}
    print(f"pixel: fitted {pix['negative_share']:.3f} (min {pix['min']:.2f}), "
          f"true {true_pix['negative_share']:.3f} (min {true_pix['min']:.2f})")
    print(f"finest conditional, true energy: {true_cond['negative_share']:.3f} "
          f"(min {true_cond['min']:.2f})")
    for k, r in rows.items():
        print(f"fitted {k}: negative share {r['negative_share']:.3f}, min {r['min']:.3f}, "
              f"max {r['max']:.2f}, kappa(positive part) {r['condition_positive']:.0f}")
    assert pix["negative_share"] == pytest.approx(true_pix["negative_share"], abs=0.02)
    assert rows["j=1"]["negative_share"] == pytest.approx(true_cond["negative_share"], abs=0.02)
    for j in (1, 2, 3):
        assert rows[f"j={j}"]["negative_share"] <= 0.5 * pix["negative_share"]
    assert true_cond["negative_share"] <= 0.5 * true_pix["negative_share"]
    assert pix["negative_share"] > 0.05 and not pix["positive_definite"]  # honest: not convex

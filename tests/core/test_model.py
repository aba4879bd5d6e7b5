"""WCRG model: well-specified recovery, score matching vs maximum likelihood, the exact Gaussian
case (the conditioning theorem of Guth et al. 2023, docs/fields.md, "Power-law fields and the
conditioning theorem"), save/load and determinism."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from explorer.core import wavelets as wv
from explorer.core.features import canonical_phi4_theta, make_features, phi4_ansatz
from explorer.core.fields.gaussian import free_field_spectrum, generate_gaussian
from explorer.core.fit import (fit_factor, fit_score_matching, gaussian_start,
                               iter_maximum_likelihood)
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel
from explorer.core.progress import run
from explorer.core.rgflow import block_average, rg_flow

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def phi4_asset(beta: str) -> np.ndarray:
    return load_fields(ASSETS / f"phi4_L64_beta{beta}.npz").fields.astype(np.float64)


@pytest.mark.parametrize("beta", ["0.50", "0.68"])
def test_score_matching_recovers_the_canonical_phi4_couplings(beta):
    fit = fit_score_matching(phi4_ansatz(), phi4_asset(beta))
    exact = canonical_phi4_theta(float(beta), 1.0)  # (-beta, 1 - 2 lam, lam)
    rel = fit.theta / exact - 1.0
    print(f"beta {beta}: theta {fit.theta}, relative error {rel}, kappa(H) "
          f"{fit.cond_raw:.3g} -> {fit.cond_preconditioned:.3g}")
    assert np.all(np.abs(rel) < 0.03), rel
    assert fit.cond_preconditioned <= fit.cond_raw


def test_score_matching_and_maximum_likelihood_agree():
    # disordered phase: the MALA chains of maximum likelihood mix, and both estimators agree.
    # (At beta_c the persistent chains suffer critical slowing down; see the benchmark.)
    x = phi4_asset("0.50")[:32]
    F = phi4_ansatz()
    sm = fit_score_matching(F, x)
    ml = run(iter_maximum_likelihood(F, x, theta0=gaussian_start(F, x), iterations=120,
                                     mala_steps=10, seed=0))
    rel = ml.theta / sm.theta - 1.0
    print(f"SM {sm.theta} ({sm.seconds:.3f} s), ML {ml.theta} ({ml.seconds:.1f} s), rel {rel}")
    assert np.all(np.abs(rel) < 0.05), rel
    assert ml.gradient_evaluations > 100 * 1  # ML needs model samples; SM needs none


def _dense_hessian(features, theta, shape):
    n = int(np.prod(shape))
    basis = np.eye(n).reshape((n, *shape))
    cond = None if features.level == "depth0" else np.zeros((n, shape[-1], shape[-1]))
    H = features.hvp(theta, np.zeros((n, *shape)), basis, cond).reshape(n, n)
    return 0.5 * (H + H.T)


def _exact_conditional_kappas(L: int, J: int, wavelet: str = "db4") -> list[float]:
    """Condition numbers of the exact conditional precisions of the massless free field."""
    n = L * L
    basis = np.eye(n).reshape(n, L, L)
    P = free_field_spectrum(L, 1.0, 0.0)
    C = np.real(np.fft.ifft2(P * np.fft.fft2(basis))).reshape(n, n)
    out = []
    A = basis
    for _ in range(J):
        s = A.shape[-1]
        Amat = A.reshape(n, s * s).T  # x_{j-1} = Amat x
        Q = np.linalg.pinv(Amat @ C @ Amat.T, rcond=1e-10, hermitian=True)
        _, det = wv.analysis(np.eye(s * s).reshape(s * s, s, s), wavelet)
        Wd = det.reshape(s * s, -1).T
        ev = np.linalg.eigvalsh(Wd @ Q @ Wd.T)
        out.append(float(ev.max() / ev.min()))
        A, _ = wv.analysis(A, wavelet)
    return out


def test_exact_gaussian_case_pixel_conditioning_grows_conditionals_stay_small():
    # eta = 2 realised as the lattice massless free field, P = 1/khat^2 ~ |k|^-2.
    kappas = {}
    for L in (16, 32, 64):
        x = generate_gaussian(size=L, n_samples=128, kind="free", beta=1.0, mass=0.0, seed=L).fields
        m = WCRGModel("gaussian", 0, radius=1).fit(x)
        impulse = np.zeros((1, L, L))
        impulse[0, 0, 0] = 1.0
        response = m.coarse.features.hvp(m.coarse.theta, np.zeros((1, L, L)), impulse)[0]
        eig = np.delete(np.real(np.fft.fft2(response)).ravel(), 0)  # circulant; zero mode removed
        kappas[L] = eig.max() / eig.min()
    sizes = np.array([16, 32, 64])
    exact_pixel = 8.0 / (4.0 * np.sin(np.pi / sizes) ** 2)  # max/min nonzero khat^2
    slope = np.polyfit(np.log(sizes), np.log([kappas[L] for L in sizes]), 1)[0]
    exact_slope = np.polyfit(np.log(sizes), np.log(exact_pixel), 1)[0]
    print(f"fitted pixel kappa {kappas} (exact {np.round(exact_pixel, 1)}), log-log slope "
          f"{slope:.2f} (exact {exact_slope:.2f}, eta = 2)")
    assert exact_slope == pytest.approx(2.0, abs=0.05)
    # the smallest curvature (lowest k) is the noisiest estimate: within 50 % of the exact value
    np.testing.assert_allclose([kappas[L] for L in sizes], exact_pixel, rtol=0.5)
    assert slope > 1.7

    exact = {L: _exact_conditional_kappas(L, 3) for L in (16, 32)}
    print(f"exact conditional kappas j=1..3: {exact}")
    # docs/diagnostics.md, "Hessian eigenvalues: pixel basis vs conditionals": 4.00 at j = 1
    assert exact[16][0] == pytest.approx(4.0, abs=0.01)
    for L in exact:
        assert max(exact[L]) < 10
    np.testing.assert_allclose(exact[16], exact[32], rtol=1e-6)  # independent of L

    x = generate_gaussian(size=32, n_samples=256, kind="free", beta=1.0, mass=0.0, seed=7).fields
    m = WCRGModel("gaussian", 3, radius=2).fit(x)
    fitted = []
    for f in m.conditionals:
        n = f.features.L // 2
        ev = np.linalg.eigvalsh(_dense_hessian(f.features, f.theta, (3, n, n)))
        assert ev.min() > 0
        fitted.append(ev.max() / ev.min())
    print(f"fitted conditional kappas j=1..3 at L=32: {np.round(fitted, 2)}")
    np.testing.assert_allclose(fitted, exact[32], rtol=0.35)


@pytest.fixture(scope="module")
def small_model():
    x = phi4_asset("0.68")[:32, :32, :32]
    return WCRGModel("phi4", 2, "db4", radius=1).fit(x), x


def test_save_load_reproduces_energies_exactly(small_model, tmp_path):
    m, x = small_model
    path = m.save(tmp_path / "m.npz")
    m2 = WCRGModel.load(path)
    e1, e2 = m.scale_energies(x[:4]), m2.scale_energies(x[:4])
    assert e1.keys() == e2.keys() == {"coarse", "j=1", "j=2"}
    for k in e1:
        np.testing.assert_array_equal(e1[k], e2[k])
    assert m2.summary()["scales"] == m.summary()["scales"]


def test_the_model_loop_fits_each_factor_with_fit_factor(small_model):
    """WCRGModel.iter_fit is the scale loop: one factor refitted by hand with
    explorer.core.fit.fit_factor on the same data gives the same θ and the same verdicts."""
    m, x = small_model
    assert m.support is None                      # phi4 data: every mode on the support
    lows = wv.low_passes(x, 2)
    _, details = wv.decompose(x, 2)
    f = m.conditionals[0]
    theta, summary = fit_factor(f.features, details[0], lows[1], seed=1)
    np.testing.assert_array_equal(theta, f.theta)
    for key in ("bounded", "quadratic_base", "warnings", "theta"):
        assert summary[key] == f.fit[key], key
    theta, _ = fit_factor(m.coarse.features, lows[2])
    np.testing.assert_array_equal(theta, m.coarse.theta)
    with pytest.raises(ValueError, match="method"):
        fit_factor(f.features, details[0], lows[1], method="bayes")


def test_gaussian_start_reads_the_features_not_their_names():
    """The maximum-likelihood start: 1/var on every on-site coupling ½Σx_c² of a varying channel,
    0.5/var on a Σφ² potential term, 0 elsewhere."""
    v = np.random.default_rng(0).standard_normal((4, 8, 8))
    var = float(np.mean(v**2))
    for F in (make_features("gaussian", level="depth0", L=8, isotropic=True, radius=2),
              make_features("phi4", level="conditional", L=16, radius=2), phi4_ansatz(8)):
        theta = gaussian_start(F, v)
        want = [1.0 / var if n == "phi^2/2" or re.fullmatch(r"coupling\[(\w+),\1\]\(0,0\)", n)
                else 0.5 / var if n == "phi^2" else 0.0 for n in F.names]
        np.testing.assert_array_equal(theta, want)
        assert np.count_nonzero(theta) == (3 if F.conditional else 1)


def test_a_model_saved_under_the_former_family_name_loads_and_fits(tmp_path):
    """Files written before the modulus family was renamed name it "scattering" in their header
    and in every factor's feature spec; they load, give the same energies and refit."""
    x = load_fields(ASSETS / "turbulence_L128.npz").fields[:4, ::2, ::2].astype(np.float64)
    m = WCRGModel("modulus", 2).fit(x)
    path = m.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["header"][()]))
        arrays = {k: np.array(z[k]) for k in z.files if k != "header"}
    header["family"] = "scattering"                # the header as the former code wrote it
    for s in header["scales"]:
        s["spec"]["family"] = "scattering"
    old = tmp_path / "old.npz"
    np.savez(old, header=np.array(json.dumps(header)), **arrays)
    m2 = WCRGModel.load(old)
    assert m2.family == "scattering"
    assert [f.names for f in m2.factors()] == [f.names for f in m.factors()]
    e1, e2 = m.scale_energies(x), m2.scale_energies(x)
    assert all(np.array_equal(e1[k], e2[k]) for k in e1)
    m2.fit(x)
    for f, g in zip(m.factors(), m2.factors()):
        np.testing.assert_array_equal(f.theta, g.theta)
    assert m2.coarse.features.spec["family"] == "modulus"


def test_same_seed_same_samples(small_model):
    m, _ = small_model
    a = m.sample(3, steps=10, burn_in=10, seed=5)
    b = m.sample(3, steps=10, burn_in=10, seed=5)
    c = m.sample(3, steps=10, burn_in=10, seed=6)
    np.testing.assert_array_equal(a.fields, b.fields)
    assert not np.array_equal(a.fields, c.fields)
    assert a.fields.shape == (3, 32, 32)
    scales = a.meta["sampling"]["scales"]
    assert [s["scale"] for s in scales] == ["scale 2 (coarsest)", "scale 2", "scale 1"]
    assert all(s["gradient_evaluations"] > 0 for s in scales)


def test_depth_zero_goes_through_the_same_code():
    x = phi4_asset("0.50")[:16, :16, :16]
    m = WCRGModel("phi4", 0).fit(x)
    assert m.conditionals == [] and m.coarse.level == "depth0"
    assert set(m.scale_energies(x[:2])) == {"coarse"}
    assert m.sample(2, steps=5, burn_in=5).fields.shape == (2, 16, 16)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="depth"):
        WCRGModel("phi4", -1)
    with pytest.raises(ValueError, match="family"):
        WCRGModel("ising", 1)
    with pytest.raises(ValueError):
        WCRGModel("phi4", 3).fit(np.random.default_rng(0).standard_normal((4, 12, 12)))
    with pytest.raises(RuntimeError, match="not fitted"):
        WCRGModel("phi4", 1).sample(2)


def test_load_refuses_non_model_files(tmp_path):
    np.savez(tmp_path / "x.npz", fields=np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="model"):
        WCRGModel.load(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="no such file"):
        WCRGModel.load(tmp_path / "missing.npz")


def test_rg_flow_reports_canonical_couplings_per_scale():
    x = phi4_asset("0.50")
    flow = rg_flow(x)
    first = flow["scales"][0]
    assert first["L"] == 64 and first["beta"] == pytest.approx(0.5, rel=0.03)
    assert [s["L"] for s in flow["scales"]] == [64, 32, 16, 8, 4]
    # disordered phase: the nearest-neighbour coupling flows to zero (Gaussian fixed point)
    betas = [s["beta"] for s in flow["scales"]]
    assert betas[-1] < 0.2 * betas[0] and all(np.diff(betas) < 0)
    np.testing.assert_allclose(block_average(np.ones((1, 4, 4))), np.ones((1, 2, 2)))


def test_phi4_depth_avoids_coarse_fields_that_cross_zero_rarely():
    """crossing_depth: magnetised fields with fine noise cross zero often at fine scales (0.16 at
    depth 1, 0.02 at 2) and never at the coarse ones: the deepest depth. Eight fields with a
    16 x 16 negative blob put a few coarse sites of depths 3 and 4 across zero (0.003): that band
    is avoided, so depth 2, the deepest whose coarse fields cross at >= MIN_SIGN_CROSSING."""
    from explorer.core.model import (MIN_SIGN_CROSSING, RARE_SIGN_CROSSING, crossing_depth,
                                     default_depth)

    rng = np.random.default_rng(0)
    x = 1.0 + 2.0 * rng.standard_normal((256, 64, 64))
    plain = crossing_depth(x, 4)
    assert plain["depth"] == 4 and plain["crossings"][4] < RARE_SIGN_CROSSING
    y = x.copy()
    for i in range(8):
        a, b = rng.integers(0, 48, 2)
        y[i, a:a + 16, b:b + 16] -= 4.0
    blobs = crossing_depth(y, 4)
    c = blobs["crossings"]
    assert RARE_SIGN_CROSSING <= c[3] < MIN_SIGN_CROSSING and RARE_SIGN_CROSSING <= c[4] < MIN_SIGN_CROSSING
    assert c[2] >= MIN_SIGN_CROSSING and blobs["depth"] == 2
    # the default depth of phi4 data follows it; without the fields (or for other data) the deepest
    assert default_depth(64, "phi4", y) == 2 and default_depth(64, "phi4", x) == 4
    assert default_depth(64, "phi4") == 4 and default_depth(64, "gaussian", y) == 4
    # `explorer info` and the fit's default say the same, with the reason
    from explorer.core.statistics import suggested_depth
    s = suggested_depth(y, {"generator": "phi4"})
    assert s["depth"] == 2 and "rare sign-crossing band" in s["reason"]
    assert suggested_depth(x, {"generator": "phi4"})["depth"] == 4


def test_steps_per_scale_follow_the_schedule(small_model):
    """The coarse factor runs min(coarse_boost, 4^J) times the steps, a conditional j the steps
    themselves unless ``detail_boost`` asks for min(detail_boost, 4^(j-1)) times more
    (docs/sampling.md, "Steps per scale"). Gradient evaluations: the steps and the burn-in, plus
    the initial state and the curvature estimate's few power iterations."""
    m, _ = small_model

    def evaluations(**kw) -> list[int]:
        s = m.sample(2, steps=10, burn_in=10, seed=0, **kw)
        return [sc["gradient_evaluations"] for sc in s.meta["sampling"]["scales"]]

    coarse, j2, j1 = evaluations()
    assert 16 * 20 <= coarse < 16 * 20 + 40
    assert 20 <= j2 < 60 and 20 <= j1 < 60
    _, j2_boosted, j1_boosted = evaluations(detail_boost=16)
    assert 4 * 20 <= j2_boosted < 4 * 20 + 40 and 20 <= j1_boosted < 60
    with pytest.raises(ValueError, match="detail_boost"):
        m.sample(2, steps=5, burn_in=5, detail_boost=0)


def test_the_default_refinement_is_where_it_was_measured():
    from explorer.core.defaults import (DEFAULT_REFINE_ITERATIONS, DEPTH3_REFINE_ITERATIONS,
                                        default_refinement)

    # at depth >= 3 only the coarse factor by data-condition maximum likelihood (ml_refine =
    # J + 1: no conditional), the coarsest conditionals' variances on generated fields; the 8 x 8
    # coarse factor of depth 3 (64^2) with more Newton iterations
    assert default_refinement("phi4", 4, "phi4") == {
        "ml_refine": 5, "ml_refine_iterations": DEFAULT_REFINE_ITERATIONS,
        "refine_variances": True}
    assert default_refinement("phi4", 5, "phi4")["ml_refine"] == 6
    assert default_refinement("phi4", 3, "phi4") == {
        "ml_refine": 4, "ml_refine_iterations": DEPTH3_REFINE_ITERATIONS,
        "refine_variances": True}
    assert DEPTH3_REFINE_ITERATIONS > DEFAULT_REFINE_ITERATIONS
    for args in (("phi4", 2, "phi4"), ("phi4", 4, "turbulence"), ("phi4", 4, None),
                 ("gaussian", 4, "phi4")):
        assert default_refinement(*args) == {}
    assert default_refinement("phi4", 4, "phi4", method="ml") == {}


def test_the_refinement_matches_a_given_target_from_other_starts():
    # U = theta/2 sum x^2 on 8 x 8 fields: chains start at unit-variance fields (theta0 = 1, their
    # own law) and match the moment of fields of variance 1.2, so theta goes to 1/1.2; without a
    # target the same starts are their own target and theta stays at 1
    from explorer.core.fit import refine_maximum_likelihood

    feats = make_features("gaussian", level="depth0", L=8, radius=0)
    rng = np.random.default_rng(3)
    v = rng.standard_normal((256, 8, 8))
    wider = np.sqrt(1.2) * rng.standard_normal((256, 8, 8))
    wide = feats.phi(feats.prepare(wider, None)).mean(axis=0)
    theta, info = refine_maximum_likelihood(feats, v, None, np.ones(1), iterations=30, seed=1,
                                            target=wide)
    assert theta[0] == pytest.approx(1 / 1.2, rel=0.03)
    same, _ = refine_maximum_likelihood(feats, v, None, np.ones(1), iterations=30, seed=1)
    assert same[0] == pytest.approx(1.0, rel=0.03)
    with pytest.raises(ValueError, match="moments"):
        refine_maximum_likelihood(feats, v, None, np.ones(1), iterations=1, target=np.ones(2))

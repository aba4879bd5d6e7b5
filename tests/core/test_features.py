"""Energy feature families: exact gradients / Laplacians / Hessian-vector products against finite
differences at depth 0 and inside WCRG conditionals, closed-form energies, naming, redundancy."""

from __future__ import annotations

import json
import re
import tracemalloc

import numpy as np
import pytest

from explorer.core import features as ft
from explorer.core import wavelets as wv
from explorer.core.fields import gaussian as gauss
from explorer.core.fields import phi4

SEED = 7_2024

WINDOWS = {"potential": "windows", "n_windows": 7, "vmin": -3.0, "vmax": 3.0}
FAMILIES = {
    "gaussian-r1": ("gaussian", {}),
    "gaussian-r2": ("gaussian", {"radius": 2}),
    "phi4-poly": ("phi4", {}),
    "phi4-poly-all6": ("phi4", {"parity": "all", "degree": 6}),
    "phi4-sigmoids": ("phi4", WINDOWS),
    "phi4-bumps": ("phi4", {**WINDOWS, "window": "gaussian", "width": 0.7}),
    "phi4-splines": ("phi4", {**WINDOWS, "window": "bspline", "radius": 2}),
}
DEPTH0_ONLY = {
    "gaussian-iso-r2": ("gaussian", {"isotropic": True, "radius": 2}),
    "phi4-iso": ("phi4", {"isotropic": True}),
    "phi4-ansatz": ("phi4_ansatz", {}),
}


def sample_inputs(F: ft.Features, L: int, N: int = 2, seed: int = 0):
    """Generic random (v, c) for a feature set acting on fields of side L."""
    g = np.random.default_rng(SEED + seed)
    if F.level == "depth0":
        return g.standard_normal((N, L, L)), None
    n = L // 2
    return 0.7 * g.standard_normal((N, 3, n, n)), 1.5 * g.standard_normal((N, n, n))


def phi_of(F, v, c):
    return F.phi(F.prepare(v, c))


def fd_laplacian(F, v, c, eps=1e-3):
    """Σ_a (Φ(v + ε e_a) - 2Φ(v) + Φ(v - ε e_a)) / ε², all perturbations in one batch."""
    N = v.shape[0]
    M = v[0].size
    E = np.eye(M).reshape((M,) + v.shape[1:])
    vp = (v[:, None] + eps * E).reshape((N * M,) + v.shape[1:])
    vm = (v[:, None] - eps * E).reshape((N * M,) + v.shape[1:])
    cc = None if c is None else np.repeat(c, M, axis=0)
    fp = phi_of(F, vp, cc).reshape(N, M, -1)
    fm = phi_of(F, vm, cc).reshape(N, M, -1)
    f0 = phi_of(F, v, c)
    return (fp + fm - 2.0 * f0[:, None]).sum(axis=1) / eps**2


def fd_laplacian_from_grad(F, v, c, eps=1e-6, chunk=16):
    """Σ_a (∂_a Φ(v + ε e_a) - ∂_a Φ(v - ε e_a)) / 2ε: central differences of the exact gradient."""
    N = v.shape[0]
    M = v[0].size
    out = np.zeros((N, F.n_features))
    for a0 in range(0, M, chunk):
        idx = np.arange(a0, min(M, a0 + chunk))
        E = np.zeros((len(idx), M))
        E[np.arange(len(idx)), idx] = eps
        E = E.reshape((len(idx),) + v.shape[1:])
        cc = None if c is None else np.repeat(c, len(idx), axis=0)
        for sign in (1.0, -1.0):
            vs = (v[:, None] + sign * E).reshape((N * len(idx),) + v.shape[1:])
            G = F.grad(F.prepare(vs, cc)).reshape(N, len(idx), F.n_features, M)
            out += sign * G[:, np.arange(len(idx)), :, idx].transpose(1, 0, 2).sum(axis=1) / (2 * eps)
    return out


def cases():
    out = []
    for key, (fam, opts) in {**FAMILIES, **DEPTH0_ONLY}.items():
        for L in (4, 8):
            out.append(pytest.param(fam, opts, "depth0", L, "db4", id=f"{key}-depth0-L{L}"))
    for key, (fam, opts) in FAMILIES.items():
        for wavelet in ("haar", "db4"):
            # conditionals at several scales: fine side L = 2, 4, 8, 16 (details of side 1 .. 8)
            for L in (2, 4, 8, 16):
                out.append(pytest.param(fam, opts, "conditional", L, wavelet,
                                        id=f"{key}-cond-{wavelet}-L{L}"))
    return out


# ------------------------------------------------------------------ derivatives vs finite differences
@pytest.mark.parametrize("family, options, level, L, wavelet", cases())
def test_derivatives_match_finite_differences(family, options, level, L, wavelet):
    F = ft.make_features(family, level=level, L=L, wavelet=wavelet, **options)
    v, c = sample_inputs(F, L)
    ctx = F.prepare(v, c)
    phi, G, lap = F.phi(ctx), F.grad(ctx), F.laplacian(ctx)
    K = F.n_features
    assert phi.shape == (2, K) and lap.shape == (2, K) and G.shape == (2, K) + v.shape[1:]
    assert F.var_shape == v.shape[1:]

    g = np.random.default_rng(SEED + 1)
    scale = np.abs(phi) + 1.0
    for _ in range(3):  # directional derivatives along random directions
        u = g.standard_normal(v.shape)
        eps = 1e-5
        fd = (phi_of(F, v + eps * u, c) - phi_of(F, v - eps * u, c)) / (2 * eps)
        exact = np.einsum("nkv,nv->nk", G.reshape(2, K, -1), u.reshape(2, -1))
        assert np.all(np.abs(exact - fd) <= 1e-6 * (scale + np.abs(fd))), np.abs(exact - fd).max()

    # Laplacian: central differences of the (just checked) gradient, and second differences of Φ
    fd_lap = fd_laplacian_from_grad(F, v, c)
    assert np.all(np.abs(lap - fd_lap) <= 1e-6 * (scale + np.abs(lap))), np.abs(lap - fd_lap).max()
    if options.get("window") != "bspline":  # splines are C² only: O(ε) second-difference error at knots
        fd_lap = fd_laplacian(F, v, c)
        assert np.all(np.abs(lap - fd_lap) <= 1e-5 * (scale + np.abs(lap))), np.abs(lap - fd_lap).max()


@pytest.mark.parametrize("family, options, level, L, wavelet", cases())
def test_energy_methods_are_consistent(family, options, level, L, wavelet):
    F = ft.make_features(family, level=level, L=L, wavelet=wavelet, **options)
    v, c = sample_inputs(F, L, N=3, seed=2)
    g = np.random.default_rng(SEED + 3)
    theta = g.standard_normal(F.n_features)
    theta[::5] = 0.0  # zeros are skipped inside some blocks: exercise that path
    ctx = F.prepare(v, c)
    phi, G = F.phi(ctx), F.grad(ctx)

    E = F.energy(theta, v, c)
    gE = F.energy_grad(theta, v, c)
    assert E.shape == (3,) and gE.shape == v.shape
    assert np.allclose(E, phi @ theta, rtol=1e-12, atol=1e-10)
    assert np.allclose(gE, np.tensordot(theta, G, axes=(0, 1)), rtol=1e-10, atol=1e-10)
    E2, gE2 = F.energy_and_grad(theta, v, c)
    assert np.allclose(E2, E, rtol=1e-12, atol=1e-10) and np.allclose(gE2, gE, atol=1e-10)

    # energy_grad against finite differences of energy (directional)
    u = g.standard_normal(v.shape)
    eps = 1e-5
    fd = (F.energy(theta, v + eps * u, c) - F.energy(theta, v - eps * u, c)) / (2 * eps)
    exact = np.sum(gE * u, axis=tuple(range(1, v.ndim)))
    assert np.allclose(exact, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(E).max()))

    # Hessian-vector product against finite differences of energy_grad, and symmetric
    w = g.standard_normal(v.shape)
    Hw = F.hvp(theta, v, w, c)
    fd = (F.energy_grad(theta, v + eps * w, c) - F.energy_grad(theta, v - eps * w, c)) / (2 * eps)
    assert Hw.shape == v.shape
    assert np.allclose(Hw, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd).max()))
    Hu = F.hvp(theta, v, u, c)
    axes = tuple(range(1, v.ndim))
    assert np.allclose(np.sum(Hw * u, axis=axes), np.sum(Hu * w, axis=axes), rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ closed forms
@pytest.mark.parametrize("L", [2, 4, 8])
@pytest.mark.parametrize("beta, lam", [(0.68, 1.0), (0.3, 2.5), (1.1, 0.0)])
def test_phi4_ansatz_is_the_canonical_energy(L, beta, lam):
    F = ft.phi4_ansatz()
    assert F.names == ["nn", "phi^2", "phi^4"]
    x = np.random.default_rng(SEED + L).standard_normal((4, L, L))
    theta = ft.canonical_phi4_theta(beta, lam)
    assert np.allclose(theta, [-beta, 1 - 2 * lam, lam])
    # the canonical energy written out directly: 2 L^2 bonds, each counted once
    bonds = np.sum(x * np.roll(x, 1, axis=1) + x * np.roll(x, 1, axis=2), axis=(1, 2))
    site = np.sum(x**2 + lam * (x**2 - 1) ** 2, axis=(1, 2))
    E_direct = -beta * bonds + site
    assert np.allclose(F.energy(theta, x) + lam * L * L, E_direct, rtol=1e-12)
    assert np.allclose(F.energy(theta, x) + lam * L * L, phi4.energy(x, beta, lam), rtol=1e-12)
    assert np.allclose(F.energy_grad(theta, x), phi4.grad(x, beta, lam), atol=1e-12)
    w = np.random.default_rng(SEED).standard_normal(x.shape)
    assert np.allclose(F.hvp(theta, x, w), phi4.hvp(x, w, beta, lam), atol=1e-12)
    assert np.allclose(F.phi(F.prepare(x))[:, 0], bonds)


def test_phi4_family_depth0_contains_the_ansatz():
    """Isotropic phi4 family = [phi^2/2, nn, nnn, phi^4]; θ = (2(1-2λ), -β, 0, λ) is canonical φ⁴."""
    beta, lam, L = 0.68, 1.0, 8
    F = ft.make_features("phi4", level="depth0", L=L, isotropic=True)
    assert F.names == ["phi^2/2", "nn", "nnn", "phi^4"]
    x = np.random.default_rng(SEED).standard_normal((3, L, L))
    theta = np.array([2 * (1 - 2 * lam), -beta, 0.0, lam])
    assert np.allclose(F.energy(theta, x) + lam * L * L, phi4.energy(x, beta, lam), rtol=1e-12)
    nn_ansatz = ft.phi4_ansatz(L).phi(ft.phi4_ansatz(L).prepare(x))[:, 0]
    assert np.allclose(F.phi(F.prepare(x))[:, 1], nn_ansatz)


@pytest.mark.parametrize("beta, mass2", [(1.0, 0.0), (0.5, 0.3)])
def test_gaussian_theta_is_the_precision_matrix(beta, mass2):
    """½ φᵀ(-βΔ + m²)φ has θ = (4β + m², -β, 0) on [phi^2/2, nn, nnn]; anisotropic: K(s) entries."""
    L = 8
    x = np.random.default_rng(SEED).standard_normal((3, L, L))
    E = gauss.free_field_energy(x, beta, mass2)
    iso = ft.make_features("gaussian", level="depth0", L=L, isotropic=True)
    assert iso.names == ["phi^2/2", "nn", "nnn"]
    assert np.allclose(iso.energy([4 * beta + mass2, -beta, 0.0], x), E, rtol=1e-12)
    aniso = ft.make_features("gaussian", level="depth0", L=L)
    theta = np.zeros(aniso.n_features)
    theta[aniso.names.index("phi^2/2")] = 4 * beta + mass2
    theta[aniso.names.index("coupling(0,1)")] = -beta
    theta[aniso.names.index("coupling(1,0)")] = -beta
    assert np.allclose(aniso.energy(theta, x), E, rtol=1e-12)
    assert np.allclose(aniso.energy_grad(theta, x), gauss.free_field_hvp(x, beta, mass2), atol=1e-12)


def conditional_fit(energy, family, wavelet, L, radius, n_samples=300):
    """Least-squares fit of an exact conditional energy v -> energy(synthesis(c, v)) by features.

    Differences E(c, v) - E(c, 0) remove the constant in c; features are differenced the same way.
    Returns (θ, names, relative max residual): the residual is ~0 iff the energy is in the span.
    """
    F = ft.make_features(family, level="conditional", L=L, wavelet=wavelet, radius=radius)
    g = np.random.default_rng(SEED)
    n = L // 2
    v = g.standard_normal((n_samples, 3, n, n))
    c = g.standard_normal((n_samples, n, n))
    target = (energy(wv.synthesis(c, v, wavelet)) - energy(wv.synthesis(c, 0 * v, wavelet)))
    A = phi_of(F, v, c) - phi_of(F, 0 * v, c)
    theta, *_ = np.linalg.lstsq(A, target, rcond=None)
    return theta, F.names, np.abs(A @ theta - target).max() / np.abs(target).max()


def test_gaussian_conditional_energy_is_exact_when_couplings_reach():
    def free(x):
        return gauss.free_field_energy(x, 1.0, 0.2)

    # haar: fine nearest neighbours couple at most adjacent coarse blocks -> radius 1 suffices
    assert conditional_fit(free, "gaussian", "haar", 16, 1)[2] < 1e-10
    # db4 on a 4 x 4 detail lattice: radius 2 covers every shift modulo 4
    assert conditional_fit(free, "gaussian", "db4", 8, 2)[2] < 1e-10
    # ... while radius 1 on an 8 x 8 detail lattice cannot (db4 filters are 8 taps long)
    assert conditional_fit(free, "gaussian", "db4", 16, 1)[2] > 1e-4


def test_phi4_conditional_energy_is_in_the_haar_family():
    """The true φ⁴ conditional energy E(x_{j-1}) is spanned by the haar phi4 family with θ_{φ⁴} = λ."""
    beta, lam = 0.68, 1.3
    theta, names, residual = conditional_fit(lambda x: phi4.energy(x, beta, lam), "phi4", "haar", 8, 1)
    assert residual < 1e-10
    assert np.isclose(theta[names.index("phi^4")], lam, rtol=1e-9)


def test_score_matching_recovers_the_free_field():
    """Hθ = b on exact free-field samples gives θ = (4β + m², -β, 0) within sampling error."""
    beta, mass2, L, N = 1.0, 0.5, 16, 200
    x = gauss.sample_from_spectrum(gauss.free_field_spectrum(L, beta, mass2), N, SEED)
    F = ft.make_features("gaussian", level="depth0", L=L, isotropic=True)
    ctx = F.prepare(x)
    G = F.grad(ctx).reshape(N, F.n_features, -1)
    H = np.einsum("nkv,nlv->kl", G, G) / N
    b = F.laplacian(ctx).mean(axis=0)
    theta = np.linalg.solve(H, b)
    # relative sampling error of θ ~ 1/sqrt(#sites) = 1/sqrt(51200) ≈ 0.0044; 5 sigma ~ 0.03 of 4β+m²
    assert np.allclose(theta, [4 * beta + mass2, -beta, 0.0], atol=0.03 * (4 * beta + mass2))


# ------------------------------------------------------------------ features are independent
def gradient_rank(F, L, N=6, seed=0):
    v, c = sample_inputs(F, L, N=N, seed=seed)
    G = F.grad(F.prepare(v, c))
    M = np.moveaxis(G, 1, 0).reshape(F.n_features, -1)
    s = np.linalg.svd(M, compute_uv=False)
    return int(np.sum(s > 1e-9 * s[0]))


@pytest.mark.parametrize("L", [2, 4, 6, 8])
@pytest.mark.parametrize("radius", [1, 2])
def test_no_duplicate_couplings_on_small_lattices(L, radius):
    """Shifts that coincide modulo a tiny lattice are merged: the score-matching H stays regular."""
    F = ft.make_features("phi4", level="conditional", L=L, wavelet="db4", radius=radius)
    assert gradient_rank(F, L) == F.n_features
    D = ft.make_features("gaussian", level="depth0", L=L // 2 * 2, radius=radius)
    assert gradient_rank(D, L) == D.n_features


def test_x_squared_potential_would_be_redundant():
    """Why the phi4 family drops x²: Σ x_{j-1}² = ‖v‖² + ‖c‖² is the sum of on-site couplings."""
    L = 8
    quad = ft.QuadraticCouplings.gaussian("conditional", L, "db4")
    bad = quad + ft.ScalarPotential(ft.PolynomialBasis([2, 4]), "conditional", L, "db4")
    assert gradient_rank(bad, L) == bad.n_features - 1
    good = ft.make_features("phi4", level="conditional", L=L, wavelet="db4")
    assert "phi^2" not in good.names and gradient_rank(good, L) == good.n_features


def test_feature_counts():
    # 3 self pairs x 5 shifts + 3 detail pairs x 9 + 3 detail-low pairs x 9
    assert ft.make_features("gaussian", "conditional", L=16).n_features == 15 + 27 + 27
    assert ft.make_features("gaussian", "conditional", L=2).n_features == 9   # every shift is 0
    assert ft.make_features("gaussian", "depth0", L=16, radius=2).n_features == 13
    assert ft.make_features("gaussian", "depth0", L=16, radius=2, isotropic=True).n_features == 6
    assert ft.polynomial_powers("depth0", 6, "all") == [1, 3, 4, 5, 6]
    assert ft.polynomial_powers("conditional", 6, "all") == [3, 4, 5, 6]
    assert ft.polynomial_powers("conditional") == [4]


# ------------------------------------------------------------------ names
NAME = re.compile(
    r"^(phi(\^\d+)?(/2)?|nn|nnn|shell\(\d+,\d+\)|coupling(\[(HL|LH|HH|LL),(HL|LH|HH|LL)\])?\(-?\d+,-?\d+\)"
    r"|(sigmoid|bump|spline)\(c=[+-][0-9.e+-]+\))$"
)


@pytest.mark.parametrize("key", list(FAMILIES) + list(DEPTH0_ONLY))
@pytest.mark.parametrize("level", ["depth0", "conditional"])
def test_names_unique_and_readable(key, level):
    fam, opts = {**FAMILIES, **DEPTH0_ONLY}[key]
    if level == "conditional" and key in DEPTH0_ONLY:
        with pytest.raises(ValueError):
            ft.make_features(fam, level=level, L=16, **opts)
        return
    F = ft.make_features(fam, level=level, L=16, **opts)
    assert len(set(F.names)) == len(F.names) == F.n_features
    bad = [n for n in F.names if not NAME.match(n)]
    assert not bad, bad
    if level == "conditional":
        assert not any("[LL,LL]" in n for n in F.names)


def test_window_names_and_range():
    lo, hi = ft.fit_range(np.array([[-1.0, 0.5], [2.0, 0.0]]))
    assert (lo, hi) == (-1.0, 2.0)
    F = ft.make_features("phi4", level="depth0", L=8, potential="windows", n_windows=4,
                         vmin=lo, vmax=hi)
    assert F.names[-4:] == ["sigmoid(c=-1)", "sigmoid(c=+0)", "sigmoid(c=+1)", "sigmoid(c=+2)"]
    close = ft.WindowBasis([0.1, 0.1001, 0.1002], 0.01)
    assert len(set(close.names)) == 3
    x = np.random.default_rng(0).standard_normal(1000)
    lo_q, hi_q = ft.fit_range(x, quantile=0.01)
    assert x.min() < lo_q < hi_q < x.max()


@pytest.mark.parametrize("kind", ["sigmoid", "bspline", "gaussian"])
def test_window_fast_paths_match_per_window_sums(kind):
    """θ-contracted fast paths (factorised sigmoids, tabulated splines) = Σ_k θ_k ρ_k^(m)."""
    basis = ft.WindowBasis(np.linspace(-2.0, 3.0, 11), 0.5, kind)
    g = np.random.default_rng(SEED)
    theta = g.standard_normal(11)
    theta[3] = 0.0
    x = np.concatenate([g.uniform(-4, 5, 500), basis.centres, [-1e4, -40.0, 40.0, 1e4]])
    fast = basis.combine(theta, x, (0, 1, 2))
    slow = ft.PotentialBasis.combine(basis, theta, x, (0, 1, 2))
    for m in (0, 1, 2):
        assert np.all(np.isfinite(fast[m]))
        assert np.allclose(fast[m], slow[m], rtol=1e-10, atol=1e-12), m
    if kind == "sigmoid":   # far outside the range: every sigmoid saturates at 0 or 1
        assert np.isclose(fast[0][-1], theta.sum()) and np.isclose(fast[0][-4], 0.0)
    if kind == "bspline":   # cubic splines reproduce constants: Σ_k B_k = 1 inside the grid
        ones = basis.combine(np.ones(11), np.linspace(-1.0, 2.0, 50), (0, 1, 2))
        assert np.allclose(ones[0], 1.0) and np.allclose(ones[1], 0.0) and np.allclose(ones[2], 0.0)


def test_log_basis_derivatives_kurtosis_and_growth():
    """ρ(x) = log(1 + ((x - μ)/s)²): exact derivatives; with θ > 0 on top of a Gaussian it
    makes the one-point law leptokurtic (kurtosis > 3) and narrower; it grows only like log|x|,
    so it can never beat a positive quadratic (bounded below for either sign of θ)."""
    b = ft.LogBasis([0.7, 2.0], centre=0.3)
    assert b.names == ["log(1+(x/0.7)^2)", "log(1+(x/2)^2)"]
    assert ft.LogBasis([1.5]).names == ["log(1+(x/s)^2)"]
    x = np.linspace(-6.0, 6.0, 241)
    for k in range(2):
        f, d1, d2 = b.evaluate(k, x, 2)
        h = 1e-5
        fp, d1p = b.evaluate(k, x + h, 1)
        fm, d1m = b.evaluate(k, x - h, 1)
        assert np.allclose(d1, (fp - fm) / (2 * h), atol=1e-8)
        assert np.allclose(d2, (d1p - d1m) / (2 * h), atol=1e-6)
        assert f.min() < 1e-12 and np.argmin(f) == np.argmin(np.abs(x - 0.3))
    # density exp(-x²/2 - θ ρ(x)) on a fine grid: kurtosis above 3, variance below 1 for θ > 0
    z = np.linspace(-12, 12, 24001)
    for theta, sign in ((1.0, 1), (-0.5, -1)):
        p = np.exp(-0.5 * z * z - theta * ft.LogBasis([0.5]).evaluate(0, z, 0)[0])
        p /= p.sum()
        m2, m4 = np.sum(p * z**2), np.sum(p * z**4)
        assert sign * (m4 / m2**2 - 3.0) > 0.1 and sign * (1.0 - m2) > 0.05
    big = np.array([1e3, 1e6, 1e9])
    assert np.all(-5.0 * b.evaluate(0, big, 0)[0] + 0.5 * 1e-3 * big**2 > 0)
    for bad in ([], [0.0], [-1.0], [np.inf], [1.0, 1.0]):
        with pytest.raises(ValueError):
            ft.LogBasis(bad)
    with pytest.raises(ValueError):
        ft.LogBasis([1.0], centre=np.nan)


def test_chunked_potential_matches_unchunked():
    F = ft.make_features("phi4", level="conditional", L=8, **WINDOWS)
    v, c = sample_inputs(F, 8, N=9)
    theta = np.random.default_rng(1).standard_normal(F.n_features)
    E, g = F.energy_and_grad(theta, v, c)
    pot = F.blocks[1]
    pot.CHUNK_SITES = 64  # 1 sample per chunk
    try:
        E2, g2 = F.energy_and_grad(theta, v, c)
    finally:
        del pot.CHUNK_SITES
    assert np.allclose(E, E2, rtol=1e-13) and np.allclose(g, g2, rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ sizes, spec, inputs
def test_size_agnostic_features_match_sized_ones():
    for level, L in (("depth0", 8), ("conditional", 16)):
        F_any = ft.make_features("phi4", level=level, L=None, wavelet="haar", radius=1)
        F_sized = ft.make_features("phi4", level=level, L=L, wavelet="haar", radius=1)
        assert F_any.names == F_sized.names
        v, c = sample_inputs(F_sized, L)
        assert np.allclose(phi_of(F_any, v, c), phi_of(F_sized, v, c))
        assert np.allclose(F_any.laplacian(F_any.prepare(v, c)), F_sized.laplacian(F_sized.prepare(v, c)))
        v2, c2 = sample_inputs(F_sized, L // 2)
        assert phi_of(F_any, v2, c2).shape == (2, F_any.n_features)   # another size is accepted
        with pytest.raises(ValueError, match="built for L"):
            F_sized.prepare(v2, c2)


def test_spec_round_trip():
    F = ft.make_features("phi4", level="conditional", L=8, wavelet="haar", radius=2,
                         potential="windows", n_windows=5, vmin=np.float32(-2), vmax=2.5)
    spec = json.loads(json.dumps(F.spec))
    G = ft.features_from_spec(spec)
    assert G.names == F.names and G.wavelet == "haar" and G.level == "conditional"
    v, c = sample_inputs(F, 8)
    assert np.array_equal(phi_of(F, v, c), phi_of(G, v, c))


def test_condition_broadcast_and_float32_inputs():
    F = ft.make_features("phi4", level="conditional", L=8)
    v, c = sample_inputs(F, 8, N=3)
    theta = np.random.default_rng(0).standard_normal(F.n_features)
    E_full = F.energy(theta, v, np.repeat(c[:1], 3, axis=0))
    assert np.allclose(F.energy(theta, v, c[:1]), E_full)
    assert np.allclose(F.energy(theta, v, c[0]), E_full)
    E32 = F.energy(theta, v.astype(np.float32), c[:1].astype(np.float32))
    assert E32.dtype == np.float64


def test_bad_inputs_raise_clear_errors():
    D = ft.make_features("gaussian", level="depth0", L=8)
    C = ft.make_features("gaussian", level="conditional", L=8)
    with pytest.raises(ValueError, match="no condition"):
        D.prepare(np.zeros((1, 8, 8)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"\(N, L, L\)"):
        D.prepare(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="low-pass condition"):
        C.prepare(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(N, 3, n, n\)"):
        C.prepare(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="condition c"):
        C.prepare(np.zeros((2, 3, 4, 4)), np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="theta"):
        D.energy(np.zeros(2), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="direction w"):
        D.hvp(np.zeros(D.n_features), np.zeros((1, 8, 8)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="unknown feature family"):
        ft.make_features("scattering-but-not-yet", level="depth0", L=8)
    with pytest.raises(ValueError, match="bad options"):
        ft.make_features("gaussian", level="depth0", L=8, radus=2)
    with pytest.raises(ValueError, match="isotropic"):
        ft.make_features("gaussian", level="conditional", L=8, isotropic=True)
    with pytest.raises(ValueError, match="vmin and vmax"):
        ft.make_features("phi4", level="depth0", L=8, potential="windows")
    with pytest.raises(ValueError, match="degree"):
        ft.make_features("phi4", level="depth0", L=8, degree=2)
    with pytest.raises(ValueError, match="level"):
        ft.make_features("gaussian", level="depth1", L=8)
    with pytest.raises(ValueError, match="wavelet"):
        ft.make_features("gaussian", level="conditional", L=8, wavelet="bior2.2")
    with pytest.raises(ValueError, match="even"):
        ft.make_features("gaussian", level="conditional", L=7)
    with pytest.raises(ValueError, match="constant"):
        ft.fit_range(np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        ft.fit_range(np.array([0.0, np.nan]))


def test_register_family_plugs_in():
    def builder(level, L, wavelet, degree=4):
        return ft.ScalarPotential(ft.PolynomialBasis([degree]), level, L, wavelet)

    ft.register_family("test-quartic", builder)
    try:
        F = ft.make_features("test-quartic", level="conditional", L=8, degree=6)
        assert F.names == ["phi^6"] and F.spec["options"] == {"degree": 6}
    finally:
        ft.FAMILIES.pop("test-quartic")


# ------------------------------------------------------------------ hot-loop memory
def test_energy_grad_does_not_build_the_per_feature_array():
    """energy_grad is O(K N vars) time but must not allocate the (N, K, *var) gradient array."""
    L, N = 32, 4
    F = ft.make_features("phi4", level="conditional", L=L, radius=2, **WINDOWS)
    v, c = sample_inputs(F, L, N=N)
    theta = np.random.default_rng(0).standard_normal(F.n_features)
    F.energy_grad(theta, v, c)  # warm caches (projector diagonal etc.)
    per_feature_bytes = N * F.n_features * v[0].size * 8
    tracemalloc.start()
    try:
        F.energy_grad(theta, v, c)
        F.hvp(theta, v, v, c)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < per_feature_bytes / 10, (peak, per_feature_bytes)


# ------------------------------------------------------------------ families: names and fit protocols
def test_the_modulus_family_keeps_its_former_name_scattering():
    """The WCRG modulus family was registered as "scattering" (which also names the Morlet
    scattering spectra): that name stays an alias, builds the same features and records the
    current name in the spec."""
    opts = dict(eps=0.3, eps_coarse=0.4, eps_low=0.5, point_scale=0.6, point_centre=0.1)
    new = ft.make_features("modulus", level="conditional", L=16, **opts)
    old = ft.make_features("scattering", level="conditional", L=16, **opts)
    assert ft.canonical_family("scattering") == "modulus" == ft.canonical_family("modulus")
    assert ft.canonical_family("phi4") == "phi4"
    assert {"modulus", "scattering"} <= set(ft.FAMILIES)
    assert old.names == new.names and old.fit_protocol == new.fit_protocol
    assert old.spec == new.spec and new.spec["family"] == "modulus"
    v, c = sample_inputs(new, 16)
    assert np.array_equal(old.phi(old.prepare(v, c)), new.phi(new.prepare(v, c)))
    # a spec written under the former name (saved models) rebuilds the same features
    spec = json.loads(json.dumps({**new.spec, "family": "scattering"}))
    assert ft.features_from_spec(spec).names == new.names
    assert ft.FAMILY_DATA_OPTIONS["scattering"] is ft.FAMILY_DATA_OPTIONS["modulus"]


def test_every_family_declares_its_fit_protocol():
    """The fit reads a declared FitProtocol, never attributes patched onto feature objects."""
    P = ft.FitProtocol
    gauss = ft.make_features("gaussian", level="conditional", L=8)
    assert gauss.fit_protocol == P(bound="couplings")
    phi = ft.make_features("phi4", level="depth0", L=8)
    assert phi.fit_protocol == P(nonnegative=(phi.names.index("phi^4"),), bound="leading_polynomial")
    odd = ft.make_features("phi4", level="depth0", L=8, degree=3, parity="all")
    assert odd.fit_protocol == P(bound="leading_polynomial")          # odd leading power: free
    win = ft.make_features("phi4", level="conditional", L=8, **WINDOWS)
    assert win.fit_protocol == P(bound="couplings")                   # bounded windows
    assert ft.phi4_ansatz(8).fit_protocol == P(bound="leading_polynomial")
    mod = ft.make_features("modulus", level="conditional", L=16, point_scale=1.0)
    K = ft.make_features("gaussian", level="conditional", L=16).n_features
    assert mod.names[K] == "log(1+(x/s)^2)"
    assert mod.fit_protocol == P(stage_first=K + 1, stage_base=K, nonnegative=(K,),
                                 bound="couplings")
    assert (mod.stage_first, mod.stage_base) == (K + 1, K)             # read-only views
    assert ft.make_features("modulus", level="conditional", L=16,
                            products=True).fit_protocol == P(stage_first=K)
    assert ft.make_features("modulus", level="conditional", L=16, point_scale=1.0,
                            staged=False).fit_protocol == P(bound="couplings")
    small = ft.make_features("modulus", level="conditional", L=8)     # couplings only
    assert isinstance(small, ft.QuadraticCouplings) and small.fit_protocol == P(bound="couplings")
    # declared, not patched: nothing of the protocol lives in the objects' own attributes
    for F in (gauss, phi, mod):
        assert not {"stage_first", "stage_base", "nonnegative", "base_decides_bound"} & set(vars(F))
    # a plain sum of blocks claims nothing until it is given a protocol
    plain = ft.FeatureSum(list(phi.blocks))
    assert plain.fit_protocol == P()
    assert ft.FeatureSum(list(phi.blocks), fit_protocol=phi.fit_protocol).fit_protocol == \
        phi.fit_protocol


def test_fit_protocol_is_frozen_and_validated():
    import dataclasses
    p = ft.FitProtocol(stage_first=3, nonnegative=[2])
    assert p.nonnegative == (2,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.stage_first = 4
    with pytest.raises(ValueError, match="bound"):
        ft.FitProtocol(bound="always")
    with pytest.raises(ValueError, match="stage_base"):
        ft.FitProtocol(stage_base=-1)
    with pytest.raises(TypeError, match="FitProtocol"):
        ft.FeatureSum([ft.make_features("gaussian", level="depth0", L=8)], fit_protocol={})


@pytest.mark.parametrize("A, E", [(1, 1), (3, 1), (3, 4)])
def test_kernel_application_is_the_per_frequency_matrix_product(A, E):
    from explorer.core.features.couplings import _apply_kernel

    rng = np.random.default_rng(7)
    Kh = rng.standard_normal((A, E, 6, 4)) + 1j * rng.standard_normal((A, E, 6, 4))
    Xh = rng.standard_normal((5, E, 6, 4)) + 1j * rng.standard_normal((5, E, 6, 4))
    Y = _apply_kernel(Kh, Xh)
    assert Y.shape == (5, A, 6, 4)
    assert np.allclose(Y, np.einsum("aekm,nekm->nakm", Kh, Xh), rtol=1e-14, atol=1e-14)

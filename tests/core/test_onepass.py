"""The one-pass energy and gradient of a conditional (couplings + potentials): the same values as
the block-by-block evaluation to round-off, by both wavelet methods, on every size and wavelet
kind; exact against finite differences; its caches and working arrays across θ, batch sizes and
threads; the public-FFT fallback."""

from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

from explorer.core import features as ft
from explorer.core.features import onepass, products

SEED = 18_2026
WINDOWS = {"potential": "windows", "n_windows": 7, "vmin": -3.0, "vmax": 3.0}
OPTIONS = {
    "poly": {},
    "poly-all6-r2": {"parity": "all", "degree": 6, "radius": 2},
    "sigmoids": WINDOWS,
    "splines": {**WINDOWS, "window": "bspline"},
}


def inputs(L: int, N: int, seed: int = 0):
    g = np.random.default_rng(SEED + seed)
    n = L // 2
    return 0.8 * g.standard_normal((N, 3, n, n)), 1.5 * g.standard_normal((N, n, n))


def block_by_block(F, theta, v, c):
    """The reference: every block on its own (PyWavelets for the potential's transforms)."""
    saved, F.one_pass = F.one_pass, None
    try:
        return F.energy_and_grad(theta, v, c)
    finally:
        F.one_pass = saved


def random_theta(F, seed: int = 0) -> np.ndarray:
    theta = np.random.default_rng(SEED + 100 + seed).standard_normal(F.n_features)
    theta[::4] = 0.0  # zeros are skipped by the potentials: exercise that
    return theta


def test_the_pass_applies_to_conditional_couplings_with_potentials_only():
    assert ft.make_features("phi4", level="conditional", L=8).one_pass is not None
    assert ft.make_features("phi4", level="conditional", L=8, **WINDOWS).one_pass is not None
    assert ft.make_features("phi4", level="depth0", L=8).one_pass is None
    assert ft.make_features("modulus", level="conditional", L=16).one_pass is None
    assert not hasattr(ft.make_features("gaussian", level="conditional", L=8), "one_pass")
    with pytest.raises(ValueError, match="method"):
        onepass.ConditionalPass([], [], "db4", method="wavelets")


@pytest.mark.parametrize("key", sorted(OPTIONS))
@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym8"])
@pytest.mark.parametrize("L", [2, 4, 6, 8, 16, 32, 64])
def test_both_methods_match_the_block_by_block_evaluation(key, wavelet, L):
    F = ft.make_features("phi4", level="conditional", L=L, wavelet=wavelet, **OPTIONS[key])
    v, c = inputs(L, N=3, seed=L)
    theta = random_theta(F, L)
    e0, g0 = block_by_block(F, theta, v, c)
    scale_e, scale_g = 1.0 + np.abs(e0).max(), 1.0 + np.abs(g0).max()
    for method in onepass.METHODS:
        F.one_pass.method = method
        e, g = F.energy_and_grad(theta, v, c)
        assert e.shape == (3,) and g.shape == v.shape
        assert np.abs(e - e0).max() < 1e-12 * scale_e, (method, np.abs(e - e0).max())
        assert np.abs(g - g0).max() < 1e-12 * scale_g, (method, np.abs(g - g0).max())
        assert np.array_equal(F.energy_grad(theta, v, c), g)


@pytest.mark.parametrize("method", onepass.METHODS)
@pytest.mark.parametrize("key", ["poly", "poly-all6-r2", "sigmoids"])
def test_gradient_matches_finite_differences_of_the_energy(method, key):
    L = 16
    F = ft.make_features("phi4", level="conditional", L=L, **OPTIONS[key])
    F.one_pass.method = method
    v, c = inputs(L, N=2, seed=3)
    v *= 0.5
    theta = random_theta(F, 3)
    _, g = F.energy_and_grad(theta, v, c)
    rng = np.random.default_rng(SEED + 7)
    for _ in range(3):
        u = rng.standard_normal(v.shape)
        eps = 1e-5
        fd = (F.energy_and_grad(theta, v + eps * u, c)[0]
              - F.energy_and_grad(theta, v - eps * u, c)[0]) / (2 * eps)
        exact = np.sum(g * u, axis=(1, 2, 3))
        assert np.allclose(exact, fd, rtol=1e-6, atol=1e-6), np.abs(exact - fd).max()


def test_several_potential_blocks_and_zero_potentials():
    L = 16
    quad = ft.QuadraticCouplings.gaussian("conditional", L)
    quartic = ft.ScalarPotential(ft.PolynomialBasis([4]), "conditional", L)
    windows = ft.ScalarPotential(ft.WindowBasis(np.linspace(-2, 2, 5), 1.0), "conditional", L)
    F = ft.FeatureSum([quartic, quad, windows])
    assert F.one_pass is not None and len(F.one_pass.potentials) == 2
    v, c = inputs(L, N=4, seed=5)
    for theta in (random_theta(F, 5), np.zeros(F.n_features)):
        e0, g0 = block_by_block(F, theta, v, c)
        for method in onepass.METHODS:
            F.one_pass.method = method
            e, g = F.energy_and_grad(theta, v, c)
            assert np.allclose(e, e0, rtol=1e-12, atol=1e-12)
            assert np.allclose(g, g0, rtol=1e-12, atol=1e-12)


def test_caches_follow_theta_batch_size_and_broadcast_conditions():
    L = 32
    F = ft.make_features("phi4", level="conditional", L=L)
    for method in onepass.METHODS:
        F.one_pass.method = method
        for k, N in enumerate((5, 2, 5)):
            v, c = inputs(L, N=N, seed=k)
            theta = random_theta(F, k)
            cond = c[:1] if k == 2 else c           # a shared condition, broadcast over the chains
            e0, g0 = block_by_block(F, theta, v, cond)
            e, g = F.energy_and_grad(theta, v, cond)
            assert np.allclose(e, e0, rtol=1e-12) and np.allclose(g, g0, rtol=1e-12, atol=1e-12)
            g_again = F.energy_and_grad(theta, v, cond)[1]
            assert g_again is not g and np.array_equal(g_again, g)   # results never alias buffers


def test_chains_evaluated_in_chunks_give_the_same_values():
    L = 16
    F = ft.make_features("phi4", level="conditional", L=L)
    v, c = inputs(L, N=7, seed=9)
    theta = random_theta(F, 9)
    e0, g0 = block_by_block(F, theta, v, c)
    for method in onepass.METHODS:
        F.one_pass.method = method
        for sites in (L * L, 3 * L * L, 1 << 30):   # 1, 3 (and a remainder of 1), all 7 chains
            F.one_pass.CHUNK_SITES = F.one_pass.CHUNK_SITES_FOURIER = sites
            e, g = F.energy_and_grad(theta, v, c[:1])
            e0b, g0b = block_by_block(F, theta, v, c[:1])
            assert np.allclose(e, e0b, rtol=1e-12) and np.allclose(g, g0b, rtol=1e-12, atol=1e-12)
            e, g = F.energy_and_grad(theta, v, c)
            assert np.allclose(e, e0, rtol=1e-12) and np.allclose(g, g0, rtol=1e-12, atol=1e-12)
        # 3 chains a chunk: the arrays of the full chunks and of the last one are both kept
        F.one_pass.CHUNK_SITES = F.one_pass.CHUNK_SITES_FOURIER = 3 * L * L
        F.one_pass._local.kept.clear()
        F.energy_and_grad(theta, v, c)
        kept = F.one_pass._local.kept
        assert sorted(key[1] for key in kept) == [1, 3]
        arrays = {key: vars(w)["Xf"] for key, w in kept.items()}
        F.energy_and_grad(theta, v, c)
        assert all(vars(kept[key])["Xf"] is a for key, a in arrays.items())


def test_threads_get_their_own_working_arrays():
    L = 16
    F = ft.make_features("phi4", level="conditional", L=L)
    theta = random_theta(F)
    batches = [inputs(L, N=6, seed=s) for s in range(4)]
    expected = [block_by_block(F, theta, v, c) for v, c in batches]
    failures: list = []

    def work(i: int):
        v, c = batches[i]
        for _ in range(30):
            e, g = F.energy_and_grad(theta, v, c)
            if not (np.allclose(e, expected[i][0], rtol=1e-12)
                    and np.allclose(g, expected[i][1], rtol=1e-12, atol=1e-12)):
                failures.append(i)
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_features_with_the_pass_copy_and_pickle():
    L = 16
    F = ft.make_features("phi4", level="conditional", L=L)
    v, c = inputs(L, N=3)
    theta = random_theta(F)
    e, g = F.energy_and_grad(theta, v, c)
    for G in (copy.deepcopy(F), pickle.loads(pickle.dumps(F))):
        e2, g2 = G.energy_and_grad(theta, v, c)
        assert np.array_equal(e2, e) and np.array_equal(g2, g)


def test_public_fft_fallback_gives_the_same_values(monkeypatch):
    L = 64
    F = ft.make_features("phi4", level="conditional", L=L)
    v, c = inputs(L, N=2)
    theta = random_theta(F)
    fast = {m: None for m in onepass.METHODS}
    for method in onepass.METHODS:
        F.one_pass.method = method
        fast[method] = F.energy_and_grad(theta, v, c)
    monkeypatch.setattr(onepass, "_POCKETFFT", None)
    for method in onepass.METHODS:
        F.one_pass.method = method
        e, g = F.energy_and_grad(theta, v, c)
        assert np.allclose(e, fast[method][0], rtol=1e-12)
        assert np.allclose(g, fast[method][1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("powers", [[4], [3, 4], [1, 3, 4, 6], [2]])
@pytest.mark.parametrize("chain_axis", [0, 1])
def test_in_place_potential_matches_combine(powers, chain_axis):
    basis = ft.PolynomialBasis(powers)
    rng = np.random.default_rng(SEED + len(powers))
    x = rng.standard_normal((5, 6, 7))
    for theta in (rng.standard_normal(len(powers)), np.zeros(len(powers))):
        acc = basis.combine(theta, x, (0, 1))
        sites = tuple(a for a in range(3) if a != chain_axis)
        for b in (basis, ft.WindowBasis(np.linspace(-2, 2, len(powers) + 1), 0.8)):
            if b is not basis:
                acc = b.combine(np.resize(theta, len(b)), x, (0, 1))
                theta_b = np.resize(theta, len(b))
            else:
                theta_b = theta
            out, work = np.empty_like(x), np.empty_like(x)
            e = b.energy_and_derivative(theta_b, x, chain_axis, out, work)
            assert np.allclose(out, acc[1], rtol=1e-12, atol=1e-12)
            assert np.allclose(e, acc[0].sum(axis=sites), rtol=1e-12, atol=1e-12)


def test_products_matmul_is_numpy_matmul():
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((7, 3, 4)) + 1j * rng.standard_normal((7, 3, 4))
    b = rng.standard_normal((7, 4, 5)) + 1j * rng.standard_normal((7, 4, 5))
    out = np.empty((7, 3, 5), dtype=complex)
    y = products.matmul(a, b, out=out)
    assert y is out and np.array_equal(out, np.matmul(a, b))
    assert np.array_equal(products.matmul(a.real, b.real), a.real @ b.real)


@pytest.mark.parametrize("powers, coefs, single", [
    ([4], [0.7], (4, 0.7)),              # the phi4 default: the factor 4θ goes into the products
    ([2, 4], [0.0, -0.3], (4, -0.3)),
    ([2, 3, 4], [0.5, 0.0, 0.0], (2, 0.5)),
    ([1, 3], [0.0, 0.2], (3, 0.2)),
    ([2, 4], [0.5, 0.2], None),          # two powers: the general path
    ([1], [0.4], None),                  # a linear term: the general path
])
def test_a_single_power_matches_the_block_by_block_evaluation(powers, coefs, single):
    L = 32
    quad = ft.QuadraticCouplings.gaussian("conditional", L)
    pot = ft.ScalarPotential(ft.PolynomialBasis(powers), "conditional", L)
    F = ft.FeatureSum([quad, pot])
    theta = np.concatenate([0.1 * np.random.default_rng(SEED).standard_normal(quad.n_features),
                            coefs])
    v, c = inputs(L, N=3, seed=11)
    e0, g0 = block_by_block(F, theta, v, c)
    for method in onepass.METHODS:
        F.one_pass.method = method
        e, g = F.energy_and_grad(theta, v, c)
        assert F.one_pass._operators[1].power == single
        assert np.abs(e - e0).max() < 1e-12 * (1.0 + np.abs(e0).max())
        assert np.abs(g - g0).max() < 1e-12 * (1.0 + np.abs(g0).max())

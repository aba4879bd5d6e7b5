"""Scattering spectra, microcanonical synthesis and the scattering-Gaussian family: definitions
against a direct computation, gradients against finite differences, Gaussian references vs
turbulence, the one-sample 256² synthesis acceptance, and WCRG with the scattering family."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.fft as sfft

from explorer.core import diagnostics as dg
from explorer.core import features as ft
from explorer.core import observables as ob
from explorer.core import scattering as sc
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel
from explorer.core.progress import run
from explorer.core.scattering import filters
from explorer.core.scattering.transform import _forward, _half_adjoint, _pair_weights
from explorer.core.scattering.wavelet_fft import lines as _lines

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SEED = 2024_06


def asset(name: str) -> np.ndarray:
    return load_fields(ASSETS / f"{name}.npz").fields.astype(np.float64)


# ------------------------------------------------------------------ definitions
def direct_spectra(x: np.ndarray, bank: sc.FilterBank):
    """S1..S4 of one field by the definitions, with plain FFTs on each scale's grid."""
    M, J, L = bank.M, bank.J, bank.L
    xh = np.fft.fft2(x)
    W, U = {}, {}
    for j in range(J):
        m, s = bank.side[j], M // bank.side[j]
        for l in range(L):
            full = np.zeros((M, M))
            k = np.fft.fftfreq(m, 1.0 / m).astype(int)
            full[np.ix_(k % M, k % M)] = bank.psi[j][l]        # the box filter on the full grid
            w = np.fft.ifft2(xh * full)[::s, ::s]              # exact subsampling (band-limited)
            W[j, l], U[j, l] = w, np.abs(w)

    def conv_on(u, j_from, j, l):
        """(u ⋆ ψ_(j,l)) on the grid of scale j_from (u given there)."""
        m = bank.side[j_from]
        f = np.zeros((m, m))
        k = np.fft.fftfreq(bank.side[j], 1.0 / bank.side[j]).astype(int)
        f[np.ix_(k % m, k % m)] = bank.psi[j][l]
        return np.fft.ifft2(np.fft.fft2(u) * f)

    S1 = np.array([[U[j, l].mean() for l in range(L)] for j in range(J)])
    S2 = np.array([[np.mean(np.abs(W[j, l]) ** 2) for l in range(L)] for j in range(J)])
    S3 = np.zeros((J, L, J, L), complex)
    S4 = np.zeros((J, L, J, L, J, L), complex)
    for j1 in range(J):
        for l1 in range(L):
            for j2 in range(j1, J):
                for l2 in range(L):
                    s = bank.side[j1] // bank.side[j2]
                    w2 = np.kron(W[j2, l2], np.ones((s, s)))[: bank.side[j1], : bank.side[j1]]
                    # W_λ2 on the finer grid j1: re-evaluate exactly instead of repeating
                    full = np.zeros((M, M))
                    k = np.fft.fftfreq(bank.side[j2], 1.0 / bank.side[j2]).astype(int)
                    full[np.ix_(k % M, k % M)] = bank.psi[j2][l2]
                    w2 = np.fft.ifft2(xh * full)[:: M // bank.side[j1], :: M // bank.side[j1]]
                    v = conv_on(U[j1, l1], j1, j2, l2)
                    S3[j1, l1, j2, l2] = np.mean(w2 * np.conj(v))
                    for j3 in range(j2, J):
                        for l3 in range(L):
                            a = conv_on(U[j1, l1], j1, j3, l3)
                            b = conv_on(U[j2, l2], j2, j3, l3)
                            # bring a to grid j2 (exact: band-limited to box j3 ⊆ box j2)
                            a = a[:: bank.side[j1] // bank.side[j2], :: bank.side[j1] // bank.side[j2]]
                            S4[j1, l1, j2, l2, j3, l3] = np.mean(a * np.conj(b))
    return S1, S2, S3, S4


def test_statistics_match_the_definitions():
    x = np.random.default_rng(SEED).standard_normal((32, 32)) ** 3
    bank = sc.filter_bank(32, 3, 4)
    assert bank.side == (32, 32, 16)
    S1, S2, S3, S4 = direct_spectra(x, bank)
    fw = _forward(x[None], bank)
    scale = np.abs(S4).max()
    assert np.allclose(fw.S1[0], S1, rtol=1e-10, atol=0)
    assert np.allclose(fw.S2[0], S2, rtol=1e-10, atol=0)
    assert np.allclose(fw.S3[0], S3, rtol=0, atol=1e-10 * np.abs(S3).max())
    assert np.allclose(fw.S4[0], S4, rtol=0, atol=1e-10 * scale)
    assert fw.mean[0] == pytest.approx(x.mean(), abs=1e-12)


@pytest.fixture
def small_chunks(monkeypatch):
    """Banks built with 96-point chunks (several per grid at 32²): the chunked, support-gathered
    Gram sums (orientations at L = 8 read only their support) against the same definitions."""
    monkeypatch.setattr(filters, "CHUNK", 96)
    monkeypatch.setattr(filters, "STACKED_SIZE", 96 * filters.STACKED_ROWS)
    filters._filter_bank.cache_clear()
    yield
    filters._filter_bank.cache_clear()


@pytest.mark.parametrize("L", [8, 4])
def test_chunked_support_sums_match_the_definitions(small_chunks, L):
    x = np.random.default_rng(SEED).standard_normal((32, 32)) ** 3
    bank = sc.filter_bank(32, 3, L)
    assert all(len(c) > 1 for c in bank.chunks)
    gathered = [p[0] is not None for pj in bank.parts for pl in pj for p in pl]
    assert any(gathered) if L == 8 else not all(gathered)   # both paths: support and whole chunk
    pairs = [e is not None for j in range(3) for e in _pair_weights(bank, j)]
    assert any(pairs) and not all(pairs)               # Re G from pair products, and stacked
    assert any(p is not None for j in range(3) for p in _lines(bank, j))   # pruned first pass
    S1, S2, S3, S4 = direct_spectra(x, bank)
    fw = _forward(x[None], bank)
    assert np.allclose(fw.S2[0], S2, rtol=1e-10, atol=0)
    assert np.allclose(fw.S3[0], S3, rtol=0, atol=1e-10 * np.abs(S3).max())
    assert np.allclose(fw.S4[0], S4, rtol=0, atol=1e-10 * np.abs(S4).max())


@pytest.mark.parametrize("L", [4, 8])
def test_orientation_tasks_match_the_batched_scales(L):
    """The statistics' forward (one task per orientation, on threads) against the synthesis's
    (all orientations of a scale at once, W kept), with and without pruned first passes."""
    x = np.random.default_rng(SEED + 3).standard_normal((2, 64, 64)) ** 3
    bank = sc.filter_bank(64, 4, L)
    pruned = [p is not None for j in range(4) for p in _lines(bank, j)]
    assert any(pruned) and (L == 8 or not all(pruned))
    kept = _forward(x, bank, workers=1, keep=True)
    for workers in (1, 2):
        fw = _forward(x, bank, workers=workers)
        for name in ("S1", "S2", "S3", "S4"):
            a, b = getattr(fw, name), getattr(kept, name)
            assert np.allclose(a, b, rtol=0, atol=1e-14 * np.abs(b).max()), name


def test_chunked_support_gradient_matches_finite_differences(small_chunks):
    g = np.random.default_rng(SEED + 2)
    data = g.standard_normal((1, 32, 32)) ** 3 + 0.3
    obj = sc.SynthesisObjective(data, J=3, L=8, precision="double")
    x = g.standard_normal((2, 32, 32))
    loss, grad = obj(x)
    for _ in range(2):
        u = g.standard_normal(x.shape)
        eps = 1e-5
        fd = (obj(x + eps * u)[0] - obj(x - eps * u)[0]) / (2 * eps)
        assert np.sum(grad * u) == pytest.approx(fd, rel=1e-6, abs=1e-9 * (1 + abs(loss)))


def test_counts_names_and_reductions():
    assert sc.isotropic_count(5, 4) == 631 and sc.isotropic_count(7, 4) == 1471
    x = np.random.default_rng(SEED).standard_normal((3, 64, 64))
    spec = sc.scattering_spectra(x, 5, 4)
    sizes = {}
    for r in sc.REDUCTIONS:
        st = sc.reduce_spectra(spec, r)
        assert st.values.shape == (3, len(st.table))
        assert len(set(st.names)) == len(st.names), r
        sizes[r] = len(st)
    assert sizes["isotropic"] == sizes["fourier"] == sizes["scale"] == 631
    assert sizes["raw"] == 1 + 2 * 20 + 15 * 16 + 35 * 64
    iso = sc.reduce_spectra(spec, "isotropic")
    fou = sc.reduce_spectra(spec, "fourier")
    # the harmonics are the DFT of the angle-difference profile: invert and compare
    i3, f3 = iso.select("S3"), fou.select("S3")
    prof = np.fft.ifft(fou.values[:, f3].reshape(3, -1, 4), axis=-1) * 4
    assert np.allclose(prof.reshape(3, -1), iso.values[:, i3])
    t = fou.table[f3[5]]
    assert t["kind"] == "S3" and {"j1", "j2", "m"} <= set(t)
    row = fou.to_dict()["coefficients"][0]
    assert row["name"] == "mean" and "re" in row and "std" in row
    thr = sc.snr_threshold(fou)
    assert thr.thresholded and 0 < len(thr) < len(fou)
    one = sc.scattering_statistics(x[:1], 4, 4, threshold=True)
    assert not one.thresholded and "one field" in one.notes[0]


@pytest.mark.parametrize("bad", [dict(M=48, J=2), dict(M=32, J=6), dict(M=32, J=2, L=0)])
def test_bank_rejects_bad_sizes(bad):
    with pytest.raises(ValueError):
        sc.filter_bank(**{"L": 4, **bad})


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("group", [None, "S1", "S2", "S3", "S4", "spectrum", "mean"])
def test_synthesis_gradient_matches_finite_differences(group):
    g = np.random.default_rng(SEED + 1)
    data = g.standard_normal((1, 32, 32)) ** 3 + 0.3
    weights = None if group is None else {k: float(k == group) for k in sc.SynthesisObjective.GROUPS}
    obj = sc.SynthesisObjective(data, J=3, L=4, weights=weights, precision="double")
    x = g.standard_normal((2, 32, 32))
    loss, grad = obj(x)
    assert loss > 0
    for _ in range(3):
        u = g.standard_normal(x.shape)
        eps = 1e-5
        fd = (obj(x + eps * u)[0] - obj(x - eps * u)[0]) / (2 * eps)
        assert np.sum(grad * u) == pytest.approx(fd, rel=1e-6, abs=1e-9 * (1 + abs(loss)))


@pytest.mark.parametrize("L", [4, 8])
def test_single_precision_objective_matches_double(L):
    """The synthesis's float32 path against the float64 one at phase-randomised copies of the data
    (spectrum matched: the scattering terms dominate the loss): loss within 1e-5, gradient within
    1e-4 (measured ~1e-7 and ~1e-6); the same with or without the split of the syntheses between
    threads; a bad precision refused."""
    g = np.random.default_rng(SEED + 3)
    data = g.standard_normal((1, 64, 64)) ** 3 + 0.3
    x = sc.phase_randomise(np.repeat(data, 3, axis=0), seed=SEED)
    exact = sc.SynthesisObjective(data, J=4, L=L, precision="double")
    single = sc.SynthesisObjective(data, J=4, L=L, precision="single")
    (l64, g64), (l32, g32) = exact(x), single(x)
    assert g32.dtype == np.float64 and g32.shape == x.shape
    print("relative differences: loss", abs(l32 / l64 - 1), "gradient",
          np.linalg.norm(g32 - g64) / np.linalg.norm(g64))
    assert abs(l32 - l64) <= 1e-5 * l64
    assert np.linalg.norm(g32 - g64) <= 1e-4 * np.linalg.norm(g64)
    for k, v in exact.last_parts.items():
        assert single.last_parts[k] == pytest.approx(v, rel=1e-4, abs=1e-9 * l64), k
    one = sc.SynthesisObjective(data, J=4, L=L, precision="double", workers=1)
    l1, g1 = one(x)                              # no split: every synthesis on one thread
    assert l1 == pytest.approx(l64, rel=1e-12) and np.allclose(g1, g64, rtol=0,
                                                                atol=1e-12 * np.abs(g64).max())
    with pytest.raises(ValueError, match="precision"):
        sc.SynthesisObjective(data, J=4, L=L, precision="half")


# ------------------------------------------------------------------ Gaussian references
def _z2(a: np.ndarray, b: np.ndarray | None = None) -> float:
    """Mean squared z-score of the coefficient means of a (against 0, or against b's means)."""
    ma, va = a.mean(0), a.var(0, ddof=1) / len(a)
    if b is None:
        return float(np.mean(np.abs(ma) ** 2 / va))
    mb, vb = b.mean(0), b.var(0, ddof=1) / len(b)
    return float(np.mean(np.abs(ma - mb) ** 2 / (va + vb)))


def test_s3_s4_gaussian_references_and_turbulence():
    """Gaussian fields: S3 = 0 within noise and S4 = S4 of phase-randomised surrogates; turbulence
    departs from both references. Statistic: the mean squared z-score over the isotropic
    coefficients (≈ 1 under the null; correlated coefficients widen its spread)."""
    gauss = asset("gaussian_L64_eta2")[:64]
    turb = asset("turbulence_L128")
    J, L = 4, 4
    res = {}
    for name, x in (("gaussian", gauss), ("turbulence", turb)):
        st = sc.scattering_statistics(x, J, L, reduction="fourier")
        sur = sc.scattering_statistics(sc.phase_randomise(x, seed=SEED), J, L, reduction="fourier")
        i3, i4 = st.select("S3"), st.select("S4")
        res[name] = {"S3_vs_0": _z2(st.values[:, i3]),
                     "S4_vs_surrogate": _z2(st.values[:, i4], sur.values[:, i4]),
                     "S3_surrogate_vs_0": _z2(sur.values[:, i3])}
    print("mean z^2:", res)
    g, t = res["gaussian"], res["turbulence"]
    assert g["S3_vs_0"] < 2.0
    assert g["S4_vs_surrogate"] < 2.0
    assert t["S3_surrogate_vs_0"] < 2.0          # surrogates of turbulence are Gaussian too
    assert t["S3_vs_0"] > 4.0                    # measured 7.7 (null: 0.9-1.3)
    assert t["S4_vs_surrogate"] > 10.0           # measured 237


# ------------------------------------------------------------------ synthesis
def test_iter_synthesize_reports_stops_and_is_deterministic():
    d = asset("turbulence_L128")[:1, ::4, ::4]            # 32 x 32
    reps = list(sc.iter_synthesize(d, 2, J=3, L=4, iterations=6, report_every=2, seed=3))
    assert [r.step for r in reps[:-1]] == [2, 4, 6]
    assert all(r.snapshot.shape == (32, 32) and "loss" in r.info for r in reps[:-1])
    final = reps[-1]
    assert final.done and not final.stopped
    fs = final.result
    assert fs.fields.shape == (2, 32, 32) and fs.fields.dtype == np.float32
    assert fs.meta["synthesis"]["loss"] < reps[0].info["loss"] * 10
    again = sc.synthesize(d, 2, J=3, L=4, iterations=6, seed=3)
    assert np.array_equal(again.fields, fs.fields)
    stop = threading.Event()
    out = []
    for r in sc.iter_synthesize(d, 1, J=3, L=4, iterations=200, report_every=1, stop=stop):
        out.append(r)
        stop.set()
    assert out[-1].done and out[-1].stopped and out[-1].step < 10
    g = sc.synthesize(d, 3, model="gaussian", seed=1)
    assert np.allclose(np.abs(np.fft.fft2(g.fields[0])), np.abs(np.fft.fft2(d[0])), rtol=1e-4,
                       atol=1e-3)


def _texture(L: int) -> np.ndarray:
    """A sharp-edged periodic texture: a checkerboard of 8-px tiles, discs on a 16-px lattice and
    a little white noise (its corners |k| > L/2 hold 0.8 % of its power at L = 32)."""
    y, x = np.mgrid[0:L, 0:L]
    img = ((x // 8 + y // 8) % 2).astype(np.float64)
    img += 0.5 * (((x - 4) % 16) ** 2 + ((y - 4) % 16) ** 2 < 9)
    return (img + 0.05 * np.random.default_rng(SEED).standard_normal((L, L)))[None]


def test_synthesis_leaves_no_checkerboard_in_the_corners():
    """The filters barely see the corners |k| > L/2 and the radial spectrum used to stop at L/2:
    the white-noise start stayed there (corner power 19x the data's after 60 iterations). With the
    spectrum constrained on every shell of the plane it is within a factor 2 of the data's."""
    d = _texture(32)
    x = sc.synthesize(d, 2, J=3, L=4, iterations=60, seed=1).fields.astype(np.float64)
    for i in range(2):
        r = dg.corner_power_ratio(d, x[i: i + 1])
        assert 0.5 < r < 2.0, (i, r)                # measured 0.94, 0.96 (before the fix: 18.6)
    assert dg.spectrum_log_ratio(d, x) < 0.05         # measured 0.011


def _report(name, data, x):
    k = ob.kurtosis(x)
    f = ob.increment_flatness(x)
    return {"name": name, "spectrum_log_ratio": dg.spectrum_log_ratio(data, x),
            "kurtosis": k, "flatness": f, "tv": dg.total_variation(data, x)}


def test_one_sample_256_synthesis_reproduces_turbulence_and_gaussian_does_not():
    """Acceptance: syntheses from field 0 of turbulence_L256 match its spectrum, kurtosis (15 %),
    increment flatness at 1..16 px (20 %) and histogram (TV <= 0.05); the power-spectrum-only
    (phase-randomised) reference fails kurtosis and flatness."""
    data = asset("turbulence_L256")[:1]
    fs = sc.synthesize(data, 2, J=6, L=4, iterations=SYNTH_ITERATIONS, seed=1)
    x = fs.fields.astype(np.float64)
    gauss = sc.gaussian_synthesis(data, 2, seed=1)
    d, s, gs = _report("data", data, data), _report("synthesis", data, x), _report("gaussian", data, gauss)
    print(d, s, gs, fs.meta["synthesis"], sep="\n")
    assert s["spectrum_log_ratio"] <= 0.1
    assert abs(s["kurtosis"] / d["kurtosis"] - 1) <= 0.15
    for lag, v in d["flatness"].items():
        assert abs(s["flatness"][lag] / v - 1) <= 0.20, lag
    assert s["tv"] <= 0.05
    assert abs(gs["kurtosis"] / d["kurtosis"] - 1) > 0.15
    assert all(abs(gs["flatness"][lag] / v - 1) > 0.20 for lag, v in d["flatness"].items() if lag <= 8)


# measured (2 syntheses, J=6, L=4): 300 iterations -> flatness(4 px) +21 % (fails); 400 -> the first
# synthesis within all bounds; 600 -> spectrum 0.006, kurtosis +0.8 %, flatness +0.6/+7.3/+10.6/-0.6/
# -3.5 %, TV 0.044. ~0.3 s per iteration on an idle 2-core machine, 1 s on a busy one (float64);
# in single precision (the default) 500 iterations: flatness -1.0/+7.1/+13.4/-0.6/-2.9 %, TV 0.042,
# 0.18 s per iteration at load ~5.
SYNTH_ITERATIONS = 500


# ------------------------------------------------------------------ scattering feature family
def _fd_check(F, v, c, g):
    ctx = F.prepare(v, c)
    G = F.grad(ctx)
    lap = F.laplacian(ctx)
    for _ in range(2):
        u = g.standard_normal(v.shape)
        eps = 1e-6
        fd = (F.phi(F.prepare(v + eps * u, c)) - F.phi(F.prepare(v - eps * u, c))) / (2 * eps)
        ex = (G * u[:, None]).reshape(G.shape[0], G.shape[1], -1).sum(-1)
        assert np.allclose(ex, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd).max()))
    # Laplacian: central differences of the exact gradient along every coordinate
    M = v[0].size
    fdl = np.zeros_like(lap)
    eps = 1e-5
    for a in range(M):
        e = np.zeros(M)
        e[a] = eps
        e = e.reshape(v.shape[1:])
        gp = F.grad(F.prepare(v + e, c)).reshape(len(v), F.n_features, M)[:, :, a]
        gm = F.grad(F.prepare(v - e, c)).reshape(len(v), F.n_features, M)[:, :, a]
        fdl += (gp - gm) / (2 * eps)
    assert np.allclose(lap, fdl, rtol=1e-6, atol=1e-6 * (1 + np.abs(lap).max()))
    theta = g.standard_normal(F.n_features)
    u, w = g.standard_normal(v.shape), g.standard_normal(v.shape)
    fdE = (F.energy(theta, v + 1e-6 * u, c) - F.energy(theta, v - 1e-6 * u, c)) / 2e-6
    gE = F.energy_grad(theta, v, c)
    assert np.allclose((gE * u).reshape(len(v), -1).sum(1), fdE, rtol=1e-6, atol=1e-6)
    Hw = F.hvp(theta, v, w, c)
    fdH = (F.energy_grad(theta, v + 1e-6 * w, c) - F.energy_grad(theta, v - 1e-6 * w, c)) / 2e-6
    assert np.allclose(Hw, fdH, rtol=1e-5, atol=1e-6 * (1 + np.abs(fdH).max()))
    assert np.sum(Hw * u) == pytest.approx(np.sum(F.hvp(theta, v, u, c) * w), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("level,L", [("depth0", 8), ("conditional", 8), ("conditional", 6),
                                     ("conditional", 2)])
def test_scattering_family_derivatives_match_finite_differences(level, L):
    g = np.random.default_rng(SEED + L)
    F = ft.make_features("scattering", level=level, L=L, eps=0.3, eps_coarse=0.4, eps_low=0.5,
                         min_side=1, products=True, point_scale=0.6, point_centre=0.1)
    assert any(name.startswith("|") for name in F.names)
    assert "log(1+(x/s)^2)" in F.names
    if level == "depth0":
        v, c = g.standard_normal((2, L, L)), None
    else:
        n = L // 2
        v, c = 0.7 * g.standard_normal((2, 3, n, n)), 1.5 * g.standard_normal((2, n, n))
    _fd_check(F, v, c, g)
    assert len(set(F.names)) == len(F.names)
    G = ft.features_from_spec(F.spec)
    assert G.names == F.names
    assert np.array_equal(G.phi(G.prepare(v, c)), F.phi(F.prepare(v, c)))


def test_scattering_family_names_and_data_widths():
    F = ft.make_features("scattering", level="conditional", L=16, eps=0.1, products=True)
    assert F.stage_first == ft.make_features("gaussian", level="conditional", L=16).n_features
    small = ft.make_features("scattering", level="conditional", L=8)
    assert small.names == ft.make_features("gaussian", level="conditional", L=8).names
    for name in ("|HL|", "|HL||HL|(0,1)", "|HL||LH|", "|HH|*|HH'|", "LH*|LL|"):
        assert name in F.names
    # the one-point log potential needs its scale (saved models without one rebuild without it)
    assert "log(1+(x/s)^2)" not in F.names
    with_point = ft.make_features("scattering", level="depth0", L=8, point_scale=2.0)
    assert with_point.names[-3:] == ["log(1+(x/s)^2)", "|dy|", "|dx|"]
    assert with_point.stage_first == with_point.stage_base + 1
    assert "log(1+(x/s)^2)" not in ft.make_features("scattering", level="depth0", L=8,
                                                    point_scale=2.0, point=False).names
    x = asset("turbulence_L128")[:2]
    m = WCRGModel("scattering", 2)
    opts = m._options_for(x, "conditional")
    assert 0 < opts["eps"] < opts["eps_low"]
    assert opts["point_scale"] == pytest.approx(x.std()) and opts["point_centre"] == pytest.approx(x.mean())
    with pytest.raises(ValueError):
        ft.make_features("scattering", level="conditional", L=8, eps=-1)


def test_wcrg_scattering_family_fits_saves_and_loads(tmp_path):
    x = asset("turbulence_L128")[:4, ::2, ::2]            # 64 x 64
    m = WCRGModel("scattering", 2).fit(x)
    assert all(np.all(np.isfinite(f.theta)) for f in m.factors())
    p = m.save(tmp_path / "m.npz")
    m2 = WCRGModel.load(p)
    e1, e2 = m.scale_energies(x), m2.scale_energies(x)
    assert e1.keys() == e2.keys() and all(np.array_equal(e1[k], e2[k]) for k in e1)
    assert m2.conditionals[0].features.names == m.conditionals[0].features.names
    # with products of moduli the couplings do not decide boundedness: no definite path, no crash
    mp = WCRGModel("scattering", 2, products=True).fit(x)
    assert all("definite_path" not in f.fit and f.fit["quadratic_base"] is None for f in mp.factors()
               if "log(1+(x/s)^2)" in f.names)


def test_scattering_fit_keeps_the_couplings_definite_along_the_score_matching_segment():
    """On the 8 x 8 coarsest field of the 128^2 asset (J = 4) the joint score-matching fit of the
    couplings with the log potential is indefinite (unbounded below). The model then takes the
    best point of the segment from the couplings-alone fit to the joint one whose couplings keep
    at least DEFINITE_MARGIN of the couplings-alone smallest curvature; the loss lies between the
    two fits' and the coarse factor samples with the data's std."""
    from explorer.core import model as mdl
    from explorer.core import wavelets as wv
    from explorer.core.fit import fit_score_matching, solve_score_matching_staged
    from explorer.core.sampling import iter_langevin
    x = asset("turbulence_L128")
    m = WCRGModel("scattering", 4).fit(x)
    f = m.coarse
    path = f.fit["definite_path"]
    assert path["ritz_min_joint"] < 0 < path["ritz_min_base"] and 0 < path["t"] < 1
    feats, th = f.features, f.theta
    lo = f.fit["quadratic_base"]["ritz_min"]
    assert lo >= mdl.DEFINITE_MARGIN * path["ritz_min_base"] * (1 - 1e-9)
    # the same fit by hand: the model's coarsest field (after the spectral completion, seed 0)
    xc = np.asarray(x, np.float64)
    if m.support is not None:
        xc = m.support.completed(xc, np.random.default_rng([0, 1]))
    lows = wv.low_passes(xc, 4)
    fit = fit_score_matching(feats, (lows[4], None))
    th0 = solve_score_matching_staged(fit.H, fit.b, feats.stage_base, fit.ridge)[0]
    loss = lambda t: 0.5 * t @ fit.H @ t - t @ fit.b  # noqa: E731
    assert np.allclose(th, th0 + path["t"] * (fit.theta - th0), rtol=1e-6, atol=1e-12)
    assert loss(fit.theta) < loss(th) < loss(th0)
    # a slightly larger step along the segment crosses the margin (bisection to 2^-12)
    above = th0 + min(1.0, path["t"] + 2.0 ** -10) * (fit.theta - th0)
    assert mdl.quadratic_base_check(feats, above, lows[4])["ritz_min"] < mdl.DEFINITE_MARGIN * path["ritz_min_base"]
    # the coarse factor alone: well posed, the data's std, and a heavier one-point tail than Gaussian
    E = lambda v: feats.energy(th, v, None)  # noqa: E731
    G = lambda v: feats.energy_grad(th, v, None)  # noqa: E731
    v0 = lows[4].std() * np.random.default_rng(SEED).standard_normal((32, 8, 8))
    res = run(iter_langevin(E, G, v0, n_steps=1500, burn_in=500, seed=SEED, thin=50))
    s = res.samples.astype(np.float64)
    assert abs(np.log(s.std() / lows[4].std())) < np.log(1.25)
    assert ob.kurtosis(s) > 3.2
    # levels whose joint fit is well posed keep it (no record)
    assert "definite_path" not in m.conditionals[0].fit


def test_nonnegative_score_matching_and_the_phi4_wells():
    """A constrained coefficient that comes out negative is fixed at 0, the rest re-solved: for
    one constrained parameter this is the exact minimiser of the convex loss (KKT: the loss
    gradient along it is >= 0 at 0). On the phi^4 asset (a bimodal one-point law) the joint fit
    wants a negative log potential, i.e. wells that a local sampler cannot cross (measured: all
    16 chains in one well, kurtosis 4.5 vs the data's 1.5); it is fixed at 0 at every level."""
    from explorer.core.fit import solve_score_matching, solve_score_matching_nonnegative
    g = np.random.default_rng(SEED)
    A = g.standard_normal((6, 6))
    H = A @ A.T + 0.5 * np.eye(6)
    k = 1
    b = H @ np.where(np.arange(6) == k, -1.0, 1.0)          # unconstrained optimum: θ_k = -1
    th, fixed = solve_score_matching_nonnegative(H, b, None, (k,), ridge=0.0)
    assert fixed == [k] and th[k] == 0.0
    grad = H @ th - b
    assert grad[k] >= 0 and np.allclose(np.delete(grad, k), 0.0, atol=1e-9)
    assert solve_score_matching_nonnegative(H, b, None, (2,), ridge=0.0)[1] == []
    assert np.allclose(solve_score_matching_nonnegative(H, b, None, (), ridge=0.0)[0],
                       solve_score_matching(H, b, 0.0)[0])
    # staged (first block of 3): the constrained parameter is dropped from the first block's own
    # fit, then the second block is solved given it
    b[:3] = H[:3, :3] @ np.array([1.0, -1.0, 1.0])
    th_s, fixed_s = solve_score_matching_nonnegative(H, b, 3, (k,), ridge=0.0)
    keep = [0, 2]
    t1 = np.linalg.solve(H[np.ix_(keep, keep)], b[keep])
    t2 = np.linalg.solve(H[3:, 3:], b[3:] - H[3:, keep] @ t1)
    assert fixed_s == [k] and np.allclose(th_s, [t1[0], 0.0, t1[1], *t2])
    x = asset("phi4_L64_beta0.68")
    m = WCRGModel("scattering", 2).fit(x)
    for f in m.factors():
        assert f.fit["fixed_at_zero"] == ["log(1+(x/s)^2)"], f.j
        assert f.fit["theta"]["log(1+(x/s)^2)"] == 0.0 == f.theta[f.names.index("log(1+(x/s)^2)")]
    # the constraint belongs to the score-matching fit itself, not only to the model
    from explorer.core.fit import fit_score_matching
    coarse = m.coarse.features
    fit = fit_score_matching(coarse, (np.asarray(x, np.float64)[:, ::4, ::4], None))
    assert fit.fixed_at_zero == [coarse.names.index("log(1+(x/s)^2)")]
    assert fit.summary()["fixed_at_zero"] == ["log(1+(x/s)^2)"]


def test_wcrg_both_families_on_the_native_128_turbulence():
    """Issue-6 acceptance: on the native 128^2 asset at full depth (J = 7) the scattering family
    beats the gaussian family on the vorticity kurtosis and on the increment flatness (1..16 px),
    and both sample stably, every per-scale std within a factor 2 of the data's. (The asset is
    2/3-rule dealiased: the model completes the modes off the data's spectral support and
    projects them out of the samples, explorer.core.support.)

    Measured (16 samples, 60 + 60 MALA steps per scale, seeds 0 / 1 / 2): kurtosis error
    gaussian 0.206 / 0.195 / 0.213 vs scattering 0.118 / 0.142 / 0.113; mean flatness error
    0.288 / 0.269 / 0.293 vs 0.229 / 0.235 / 0.247. Four times longer chains (240 + 240, seed 0)
    give scattering 0.089 / 0.244: the model's numbers, not a transient. What makes the
    difference is the one-point log potential of each finer field (explorer.core.scattering_features):
    without it the family's low-passes all sample at kurtosis 3.0 while the data's build up to
    4.0-4.3 at 8^2 and 16^2 (the coherent vortices), and the scattering family was no better than
    the gaussian one on kurtosis (0.225 vs 0.221). Both models still miss part of the data's
    kurtosis (3.83; samples about 3.3), see dg.scale_kurtosis."""
    x = asset("turbulence_L128")
    kx, fx = ob.kurtosis(x), ob.increment_flatness(x)
    out = {}
    for fam in ("gaussian", "scattering"):
        m = WCRGModel(fam, 7).fit(x)
        s = m.sample(16, steps=60, burn_in=60, seed=0).fields.astype(np.float64)
        assert np.all(np.isfinite(s)), fam
        # detail scales only: the 1 x 1 coarse field is the mean, exactly 0 in data and samples
        assert np.all(np.abs(np.log(dg.scale_std_ratios(x, s, 7)[:7])) < np.log(2.0)), fam
        fs = ob.increment_flatness(s)
        out[fam] = (abs(ob.kurtosis(s) / kx - 1), np.mean([abs(fs[k] / v - 1) for k, v in fx.items()]))
    print(out)
    assert out["scattering"][0] < out["gaussian"][0] - 0.03, out
    assert out["scattering"][1] < out["gaussian"][1] - 0.03, out
    assert out["scattering"][0] < 0.2 and out["scattering"][1] < 0.3, out


def test_wcrg_scattering_vs_gaussian_on_the_64_lowpass():
    """Where the gaussian family is stable (64^2 low-pass of the 128^2 asset, J = 6: no dead band,
    1 x 1 coarse field), the scattering family samples stably and is closer to the data's
    kurtosis and increment flatness. Measured: kurtosis error 12.7 % vs 20.9 % (data 3.87),
    flatness error 16.4 % vs 21.7 % on average over 1..16 px (~14 s)."""
    from explorer.core import wavelets as wv
    x = wv.analysis(asset("turbulence_L128"))[0]
    err = {}
    for fam in ("gaussian", "scattering"):
        s = WCRGModel(fam, 6).fit(x).sample(8, steps=60, burn_in=60, seed=0).fields.astype(float)
        assert np.all(np.abs(np.log(dg.scale_std_ratios(x, s, 5)[:5])) < np.log(2.0)), fam
        fx, fs = ob.increment_flatness(x), ob.increment_flatness(s)
        err[fam] = (abs(ob.kurtosis(s) / ob.kurtosis(x) - 1),
                    np.mean([abs(fs[k] / v - 1) for k, v in fx.items()]))
    print(err)
    assert err["scattering"][0] < err["gaussian"][0]
    assert err["scattering"][1] < err["gaussian"][1]


def test_sfft_roundtrip_of_half_adjoint():
    """The adjoint of f -> rfft2(f)/m² used by the gradients: <R f, g> = <f, R* g> (real part)."""
    g = np.random.default_rng(SEED)
    f = g.standard_normal((1, 16, 16))
    h = g.standard_normal((1, 16, 9)) + 1j * g.standard_normal((1, 16, 9))
    lhs = np.sum((sfft.rfft2(f) / 256 * np.conj(h)).real)
    rhs = np.sum(f * _half_adjoint(h, 16, 1))
    assert lhs == pytest.approx(rhs, rel=1e-12)

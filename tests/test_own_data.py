"""People's own data through the command line, info -> fit -> sample -> compare, on three kinds of
fields made here by code independent of the explorer's generators: log-normal maps with a k^-3
spectrum, ±1 Ising configurations from this file's own Metropolis sampler at T = 2.27, and one PNG
texture. Every output describes the data generically; no domain observable appears unless the
user asks for it; the log-normal model reproduces the skewness and kurtosis within 20 %, the
dequantised Ising model the Binder cumulant within 0.05."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from explorer.cli import main
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel

DOMAIN_WORDS = re.compile(r"binder|phi4|turbulence|vorticity|magnetisation|abs_m", re.I)


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys, *args) -> dict:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def moments(x) -> tuple[float, float]:
    x = np.asarray(x, np.float64).ravel()
    x = x - x.mean()
    return float(np.mean(x**3) / np.mean(x**2) ** 1.5), float(np.mean(x**4) / np.mean(x**2) ** 2)


# ------------------------------------------------------------------ the three data sets
def lognormal_maps(n: int, L: int, s: float, seed: int) -> np.ndarray:
    """exp(s g) of a unit Gaussian field g with P(k) ∝ k^-3 (no k = 0 mode), standardised over
    the batch; float64, as a user's simulation would write it."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(L) * L
    kk = np.hypot(k[:, None], k[None, :])
    kk[0, 0] = 1.0
    amplitude = kk ** -1.5
    amplitude[0, 0] = 0.0
    g = np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, L, L))) * amplitude).real
    x = np.exp(s * g / g.std())
    return (x - x.mean()) / x.std()


def ising_metropolis(n: int, L: int, T: float, sweeps: int, seed: int) -> np.ndarray:
    """n independent ±1 Ising configurations on an L x L torus: checkerboard Metropolis from a
    random start, ``sweeps`` sweeps at temperature T (J = 1, k_B = 1)."""
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array([-1, 1], np.int8), size=(n, L, L)).astype(np.int64)
    i, j = np.indices((L, L))
    colours = [(i + j) % 2 == c for c in (0, 1)]
    accept = {d: np.exp(-d / T) for d in (4, 8)}   # ΔE = 2 s Σ neighbours in {-8 .. 8}
    for _ in range(sweeps):
        for colour in colours:
            nb = np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2)
            dE = 2 * s * nb
            p = np.where(dE <= 0, 1.0, np.where(dE == 4, accept[4], accept[8]))
            flip = colour & (rng.random(s.shape) < p)
            s = np.where(flip, -s, s)
    return s.astype(np.int8)


def texture(L: int, seed: int) -> np.ndarray:
    """An 8-bit texture: oriented waves with random phases, thresholded softly (not Gaussian)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:L, 0:L] * (2 * np.pi / L)
    f = np.zeros((L, L))
    for _ in range(12):
        kx, ky = rng.integers(-12, 13, size=2)
        f += np.cos(kx * x + ky * y + rng.uniform(0, 2 * np.pi))
    f += 0.5 * rng.standard_normal((L, L))
    img = 1.0 / (1.0 + np.exp(-1.5 * f))
    return np.round(255 * img).astype(np.uint8)


def binder(fields) -> float:
    m = np.asarray(fields, np.float64).mean(axis=(1, 2))
    return float(1 - np.mean(m**4) / (3 * np.mean(m**2) ** 2))


@pytest.fixture(scope="module")
def lognormal(tmp_path_factory):
    d = tmp_path_factory.mktemp("lognormal")
    np.savez(d / "maps.npz", fields=lognormal_maps(32, 64, 0.5, seed=3))
    return d


@pytest.fixture(scope="module")
def ising(tmp_path_factory):
    d = tmp_path_factory.mktemp("ising")
    np.savez(d / "spins.npz", spins=ising_metropolis(64, 32, 2.27, sweeps=500, seed=5))
    return d


# ------------------------------------------------------------------ log-normal maps
def test_lognormal_maps_from_info_to_a_model_with_their_skewness_and_kurtosis(lognormal, capsys):
    d = lognormal
    data = d / "maps.npz"
    code, out, _ = run(capsys, "info", data)
    assert code == 0
    assert "32 fields of 64x64" in out
    assert "stored float64, read as float32" in out                 # the cast is stated
    for needle in ("skewness", "kurtosis", "quantiles", "per-field means: spread",
                   "P(k) ~ k^", "fitted over shells n = 2..16", "suggested depth 4"):
        assert needle in out, needle
    assert not DOMAIN_WORDS.search(out), out                     # nothing the data did not ask
    info = run_json(capsys, "info", data)
    assert info["observables"] == {}
    g = info["generic"]
    skew, kurt = moments(np.load(data)["fields"])
    assert g["one_point"]["skewness"] == pytest.approx(skew, rel=1e-3)
    assert g["one_point"]["kurtosis"] == pytest.approx(kurt, rel=1e-3)
    assert -3.3 < g["spectrum_slope"]["slope"] < -2.6                # exp(s g) of a k^-3 field
    assert skew > 1.0 and kurt > 5.0                                  # really skewed, heavy

    # odd potential terms are on the command line (and do not suffice here: docs/models.md)
    code, _, err = run(capsys, "fit", data, "--parity", "all", "--depth", "2",
                       "--out", d / "odd.npz", "--quiet")
    assert code == 0, err
    names = {n for s in WCRGModel.load(d / "odd.npz").factors() for n in s.names}
    assert {"phi", "phi^3", "phi^4"} <= names

    code, out, err = run(capsys, "fit", data, "--family", "gaussian", "--radius", "2",
                         "--gaussianise", "--out", d / "m.npz", "--quiet")
    assert code == 0, err
    assert "{" not in out and "factor" in out and "kappa(H)" in out  # a table, not JSON
    model = WCRGModel.load(d / "m.npz")
    assert model.J == 4                                               # the suggested depth
    assert model.provenance["preprocessing"]["marginal"]["kind"] == "gaussian_anamorphosis"
    code, out, err = run(capsys, "sample", d / "m.npz", "--samples", "16", "--steps", "100",
                         "--out", d / "s.npz", "--quiet")
    assert code == 0, err
    assert "anamorphosis of the model undone" in out

    report = run_json(capsys, "compare", data, d / "s.npz")
    one = report["generic"]["one_point"]
    ds, ss = one["data"], one["samples"]
    assert abs(ss["skewness"] - ds["skewness"]) <= 0.2 * ds["skewness"], (ds, ss)
    assert abs(ss["kurtosis"] - ds["kurtosis"]) <= 0.2 * ds["kurtosis"], (ds, ss)
    assert report["binder_difference"] is None
    verdicts = {v["statistic"]: v for v in report["generic"]["verdicts"]}
    assert verdicts["skewness"]["ok"] and verdicts["kurtosis"]["ok"]
    assert {"power spectrum", "one-point histogram", "extremes", "per-field mean spread",
            "std ratio details j=1", "std ratio low-pass x_4"} <= set(verdicts)
    code, out, _ = run(capsys, "compare", data, d / "s.npz")
    assert re.search(r"^ok    skewness .*threshold", out, re.M), out
    assert "details j=1" in out and "low-pass x_4" in out             # ratios are labelled
    assert not DOMAIN_WORDS.search(out), out


# ------------------------------------------------------------------ Ising spins
def test_ising_spins_are_refused_raw_and_reproduced_dequantised(ising, capsys, tmp_path):
    d = ising
    data = d / "spins.npz"
    code, out, _ = run(capsys, "info", data)
    assert code == 2                                     # the array is not named 'fields'
    code, out, _ = run(capsys, "info", data, "--key", "spins")
    assert code == 0
    assert "2 distinct values (-1, 1)" in out and "--dequantise SIGMA (e.g. 0.2)" in out
    assert "stored int8" in out and not DOMAIN_WORDS.search(out), out
    asked = run_json(capsys, "info", data, "--key", "spins", "--observables", "phi4")
    U_data = binder(np.load(data)["spins"])
    assert asked["observables"]["phi4"]["binder"] == pytest.approx(U_data, abs=1e-9)

    code, out, err = run(capsys, "fit", data, "--key", "spins", "--out", tmp_path / "raw.npz")
    assert code == 2 and "--dequantise 0.2" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "raw.npz").exists()

    code, _, err = run(capsys, "fit", data, "--key", "spins", "--dequantise", "0.2", "--depth",
                       "2", "--out", d / "m.npz", "--quiet")
    assert code == 0, err
    pre = WCRGModel.load(d / "m.npz").provenance["preprocessing"]
    assert pre["dequantise"] == {"sigma": 0.2, "seed": 0, "levels": [-1.0, 1.0]}
    code, out, _ = run(capsys, "info", d / "m.npz")            # a model file is summarised
    assert code == 0 and "WCRG model" in out and "depth 2" in out
    assert "dequantised with N(0, 0.2^2) noise" in out and out.count("yes") >= 3
    assert run_json(capsys, "info", d / "m.npz")["unbounded"] == []
    code, out, err = run(capsys, "sample", d / "m.npz", "--samples", "64", "--out",
                         d / "s.npz", "--quiet")
    assert code == 0, err
    samples = load_fields(d / "s.npz").fields
    assert set(np.unique(samples)) == {-1.0, 1.0}        # back on the data's levels

    plain = run_json(capsys, "compare", data, d / "s.npz", "--key", "spins")
    assert plain["binder_difference"] is None            # not asked: not reported
    report = run_json(capsys, "compare", data, d / "s.npz", "--key", "spins",
                      "--observables", "phi4")
    assert report["binder_data"] == pytest.approx(U_data, abs=1e-9)
    assert report["binder_samples"] == pytest.approx(binder(samples), abs=1e-9)
    assert abs(report["binder_difference"]) < 0.05, report["binder_difference"]
    code, out, _ = run(capsys, "compare", data, d / "s.npz", "--key", "spins",
                       "--observables", "phi4")
    assert "Binder cumulant" in out and "verdict:" in out


# ------------------------------------------------------------------ one PNG texture
def test_a_png_texture_is_one_field_and_its_patches_a_set_to_model(tmp_path, capsys):
    from PIL import Image

    img = texture(128, seed=7)
    Image.fromarray(img).save(tmp_path / "texture.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no 'Mean of empty slice' and the like
        code, out, err = run(capsys, "info", tmp_path / "texture.png")
    assert code == 0, err
    assert "1 field of 128x128" in out and "per-field means: one field, no spread" in out
    assert "image mode L" in out and "skewness" in out and "suggested depth" in out
    assert not DOMAIN_WORDS.search(out), out

    # the single image as 16 patches of 32x32 (the README's recipe), modelled as a set of maps
    x = img.astype(np.float64) / 255.0
    patches = x.reshape(4, 32, 4, 32).swapaxes(1, 2).reshape(16, 32, 32)
    np.savez(tmp_path / "patches.npz", fields=patches)
    code, _, err = run(capsys, "fit", tmp_path / "patches.npz", "--family", "gaussian",
                       "--radius", "2", "--gaussianise", "--out", tmp_path / "m.npz", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "sample", tmp_path / "m.npz", "--samples", "8", "--steps", "60",
                       "--out", tmp_path / "s.npz", "--quiet")
    assert code == 0, err
    code, out, err = run(capsys, "compare", tmp_path / "patches.npz", tmp_path / "s.npz",
                         "--plot", tmp_path / "figs")
    assert code == 0, err
    for needle in ("power spectrum", "one-point histogram", "skewness", "kurtosis",
                   "quantiles 5%..95%", "extremes", "per-field mean spread", "verdict:"):
        assert needle in out, needle
    assert not DOMAIN_WORDS.search(out), out
    # grey values in [0, 1], piled up at both ends: the anamorphosed model keeps them there
    assert re.search(r"^ok    one-point histogram", out, re.M), out
    assert re.search(r"^ok    extremes", out, re.M), out
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "figs").glob("*.png")}
    for name in ("gallery.png", "histograms.png", "spectra.png"):
        assert sizes[name][0] >= 800 and sizes[name][1] >= 450, sizes   # readable, not 265x149
    gallery = np.asarray(Image.open(tmp_path / "figs" / "gallery.png").convert("L"), float)
    assert gallery.std() > 20                            # drawn fields, not a blank canvas

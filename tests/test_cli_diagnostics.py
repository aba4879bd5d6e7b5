"""`explorer compare` and `explorer diagnose`: JSON reports, PNG figures, one-line errors."""

import json

import numpy as np
import pytest

from explorer.cli import main
from explorer.core.fields.base import FieldSet
from explorer.core.fields.gaussian import free_field_eigenvalues, generate_gaussian
from explorer.core.io import save_fields
from explorer.core.model import WCRGModel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_diag")
    a = generate_gaussian(size=32, n_samples=32, kind="free", beta=1.0, mass=0.5, seed=1)
    b = generate_gaussian(size=32, n_samples=32, kind="free", beta=1.0, mass=0.5, seed=2)
    c = generate_gaussian(size=32, n_samples=32, kind="free", beta=1.0, mass=2.0, seed=3)
    for name, fs in (("a", a), ("b", b), ("c", c)):
        save_fields(d / f"{name}.npz", fs)
    save_fields(d / "small.npz", FieldSet(a.fields[:, :16, :16].copy(), dict(a.meta)))
    return d


def run_json(capsys, *args):
    code = main([*map(str, args), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_compare_reports_every_distance_and_separates_different_fields(files, capsys):
    same = run_json(capsys, "compare", files / "a.npz", files / "b.npz")
    other = run_json(capsys, "compare", files / "a.npz", files / "c.npz")
    for key in ("spectrum_log_ratio", "spectrum_log_ratio_logbins", "total_variation",
                "kl_divergence", "scale_std_ratios", "binder_difference", "kurtosis", "coupling"):
        assert key in same
    assert same["J"] == 3 and len(same["scale_std_ratios"]) == 4
    assert same["spectrum_log_ratio"] < 0.1 < other["spectrum_log_ratio"]
    assert same["total_variation"] < 0.05 < other["total_variation"]
    assert max(abs(r - 1) for r in same["scale_std_ratios"]) < 0.05
    assert max(abs(r - 1) for r in other["scale_std_ratios"]) > 0.2
    # Gaussian fields: no cross-scale coupling of coefficients or moduli
    assert same["coupling"]["data"]["coefficients_cross_scale_max"] < 0.05
    assert same["coupling"]["data"]["moduli_cross_scale_max"] < 0.05
    assert len(same["coupling"]["labels"]) == 9
    # Gaussian on every scale: kurtosis 3 for the low-passes and the details of both batches
    for who in ("data", "samples"):
        ks = same["scale_kurtosis"][who]
        assert len(ks["low"]) == 4 and len(ks["details"]) == 3
        assert max(abs(k - 3) for k in ks["low"] + ks["details"]) < 0.3, ks


def test_compare_json_reports_the_2d_spectrum_and_the_corners(files, capsys):
    same = run_json(capsys, "compare", files / "a.npz", files / "b.npz")
    other = run_json(capsys, "compare", files / "a.npz", files / "c.npz")
    # 32 vs 32 free-field batches of one law: the chi-square noise E|log F(64, 64)| = 0.201
    assert same["spectrum_2d_noise"] == pytest.approx(0.2008, abs=1e-3)
    assert abs(same["spectrum_2d_log_ratio"] - same["spectrum_2d_noise"]) < 0.04
    assert other["spectrum_2d_log_ratio"] > same["spectrum_2d_log_ratio"] + 0.3
    assert 0.85 < same["corner_power_ratio"] < 1.15
    # mass 2 vs 0.5: the corner ratio of the free-field spectra 1 / (k̂² + m²), k̂² = Σ 4 sin²(k/2)
    k = 2 * np.pi * np.fft.fftfreq(32)
    khat2 = 4 * np.sin(k[:, None] / 2) ** 2 + 4 * np.sin(k[None, :] / 2) ** 2
    n = np.fft.fftfreq(32, 1 / 32)
    corner = np.hypot(n[:, None], n[None, :]) > 16
    exact = np.mean(1 / (khat2[corner] + 4.0)) / np.mean(1 / (khat2[corner] + 0.25))
    assert other["corner_power_ratio"] == pytest.approx(exact, rel=0.1)
    assert exact < 0.75   # the mass shows there too
    assert same["spectrum_shells_used"] == {"used": 16, "of": 16, "k_max": pytest.approx(np.pi)}


def test_diagnose_scattering_model_at_depth_two(files, tmp_path, capsys):
    """The scattering family's modulus terms and log potential once crashed the kernels."""
    from explorer.core.diagnostics import quadratic_kernels

    model = WCRGModel("scattering", J=2).fit(load(files / "a.npz"))
    model.save(tmp_path / "ms.npz")
    r = run_json(capsys, "diagnose", tmp_path / "ms.npz", files / "a.npz", "--fields", 1)
    assert r["family"] == "scattering" and set(r["kernels"]) == {"coarse", "j=1", "j=2"}
    for f in model.factors():
        key = "coarse" if f.level == "depth0" else f"j={f.j}"
        assert np.allclose(r["kernels"][key]["kernels"], quadratic_kernels(f)["kernels"])
    # free field: the learned finest conditional couples the details with a positive on-site term
    k1 = np.asarray(r["kernels"]["j=1"]["kernels"])
    assert all(k1[c, c, 1, 1] > 0 for c in range(3))
    assert [s["j"] for s in r["hessian"]["scales"]] == [1, 2]


def test_compare_text_prints_the_per_scale_kurtosis(files, capsys):
    assert main(["compare", str(files / "a.npz"), str(files / "b.npz")]) == 0
    out = capsys.readouterr().out
    low = [line for line in out.splitlines() if line.startswith("kurtosis of low-passes")]
    assert len(low) == 1 and low[0].count("data") == 1 and len(low[0].split()) == 4 + 2 * 5
    assert any(line.startswith("kurtosis of details j=1..J") for line in out.splitlines())


def test_compare_writes_png_figures(files, tmp_path, capsys):
    r = run_json(capsys, "compare", files / "a.npz", files / "c.npz", "--plot", tmp_path / "figs")
    assert {"spectra.png", "histograms.png", "coupling_moduli_data.png",
            "kurtosis_scales.png"} <= set(r["figures"])
    for name in r["figures"]:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == PNG_MAGIC


def test_diagnose_depth0_reports_the_pixel_hessian_exactly(files, tmp_path, capsys):
    # depth-0 Gaussian family (radius 1) fitted to free-field data: its Hessian is constant and
    # should be close to the free-field one, whose spectrum is known in closed form
    model = WCRGModel("gaussian", J=0).fit(load(files / "a.npz"))
    model.save(tmp_path / "m0.npz")
    r = run_json(capsys, "diagnose", tmp_path / "m0.npz", files / "a.npz", "--fields", 2)
    pix = r["hessian"]["pixel"]
    exact = free_field_eigenvalues(32, beta=1.0, mass2=0.25)
    assert pix["positive_definite"] and pix["negative_share"] == 0.0 and not pix["estimated"]
    assert pix["condition_number"] == pytest.approx(pix["max_eigenvalue"] / pix["min_eigenvalue"])
    assert pix["min_eigenvalue"] == pytest.approx(exact.min(), rel=0.1)
    assert pix["max_eigenvalue"] == pytest.approx(exact.max(), rel=0.1)
    assert pix["condition_number"] == pytest.approx(exact.max() / exact.min(), rel=0.15)


def test_diagnose_per_scale_json_and_figures(files, tmp_path, capsys):
    model = WCRGModel("phi4", J=2).fit(load(files / "a.npz"))
    model.save(tmp_path / "m2.npz")
    r = run_json(capsys, "diagnose", tmp_path / "m2.npz", files / "a.npz", "--fields", 2,
                 "--plot", tmp_path / "figs")
    scales = r["hessian"]["scales"]
    assert [s["j"] for s in scales] == [1, 2]
    for s in scales:
        assert {"j", "condition_number", "min_eigenvalue", "max_eigenvalue",
                "negative_share"} <= set(s)
        assert s["min_eigenvalue"] <= s["max_eigenvalue"]
    assert r["hessian"]["coarse"]["size"] == 8
    assert "pixel" not in r["hessian"]
    assert {"hessian_eigenvalues.png", "kernels_j_1.png"} <= set(r["figures"])
    for name in r["figures"]:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == PNG_MAGIC


def test_diagnostics_commands_fail_in_one_line(files, tmp_path, capsys):
    model = WCRGModel("gaussian", J=1).fit(load(files / "a.npz"))
    model.save(tmp_path / "m.npz")
    (tmp_path / "afile").write_text("x")
    cases = [
        (["compare", files / "a.npz", files / "small.npz"], "differ in size"),
        (["compare", files / "a.npz", tmp_path / "missing.npz"], "missing.npz"),
        (["compare", files / "a.npz", files / "b.npz", "--plot", tmp_path / "afile"], "folder"),
        (["diagnose", files / "a.npz", files / "a.npz"], "model"),
        (["diagnose", tmp_path / "m.npz", files / "small.npz"],
         "fitted on 32x32 fields, the data are 16x16"),
    ]
    for args, fragment in cases:
        code = main([str(a) for a in args])
        err = capsys.readouterr().err.strip()
        assert code == 2, args
        assert err.startswith("explorer: error:") and "\n" not in err, err
        assert fragment in err


def load(path):
    from explorer.core.io import load_fields
    return load_fields(path).fields


def test_diagnose_carries_the_fits_verdict_on_degenerate_data(tmp_path, capsys):
    """±1 spins make the finest conditional's score-matching system singular: its Hessian at the
    data is a huge multiple of the identity ("kappa 1", meaningless); diagnose prints the fit's
    warning on that scale's line and reports it in the JSON. (`explorer fit` refuses such data
    and offers --dequantise; the model fitted here by the core keeps the fit's warning.)"""
    from explorer.cli import main
    from explorer.core.fields.base import FieldSet
    from explorer.core.io import save_fields
    from explorer.core.model import WCRGModel
    from tests.core.test_boundedness import ising_configurations

    data = tmp_path / "ising.npz"
    spins = ising_configurations(n=16, L=16).astype("float32")
    save_fields(data, FieldSet(spins, {"generator": "file"}))
    model = tmp_path / "m.npz"
    assert main(["fit", str(data), "--depth", "1", "--out", str(model), "--quiet"]) == 2
    assert "--dequantise" in capsys.readouterr().err and not model.exists()
    fitted = WCRGModel("phi4", 1).fit(spins.astype("float64"))
    assert any("degenerate" in w for w in fitted.conditionals[0].fit["warnings"])
    fitted.save(model)
    assert main(["diagnose", str(model), str(data), "--fields", "2"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("j=1")][0]
    assert "WARNING (fit)" in line and "degenerate" in line
    assert main(["diagnose", str(model), str(data), "--fields", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("degenerate" in w for w in report["fit_warnings"]["j=1"])

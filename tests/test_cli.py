"""The command line: generate, info, assets; errors are one line with exit status 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from explorer.cli import ASSET_COMMANDS, ProgressPrinter, main
from explorer.core import workflows as wf
from explorer.core.io import load_fields
from explorer.core.model import WCRGModel
from explorer.core.progress import Progress


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("kind,extra", [
    ("phi4", ["--beta", "0.5", "--lam", "1"]),
    ("gaussian", ["--kind", "free", "--beta", "1", "--mass", "0.5"]),
    ("gaussian", ["--kind", "powerlaw", "--slope", "2"]),
])
def test_generate_writes_fields_and_meta_and_prints_json(tmp_path, capsys, kind, extra):
    out = tmp_path / "f.npz"
    code = main(["generate", kind, "--size", "16", "--samples", "8", "--seed", "3",
                 "--out", str(out), "--json", "--quiet", *extra])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    fs = load_fields(out)
    assert fs.fields.shape == (8, 16, 16)
    assert fs.meta["generator"] == kind and fs.meta["seed"] == 3
    assert fs.meta["command"].startswith(f"explorer generate {kind} --size 16")
    assert summary["summary"]["shape"] == [8, 16, 16]
    if kind == "phi4":
        assert {"binder", "abs_m", "m2", "energy_per_site", "tau_int_m2_pilot"} <= set(
            summary["observables"]["phi4"])


def test_generate_turbulence_small(tmp_path, capsys):
    out = tmp_path / "t.npz"
    assert main(["generate", "turbulence", "--size", "32", "--samples", "2", "--spinup", "0.5",
                 "--interval", "0.25", "--out", str(out), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["summary"]["shape"] == [2, 32, 32]
    assert load_fields(out).meta["params"]["kf"] == 4


def test_info_json_on_a_phi4_file(tmp_path):
    out = tmp_path / "p.npz"
    assert main(["generate", "phi4", "--size", "8", "--samples", "4", "--out", str(out),
                 "--quiet"]) == 0
    r = run_cli("info", str(out), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["generator"] == "phi4" and info["params"]["beta"] == 0.68
    assert 0 <= info["observables"]["phi4"]["m2"]


def test_info_on_an_image_reports_generic_statistics(tmp_path):
    from PIL import Image

    img = (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "x.png")
    r = run_cli("info", str(tmp_path / "x.png"), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["generator"] == "file" and info["summary"]["shape"] == [1, 32, 32]


@pytest.mark.parametrize("args,needle", [
    (["generate", "phi4", "--size", "12", "--samples", "2", "--out", "{tmp}/x.npz"], "power of two"),
    (["generate", "phi4", "--samples", "many", "--out", "{tmp}/x.npz"], "whole number"),
    (["generate", "phi4", "--beta", "nan", "--out", "{tmp}/x.npz"], "finite"),
    (["generate", "gaussian", "--size", "16", "--out", "{tmp}/x.txt"], ".npz"),
    (["generate", "gaussian", "--size", "16", "--out", "{tmp}/no/such/x.npz"], "does not exist"),
    (["info", "{tmp}/missing.npz"], "no such file"),
    (["info", "{tmp}/bad.npz"], "npz"),
    (["generate", "ising", "--out", "x.npz"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_errors_are_one_line_without_traceback(tmp_path, args, needle):
    (tmp_path / "bad.npz").write_bytes(b"this is not an archive")
    r = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("explorer: error:") and needle.lower() in lines[0].lower(), lines


def test_assets_command_rebuilds_a_named_asset_with_its_command(tmp_path):
    assert main(["assets", "--out", str(tmp_path), "--only", "gaussian_L64_eta2.npz",
                 "--quiet"]) == 0
    fs = load_fields(tmp_path / "gaussian_L64_eta2.npz")
    expected = "explorer generate " + " ".join(ASSET_COMMANDS["gaussian_L64_eta2.npz"])
    assert fs.meta["command"].startswith(expected)
    assert main(["assets", "--out", str(tmp_path), "--only", "nope.npz"]) == 2


def test_fit_sample_energy_rgflow_round_trip(tmp_path, capsys):
    data = tmp_path / "d.npz"
    assert main(["generate", "phi4", "--size", "16", "--samples", "16", "--beta", "0.5",
                 "--out", str(data), "--quiet"]) == 0
    model = tmp_path / "m.npz"
    assert main(["fit", str(data), "--family", "phi4", "--depth", "2", "--out", str(model),
                 "--json", "--quiet"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["J"] == 2 and len(fit["scales"]) == 3
    for scale in fit["scales"]:
        assert {"kappa_H_raw", "kappa_H_preconditioned", "seconds", "n_parameters"} <= set(
            scale["fit"])
        assert len(scale["theta"]) == scale["fit"]["n_parameters"]
    out = tmp_path / "s.npz"
    assert main(["sample", str(model), "--samples", "3", "--steps", "10", "--seed", "1",
                 "--out", str(out), "--json", "--quiet"]) == 0
    samp = json.loads(capsys.readouterr().out)
    assert samp["shape"] == [3, 16, 16] and samp["gradient_evaluations"] > 0
    assert all(0 <= s["acceptance"] <= 1 for s in samp["scales"])
    assert load_fields(out).fields.shape == (3, 16, 16)
    assert main(["energy", str(model), str(out), "--json"]) == 0
    en = json.loads(capsys.readouterr().out)
    expected = WCRGModel.load(model).scale_energies(load_fields(out).fields)
    assert set(en["scale_energies"]) == set(expected) == {"coarse", "j=1", "j=2"}
    for key, values in expected.items():
        assert len(values) == 3
        np.testing.assert_allclose(en["scale_energies"][key], values, rtol=1e-12)
    # the factors differ: not one number copied three times
    assert len({round(en["scale_energies"][k][0], 6) for k in expected}) == 3
    assert main(["rgflow", str(data), "--json"]) == 0
    flow = json.loads(capsys.readouterr().out)
    assert [s["L"] for s in flow["scales"]] == [16, 8, 4]


def test_energy_at_depth_zero_is_one_number_per_field(tmp_path, capsys):
    data = tmp_path / "d.npz"
    main(["generate", "gaussian", "--size", "16", "--samples", "8", "--out", str(data), "--quiet"])
    model = tmp_path / "m.npz"
    assert main(["fit", str(data), "--family", "gaussian", "--depth", "0", "--out", str(model),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["energy", str(model), str(data), "--json"]) == 0
    energies = json.loads(capsys.readouterr().out)["energies"]
    fields = load_fields(data).fields
    expected = WCRGModel.load(model).scale_energies(fields)["coarse"]
    assert len(energies) == 8
    np.testing.assert_allclose(energies, expected, rtol=1e-12)
    assert np.std(energies) > 0     # one energy per field, not a constant


def test_model_errors_are_one_line(tmp_path):
    data = tmp_path / "d.npz"
    main(["generate", "gaussian", "--size", "16", "--samples", "4", "--out", str(data), "--quiet"])
    r = run_cli("fit", str(data), "--depth", "9", "--out", str(tmp_path / "m.npz"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli("sample", str(data), "--out", str(tmp_path / "s.npz"))
    assert r.returncode == 2 and "model" in r.stderr and "Traceback" not in r.stderr


def test_fit_and_sample_print_a_table_row_per_scale(tmp_path, capsys):
    data = tmp_path / "d.npz"
    assert main(["generate", "phi4", "--size", "16", "--samples", "16", "--beta", "0.5",
                 "--out", str(data), "--quiet"]) == 0
    capsys.readouterr()
    for family, name in (("gaussian", "g.npz"), ("phi4", "m.npz")):
        model = tmp_path / name
        assert main(["fit", str(data), "--family", family, "--depth", "1", "--out", str(model),
                     "--quiet"]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        summary = WCRGModel.load(model).summary()
        assert lines[0].startswith(f"{model}: {family} model (radius 1")
        assert "depth 1" in lines[0] and "16 fields of 16x16" in lines[0]
        assert lines[1].split()[:3] == ["factor", "field", "params"] and "kappa(H)" in lines[1]
        rows = {line.split()[0]: line for line in lines[2:4]}
        warned_lines = [line for line in lines[4:-1] if "WARNING: " in line]
        n_warnings = 0
        for scale in summary["scales"]:
            fit = scale["fit"]
            name = "coarse" if scale["level"] == "depth0" else f"j={scale['j']}"
            row = rows[name]
            assert row.split()[1] == ("8x8" if name == "coarse" else "16x16")
            assert row.split()[2] == str(fit["n_parameters"])
            assert f"{fit['kappa_H_raw']:.3g} -> {fit['kappa_H_preconditioned']:.3g}" in row
            top = max(scale["theta"].items(), key=lambda kv: abs(kv[1]))
            assert f"{top[0]} {top[1]:+.3g}" in row        # the largest coupling, named
            for w in fit.get("warnings") or []:
                assert any(line.startswith(f"{name}: WARNING: {w}") for line in warned_lines)
                n_warnings += 1
        assert len(warned_lines) == n_warnings
        n_total = sum(s["fit"]["n_parameters"] for s in summary["scales"])
        assert lines[-1].startswith("total: 2 factors, ") and f"{n_total} parameters" in lines[-1]
        assert "{" not in "".join(lines)                       # a table, never JSON

    out = tmp_path / "s.npz"
    assert main(["sample", str(model), "--samples", "2", "--steps", "10", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    scales = load_fields(out).meta["sampling"]["scales"]
    assert lines[0].split() == ["scale", "acceptance", "step", "rms/std", "gradient",
                                "evaluations", "seconds"]
    assert len(lines) == len(scales) + 2
    for line, s in zip(lines[1:], scales):
        cells = line.split()
        assert cells[0] == s["scale"] and cells[1] == f"{s['acceptance']:.3f}"
        assert cells[2] == f"{s['step']:.4g}" and cells[4] == str(s["gradient_evaluations"])
        assert float(cells[5]) >= 0                            # seconds of that scale
    total = sum(s["gradient_evaluations"] for s in scales)
    assert lines[-1].startswith(f"total: 2 fields of 16x16 -> {out}, {total} gradient evaluations")


def test_fit_refine_generated_reaches_the_fit_and_is_recorded(tmp_path, capsys, monkeypatch):
    """--refine-generated runs the refinement on the fitted model and the fit's own data, and
    the saved model and the printed header say what it did (fewer sampler steps here)."""
    from explorer.core.fit import refine_on_generated

    calls = []

    def shorter(model, x, **kw):
        calls.append((model.J, len(x)))
        return refine_on_generated(model, x, steps=30, **kw)

    monkeypatch.setattr(wf, "refine_on_generated", shorter)
    data, model = tmp_path / "d.npz", tmp_path / "m.npz"
    assert main(["generate", "phi4", "--size", "16", "--samples", "32", "--beta", "0.68",
                 "--out", str(data), "--quiet"]) == 0
    assert main(["fit", str(data), "--depth", "1", "--out", str(tmp_path / "plain.npz"),
                 "--quiet"]) == 0
    assert calls == [] and "refine_generated" not in WCRGModel.load(
        tmp_path / "plain.npz").provenance
    capsys.readouterr()
    assert main(["fit", str(data), "--depth", "1", "--refine-generated", "--out", str(model),
                 "--quiet"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    info = WCRGModel.load(model).provenance["refine_generated"]
    assert calls == [(1, 32)] and info["levels"] == [1] and info["steps"] == 30
    assert set(info["per_level"]["j=1"]) >= {"kept", "mismatch_before"}
    assert info["per_level"]["j=1"]["kept"] and info["kept_previous"] == []
    assert header.endswith("; j=1 refined on generated fields")
    assert main(["fit", str(data), "--depth", "1", "--family", "gaussian", "--refine-generated",
                 "--out", str(tmp_path / "g.npz"), "--quiet"]) == 2
    assert "only for the phi4 family" in capsys.readouterr().err


def test_fit_quiet_still_warns_about_an_unbounded_factor(tmp_path, capsys):
    """8 free-field samples of 16x16: the coarsest 8x8 Gaussian factor comes out indefinite."""
    data, model = tmp_path / "d.npz", tmp_path / "m.npz"
    assert main(["generate", "gaussian", "--size", "16", "--samples", "8", "--kind", "free",
                 "--mass", "0.5", "--seed", "0", "--out", str(data), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["fit", str(data), "--family", "gaussian", "--depth", "1", "--out", str(model),
                 "--quiet"]) == 0
    out = capsys.readouterr()
    warned = [line for line in out.out.splitlines() if "WARNING: " in line]
    assert len(warned) == 1 and warned[0].startswith("coarse: WARNING: ")
    assert out.err.startswith("warning (coarse): ") and "[fit]" not in out.err


def test_quiet_hides_progress_but_never_warnings():
    import io

    for quiet in (True, False):
        stream = io.StringIO()
        show = ProgressPrinter(quiet=quiet, stream=stream)
        show(Progress(1, 3, "fit", info={"scale": "scale 1", "parameters": 5}))
        show(Progress(2, 3, "fit", info={"scale": "scale 2 (coarsest)",
                                         "warning": "energy not bounded below"}))
        text = stream.getvalue()
        assert "warning (scale 2 (coarsest)): energy not bounded below\n" in text
        assert ("[fit] 1/3" in text) is (not quiet)


def test_compare_text_prints_the_2d_spectrum_and_corner_power(tmp_path, capsys, monkeypatch):
    import explorer.core.diagnostics as diagnostics

    data = tmp_path / "d.npz"
    assert main(["generate", "gaussian", "--size", "16", "--samples", "4", "--out", str(data),
                 "--quiet"]) == 0
    capsys.readouterr()
    real = diagnostics.compare
    monkeypatch.setattr(diagnostics, "compare", lambda *a, **k: {
        **real(*a, **k), "spectrum_2d_log_ratio": 0.123456, "corner_power_ratio": 2.5})
    assert main(["compare", str(data), str(data)]) == 0
    out = capsys.readouterr().out
    assert "2D spectrum mean |log ratio| 0.1235" in out and "corner power ratio 2.5" in out
    monkeypatch.setattr(diagnostics, "compare", real)
    assert main(["compare", str(data), str(data)]) == 0
    out = capsys.readouterr().out
    assert ("corner power ratio" in out) is ("corner_power_ratio" in real(
        load_fields(data).fields, load_fields(data).fields))


def test_default_fit_depth_follows_the_data_and_refused_samples_leave_no_file(tmp_path, capsys):
    """`fit` without --depth takes the app's default for the data (the deepest, 4, for the
    Gaussian and the phi4 assets) and that model samples; a model the fit found unbounded below
    (turbulence at depth 2) is refused by `sample` in one line, exit 2, no output file."""
    from pathlib import Path

    assets = Path(__file__).resolve().parents[1] / "assets"
    m = tmp_path / "g.npz"
    assert main(["fit", str(assets / "gaussian_L64_eta2.npz"), "--out", str(m), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["J"] == 4
    out = tmp_path / "s.npz"
    assert main(["sample", str(m), "--samples", "2", "--steps", "20", "--out", str(out)]) == 0
    assert load_fields(out).fields.shape == (2, 64, 64)
    phi = tmp_path / "p.npz"
    assert main(["fit", str(assets / "phi4_L64_beta0.68.npz"), "--out", str(phi), "--quiet"]) == 0
    assert WCRGModel.load(phi).J == 4
    capsys.readouterr()
    bad = tmp_path / "t.npz"
    assert main(["fit", str(assets / "turbulence_L128.npz"), "--family", "gaussian", "--depth", "2",
                 "--out", str(bad), "--quiet"]) == 0
    assert "warning (coarse): energy not bounded below" in capsys.readouterr().err
    refused = tmp_path / "r.npz"
    assert main(["sample", str(bad), "--samples", "4", "--steps", "40", "--out", str(refused)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to sample" in err[0] and "--allow-unbounded" in err[0]
    assert "at coarse: " in err[0]                 # the factor named as everywhere else
    assert not refused.exists()


def test_local_only_phi4_near_criticality_is_flagged_or_refused(tmp_path, capsys):
    """Local moves at L = 32, beta = 0.68 cannot equilibrate within the pilot limit: the command
    says so on stderr and in meta (equilibrated false), and --require-equilibrium refuses in one
    line and writes nothing."""
    out = tmp_path / "l.npz"
    args = ["generate", "phi4", "--local-only", "--size", "32", "--samples", "32", "--chains", "32",
            "--beta", "0.68", "--seed", "3"]
    assert main(args + ["--out", str(out), "--quiet"]) == 0
    assert "could not be measured" in capsys.readouterr().err
    assert load_fields(out).meta["sampler"]["equilibrated"] is False
    strict = tmp_path / "strict.npz"
    assert main(args + ["--require-equilibrium", "--out", str(strict), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not strict.exists()


def test_sweep_and_ensemble_are_explorer_commands(tmp_path, capsys):
    """The issue's command line contract through `explorer` itself: a 2 x 2 sweep writes
    results.csv with the promised columns, and `generate phi4 --store DIR` writes a chunked
    ensemble whose observables are printed."""
    import csv

    out = tmp_path / "sweep"
    assert main(["sweep", "phi4", "--beta", "0.5", "0.68", "--size", "8", "16", "--samples", "16",
                 "--family", "phi4", "--depth", "1", "--steps", "20", "--workers", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert "4 ok, 0 failed of 4 points" in capsys.readouterr().out
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert {"beta", "size", "binder_data", "binder_samples", "seconds", "status"} <= set(rows[0])
    assert {(float(r["beta"]), int(r["size"])) for r in rows} == {(0.5, 8), (0.5, 16), (0.68, 8),
                                                                 (0.68, 16)}
    assert all(r["status"] == "ok" and np.isfinite(float(r["binder_data"])) for r in rows)
    store = tmp_path / "ens"
    assert main(["generate", "phi4", "--size", "16", "--samples", "64", "--chunk", "32",
                 "--workers", "2", "--store", str(store), "--quiet"]) == 0
    assert "64 fields in 2 chunks" in capsys.readouterr().out
    assert len(list(store.glob("chunk_*.npz"))) == 2


def test_help_shows_every_default(capsys):
    for command, needles in (("fit", ["(default: phi4)", "(default: even)", "--dequantise SIGMA",
                                      "--gaussianise", "--key NAME", "(default: db4)"]),
                             ("sample", [f"(default: {wf.DEFAULT_STEPS})", "4^J times",
                                         "(default: mala)"]),
                             ("compare", ["--observables", "gallery.png"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for needle in needles:
            assert needle in text, (command, needle)


def test_the_fit_header_notes_the_refinements_on_generated_fields():
    from explorer.cli.printing import _generated_note

    rec = {"levels": [4, 3, 2], "kept_previous": [3]}
    assert _generated_note(rec, "variances: ") == (
        "variances: j=4, 2 refined on generated fields (j=3 kept as fitted)")
    assert _generated_note({"levels": [1], "kept_previous": []}, "") == (
        "j=1 refined on generated fields")
    assert _generated_note({"skipped": "too few"}, "variances: ") == (
        "variances: refinement on generated fields skipped (too few)")
    assert _generated_note(None, "") is None

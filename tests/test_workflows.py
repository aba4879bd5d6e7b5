"""One pipeline: the app's Compare and `explorer compare` give the same report on the same inputs,
the app and the command line offer the same families and options, the figures need no Panel."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import build_parser, main
from explorer.cli.commands import family_options as cli_family_options
from explorer.core import workflows as wf
from explorer.core.features import FAMILIES
from explorer.core.fields.base import FieldSet
from explorer.core.fields.gaussian import generate_gaussian
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.io import json_default, save_fields
from explorer.ui.session import Session
from explorer.ui.state import FieldData

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_same(a, b, path="report"):
    """Same keys everywhere, same strings and flags, numbers equal to 1e-12 (relative)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (path, sorted(a), sorted(b))
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        if math.isnan(a):
            assert math.isnan(b), path
        else:
            assert b == pytest.approx(a, rel=1e-12, abs=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def roundtrip(report: dict) -> dict:
    return json.loads(json.dumps(report, default=json_default))


@pytest.fixture(scope="module", params=[("phi4", "phi4"), ("gaussian", "scattering")],
            ids=["phi4-data-phi4-family", "gaussian-data-scattering-family"])
def app_run(request, tmp_path_factory):
    """A session that fitted, sampled and compared; its data, samples and model saved as files."""
    data_kind, family = request.param
    d = tmp_path_factory.mktemp(f"one_pipeline_{data_kind}")
    fs = (generate_phi4(size=32, n_samples=16, beta=0.68, seed=0, warmup=5, pilot=20)
          if data_kind == "phi4" else generate_gaussian(size=32, n_samples=16, seed=3))
    save_fields(d / "asset.npz", fs)
    s = Session(data=FieldData(folder=d, asset="asset.npz"), family=family, J=2, n_samples=4,
                steps=20)
    assert s.start_fit() and s.wait("fit") == "done", s.message
    assert s.start_sample() and s.wait("sample") == "done", s.message
    assert s.start_compare() and s.wait("compare") == "done", s.message
    save_fields(d / "data.npz", FieldSet(s.data.fields, dict(s.data.meta)))
    (d / "samples.npz").write_bytes(s.export_samples())
    (d / "model.npz").write_bytes(s.export_model())
    yield d, s
    s.shutdown()


def test_cli_compare_and_the_apps_compare_report_the_same(app_run, capsys):
    d, s = app_run
    assert main(["compare", str(d / "data.npz"), str(d / "samples.npz"), "--model",
                 str(d / "model.npz"), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    app = roundtrip(s.compare_report)
    assert_same(app, cli)
    # every section computed here, and the same section names whatever the caller
    assert set(wf.SECTIONS) <= set(cli) and cli["reasons"] == dict.fromkeys(wf.SECTIONS)
    hists = cli["hessian"]["histograms"]
    assert {"coarse", "conditional j=1", "conditional j=2"} <= set(hists)
    assert ("pixel (true φ⁴ energy)" in hists) is (s.data.meta["generator"] == "phi4")
    assert ("pixel (fitted)" in hists) is (s.data.meta["generator"] != "phi4")
    assert cli["mixing"]["unit"] == "gradient evaluations" and cli["mixing"]["scales"]
    for m in cli["mixing"]["scales"].values():
        assert m["lag"][1] == m["gradient_evaluations_per_report"] > 0
    assert cli["inputs"]["model"]["family"] == s.model.family


def test_the_text_report_names_every_section(app_run, capsys):
    d, _ = app_run
    assert main(["compare", str(d / "data.npz"), str(d / "samples.npz"), "--model",
                 str(d / "model.npz")]) == 0
    out = capsys.readouterr().out
    for needle in ("Hessian eigenvalues at 2 data fields", "conditional j=1",
                   "tau_int of the mean energy (gradient evaluations)",
                   "scattering spectra, mean relative difference",
                   "largest cross-scale coupling of moduli"):
        assert needle in out, out
    assert main(["compare", str(d / "data.npz"), str(d / "samples.npz")]) == 0
    assert "hessian: not computed" in capsys.readouterr().out or \
        app_run[1].data.meta["generator"] == "phi4"


def test_compare_plot_draws_every_section_without_bokeh(app_run, tmp_path):
    """In a fresh process the command line loads only HoloViews' Matplotlib backend."""
    d, _ = app_run
    code = (
        "import sys, json\n"
        "from explorer.cli import main\n"
        f"assert main(['compare', {str(d / 'data.npz')!r}, {str(d / 'samples.npz')!r}, "
        f"'--model', {str(d / 'model.npz')!r}, '--plot', {str(tmp_path)!r}, '--json']) == 0\n"
        "import holoviews as hv\n"
        "print('BACKENDS', sorted(hv.Store.renderers), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert "BACKENDS ['matplotlib']" in r.stderr
    figures = json.loads(r.stdout)["figures"]
    assert {"spectra.png", "hessian_eigenvalues.png", "mixing.png", "scattering.png",
            "kurtosis_scales.png", "coupling_moduli_samples.png"} <= set(figures)
    for name in figures:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


def test_the_report_has_the_same_sections_whatever_the_inputs():
    a = generate_gaussian(size=16, n_samples=4, seed=1).fields
    b = generate_gaussian(size=16, n_samples=4, seed=2).fields
    bare = wf.comparison_report(a, b)
    synth = wf.comparison_report(a, b, sample_meta={"generator": "scattering-synthesis"},
                                 J=0)
    assert sorted(bare) == sorted(synth)
    assert set(wf.SECTIONS) <= set(bare) and sorted(bare["reasons"]) == sorted(wf.SECTIONS)
    assert bare["hessian"] is None and "no model" in bare["reasons"]["hessian"]
    assert bare["mixing"] is None and "traces" in bare["reasons"]["mixing"]
    assert bare["coupling"] is not None and bare["scattering"] is not None
    assert synth["coupling"] is None and "J = 0" in synth["reasons"]["coupling"]
    assert "synthesis" in synth["reasons"]["mixing"]


def test_cli_and_app_offer_the_same_families_and_options(tmp_path):
    parser = build_parser()
    s = Session(data=FieldData(folder=tmp_path))
    families = wf.wcrg_families()
    assert s.param.family.objects == families and "phi4_ansatz" not in families
    fit_action = next(a for a in parser._subparsers._group_actions[0].choices["fit"]._actions
                      if a.dest == "family")
    assert list(fit_action.choices) == wf.family_choices()
    for family in families:
        for potential in ("polynomial", "windows"):
            args = parser.parse_args(["fit", "d.npz", "--family", family, "--potential",
                                      potential, "--out", "m.npz"])
            s.param.update(family=family, potential=potential)
            assert cli_family_options(args) == s.family_options(), (family, potential)
    s.family = "modulus"        # the menus list each family once, by its name
    assert s.family_options()["eps_rel"] == wf.FAMILY_OPTION_DEFAULTS["eps_rel"]
    args = parser.parse_args(["fit", "d.npz", "--family", "scattering", "--out", "m.npz"])
    assert cli_family_options(args)["eps_rel"] == s.family_options()["eps_rel"]


def test_an_alias_of_a_family_is_accepted_everywhere_and_listed_once(tmp_path):
    FAMILIES["modulus_alias_for_test"] = FAMILIES["scattering"]
    try:
        assert "modulus_alias_for_test" not in wf.wcrg_families()
        assert "modulus_alias_for_test" in wf.family_choices()
        assert wf.resolve_family("modulus_alias_for_test") == "modulus"
        assert wf.resolve_family("scattering") == "modulus"     # the family's former name
        s = Session(data=FieldData(folder=tmp_path), family="modulus_alias_for_test")
        assert s.family == "modulus" and "eps_rel" in s.family_options()
        args = build_parser().parse_args(["fit", "d.npz", "--family", "modulus_alias_for_test",
                                          "--out", "m.npz"])
        assert cli_family_options(args) == s.family_options()
    finally:
        del FAMILIES["modulus_alias_for_test"]


@pytest.mark.parametrize("kind,size,n,params,needle", [
    ("ising", 16, 2, {}, "unknown generator"),
    ("phi4", 12, 2, {}, "power of two"),
    ("phi4", 16, 2, {"lam": 0.0}, "lambda"),
    ("phi4", 16, 2, {"eta": 1.0}, "unknown parameter"),
    ("gaussian", 16, 0, {}, ">= 1"),
    ("gaussian", 16, 2, {"spectrum": "pink"}, "kind"),
    ("turbulence", 32, 2, {"kf": 11}, "kf"),
    ("turbulence", 32, 2, {"interval": 0.0}, "interval"),
])
def test_generators_check_every_parameter_before_any_work(kind, size, n, params, needle):
    with pytest.raises(ValueError, match=needle):
        wf.iter_generate(kind, size, n, **params)


def test_generators_dispatch_with_their_parameters():
    from explorer.core.progress import run

    fs = run(wf.iter_generate("gaussian", 16, 3, seed=4, spectrum="free", mass=0.5))
    assert fs.fields.shape == (3, 16, 16) and fs.meta["params"]["kind"] == "free"
    assert fs.meta["params"]["mass"] == 0.5 and fs.meta["seed"] == 4


def test_labels_name_the_coarse_factor_coarse():
    assert wf.scale_label("scale 3 (coarsest): burn-in") == "coarse: burn-in"
    assert wf.scale_label("at scale 2 (coarsest, 8x8): why") == "at coarse: why"
    assert wf.scale_label("scale 1 (conditional)") == "j=1"
    assert wf.scale_label("scale 2: sampling") == "j=2: sampling"


def test_figures_and_the_cli_without_plot_import_no_panel():
    code = ("import sys\n"
            "import explorer.ui.figures\n"
            "assert 'panel' not in sys.modules and 'bokeh' not in sys.modules, 'figures'\n"
            "from explorer.cli import main\n"
            "assert main(['compare', 'assets/gaussian_L64_eta2.npz', "
            "'assets/gaussian_L64_eta2.npz', '--depth', '1']) == 0\n"
            "assert 'panel' not in sys.modules and 'holoviews.plotting' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr


def test_the_fit_reports_progress_during_the_variance_refinement(monkeypatch):
    """The fit job's reports (what the app's progress bar and the CLI show) go on during the
    default φ⁴ fit's variance refinement: one per refined level, relabelled as the factors'."""
    x = generate_phi4(size=32, n_samples=32, beta=0.68, seed=4).fields
    monkeypatch.setattr(wf, "default_refinement", lambda *a, **k: {"refine_variances": True})
    reps = list(wf.iter_fit(x, "phi4", 3, data_meta={"generator": "phi4"}, rgflow=True))
    fit = [r for r in reps if not r.done and r.stage != "RG flow"]
    # 3 + 1 factors, 3 refined levels, then the RG flow: 8 steps
    assert [r.step for r in fit] == list(range(1, 8)) and all(r.total == 8 for r in fit)
    # the bar never goes back (the RG flow's report once came as 7 of 8 after 7 of 7)
    fractions = [r.step / r.total for r in reps]
    assert fractions == sorted(fractions) and reps[-2].stage == "RG flow", fractions
    assert [r.info["scale"] for r in fit[4:]] == [f"j={j} (variances on generated fields)"
                                                  for j in (3, 2, 1)]
    model = reps[-1].result["model"]
    assert reps[-1].done and set(model.provenance["refine_variances"]["per_level"]) == {
        "j=3", "j=2", "j=1"}

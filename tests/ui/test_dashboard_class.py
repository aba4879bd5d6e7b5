"""The dashboard for a class, without a browser: buttons that reflect what can start, every family
x data set x depth fitted through the views, stories, settings in the URL, the Compare figures."""

import threading
import time

import holoviews as hv
import numpy as np
import pytest

from explorer.core import workflows as wf
from explorer.core.fields.base import FieldSet
from explorer.core.io import load_fields, save_fields
from explorer.core.model import default_depth, max_depth
from explorer.core.transfer import size_transfer_check
from explorer.ui import figures
from explorer.ui.compare_view import MIXING_COLUMNS, SCATTERING_COLUMNS
from explorer.ui.dashboard import Dashboard
from explorer.ui.session import Session
from explorer.ui.state import ASSETS_DIR, FieldData, available_assets
from explorer.ui.stories import STORIES, available_stories

hv.extension("bokeh")
SMALL = 32  # the shipped data sets block-averaged to 32 x 32: every menu entry, fast


def _shrink(fs: FieldSet, size: int = SMALL, n: int = 8) -> FieldSet:
    x = np.asarray(fs.fields[:n], np.float64)
    f = x.shape[-1] // size
    x = x.reshape(len(x), size, f, size, f).mean(axis=(2, 4))
    return FieldSet(x.astype(np.float32), dict(fs.meta))


@pytest.fixture(scope="module")
def small_assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("small-assets")
    for name in available_assets(ASSETS_DIR).values():
        save_fields(d / name, _shrink(load_fields(ASSETS_DIR / name)))
    return d


def dashboard(folder, **kw) -> Dashboard:
    """A dashboard on ``folder``'s data; a depth given here is kept (loading the data sets the
    data set's default depth)."""
    s = Session(data=FieldData(folder=folder), **kw)
    if "J" in kw:
        s.J = kw["J"]
    return Dashboard(session=s)


def click(button) -> None:
    button.clicks += 1  # what a browser click does to the widget (on_click callbacks run)


def run(d: Dashboard, job: str, timeout: float = 300) -> str:
    """Tick the page until ``job`` has finished and its result is shown."""
    t0 = time.monotonic()
    while d.session.jobs[job].running and time.monotonic() - t0 < timeout:
        threading.Event().wait(0.05)
        d.tick()
    d.tick()
    return d.session.jobs[job].status


# ---------------------------------------------------------------- buttons reflect state
def test_sample_is_disabled_with_a_hint_until_a_model_exists_and_while_another_job_runs(
        small_assets):
    d = dashboard(small_assets, J=1, n_samples=2, steps=10)
    s, sample, fit = d.session, d.sampling_view.controls, d.model_view.controls
    assert sample.start_button.disabled and "fit a model first" in sample.hint.object
    assert not fit.start_button.disabled and fit.hint.object == ""
    click(fit.start_button)
    assert s.jobs["fit"].running
    d.tick()
    # while the fit runs: Sample, Synthesize, Generate and the stories wait, saying why
    assert sample.start_button.disabled and "fit is running" in sample.hint.object
    assert d.sampling_view.synthesis_button.disabled
    assert d.data_view.controls.start_button.disabled
    assert all(b.disabled for b in d.stories_view.buttons)
    assert fit.start_button.disabled and not fit.stop_button.disabled
    assert run(d, "fit") == "done"
    assert not sample.start_button.disabled and sample.hint.object == ""
    assert "fit** done" in fit.text.object
    d.shutdown()


def test_a_refused_click_says_why_beside_the_button(small_assets):
    d = dashboard(small_assets, family="gaussian", J=0, n_samples=2, steps=10)
    s, sample = d.session, d.sampling_view.controls
    s.start_fit()
    run(d, "fit")
    s.model.coarse.fit["bounded"] = {"bounded": False, "reason": "made improper by the test"}
    assert not sample.start_button.disabled  # the reason needs the model's check: known on click
    click(sample.start_button)
    assert not s.jobs["sample"].running
    assert "sampling refused" in sample.hint.object and "made improper" in sample.hint.object
    assert s.message == "" and not d.alert.visible  # said in place, not at the top of the page
    # the engine refuses too when a button is pressed through a stale page
    s.start_fit()
    assert not s.start_sample() and "fit is running" in s.message
    run(d, "fit")
    d.shutdown()


def test_a_view_failing_on_a_result_never_leaves_the_fit_running(small_assets, monkeypatch):
    """The turbulence/modulus report: a watcher raised while the fit's result was installed,
    the tick died and the status stayed at 'fit running' with Stop lit."""
    d = dashboard(small_assets, J=1)
    s = d.session

    def broken(*a, **k):
        raise TypeError("bad operand type for abs(): 'str'")

    monkeypatch.setattr(figures, "potentials", broken)
    monkeypatch.setattr(figures, "kernel_mosaic", broken)
    click(d.model_view.controls.start_button)
    assert run(d, "fit") == "done"
    ctl = d.model_view.controls
    assert "fit** done" in ctl.text.object and "running" not in ctl.text.object
    assert ctl.stop_button.disabled and not ctl.start_button.disabled
    assert "showing its result failed" in s.message and "abs()" in s.message
    assert not d.sampling_view.controls.start_button.disabled  # the model is there: sample it
    d.shutdown()


FAMILIES = wf.wcrg_families()
ASSETS = list(available_assets(ASSETS_DIR).values())


@pytest.mark.parametrize("asset", ASSETS)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("depth", ["small", "default"])
def test_every_family_data_set_and_depth_fits_through_the_views(small_assets, asset, family,
                                                                 depth):
    d = dashboard(small_assets)
    s, mv = d.session, d.model_view
    d.data_view.browser._asset.value = asset  # the data set menu
    generator = s.data.meta.get("generator")
    J = 1 if depth == "small" else default_depth(SMALL, generator)
    assert s.J == default_depth(SMALL, generator)  # the menu's data set sets its default depth
    mv.params._widgets["family"].value = family
    mv.params._widgets["J"].value = J
    assert (s.family, s.J) == (family, J)
    click(mv.controls.start_button)
    assert run(d, "fit") == "done", s.message
    assert "failed" not in s.message, s.message
    assert f"{family}, J = {J}" in mv.kappa.object
    assert "fit** done" in mv.controls.text.object
    assert mv.couplings.visible and set(mv.couplings.value["scale"]) == {
        "coarse", *[f"j={j}" for j in range(1, J + 1)]}
    assert isinstance(mv.kernels.object, (hv.Image, hv.Curve))
    assert isinstance(mv.potential.object, (hv.Overlay, hv.Curve))
    assert not d.sampling_view.controls.start_button.disabled
    d.shutdown()


def test_couplings_are_a_table_not_markdown(small_assets):
    d = dashboard(small_assets, J=1)
    s = d.session
    s.start_fit()
    run(d, "fit")
    df = d.model_view.couplings.value
    assert list(df.columns) == ["scale", "coupling", "θ"]
    # the names are cells of a table: nothing turns coupling[..] into a link
    top = d.model_view.couplings.value.groupby("scale")["θ"].apply(lambda v: np.abs(v).max())
    for r in s.fit_rows:
        assert top[r["scale"]] == pytest.approx(max(abs(v) for v in r["theta"].values()),
                                                rel=1e-3)
    assert any("[" in name for name in df["coupling"])
    d.shutdown()


# ---------------------------------------------------------------- stories
def test_every_story_applies_its_settings_to_the_shipped_data():
    s = Session()
    for st in available_stories(list(available_assets(ASSETS_DIR).values())):
        s.message = ""
        assert s.apply_settings({"data": st.asset, **st.settings}) == [], (st.key, s.message)
        assert s.data.asset == st.asset
        for k, v in st.settings.items():
            assert getattr(s, k) == v, (st.key, k)
        assert st.look_for.count(". ") + st.look_for.count("! ") >= 1  # two sentences
        assert all(a in ("fit", "sample", "synthesize") for a in st.actions)
    assert len(STORIES) >= 7
    assert "learn-64-sample-128" in [st.key for st in available_stories()]


def test_a_story_runs_its_actions_one_after_the_other(small_assets):
    """The critical phi4 story on small data: one click loads, fits, then samples (and the page
    compares); its text says what to look for."""
    d = dashboard(small_assets)
    st = next(st for st in d.stories_view.stories if st.key == "critical-phi4")
    s = d.session
    s.data.asset = "gaussian_L64_eta2.npz"
    # smaller sampler for the test: the story's own settings are checked above
    import dataclasses
    st = dataclasses.replace(st, settings={**st.settings, "n_samples": 2, "steps": 10, "J": 2})
    assert d.stories_view.start(st)
    assert s.data.asset == "phi4_L64_beta0.68.npz" and (s.family, s.J) == ("phi4", 2)
    assert "Critical φ⁴" in d.stories_view.text.object and "Hessian" in d.stories_view.text.object
    assert run(d, "fit") == "done"
    assert s.jobs["sample"].running or s.jobs["sample"].status == "done"  # started on its own
    assert run(d, "sample") == "done" and s.samples.shape == (2, SMALL, SMALL)
    assert s.jobs["compare"].running or s.jobs["compare"].status == "done"
    assert run(d, "compare") == "done" and s.compare_report is not None
    # a story refused while a job runs says so
    s.start_fit()
    assert not d.stories_view.start(st) and "not started" in d.stories_view.text.object
    run(d, "fit")
    d.shutdown()


# ---------------------------------------------------------------- settings in the URL
def test_url_settings_are_applied_then_kept_in_sync(small_assets):
    from panel.io.location import Location

    d = dashboard(small_assets)
    s = d.session
    loc = Location(search="?data=gaussian_L64_eta2.npz&family=scattering&J=2&steps=40"
                          "&n_samples=3&sample_method=ula&eps_rel=0.25&allow_unbounded=true")
    d.link_location(loc)
    assert s.data.asset == "gaussian_L64_eta2.npz"
    assert (s.family, s.J, s.steps, s.n_samples, s.sample_method) == ("modulus", 2, 40, 3, "ula")
    assert s.eps_rel == 0.25 and s.allow_unbounded is True
    q = loc.query_params
    assert q["family"] == "modulus" and q["data"] == "gaussian_L64_eta2.npz" and q["J"] == 2
    s.param.update(J=1, steps=77)
    s.data.asset = "phi4_L64_beta0.50.npz"
    q = loc.query_params
    assert (q["steps"], q["data"]) == (77, "phi4_L64_beta0.50.npz")
    assert q["J"] == s.J  # the new data set's depth
    d.shutdown()


def test_bad_url_settings_are_refused_with_a_message_and_the_rest_applies(small_assets):
    from panel.io.location import Location

    d = dashboard(small_assets)
    s = d.session
    loc = Location(search="?data=../../etc/passwd&family=nope&J=99&steps=abc&n_samples=5"
                          "&radius=-3&wavelet=db4&unknown=1")
    d.link_location(loc)  # never raises
    assert s.data.asset == "phi4_L64_beta0.68.npz" and s.n_samples == 5
    for bad in ("data=../../etc/passwd", "family=nope", "J=99", "steps=abc", "radius=-3"):
        assert bad in s.message, (bad, s.message)
    q = loc.query_params  # the link now shows what is in use
    assert q["J"] == s.J and q["family"] == s.family and q["steps"] == s.steps
    assert q["data"] == "phi4_L64_beta0.68.npz"
    d.shutdown()


# ---------------------------------------------------------------- Compare figures
def test_compare_figures_are_fixed_size_and_read_per_kind(small_assets):
    d = dashboard(small_assets, J=2, n_samples=4, steps=20)
    s = d.session
    s.start_fit()
    run(d, "fit")
    s.start_sample()
    run(d, "sample")
    assert run(d, "compare") == "done"
    cv = d.compare_view
    for name, pane in cv.figures.items():
        el = pane.object
        assert el is not None, name
        opts = el.opts.get().kwargs
        if isinstance(el, hv.Overlay):  # sized as a whole
            assert opts.get("frame_width") and opts.get("frame_height"), name
    c = s.compare_report["coupling"]
    img = cv.coupling_data.object
    assert isinstance(img, hv.Image)
    np.testing.assert_allclose(img.dimension_values(2, flat=False)[::-1],
                               np.asarray(c["data"]["moduli"]), atol=1e-6)
    assert [t[1] for t in img.opts.get().kwargs["xticks"]] == c["labels"]
    assert img.opts.get().kwargs["frame_width"] == img.opts.get().kwargs["frame_height"] == 300
    # kurtosis: legend beside the axes, a tick per integer scale
    k = cv.kurtosis.object.opts.get().kwargs
    assert k["legend_position"] == "right" and k["xticks"] == [0, 1, 2]
    # mixing: tau_int per scale in gradient evaluations
    tau = cv.mixing_table.value
    assert cv.mixing_table.visible and "τ_int (gradient evaluations)" in tau.columns
    mix = s.compare_report["mixing"]["scales"]
    assert set(tau["scale"]) == set(mix)
    for _, row in tau.iterrows():
        assert row["τ_int (gradient evaluations)"] == pytest.approx(mix[row["scale"]]["tau_int"],
                                                                    abs=0.05)
    # scattering: per kind, with the relative differences in a table
    sc = s.compare_report["scattering"]
    rel = cv.scattering_table.value
    assert set(rel["kind"]) == set(sc["relative_difference"]) >= {"S1", "S2", "S3", "S4"}
    for _, row in rel.iterrows():
        assert row["relative difference (%)"] == pytest.approx(
            100 * sc["relative_difference"][row["kind"]], abs=0.06)
    assert "data's spectral support" in cv.table.object
    # the tables keep the columns they were built with: a Tabulator whose columns change while
    # its tab is hidden throws in the browser (setColumns on a table never drawn)
    assert list(tau.columns) == MIXING_COLUMNS and list(rel.columns) == SCATTERING_COLUMNS
    assert list(figures.mixing_rows(s.compare_report["mixing"])[0]) == MIXING_COLUMNS
    d.shutdown()


def test_scattering_by_scale_groups_coefficients_by_scale_and_gap():
    names = ["mean", "S1[j=0]", "S1[j=1]", "S2[j=0]", "S2[j=1]", "S3[j=0,0;m=0]",
             "S3[j=0,1;m=0]", "S3[j=1,1;m=0]", "S3[j=0,1;m=1]", "S4[j=0,0,1;m=0,0]",
             "S4[j=0,1,1;m=0,0]", "S4[j=0,1,1;m=1,0]", "S3[gap=1;q=0;m=0]"]
    data = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    rep = {"names": names, "data": data, "samples": [-v for v in data],
           "kinds": [n[:2] if n != "mean" else "mean" for n in names],
           "relative_difference": {"S1": 0.1, "S3": 0.5}}
    g = figures.scattering_by_scale(rep)
    assert g["S1"]["data"] == {0: 1.0, 1: 2.0} and g["S2"]["samples"] == {0: 3.0, 1: 4.0}
    # S3 by (harmonic, gap j2 - j1), mean |S| over j1
    assert g["S3"]["data"] == {(0, 0): 6.0, (0, 1): 6.0, (1, 1): 8.0}
    # S4 at harmonics (0, 0) by gaps (j2 - j1, j3 - j2)
    assert g["S4"]["data"] == {(0, 1): 9.0, (1, 0): 10.0}
    panels = figures.scattering_panels(rep)
    assert set(panels) == {"S1 S2", "S3", "S4"}
    rows = figures.scattering_differences(rep)
    assert rows == [{"kind": "S1", "relative difference (%)": 10.0, "coefficients": 2},
                    {"kind": "S3", "relative difference (%)": 50.0, "coefficients": 5}]


def test_coupling_matrix_refuses_a_mismatched_label_list():
    with pytest.raises(ValueError, match="3x3"):
        figures.coupling_matrix(np.eye(2), ["a", "b", "c"])


def test_the_depth_menu_is_bounded_by_the_data(small_assets):
    d = dashboard(small_assets)
    assert d.session.param.J.bounds == (0, max_depth(SMALL))
    d.shutdown()


def test_learn_small_sample_large_through_the_views(small_assets):
    """Sample at twice the fitted side from the Sample view: the samples are 64², the transfer
    pane compares Binder U and chi with the data, Compare refuses the size mismatch saying why,
    and a side that is not 2^k times the fitted one is refused before any work."""
    d = dashboard(small_assets, family="phi4", J=2, n_samples=4, steps=10)
    s = d.session
    click(d.model_view.controls.start_button)
    assert run(d, "fit") == "done"
    s.sample_size = 48
    click(d.sampling_view.controls.start_button)
    assert not s.jobs["sample"].running
    assert "2^k times" in d.sampling_view.controls.hint.object   # said beside the button
    s.sample_size = 2 * SMALL
    click(d.sampling_view.controls.start_button)
    assert run(d, "sample") == "done"
    assert s.samples.shape == (4, 2 * SMALL, 2 * SMALL)
    assert s.sample_meta["size_transfer"]["fitted_size"] == SMALL
    text = d.sampling_view.transfer.object
    assert f"fitted at {SMALL}², sampled at {2 * SMALL}²" in text and "Binder U" in text
    assert "χ ratio" in text
    assert "size transfer" in s.refusal("compare") and not s.jobs["compare"].running
    # back to the fitted side: the pane clears and Compare runs
    s.sample_size = 0
    click(d.sampling_view.controls.start_button)
    assert run(d, "sample") == "done" and s.samples.shape == (4, SMALL, SMALL)
    assert d.sampling_view.transfer.object == ""
    assert run(d, "compare") == "done" and s.compare_report is not None   # started on its own
    d.shutdown()


def test_size_transfer_check_reports_finite_size_scaling():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((64, 16, 16)) + 1.0
    samples = rng.standard_normal((32, 32, 32)) + 1.0
    tr = {"fitted_size": 16, "size": 32, "levels_added": 1, "detail_growth_log2": 0.8,
          "conditionals_extrapolated": {"3": {"from": 2}}}
    c = size_transfer_check(data, samples, tr)
    # magnetisation ~ 1 at both sizes: chi grows like L^2 (ratio 4), next to 2^(7/4)
    assert c["chi_ratio"] == pytest.approx(4.0, rel=0.05)
    assert c["chi_ratio_critical"] == pytest.approx(2 ** 1.75)
    assert c["extrapolated"] == ["3"] and c["binder_samples"] == pytest.approx(2 / 3, abs=0.01)

"""The dashboard's state and views without a browser: jobs, results, errors, exports, sessions."""

import gc
import io
import json
import threading
import weakref
import zipfile

import holoviews as hv
import numpy as np
import pytest

from explorer.core.fields.phi4 import generate_phi4
from explorer.core.io import load_fields, save_fields
from explorer.core.model import WCRGModel
from explorer.ui.dashboard import Dashboard
from explorer.ui.session import Session
from explorer.ui.state import FieldData


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("assets")
    save_fields(d / "phi4_L64_beta0.68.npz",
                generate_phi4(size=32, n_samples=16, beta=0.68, seed=0, warmup=5, pilot=20))
    return d


def session(folder, **kw):
    """A session on ``folder``'s data with ``kw``; a depth given here is kept (loading the data
    sets the data set's default depth)."""
    s = Session(data=FieldData(folder=folder), **kw)
    if "J" in kw:
        s.J = kw["J"]
    return s


def test_fit_sample_compare_and_exports(folder, tmp_path):
    s = session(folder, J=2, n_samples=4, steps=20)
    assert s.L == 32 and s.param.J.bounds == (0, 3)
    assert s.start_fit() and s.wait("fit") == "done"
    assert [r["scale"] for r in s.fit_rows] == ["coarse", "j=2", "j=1"]
    for r in s.fit_rows:
        assert r["kappa_raw"] >= r["kappa_preconditioned"] >= 1.0
    assert s.rgflow is not None and len(s.rgflow["scales"]) >= 2
    assert s.start_sample() and s.wait("sample") == "done"
    assert s.samples.shape == (4, 32, 32) and np.isfinite(s.samples).all()
    assert s.live is not None
    assert s.start_compare() and s.wait("compare") == "done"
    r = s.compare_report
    assert set(r["hessian"]["histograms"]) == {"pixel (true φ⁴ energy)", "coarse",
                                               "conditional j=1", "conditional j=2"}
    assert len(r["coupling"]["labels"]) == 3 * r["J"]
    assert r["mixing"]["unit"] == "gradient evaluations"
    assert r["mixing"]["scales"], "no autocorrelation of the sampler traces"
    assert r["reasons"] == {"coupling": None, "hessian": None, "mixing": None, "scattering": None}
    assert s.learned["kernels"].keys() == {"coarse", "j=2", "j=1"}
    # exports load back
    (tmp_path / "s.npz").write_bytes(s.export_samples())
    assert load_fields(tmp_path / "s.npz").fields.shape == (4, 32, 32)
    (tmp_path / "m.npz").write_bytes(s.export_model())
    m = WCRGModel.load(tmp_path / "m.npz")
    assert m.J == 2 and np.allclose(m.conditionals[0].theta, s.model.conditionals[0].theta)
    summary = json.loads(s.export_summary())
    assert summary["model"]["J"] == 2 and "compare" in summary
    with zipfile.ZipFile(io.BytesIO(s.export_figures())) as z:
        names = z.namelist()
        assert {"spectra.png", "histograms.png", "hessian_eigenvalues.png",
                "kurtosis_scales.png"} <= set(names)
        assert all(z.read(n)[:8] == b"\x89PNG\r\n\x1a\n" for n in names)


def test_stop_at_any_moment_and_start_again(folder):
    s = session(folder, J=1, n_samples=4, steps=5000)
    s.start_fit()
    s.wait("fit")
    assert s.start_sample()
    assert not s.start_sample() and "already running" in s.message  # re-entry guard
    while s.jobs["sample"].reports < 3:
        threading.Event().wait(0.02)
    s.stop("sample")
    assert s.wait("sample", timeout=60) == "stopped"
    assert s.samples is None and "stopped" in s.status
    s.steps = 10
    assert s.start_sample() and s.wait("sample") == "done" and s.samples is not None


def test_divergence_is_reported_and_the_session_stays_usable(folder):
    s = session(folder, J=0, family="gaussian", n_samples=2, steps=50)
    s.start_fit()
    s.wait("fit")
    s.model.coarse.theta = np.full_like(s.model.coarse.theta, np.nan)  # a broken model
    s.start_sample()
    assert s.wait("sample") == "error"
    assert "sample failed" in s.message and s.samples is None
    s.start_fit()
    assert s.wait("fit") == "done" and s.model.coarse.theta[0] != 0


def test_uploads_are_validated_and_bad_ones_change_nothing(folder, tmp_path):
    s = session(folder)
    before = s.data.fields.copy()
    assert not s.upload("bad.npz", b"not a zip at all")
    assert "upload refused" in s.message and np.array_equal(s.data.fields, before)
    assert not s.upload("x.npy", b"")
    x = np.random.default_rng(0).standard_normal((3, 16, 16)).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, x)
    assert s.upload("mine.npy", buf.getvalue())
    assert s.data.fields.shape == (3, 16, 16) and s.message == ""
    assert s.param.J.bounds == (0, 2)  # depth bounded by the size


def test_sessions_are_independent_and_freed(folder):
    a, b = session(folder, J=1, n_samples=2, steps=10), session(folder, J=1, n_samples=3,
                                                                 steps=10, sample_seed=1)
    for s in (a, b):
        s.start_fit()
    for s in (a, b):
        s.wait("fit")
    a.start_sample()
    b.start_sample()
    assert a.wait("sample") == b.wait("sample") == "done"
    assert a.samples.shape[0] == 2 and b.samples.shape[0] == 3
    refs = [weakref.ref(a), weakref.ref(b)]
    for s in (a, b):
        s.shutdown()
    del a, b, s
    gc.collect()
    assert all(r() is None for r in refs), "a finished session is still referenced"
    assert not [t for t in threading.enumerate() if t.name.startswith("explorer-")
                and t.is_alive()]


def test_dashboard_views_follow_the_session(folder):
    hv.extension("bokeh")
    d = Dashboard(session=session(folder, J=1, n_samples=2, steps=10))
    s = d.session
    s.start_fit()
    s.wait("fit")
    d.tick()
    assert "κ(H) raw" in d.model_view.kappa.object and "j=1" in d.model_view.kappa.object
    assert "λ_min ≤" in d.model_view.kappa.object and "Warning" not in d.model_view.kappa.object
    s.fit_rows = [{**r, "quadratic_base": {"ritz_min": -0.5, "ritz_max": 2.0, "indefinite": True},
                   "warnings": ["energy not bounded below: its quadratic couplings are "
                                "indefinite (lambda_min <= -0.5)"]}
                  if r["scale"] == "coarse" else r for r in s.fit_rows]
    text = d.model_view.kappa.object
    assert "**Warning** — coarse: energy not bounded below" in text   # flagged, with the reason
    assert "Sampling refuses" in text
    assert isinstance(d.model_view.potential.object, hv.Overlay)
    assert isinstance(d.model_view.flow.object, hv.Overlay)
    s.start_sample()
    d.tick()
    # disabled while the sample job runs (a short run may already have ended by this line: a job
    # only goes from running to finished, so an enabled button then is right)
    assert d.sampling_view.synthesis_button.disabled or not s.jobs["sample"].running
    while s.jobs["sample"].running:
        threading.Event().wait(0.05)
        d.tick()
    d.tick()  # delivers the result and starts the comparison on its own
    assert d.sampling_view.live.object[:8] == b"\x89PNG\r\n\x1a\n"
    assert "update" in d.sampling_view.controls.text.object
    assert s.jobs["compare"].running or s.jobs["compare"].status == "done"
    # one job at a time: nothing else starts while the comparison runs
    assert d.sampling_view.synthesis_button.disabled or not s.jobs["compare"].running
    s.wait("compare")
    d.tick()
    assert not d.sampling_view.synthesis_button.disabled
    assert not d.sampling_view.controls.start_button.disabled
    assert isinstance(d.compare_view.spectra.object, hv.Overlay)
    assert isinstance(d.compare_view.eigen.object, hv.Overlay)
    for pane in (d.compare_view.coupling_data, d.compare_view.coupling_samples):
        assert isinstance(pane.object, hv.Image)
    assert "total variation" in d.compare_view.table.object
    assert "kurtosis of the low-passes" in d.compare_view.table.object
    kurt = d.compare_view.kurtosis.object   # data and samples, low-passes and details, the line at 3
    assert isinstance(kurt, hv.Overlay) and len(kurt) == 9   # 4 curves, their markers, 3
    assert kurt.opts.get().kwargs["xticks"] == [0, 1]   # integer scales only
    d.shutdown()


def test_synthesis_is_its_own_action_and_scattering_statistics_in_compare(folder):
    s = session(folder, n_samples=2, synthesis_iterations=10)
    assert s.param.sample_method.objects == ["mala", "ula"]   # samplers of a model only
    assert "modulus" in s.param.family.objects  # the WCRG modulus family joins the menus
    assert not s.start_sample() and "fit a model first" in s.message
    assert s.start_synthesis() and s.wait("sample") == "done"
    assert s.samples.shape == (2, 32, 32) and s.sample_meta["generator"] == "scattering-synthesis"
    assert s.start_compare() and s.wait("compare") == "done"
    r = s.compare_report
    sc = r["scattering"]
    assert len(sc["names"]) == len(sc["data"]) == len(sc["samples"]) > 10
    assert {"S1", "S2"} <= set(sc["relative_difference"])
    # no model behind a synthesis: only the true φ⁴ energy of the data has a Hessian
    assert list(r["hessian"]["histograms"]) == ["pixel (true φ⁴ energy)"]
    assert r["mixing"] is None and "synthesis" in r["reasons"]["mixing"]
    from explorer.ui import figures
    assert isinstance(figures.scattering_compare(sc), hv.Layout)


def test_unbounded_model_is_refused_in_place_and_the_page_stays_usable(folder):
    """A model whose coarse factor the fit found unbounded below: Sample is refused with the
    reason in ``message`` (no job starts, no samples); a diverging run allowed explicitly fails
    as a message too; a proper model then samples in the same session."""
    s = session(folder, family="gaussian", J=0, n_samples=2, steps=30)
    assert s.start_fit() and s.wait("fit") == "done"
    m = s.model
    m.coarse.theta = np.zeros_like(m.coarse.theta)    # U = -|x|^2 / (2 var): improper
    m.coarse.theta[m.coarse.names.index("phi^2/2")] = -1.0 / float(np.var(s.data.fields))
    m.coarse.fit["bounded"] = {"bounded": False, "reason": "made improper by the test"}
    assert not s.start_sample()
    assert "sampling refused" in s.message and "made improper by the test" in s.message
    assert s.jobs["sample"].status == "idle" and s.samples is None
    s.param.update(allow_unbounded=True, steps=200)
    assert s.start_sample() and s.wait("sample", timeout=120) == "error"
    assert "ran away" in s.message and s.samples is None
    s.param.update(allow_unbounded=False, family="phi4", J=2, steps=30)
    assert s.start_fit() and s.wait("fit") == "done"
    assert s.start_sample() and s.wait("sample", timeout=120) == "done"
    assert s.samples.shape == (2, 32, 32) and np.isfinite(s.samples).all()


def test_every_family_fits_and_shows_its_kernels_without_computing_them(folder, monkeypatch):
    """The model view draws what the fit job computed (explorer.core.workflows.model_report):
    kernels of the finest factor whatever the family, a placeholder when it has no couplings."""
    import explorer.core.diagnostics as dg
    from explorer.core import workflows

    hv.extension("bokeh")
    d = Dashboard(session=session(folder, J=1))
    s = d.session
    for family in workflows.wcrg_families():
        s.family = family
        assert s.start_fit() and s.wait("fit") == "done", s.message
        assert set(s.learned["kernels"]) <= {"coarse", "j=1"} and "j=1" in s.learned["kernels"]
        monkeypatch.setattr(dg, "quadratic_kernels", lambda f: pytest.fail("drawn, not computed"))
        d.model_view._on_model()
        monkeypatch.undo()
        assert isinstance(d.model_view.kernels.object, hv.Image), family
        assert f"{family}, J = 1" in d.model_view.kappa.object
    s.learned = {**s.learned, "kernels": {}}       # a factor without coupling features
    assert "no quadratic couplings at j=1" in d.model_view.kernels.object.opts.get().kwargs["title"]
    d.shutdown()

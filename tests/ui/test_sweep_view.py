"""The app's Sweep view without a browser: a tiny sweep on a local Dask cluster arrives row by
row in the table and on the U(beta) pane (the same pane, a new object), Stop leaves a valid
partial table, bad input is refused in place before anything starts."""

from __future__ import annotations

import time

import holoviews as hv
import pytest

from explorer.sweep import read_table
from explorer.ui.sweep_state import SweepState
from explorer.ui.sweep_view import SweepView

TINY = dict(betas="0.5, 0.68", sizes="8", samples=16, depth=1, steps=20, workers=2)


def betas_drawn(obj) -> set[float]:
    return {float(b) for el in obj if isinstance(el, hv.Scatter) and el.label == "data L=8"
            for b in el.dimension_values(0)}


def test_sweep_view_runs_live_and_exports_the_table(tmp_path):
    view = SweepView(state=SweepState(**TINY, out_dir=str(tmp_path / "s")))
    s, pane = view.state, view.binder
    assert view.start() and view.run_button.disabled and not view.stop_button.disabled
    t0, seen = time.perf_counter(), []
    while s.job.running and time.perf_counter() - t0 < 120:
        view.tick()
        seen.append(len(s.rows))
        time.sleep(0.1)
    view.tick()
    assert s.job.status == "done", s.message
    assert view.binder is pane  # updated in place
    rows = s.rows
    assert [(r["beta"], r["size"], r["status"]) for r in rows] == [("0.5", "8", "ok"),
                                                                    ("0.68", "8", "ok")]
    assert 1 in seen or seen[-1] == 2  # rows arrive as points finish
    assert isinstance(pane.object, hv.Overlay) and betas_drawn(pane.object) == {0.5, 0.68}
    assert view.progress.value == view.progress.max == 2
    assert "2/2 points done" in view.text.object and "2 ok" in view.text.object
    assert s.dashboard.startswith("http://127.0.0.1:") and s.dashboard in view.link.object
    csv = view.download.callback().getvalue().decode()
    assert csv.splitlines()[0].startswith("index,") and len(csv.splitlines()) == 3
    assert not view.run_button.disabled and view.stop_button.disabled
    s.shutdown()


def test_stop_leaves_a_valid_partial_table(tmp_path):
    s = SweepState(**{**TINY, "betas": "0.4 0.45 0.5 0.55 0.6 0.65 0.68 0.7", "workers": 1})
    assert s.start()
    t0 = time.perf_counter()
    while s.job.running and not s.rows and time.perf_counter() - t0 < 120:
        s.poll()
        time.sleep(0.05)
    s.stop()
    assert s.wait(60) == "stopped"
    rows = read_table(s.table_path)
    assert 1 <= len(rows) < 8 and all(r["status"] == "ok" for r in rows)
    assert s.rows == rows and "stopped" in s.status
    folder = s.folder
    s.shutdown()
    assert not folder.exists()  # the session's temporary folder goes with it


@pytest.mark.parametrize("change, message", [
    ({"betas": " "}, "β list: give at least one value"),
    ({"betas": "0.5 -0.1"}, "beta must be finite and >= 0"),
    ({"betas": "0.5 x"}, "'x' is not a number"),
    ({"sizes": "12"}, "power of two"),
    ({"depth": 4}, "too deep"),
])
def test_bad_input_is_refused_in_place_and_starts_nothing(change, message, monkeypatch):
    import explorer.ui.jobs as jobs

    monkeypatch.setattr(jobs.Job, "start", lambda *a: pytest.fail("a job was started"))
    view = SweepView(state=SweepState(**{**TINY, **change}))
    assert not view.start()
    assert message in view.state.message and view.message.visible
    assert view.state.job.status == "idle" and not view.run_button.disabled

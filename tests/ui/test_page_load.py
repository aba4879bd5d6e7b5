"""What keeps the page fast to open and live while sampling, without a browser: shipped data read
once per process and shared read-only, the views after the first sent once the page is drawn, the
Sweep view built when opened, the sampler traces drawn off the event loop, the live field sent at
its own resolution. (Times are measured in benchmarks/bench_dashboard.py, never here.)"""

import io

import holoviews as hv
import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from PIL import Image

from explorer.core.fields.base import FieldSet
from explorer.core.io import save_fields
from explorer.ui import figures
from explorer.ui.dashboard import FIRST_VIEWS, Dashboard
from explorer.ui.session import Session
from explorer.ui.state import FieldData, load_asset

hv.extension("bokeh")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 16)).astype(np.float32)
    save_fields(tmp_path / "phi4_L64_beta0.68.npz",
                FieldSet(x, {"generator": "phi4", "params": {"beta": 0.68, "lam": 1.0}}))
    return tmp_path


def cards(d: Dashboard) -> list[str]:
    names = {id(card): name for name, card in d.panels.items()}
    return [names[id(o)] for o in d.layout.objects if id(o) in names]


def test_a_shipped_file_is_read_once_and_shared_read_only(folder):
    a, b = FieldData(folder=folder), FieldData(folder=folder)
    assert a.fields is b.fields   # one array for every session of the process
    with pytest.raises(ValueError):
        a.fields[0, 0, 0] = 1.0   # read-only: no session can change another's data
    assert a.summary == b.summary and a.summary is not b.summary
    a.summary["generator"] = "changed"
    assert b.summary["generator"] == "phi4"
    fs, summary = load_asset(folder / "phi4_L64_beta0.68.npz")
    assert fs.meta is not a.meta and summary["summary"]["size"] == 16
    # a rewritten file is read anew
    save_fields(folder / "phi4_L64_beta0.68.npz",
                FieldSet(np.random.default_rng(1).normal(size=(2, 16, 16)).astype(np.float32),
                         {"generator": "phi4", "params": {}}))
    assert FieldData(folder=folder).fields.shape == (2, 16, 16)


def test_deferred_views_follow_in_order_once(folder):
    d = Dashboard(session=Session(data=FieldData(folder=folder)))
    everything = list(d.panels)
    assert cards(d) == everything   # outside a server: the whole page at once
    d.defer_views()
    assert cards(d) == list(FIRST_VIEWS)
    root = d.__panel__().get_root(Document())   # the page as first sent: a valid document
    assert root is not None
    d.show_all()
    d.show_all()
    assert cards(d) == everything
    d.shutdown()


def test_the_sweep_view_is_built_when_its_card_opens(folder):
    d = Dashboard(session=Session(data=FieldData(folder=folder)))
    d.tick()   # ticks without a sweep view
    card = d.panels["Sweep"]
    assert d._sweep_view is None and card.collapsed
    card.collapsed = False
    assert d._sweep_view is not None and len(card.objects) == 1
    shown = card.objects[0]
    assert not isinstance(shown, pn.pane.Markdown)   # the view, not the placeholder
    card.collapsed = True
    card.collapsed = False
    assert card.objects[0] is shown   # built once
    d.tick()
    d.shutdown()


def test_traces_are_drawn_off_the_event_loop_and_the_final_ones_shown(folder):
    d = Dashboard(session=Session(data=FieldData(folder=folder)))
    view = d.sampling_view
    empty = view.traces.object
    job = d.session.jobs["sample"]
    job.infos = [{"stage": "j=1: sampling", "acceptance": 0.6 + 0.01 * i, "mean_energy": -i}
                 for i in range(20)]
    view.refresh_traces(force=True)
    assert view._traces_thread is not None and view._traces_thread.name == "explorer-traces"
    view.join_traces()
    assert view.traces.object != empty and view.traces.object[:8] == b"\x89PNG\r\n\x1a\n"
    # a forced drawing asked for while one runs is drawn after it
    first = view.traces.object
    job.infos = job.infos + [{"stage": "j=2: sampling", "acceptance": 0.5, "mean_energy": 1.0}]
    view.refresh_traces(force=True)
    view.refresh_traces(force=True)
    view.join_traces()
    assert view.traces.object != first and not view._traces_forced
    assert not view._drawing()
    d.shutdown()


def test_the_live_field_is_sent_at_its_own_resolution(folder):
    d = Dashboard(session=Session(data=FieldData(folder=folder)))
    d.session.live = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    img = Image.open(io.BytesIO(d.sampling_view.live.object))
    assert img.size == (64, 64)
    assert d.sampling_view.live.width == d.sampling_view.live.height == 320   # scaled on the page
    d.session.live = np.zeros((1024, 1024), np.float32)
    assert Image.open(io.BytesIO(d.sampling_view.live.object)).size == (320, 320)
    assert isinstance(d.sampling_view.live, pn.pane.PNG)
    d.shutdown()


def test_the_empty_traces_chart_is_drawn_once():
    assert figures.empty_traces_png() is figures.empty_traces_png()
    assert figures.empty_traces_png() == figures.traces_png({})


def test_the_generate_card_sends_its_widgets_when_first_opened(folder):
    d = Dashboard(session=Session(data=FieldData(folder=folder)))
    view = d.data_view
    card = view.generate_card
    assert card.collapsed and all(o is not view.gen_params for o in card.objects)
    d.tick()   # the job controls tick while the card is closed
    card.collapsed = False
    assert card.objects[0] is view.gen_params and len(card.objects) == 2
    buttons = card.objects[1].select(pn.widgets.Button)   # the job controls' own widgets
    assert any(b is view.controls.start_button for b in buttons)
    assert any(b is view.controls.stop_button for b in buttons)
    card.collapsed = True
    card.collapsed = False
    assert len(card.objects) == 2
    root = d.__panel__().get_root(Document())   # a valid document with the card open
    assert root is not None
    d.shutdown()

"""The app's Sweep view: a φ⁴ sweep β × L × seeds on Dask with Run / Stop, a progress bar and the
time left, the Dask dashboard's link, U(β) per L growing point by point, the distances, and the
table as ``results.csv``. The state is :class:`~explorer.ui.sweep_state.SweepState` (no Panel);
:meth:`SweepView.tick` (the dashboard's periodic callback, or by hand) pulls its progress in and
updates the panes' objects in place."""

from __future__ import annotations

import io

import panel as pn
import param

from explorer.sweep.curves import curves
from explorer.ui import figures
from explorer.ui.sweep_figures import distances_plot, observable_plot
from explorer.ui.sweep_state import SweepState

figures.ensure_backends(("bokeh",))  # the page draws with Bokeh

PLOT = dict(frame_width=360, frame_height=260)


def _duration(seconds) -> str:
    if seconds is None:
        return "unknown"
    s = int(round(seconds))
    m, s = divmod(s, 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class SweepView(pn.viewable.Viewer):
    """Inputs, Run / Stop, progress, the dashboard link, live U(β), distances, the table."""

    state = param.ClassSelector(class_=SweepState)

    def __init__(self, **params):
        if "state" not in params:
            params["state"] = SweepState()
        super().__init__(**params)
        s = self.state
        self.params = pn.Param(
            s, parameters=["betas", "sizes", "samples", "family", "depth", "steps", "seeds",
                           "scheduler", "workers", "out_dir"], show_name=False, width=300,
            widgets={"betas": {"name": "β list", "css_classes": ["w-sweep-betas"]},
                     "sizes": {"name": "L list", "css_classes": ["w-sweep-sizes"]},
                     "samples": {"type": pn.widgets.IntInput, "name": "Samples"},
                     "family": {"name": "Model family"},
                     "depth": {"type": pn.widgets.IntInput, "name": "Depth J"},
                     "steps": {"type": pn.widgets.IntInput, "name": "Steps per scale"},
                     "seeds": {"name": "Seeds"},
                     "scheduler": {"name": "Scheduler address (empty: local cluster)",
                                   "placeholder": "tcp://host:8786"},
                     "workers": {"type": pn.widgets.IntInput, "name": "Local workers"},
                     "out_dir": {"name": "Output folder (empty: temporary)"}})
        self.run_button = pn.widgets.Button(label="Run sweep", color="primary", width=110,
                                            css_classes=["w-sweep-run"])
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=80,
                                             disabled=True, css_classes=["w-sweep-stop"])
        self.run_button.on_click(lambda e: self.start())
        self.stop_button.on_click(lambda e: s.stop())
        self.progress = pn.indicators.Progress(value=0, max=1, width=220, height=20,
                                               sizing_mode="fixed", active=False)
        self.text = pn.pane.Markdown("", width=420, height=60, sizing_mode="fixed",
                                     css_classes=["sweep-status"])
        self.link = pn.pane.Markdown("", width=420, css_classes=["sweep-dashboard"])
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, width=420,
                                     css_classes=["sweep-message"])
        self.binder = pn.pane.HoloViews(self._binder_obj(), css_classes=["sweep-binder"])
        self.distances = pn.pane.HoloViews(self._distances_obj(),
                                           css_classes=["sweep-distances"])
        self.download = pn.widgets.FileDownload(callback=self._csv, filename="results.csv",
                                                label="Table (results.csv)", width=220)
        s.param.watch(self._on_message, "message")
        s.param.watch(self._on_rows, "rows")

    # ------------------------------------------------------------ actions
    def start(self) -> bool:
        ok = self.state.start()
        self.tick()
        return ok

    def _csv(self):
        try:
            return io.BytesIO(self.state.export_csv())
        except ValueError as e:  # nothing yet: say so in place
            self.state.message = str(e)
            return io.BytesIO(b"")

    # ------------------------------------------------------------ panes
    def _curves(self) -> dict:
        try:
            return curves(self.state.rows)
        except ValueError:  # rows of several settings at one L (a reused folder): none drawn
            return curves([])

    def _binder_obj(self):
        return observable_plot(self._curves(), "binder").opts(**PLOT)

    def _distances_obj(self):
        return distances_plot(self.state.rows).opts(**PLOT)

    def _on_rows(self, *_):
        # the existing panes get new objects: the page swaps the plots in place
        self.binder.object = self._binder_obj()
        self.distances.object = self._distances_obj()

    def _on_message(self, event) -> None:
        self.message.object = event.new
        self.message.visible = bool(event.new)

    def tick(self) -> None:
        """Pull the sweep's progress into the widgets (periodic callback; also by hand)."""
        s = self.state
        changed = s.poll()
        running = s.job.running
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        if not changed:
            return
        self.progress.max = max(1, s.total)
        self.progress.value = min(s.done, self.progress.max)
        left = "" if not running else f" · time left {_duration(s.time_left)}"
        self.text.object = (f"**{s.done}/{s.total} points done**{left}"
                            + (f" · {s.last}" if s.last and running else "")
                            + (f"\n\n{s.status}" if s.status and not running else ""))
        if s.dashboard:
            self.link.object = f"Dask dashboard: [{s.dashboard}]({s.dashboard})"

    def __panel__(self):
        controls = pn.Column(self.params, pn.Row(self.run_button, self.stop_button,
                                                 self.progress),
                             self.text, self.link, self.message, self.download, width=460)
        return pn.Row(controls, pn.Column(self.binder, self.distances))

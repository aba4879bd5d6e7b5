"""Shared pieces of the dashboard's views: plot sizes, the empty-figure placeholder, and the
start / Stop / progress / status controls of one job (:class:`JobControls`)."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param

from explorer.ui.session import Session

TICK_MS = 200  # page refresh period while jobs run: 5 updates per second
TRACES_EVERY = 5.0  # seconds between redraws of the sampler traces
PLOT = dict(frame_width=320, frame_height=240)
MATRIX = dict(frame_width=300, frame_height=300)  # the scale-coupling matrices, square cells
LEGEND_RIGHT = dict(frame_width=300, frame_height=240)  # figures with their legend beside them


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _empty(title: str) -> hv.Curve:
    """A titled empty placeholder (own dimension names: never linked to other plots' axes)."""
    name = "".join(ch for ch in title if ch.isalnum()) or "empty"
    return hv.Curve([], kdims=[f"{name}_x"], vdims=[f"{name}_y"]).opts(
        title=title, xaxis=None, yaxis=None, **PLOT)


class JobControls(pn.viewable.Viewer):
    """Start / Stop buttons, a progress bar and a one-line status of one job."""

    session = param.ClassSelector(class_=Session)
    job = param.String()
    label = param.String()
    action = param.String(default="", doc="the Session action of the start button (default: job)")

    def __init__(self, **params):
        super().__init__(**params)
        self.action = self.action or self.job
        self.start_button = pn.widgets.Button(label=self.label, color="primary", width=110,
                                              css_classes=[f"b-{self.action}"])
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=80,
                                             disabled=True)
        # fixed sizes everywhere a value changes several times a second: a change then never
        # forces the browser to lay out the whole page again
        self.progress = pn.indicators.Progress(value=0, max=100, width=220, height=20,
                                               active=False, sizing_mode="fixed")
        self.text = pn.pane.Markdown("", css_classes=[f"{self.job}-status"], width=420,
                                     height=60, sizing_mode="fixed")
        # why the start button is disabled, or why a click was refused: beside the button
        self.hint = pn.pane.Markdown("", css_classes=[f"{self.action}-hint"], width=420,
                                     margin=(0, 10), styles={"color": "#8a4b00"})
        self._refused_text = ""
        self.stop_button.on_click(lambda e: self.session.stop(self.job))
        self.start_button.on_click(self._on_start)
        self.refresh()

    def _on_start(self, event=None) -> bool:
        """The start button's click: start the action, or say in place why not."""
        s = self.session
        ok = s.start(self.action)
        if ok:
            self._refused_text = ""
        else:
            self._refused_text = s.message or s.refusal(self.action)
            s.message = ""  # shown here, beside the button, not at the top of the page
        self.refresh()
        return ok

    def refresh(self) -> None:
        """Enable the start button when its action can start, else disable it and say why."""
        s = self.session
        why = s.refusal(self.action)
        self.start_button.disabled = bool(why)
        self.stop_button.disabled = not s.jobs[self.job].running
        if any(j.running for j in s.jobs.values()):
            self._refused_text = ""  # a refusal is stale once work started
        own = s.jobs[self.job].running  # the status line below says so already
        self.hint.object = self._refused_text or ("" if own or not why else f"*{why}*")

    def update(self, rep, running: bool) -> None:
        self.refresh()
        self.progress.active = False
        job = self.session.jobs[self.job]
        if rep is not None:
            self.progress.value = int(100 * rep.fraction)
            info = ", ".join(f"{k} {_fmt(v)}" for k, v in rep.info.items()
                             if k in ("acceptance", "mean_energy", "scale", "step", "time",
                                      "loss", "tau_m2"))
            state = "running" if running else job.status
            res = job.result if not running else None
            made = f" · {len(res.fields)} fields" if hasattr(res, "fields") else ""
            self.text.object = (f"**{self.job}** {state}: {rep.stage} {rep.step}/{rep.total}"
                                f" · update {job.reports} · {job.seconds:.1f} s{made}"
                                + (f" · {info}" if info else ""))
        elif not running and job.status == "idle":
            self.text.object = ""

    def __panel__(self):
        return pn.Column(pn.Row(self.start_button, self.stop_button, self.progress), self.hint,
                         self.text)

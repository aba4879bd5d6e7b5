"""The dashboard: Stories, Data, Model, Sampling, Compare and Export views over one
:class:`Session`, and the Sweep view (:mod:`explorer.ui.sweep_view`, its own state).

Each view is a ``pn.viewable.Viewer`` returning plain layouts (they display in a notebook too);
``explorer/app.py`` only puts the :class:`Dashboard` in a template. Long work runs in the
session's job threads; one periodic callback per page (:meth:`Dashboard.tick`, every
:data:`TICK_MS`) pulls their progress and results into the panes, so the page never blocks and
nothing touches Bokeh models from a thread. A button is enabled only when its action can start
(:meth:`Session.refusal`), with the reason beside it otherwise; in a served page the data set,
model and sampler settings live in the URL (:meth:`Dashboard.link_location`).
"""

from __future__ import annotations

import io
import threading
import time
import traceback

import numpy as np
import pandas as pd
import panel as pn
import param

from explorer.core.transfer import size_transfer_check
from explorer.ui import figures
from explorer.ui.compare_view import CompareView
from explorer.ui.controls import PLOT, TICK_MS, TRACES_EVERY, JobControls, _empty, _fmt
from explorer.ui.data_view import DataView
from explorer.ui.session import MODEL_SETTINGS, SAMPLER_SETTINGS, Session
from explorer.ui.stories import available_stories
from explorer.ui.sweep_view import SweepView

figures.ensure_backends(("bokeh",))  # the page draws with Bokeh

#: the views a served page is sent with; the others follow once it is drawn
#: (:meth:`Dashboard.defer_views`)
FIRST_VIEWS = ("Stories", "Data")
LIVE_SIDE = 320  # px: the live field's side on the page

class ModelView(pn.viewable.Viewer):
    """Feature family, depth, wavelet, method and options; Fit with progress and Stop; the
    learned physics: κ(H) and couplings per scale, potentials, kernels, RG flow."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.params = pn.Param(
            s, parameters=["family", "J", "wavelet", "method", "radius", "potential", "degree",
                           "parity", "n_windows", "eps_rel", "dequantise", "gaussianise"],
            show_name=False, width=260,
            widgets={"family": {"name": "Feature family", "css_classes": ["w-family"]},
                     "J": {"type": pn.widgets.IntInput, "name": "Depth J",
                           "css_classes": ["w-depth"]},
                     "wavelet": {"name": "Wavelet"}, "method": {"name": "Fitting method"},
                     "radius": {"name": "Coupling radius"},
                     "potential": {"name": "Potential basis"},
                     "degree": {"name": "Polynomial degree"},
                     "n_windows": {"name": "Potential windows"},
                     "eps_rel": {"name": "Modulus width ε / rms"},
                     "parity": {"name": "Potential parity (all: odd terms)"},
                     "dequantise": {"name": "Dequantise σ (discrete data)"},
                     "gaussianise": {"name": "Gaussianise the one-point law"}})
        self.controls = JobControls(session=s, job="fit", label="Fit")
        self.kappa = pn.pane.Markdown("Fit a model to see κ(H) per scale.", width=560,
                                      css_classes=["kappa-table"])
        # a table, not text: names like coupling[HH,HH] are not Markdown
        self.couplings_title = pn.pane.Markdown("#### Largest couplings per scale",
                                                visible=False)
        self.couplings = pn.widgets.Tabulator(
            pd.DataFrame(columns=["scale", "coupling", "θ"]), disabled=True, show_index=False,
            width=560, height=240, layout="fit_data_table", visible=False,
            css_classes=["couplings-table"])
        self.potential = pn.pane.HoloViews(None, css_classes=["model-potential"])
        self.kernels = pn.pane.HoloViews(None, css_classes=["model-kernels"])
        self.flow = pn.pane.HoloViews(None, css_classes=["model-flow"])
        s.param.watch(self._on_model, ["fit_rows", "learned", "rgflow"])

    @staticmethod
    def coupling_rows(fit_rows: list[dict], top: int = 8) -> pd.DataFrame:
        """The ``top`` largest couplings |θ| of every factor, one row each."""
        rows = [{"scale": r["scale"], "coupling": k, "θ": float(f"{v:.4g}")}
                for r in fit_rows
                for k, v in sorted(r["theta"].items(), key=lambda kv: -abs(kv[1]))[:top]]
        return pd.DataFrame(rows, columns=["scale", "coupling", "θ"])

    def _on_model(self, *_):
        s = self.session
        if not s.fit_rows:
            self.kappa.object = "Fit a model to see κ(H) per scale."
            self.couplings.visible = self.couplings_title.visible = False
            return
        rows = ["| scale | parameters | κ(H) raw | κ(H) preconditioned | fit time (s) | "
                "quadratic part: λ_min ≤ |", "|---|---|---|---|---|---|"]
        warnings = []
        for r in s.fit_rows:
            q = r.get("quadratic_base")
            warnings += [f"{r['scale']}: {w}" for w in r.get("warnings") or []]
            rows.append(f"| {r['scale']} | {r['parameters']} | {_fmt(r['kappa_raw'])} | "
                        f"{_fmt(r['kappa_preconditioned'])} | {_fmt(r['seconds'], 2)} | "
                        f"{'—' if q is None else _fmt(q['ritz_min'])} |")
        total = s.model.provenance.get("fit_seconds", 0.0)
        warn = ("" if not warnings else
                "\n\n**Warning** — " + "; ".join(warnings) + ". Sampling refuses an energy "
                "unbounded below: try a larger depth J, another family, or fewer coupling "
                "shifts.")
        self.kappa.object = (f"**κ(H)** of the score-matching system per scale "
                             f"({s.model.family}, J = {s.model.J}, {s.model.wavelet}; fit "
                             f"{total:.2f} s)\n\n" + "\n".join(rows) + warn)
        self.couplings.value = self.coupling_rows(s.fit_rows)
        self.couplings.visible = self.couplings_title.visible = True
        learned = s.learned or {"potential": {"grid": [], "V": {}}, "kernels": {}}
        pot = learned["potential"]
        V = {k: np.asarray(v) for k, v in pot["V"].items()}
        self.potential.object = (figures.potentials(np.asarray(pot["grid"]), V).opts(**PLOT)
                                 if any(np.any(v != 0) for v in V.values())
                                 else _empty("no potential features in this family"))
        finest = "coarse" if s.model.J == 0 else "j=1"
        k = learned["kernels"].get(finest)  # only factors with coupling features have kernels
        self.kernels.object = (
            figures.kernel_mosaic({**k, "kernels": np.asarray(k["kernels"])},
                                  title=f"kernels {finest}").opts(frame_width=260,
                                                                  frame_height=260)
            if k else _empty(f"no quadratic couplings at {finest}"))
        self.flow.object = (figures.rg_flow(s.rgflow).opts(**PLOT) if s.rgflow
                            else _empty("RG flow (φ⁴ / Gaussian families)"))

    def __panel__(self):
        return pn.Row(pn.Column(self.params, self.controls, width=460),
                      pn.Column(self.kappa, self.couplings_title, self.couplings,
                                pn.FlexBox(self.potential, self.kernels, self.flow,
                                           flex_wrap="wrap")))


class SamplingView(pn.viewable.Viewer):
    """Sample button, live field at the current scale, acceptance and energy traces."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.params = pn.Param(s, parameters=["n_samples", "steps", "sample_method",
                                              "sample_seed", "sample_size", "allow_unbounded"],
                               show_name=False, width=260,
                               widgets={"n_samples": {"type": pn.widgets.IntInput,
                                                      "name": "Samples",
                                                      "css_classes": ["w-samples"]},
                                        "steps": {"type": pn.widgets.IntInput,
                                                  "name": "Steps per scale",
                                                  "css_classes": ["w-steps"]},
                                        "sample_method": {"name": "Sampler"},
                                        "sample_seed": {"name": "Seed"},
                                        "sample_size": {"type": pn.widgets.IntInput,
                                                        "name": "Size (0: as fitted; 2L, 4L: "
                                                                "learn small, generate large)",
                                                        "css_classes": ["w-sample-size"]},
                                        "allow_unbounded": {"name": "allow unbounded (experiment)"}})
        # what a size transfer extrapolated and how its samples compare with the data
        self.transfer = pn.pane.Markdown("", width=440, css_classes=["size-transfer"])
        s.param.watch(self._on_samples, "sample_meta")
        self.controls = JobControls(session=s, job="sample", label="Sample")
        # scattering synthesis from the data: another way to make samples, no model involved
        self.synthesis_params = pn.Param(
            s, parameters=["synthesis_iterations", "synthesis_fields"], show_name=False,
            width=260,
            widgets={"synthesis_iterations": {"type": pn.widgets.IntInput,
                                              "name": "L-BFGS iterations"},
                     "synthesis_fields": {"type": pn.widgets.IntInput,
                                          "name": "data fields matched"}})
        self.synthesis_controls = JobControls(session=s, job="sample", action="synthesize",
                                              label="Synthesize")
        self.synthesis_button = self.synthesis_controls.start_button
        self.synthesis_button.css_classes = ["w-synthesize"]
        # The live field is a PNG swapped in place on every update (cheap for the browser at
        # 5 updates/s); a Bokeh plot fed by a HoloViews Pipe froze on the full page, and
        # replacing a Bokeh plot 4 times a second overloads a small machine's browser. The PNG
        # has the field's own pixels (a 64² field: ~12 kB, not the ~19 kB of a 320² picture),
        # the browser scales it up without smoothing.
        self.live_title = pn.pane.Markdown("**current field** (chain 0)", width=320, height=50,
                                           sizing_mode="fixed")
        self.live = pn.pane.PNG(figures.field_png(np.zeros((2, 2)), size=2), width=LIVE_SIDE,
                                height=LIVE_SIDE, sizing_mode="fixed", css_classes=["live-field"],
                                stylesheets=["img { image-rendering: pixelated; }"])
        # traces are small PNG charts too (re-rendering Bokeh figures while sampling blocked the
        # browser for tens of seconds on a busy 2-core machine)
        self.traces = pn.pane.PNG(figures.empty_traces_png(), width=420, height=360,
                                  sizing_mode="fixed", css_classes=["sample-traces"])
        self._traces_at = 0.0
        self._traces_thread: threading.Thread | None = None
        self._traces_png: bytes | None = None  # drawn, not shown yet (install_traces)
        self._traces_forced = False
        self._traces_lock = threading.Lock()
        s.param.watch(self._on_live, "live")

    def _on_samples(self, event) -> None:
        meta, s = event.new or {}, self.session
        tr = meta.get("size_transfer")
        if not tr or s.samples is None or s.data.fields is None:
            self.transfer.object = ""
            return
        c = size_transfer_check(s.data.fields, s.samples, tr)
        self.transfer.object = (
            f"**Size transfer**: fitted at {c['fitted_size']}², sampled at {c['size']}² "
            f"(levels j = {', '.join(c['extrapolated'])} extrapolated from the coarsest fitted "
            f"one; detail growth log₂ {c['detail_growth_log2']:.3f}, 7/8 at β_c"
            + (f"; extrapolated with the {c['extrapolation_method']}: "
               f"{c['extrapolation_regime']}" if c.get("extrapolation_method") else "")
            + ").\n\n"
            "| | data ({0}²) | samples ({1}²) |\n|---|---|---|\n"
            "| Binder U | {2:.3f} ± {3:.3f} | {4:.3f} ± {5:.3f} |\n"
            "| χ = L²⟨m²⟩ | {6:.4g} | {7:.4g} |\n\n"
            "χ ratio {8:.2f}; at β_c finite-size scaling gives 2^(7k/4) = {9:.2f}, and U stays "
            "≈ 0.6 at every size.".format(
                c["fitted_size"], c["size"], c["binder_data"], c["binder_data_err"],
                c["binder_samples"], c["binder_samples_err"], c["chi_data"], c["chi_samples"],
                c["chi_ratio"], c["chi_ratio_critical"]))

    def _on_live(self, event) -> None:
        x = event.new
        if x is None:
            return
        n = np.asarray(x).shape[-1]
        self.live.object = figures.field_png(x, size=min(n, LIVE_SIDE))
        self.live_title.object = (f"**current field** (chain 0, {n}×{n} at this scale; "
                                  f"{self.session.jobs['sample'].reports} updates)")

    def refresh_traces(self, force: bool = False) -> None:
        """Redraw the traces while sampling runs, :data:`TRACES_EVERY` seconds after the last
        drawing ended (a chart costs 0.1 s idle, ~2 s on a saturated 2-core machine). The chart
        is drawn on a thread of its own, never on the page's event loop (a click on Stop is
        answered meanwhile), and shown by a later tick (:meth:`install_traces`). ``force``: draw
        the final traces, after the drawing under way if any."""
        self._traces_forced = self._traces_forced or force
        self.install_traces()
        if not self._drawing() and time.monotonic() - self._traces_at >= TRACES_EVERY:
            self._start_drawing()

    def _drawing(self) -> bool:
        return self._traces_thread is not None and self._traces_thread.is_alive()

    def _start_drawing(self) -> None:
        self._traces_forced = False
        self._traces_thread = threading.Thread(target=self._draw_traces,
                                               args=(self.trace_series(),),
                                               name="explorer-traces", daemon=True)
        self._traces_thread.start()

    def trace_series(self) -> dict[str, dict[str, list]]:
        """Acceptance and mean energy of the sampler's reports, per scale."""
        series: dict[str, dict[str, list]] = {}
        for i in list(self.session.jobs["sample"].infos):
            scale = str(i.get("stage", "")).split(":")[0]
            d = series.setdefault(scale, {"acceptance": [], "mean energy": []})
            if "acceptance" in i and "mean_energy" in i:
                d["acceptance"].append(i["acceptance"])
                d["mean energy"].append(i["mean_energy"])
        return series

    def _draw_traces(self, series: dict) -> None:
        try:
            png = figures.traces_png(series)
            with self._traces_lock:
                self._traces_png = png
        except Exception:  # noqa: BLE001 - a chart failing must not end the sampling view
            traceback.print_exc()
        self._traces_at = time.monotonic()  # after drawing: a slow draw never hogs the thread

    def install_traces(self) -> None:
        """Show the last chart drawn (on the event loop; a cheap check when there is none), and
        start the forced drawing that waited for the one under way."""
        with self._traces_lock:
            png, self._traces_png = self._traces_png, None
        if png is not None:
            self.traces.object = png
        if self._traces_forced and not self._drawing():
            self._start_drawing()

    def join_traces(self, timeout: float = 10.0) -> None:
        """Wait for the drawings under way or due (tests, session end) and show the last."""
        for _ in range(2):  # the drawing under way, then a forced one that waited for it
            if self._traces_thread is not None:
                self._traces_thread.join(timeout)
            self.install_traces()

    def __panel__(self):
        synthesis = pn.Card(
            pn.pane.Markdown("Scattering-spectra synthesis: fields matching the scattering "
                             "spectra of the first data fields, from white noise (no model; "
                             "Samples and Seed as above)."),
            self.synthesis_params, self.synthesis_button, self.synthesis_controls.hint,
            title="Scattering synthesis",
            collapsed=True, width=440)
        return pn.Row(pn.Column(self.params, self.controls, self.transfer, synthesis, width=460),
                      pn.Column(self.live_title, self.live),
                      pn.Column(self.traces))


class ExportView(pn.viewable.Viewer):
    """Downloads: samples, fitted model, JSON summary, figures (PNG, zipped)."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.message = pn.pane.Alert("", alert_type="warning", visible=False, width=420)

        def guarded(fn):
            def cb():
                try:
                    return io.BytesIO(fn())
                except Exception as exc:  # nothing to export yet: say so, keep the page alive
                    self.message.object = str(exc)
                    self.message.visible = True
                    return io.BytesIO(b"")
            return cb

        self.downloads = [
            pn.widgets.FileDownload(callback=guarded(s.export_samples), filename="samples.npz",
                                    label="Samples (.npz)", width=220),
            pn.widgets.FileDownload(callback=guarded(s.export_model), filename="model.npz",
                                    label="Fitted model (.npz)", width=220),
            pn.widgets.FileDownload(callback=guarded(s.export_summary), filename="summary.json",
                                    label="Summary (.json)", width=220),
            pn.widgets.FileDownload(callback=guarded(s.export_figures), filename="figures.zip",
                                    label="Figures (PNG, .zip)", width=220),
        ]

    def __panel__(self):
        return pn.Column(pn.pane.Markdown("Files are built when you click."), *self.downloads,
                         self.message)


class StoriesView(pn.viewable.Viewer):
    """One-click presets (:mod:`explorer.ui.stories`): each button loads a data set and the
    model and sampler settings, starts the fit (then sampling, then the comparison) and says in
    two sentences what to look for."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        shipped = list(s.data.param.asset.objects.values())
        self.stories = available_stories(shipped)
        self.buttons = []
        for st in self.stories:
            b = pn.widgets.Button(label=st.title, width=230, css_classes=[f"story-{st.key}"])
            b.on_click(lambda e, st=st: self.start(st))
            self.buttons.append(b)
        self.text = pn.pane.Markdown(
            "Pick a story: it loads the data and the model settings, fits, samples and "
            "compares, and tells you what to look for.", width=900, css_classes=["story-text"])

    def start(self, story) -> bool:
        ok = self.session.start_story(story)
        steps = " → ".join(story.actions) + (" → compare" if "sample" in story.actions else "")
        self.text.object = (f"**{story.title}** ({steps}). {story.look_for}" if ok else
                            f"**{story.title}** not started: {self.session.message}")
        return ok

    def refresh(self) -> None:
        busy = any(j.running for j in self.session.jobs.values())
        for b in self.buttons:
            b.disabled = busy

    def __panel__(self):
        return pn.Column(pn.FlexBox(*self.buttons, flex_wrap="wrap", sizing_mode="stretch_width"),
                         self.text, sizing_mode="stretch_width")


class Dashboard(pn.viewable.Viewer):
    """All views over one session, plus the periodic pull of job progress."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        if "session" not in params:
            params["session"] = Session()
        super().__init__(**params)
        s = self.session
        self.stories_view = StoriesView(session=s)
        self.data_view = DataView(session=s)
        self.model_view = ModelView(session=s)
        self.sampling_view = SamplingView(session=s)
        self.compare_view = CompareView(session=s)
        self.export_view = ExportView(session=s)
        self._sweep_view: SweepView | None = None  # built when its card is first opened
        self._sweep_shown = False
        self.controls = {"generate": self.data_view.controls, "fit": self.model_view.controls,
                         "sample": self.sampling_view.controls,
                         "compare": self.compare_view.controls}
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False,
                                   css_classes=["session-message"])
        self.status = pn.pane.Markdown("", css_classes=["session-status"])
        s.param.watch(self._on_message, "message")
        s.param.watch(lambda e: setattr(self.status, "object", e.new), "status")
        # The views are stacked as collapsible cards on one page. (Switching views was tried
        # with pn.Tabs and with visibility toggles: with Panel 1.9 the browser then missed the
        # HoloViews stream updates / visibility patches and the live sampling view froze.)
        self.views = {"Stories": self.stories_view, "Data": self.data_view,
                      "Model": self.model_view, "Sampling": self.sampling_view,
                      "Compare": self.compare_view, "Export": self.export_view}
        self.panels = {name: pn.Card(view, title=name, css_classes=[f"view-{name.lower()}"],
                                     sizing_mode="stretch_width")
                       for name, view in self.views.items()}
        # the Sweep (its own state, a Dask cluster) is built when its card is first opened
        self.panels["Sweep"] = pn.Card(pn.pane.Markdown("Opening the sweep view…"), title="Sweep",
                                       collapsed=True, css_classes=["view-sweep"],
                                       sizing_mode="stretch_width")
        self.panels["Sweep"].param.watch(self._on_sweep_opened, "collapsed")
        self.layout = pn.Column(self.alert, self.status, sizing_mode="stretch_width")
        self.show_all()
        self._callback = None
        self._ticking = False
        self.location = None

    @property
    def sweep_view(self) -> SweepView:
        """The Sweep view, built on first use (its card opened, or asked for by code)."""
        if self._sweep_view is None:
            self._sweep_view = SweepView()
        return self._sweep_view

    def _on_sweep_opened(self, event) -> None:
        if not event.new and not self._sweep_shown:
            self.panels["Sweep"].objects = [self.sweep_view]
            self._sweep_shown = True

    def defer_views(self, first: tuple[str, ...] = FIRST_VIEWS) -> None:
        """Send only the ``first`` views with the page; the others follow once the browser
        has drawn it (:meth:`show_all` on the page's load). The first render then waits for
        the figures a visitor sees first, not for the whole page."""
        self.layout.objects = [self.alert, self.status,
                               *(card for name, card in self.panels.items() if name in first)]

    def show_all(self) -> None:
        """Every view on the page (once; :meth:`defer_views` held some back)."""
        shown = [o for o in self.layout.objects if isinstance(o, pn.Card)]
        missing = [card for card in self.panels.values() if all(card is not o for o in shown)]
        if missing:
            self.layout.extend(missing)

    def _on_message(self, event) -> None:
        self.alert.object = event.new
        self.alert.visible = bool(event.new)

    def refresh_buttons(self) -> None:
        """Every start button enabled exactly when its action can start (cheap: a widget only
        sends a change)."""
        for ctl in (*self.controls.values(), self.sampling_view.synthesis_controls):
            ctl.refresh()
        self.stories_view.refresh()

    def tick(self) -> None:
        """Pull job progress into the page (periodic callback; also callable by hand). A view
        failing to draw is reported and never leaves a job's status stale."""
        if self._ticking:  # re-entry guard
            return
        self._ticking = True
        try:
            s = self.session
            new = s.poll()
            for name, ctl in self.controls.items():
                if name in new or name in s.finished_jobs:
                    job = s.jobs[name]
                    try:
                        ctl.update(job.latest, job.running)
                    except Exception as exc:  # noqa: BLE001 - the page must keep ticking
                        traceback.print_exc()
                        s.message = f"{name}: the status line failed: {exc}"
            if "sample" in new or "sample" in s.finished_jobs:
                self.sampling_view.refresh_traces(force="sample" in s.finished_jobs)
            else:
                self.sampling_view.install_traces()
            if ("sample" in s.finished_jobs and s.jobs["sample"].status == "done"
                    and s.samples is not None):
                s.start_compare()  # the comparison follows every finished sampling run
            self.refresh_buttons()
            if self._sweep_view is not None:
                self._sweep_view.tick()
        finally:
            self._ticking = False

    # ------------------------------------------------------------ links that reopen a state
    def link_location(self, location) -> None:
        """Keep the data set, model and sampler settings in the page's URL (``?data=...&
        family=...&J=...``): the settings of the URL are applied first (invalid ones refused
        with a message, the rest kept), then every change is written back, so a copied link
        reopens the same configuration."""
        s = self.session
        s.apply_settings(dict(location.query_params))
        location.sync(s.data, {"asset": "data"})
        location.sync(s, {k: k for k in (*MODEL_SETTINGS, *SAMPLER_SETTINGS)})
        self.location = location

    def start(self, period: int = TICK_MS) -> None:
        """Start the periodic pull (once per page), link the settings to the URL and stop
        every job when the session ends. A served page is sent with its first views only,
        the others follow once the browser has drawn it (:meth:`defer_views`)."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.tick, period=period)
            if pn.state.curdoc is not None:
                pn.state.on_session_destroyed(lambda ctx: self.shutdown())
                if pn.state.curdoc.session_context is not None:
                    self.defer_views()
                    pn.state.onload(self.show_all)
            if pn.state.location is not None and self.location is None:
                self.link_location(pn.state.location)
        self.refresh_buttons()

    def shutdown(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self.location is not None:
            for obj in (self.session.data, self.session):
                try:
                    self.location.unsync(obj)
                except Exception:  # noqa: BLE001 - the page is going away anyway
                    pass
            self.location = None
        self.session.shutdown()
        self.sampling_view.join_traces()
        if self._sweep_view is not None:
            self._sweep_view.state.shutdown()

    def __panel__(self):
        return self.layout

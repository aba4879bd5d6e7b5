"""The dashboard: Data, Model, Sampling, Compare and Export views over one :class:`Session`, and
the Sweep view (:mod:`explorer.ui.sweep_view`, its own state).

Each view is a ``pn.viewable.Viewer`` returning plain layouts (they display in a notebook too);
``explorer/app.py`` only puts the :class:`Dashboard` in a template. Long work runs in the
session's job threads; one periodic callback per page (:meth:`Dashboard.tick`, every
:data:`TICK_MS`) pulls their progress and results into the panes, so the page never blocks and
nothing touches Bokeh models from a thread.
"""

from __future__ import annotations

import io
import time

import holoviews as hv
import numpy as np
import panel as pn
import param

from explorer.ui import figures
from explorer.ui.generic_panes import summary_markdown, verdicts_markdown
from explorer.ui.components import FieldBrowser
from explorer.ui.session import Session
from explorer.ui.sweep_view import SweepView

figures.ensure_backends(("bokeh",))  # the page draws with Bokeh

TICK_MS = 250  # page refresh period while jobs run: 4 updates per second
TRACES_EVERY = 5.0  # seconds between redraws of the sampler traces
PLOT = dict(frame_width=320, frame_height=240)


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

    def __init__(self, **params):
        super().__init__(**params)
        self.start_button = pn.widgets.Button(label=self.label, color="primary", width=110)
        self.stop_button = pn.widgets.Button(label="Stop", color="warning", width=80,
                                             disabled=True)
        # fixed sizes everywhere a value changes several times a second: a change then never
        # forces the browser to lay out the whole page again
        self.progress = pn.indicators.Progress(value=0, max=100, width=220, height=20,
                                               active=False, sizing_mode="fixed")
        self.text = pn.pane.Markdown("", css_classes=[f"{self.job}-status"], width=420,
                                     height=60, sizing_mode="fixed")
        self.stop_button.on_click(lambda e: self.session.stop(self.job))

    def update(self, rep, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
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
        return pn.Column(pn.Row(self.start_button, self.stop_button, self.progress), self.text)


class DataView(pn.viewable.Viewer):
    """Shipped assets, generators with progress and Stop, uploads with validation, a gallery."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.browser = FieldBrowser(data=s.data)
        self.controls = JobControls(session=s, job="generate", label="Generate")
        self.controls.start_button.on_click(lambda e: s.start_generate())
        self.gen_params = pn.Param(
            s, parameters=["gen_kind", "gen_size", "gen_samples", "gen_beta", "gen_lam",
                           "gen_eta", "gen_seed"], show_name=False, width=300,
            widgets={"gen_kind": {"name": "Generator"}, "gen_size": {"name": "Size L"},
                     "gen_samples": {"name": "Fields N"}, "gen_beta": {"name": "β"},
                     "gen_lam": {"name": "λ"}, "gen_eta": {"name": "η (Gaussian)"},
                     "gen_seed": {"name": "Seed"}})
        self.upload = pn.widgets.FileInput(accept=".npz,.npy,.png,.jpg,.jpeg", width=300,
                                           css_classes=["w-upload"])
        self.upload.param.watch(self._on_upload, "value")
        self.upload_message = pn.pane.Alert("", alert_type="danger", visible=False, width=420,
                                            css_classes=["upload-message"])
        self.upload_summary = pn.pane.Markdown("", width=420, css_classes=["upload-summary"])
        s.data.param.watch(self._on_summary, "summary")
        self._on_summary()
        # thumbnails as PNG images: four more Bokeh figures would slow the first render
        self.thumbs = [pn.pane.PNG(figures.field_png(np.zeros((2, 2)), size=150), width=150,
                                   height=150, sizing_mode="fixed") for _ in range(4)]
        self.gallery = pn.Row(*self.thumbs, css_classes=["gallery"])
        self._gallery()
        s.data.param.watch(lambda e: self._gallery(), "fields")

    def _gallery(self) -> None:
        f = self.session.data.fields
        if f is None:
            return
        lim = float(np.abs(f[:4]).max()) or 1.0
        clim = (-lim, lim) if f[:4].min() < 0 else (float(f[:4].min()), lim)
        for i, pane in enumerate(self.thumbs):
            pane.object = figures.field_png(f[i % len(f)], size=150, clim=clim)

    def _on_summary(self, *_) -> None:
        d = self.session.data
        name = (d.meta.get("params") or {}).get("source") or d.asset or "the data"
        text = summary_markdown(d.summary)
        self.upload_summary.object = f"**{name}**\n\n{text}" if text else ""

    def _on_upload(self, event) -> None:
        if event.new is None:
            return
        ok = self.session.upload(self.upload.filename or "", event.new)
        self.upload_message.object = "" if ok else self.session.message
        self.upload_message.visible = not ok

    def __panel__(self):
        gen = pn.Card(self.gen_params, self.controls, title="Generate", collapsed=True, width=460)
        up = pn.Card(pn.pane.Markdown("`.npz` (array `fields` (N, L, L)), `.npy`, `.png`, `.jpg`;"
                                      " L a power of two. Files are validated, never unpickled."),
                     self.upload, self.upload_message, self.upload_summary, title="Upload",
                     width=460)
        return pn.Column(self.browser, pn.Row(gen, up), pn.pane.Markdown("#### Gallery"),
                         self.gallery)


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
        self.controls.start_button.on_click(lambda e: s.start_fit())
        self.kappa = pn.pane.Markdown("Fit a model to see κ(H) per scale.", width=560,
                                      css_classes=["kappa-table"])
        self.couplings = pn.pane.Markdown("", width=560)
        self.potential = pn.pane.HoloViews(None)
        self.kernels = pn.pane.HoloViews(None)
        self.flow = pn.pane.HoloViews(None)
        s.param.watch(self._on_model, ["fit_rows", "learned", "rgflow"])

    def _on_model(self, *_):
        s = self.session
        if not s.fit_rows:
            self.kappa.object = "Fit a model to see κ(H) per scale."
            self.couplings.object = ""
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
        lines = []
        for r in s.fit_rows:
            top = sorted(r["theta"].items(), key=lambda kv: -abs(kv[1]))[:8]
            lines.append(f"**{r['scale']}**: " + ", ".join(f"{k} = {v:.4g}" for k, v in top))
        self.couplings.object = "#### Largest couplings per scale\n\n" + "\n\n".join(lines)
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
                      pn.Column(self.kappa, self.couplings,
                                pn.Row(self.potential, self.kernels), self.flow))


class SamplingView(pn.viewable.Viewer):
    """Sample button, live field at the current scale, acceptance and energy traces."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.params = pn.Param(s, parameters=["n_samples", "steps", "sample_method",
                                              "sample_seed", "allow_unbounded"],
                               show_name=False, width=260,
                               widgets={"n_samples": {"type": pn.widgets.IntInput,
                                                      "name": "Samples",
                                                      "css_classes": ["w-samples"]},
                                        "steps": {"type": pn.widgets.IntInput,
                                                  "name": "Steps per scale",
                                                  "css_classes": ["w-steps"]},
                                        "sample_method": {"name": "Sampler"},
                                        "sample_seed": {"name": "Seed"},
                                        "allow_unbounded": {"name": "allow unbounded (experiment)"}})
        self.controls = JobControls(session=s, job="sample", label="Sample")
        self.controls.start_button.on_click(lambda e: s.start_sample())
        # scattering synthesis from the data: another way to make samples, no model involved
        self.synthesis_params = pn.Param(
            s, parameters=["synthesis_iterations"], show_name=False, width=260,
            widgets={"synthesis_iterations": {"type": pn.widgets.IntInput,
                                              "name": "L-BFGS iterations"}})
        self.synthesis_button = pn.widgets.Button(label="Synthesize", width=110,
                                                  css_classes=["w-synthesize"])
        self.synthesis_button.on_click(lambda e: s.start_synthesis())
        # The live field is a PNG swapped in place on every update (cheap for the browser at
        # 4 updates/s); a Bokeh plot fed by a HoloViews Pipe froze on the full page, and
        # replacing a Bokeh plot 4 times a second overloads a small machine's browser.
        self.live_title = pn.pane.Markdown("**current field** (chain 0)", width=320, height=50,
                                           sizing_mode="fixed")
        self.live = pn.pane.PNG(figures.field_png(np.zeros((2, 2))), width=320, height=320,
                                sizing_mode="fixed", css_classes=["live-field"])
        # traces are small PNG charts too (re-rendering Bokeh figures while sampling blocked the
        # browser for tens of seconds on a busy 2-core machine)
        self.traces = pn.pane.PNG(figures.traces_png({}), width=420, height=360,
                                  sizing_mode="fixed", css_classes=["sample-traces"])
        self._traces_at = 0.0
        s.param.watch(self._on_live, "live")

    def _on_live(self, event) -> None:
        x = event.new
        if x is None:
            return
        n = np.asarray(x).shape[-1]
        self.live.object = figures.field_png(x, size=320)
        self.live_title.object = (f"**current field** (chain 0, {n}×{n} at this scale; "
                                  f"{self.session.jobs['sample'].reports} updates)")

    def refresh_traces(self, force: bool = False) -> None:
        """Redraw the traces while sampling runs, :data:`TRACES_EVERY` seconds after the last
        drawing ended (a chart costs 0.1 s idle, ~2 s on a saturated 2-core machine)."""
        if not force and time.monotonic() - self._traces_at < TRACES_EVERY:
            return
        infos = list(self.session.jobs["sample"].infos)
        series: dict[str, dict[str, list]] = {}
        for i in infos:
            scale = str(i.get("stage", "")).split(":")[0]
            d = series.setdefault(scale, {"acceptance": [], "mean energy": []})
            if "acceptance" in i and "mean_energy" in i:
                d["acceptance"].append(i["acceptance"])
                d["mean energy"].append(i["mean_energy"])
        self.traces.object = figures.traces_png(series)
        self._traces_at = time.monotonic()  # measured after drawing: a slow draw never hogs ticks

    def __panel__(self):
        synthesis = pn.Card(
            pn.pane.Markdown("Scattering-spectra synthesis: fields matching the scattering "
                             "spectra of the first data fields, from white noise (no model; "
                             "Samples and Seed as above)."),
            self.synthesis_params, self.synthesis_button, title="Scattering synthesis",
            collapsed=True, width=440)
        return pn.Row(pn.Column(self.params, self.controls, synthesis, width=460),
                      pn.Column(self.live_title, self.live),
                      pn.Column(self.traces))


class CompareView(pn.viewable.Viewer):
    """Data vs samples on shared axes: spectra, histograms, Hessian eigenvalue histograms,
    scale-coupling matrices, mixing."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.controls = JobControls(session=s, job="compare", label="Compare")
        self.controls.start_button.on_click(lambda e: s.start_compare())
        self.table = pn.pane.Markdown("Sample the model, then Compare.", width=520,
                                      css_classes=["compare-table"])
        self.generic = pn.pane.Markdown("", css_classes=["compare-generic"])
        # result panes start empty (no figure for the browser to lay out until there is data)
        self.spectra = pn.pane.HoloViews(None,
                                         css_classes=["compare-spectra"])
        self.hist = pn.pane.HoloViews(None,
                                      css_classes=["compare-histograms"])
        self.eigen = pn.pane.HoloViews(None,
                                       css_classes=["compare-eigen"])
        self.coupling = pn.pane.HoloViews(None,
                                          css_classes=["compare-coupling"])
        self.kurtosis = pn.pane.HoloViews(None, css_classes=["compare-kurtosis"])
        self.mixing = pn.pane.HoloViews(None)
        self.scattering = pn.pane.HoloViews(None,
                                            css_classes=["compare-scattering"])
        s.param.watch(self._on_samples, "samples")
        s.param.watch(self._on_report, "compare_report")

    def _on_samples(self, *_):
        s = self.session
        if s.samples is None or s.data.fields is None:
            return
        self.spectra.object = figures.spectra_compare(s.data.fields, s.samples).opts(**PLOT)
        self.hist.object = figures.histograms_compare(s.data.fields, s.samples).opts(**PLOT)

    def _on_report(self, *_):
        r = self.session.compare_report
        if not r:
            return
        ratios = " / ".join(f"{x:.3f}" for x in r["scale_std_ratios"])
        rows = [
            "| distance (data vs samples) | value |", "|---|---|",
            f"| spectrum mean \\|log ratio\\| (data's support) | {r['spectrum_log_ratio']:.4f} |",
            f"| 2D spectrum mean \\|log ratio\\| (noise level) | "
            f"{r['spectrum_2d_log_ratio']:.4f} ({r['spectrum_2d_noise']:.4f}) |",
            f"| corner power ratio \\|k\\| > L/2 (samples / data) | "
            f"{_fmt(r['corner_power_ratio'])} |",
            f"| histogram total variation | {r['total_variation']:.4f} |",
            f"| histogram KL | {r['kl_divergence']:.4f} |",
            f"| per-scale std ratios (j = 1 … J, coarse) | {ratios} |",
            f"| kurtosis data / samples | {r['kurtosis']['data']:.3f} / "
            f"{r['kurtosis']['samples']:.3f} |"]
        if r.get("binder_difference") is not None:  # φ⁴ data, or asked for
            rows.insert(-1, f"| Binder U difference | {r['binder_difference']:.4f} |")
        self.generic.object = verdicts_markdown(r.get("generic"))
        sk = r.get("scale_kurtosis")
        if sk:
            for part, label in (("low", "low-passes x₀ … x_J"), ("details", "details j = 1 … J")):
                data, samples = (" / ".join(_fmt(k) for k in sk[who][part]) for who in ("data", "samples"))
                rows.append(f"| kurtosis of the {label}, data / samples | {data} <br> {samples} |")
            self.kurtosis.object = figures.scale_kurtosis_compare(sk).opts(**PLOT)
        reasons = {k: v for k, v in (r.get("reasons") or {}).items() if v}
        if reasons:
            rows.append("\n" + "; ".join(f"*{k}*: {v}" for k, v in reasons.items()))
        self.table.object = "\n".join(rows)
        hess = r.get("hessian")
        self.eigen.object = (figures.eigen_histograms(hess["histograms"]).opts(
            frame_width=420, frame_height=260) if hess and hess["histograms"]
            else _empty(reasons.get("hessian", "no Hessian spectra")))
        self.scattering.object = (figures.scattering_compare(r["scattering"]).opts(
            frame_width=420, frame_height=260) if r.get("scattering")
            else _empty(reasons.get("scattering", "no scattering statistics")))
        c = r.get("coupling")
        if c:
            mats = [figures.coupling_matrix(np.asarray(c[who]["moduli"]), c["labels"],
                                            title=f"{who}: coupling of |moduli|").opts(
                        frame_width=260, frame_height=260)
                    for who in ("data", "samples")]
            self.coupling.object = hv.Layout(mats).cols(2)
        else:
            self.coupling.object = _empty(reasons.get("coupling", "no scale coupling"))
        self.mixing.object = (figures.mixing(r["mixing"]).opts(**PLOT) if r.get("mixing")
                              else _empty(reasons.get("mixing", "no sampler traces")))

    def __panel__(self):
        return pn.Column(pn.Row(self.controls, self.table), self.generic,
                         pn.Row(self.spectra, self.hist, self.eigen),
                         pn.Row(self.coupling, self.mixing),
                         pn.Row(self.kurtosis, self.scattering))


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


class Dashboard(pn.viewable.Viewer):
    """All views over one session, plus the periodic pull of job progress."""

    session = param.ClassSelector(class_=Session)

    def __init__(self, **params):
        if "session" not in params:
            params["session"] = Session()
        super().__init__(**params)
        s = self.session
        self.data_view = DataView(session=s)
        self.model_view = ModelView(session=s)
        self.sampling_view = SamplingView(session=s)
        self.compare_view = CompareView(session=s)
        self.export_view = ExportView(session=s)
        self.sweep_view = SweepView()
        self.controls = {"generate": self.data_view.controls, "fit": self.model_view.controls,
                         "sample": self.sampling_view.controls,
                         "compare": self.compare_view.controls}
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False,
                                   css_classes=["session-message"])
        self.status = pn.pane.Markdown("", css_classes=["session-status"])
        s.param.watch(self._on_message, "message")
        s.param.watch(lambda e: setattr(self.status, "object", e.new), "status")
        # The five views are stacked as collapsible cards on one page. (Switching views was tried
        # with pn.Tabs and with visibility toggles: with Panel 1.9 the browser then missed the
        # HoloViews stream updates / visibility patches and the live sampling view froze.)
        self.views = {"Data": self.data_view, "Model": self.model_view,
                      "Sampling": self.sampling_view, "Compare": self.compare_view,
                      "Export": self.export_view, "Sweep": self.sweep_view}
        self.panels = {name: pn.Card(view, title=name, collapsed=name == "Sweep",  # opened on use
                                     css_classes=[f"view-{name.lower()}"],
                                     sizing_mode="stretch_width")
                       for name, view in self.views.items()}
        self._callback = None
        self._ticking = False

    def _on_message(self, event) -> None:
        self.alert.object = event.new
        self.alert.visible = bool(event.new)

    def tick(self) -> None:
        """Pull job progress into the page (periodic callback; also callable by hand)."""
        if self._ticking:  # re-entry guard
            return
        self._ticking = True
        try:
            s = self.session
            new = s.poll()
            for name, ctl in self.controls.items():
                if name in new or name in s.finished_jobs:
                    job = s.jobs[name]
                    ctl.update(job.latest, job.running)
            self.sampling_view.synthesis_button.disabled = s.jobs["sample"].running
            if "sample" in new:
                self.sampling_view.refresh_traces(force="sample" in s.finished_jobs)
            if ("sample" in s.finished_jobs and s.jobs["sample"].status == "done"
                    and s.samples is not None):
                s.start_compare()  # the comparison follows every finished sampling run
            self.sweep_view.tick()
        finally:
            self._ticking = False

    def start(self, period: int = TICK_MS) -> None:
        """Start the periodic pull (once per page) and stop every job when the session ends."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.tick, period=period)
            if pn.state.curdoc is not None:
                pn.state.on_session_destroyed(lambda ctx: self.shutdown())

    def shutdown(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        self.session.shutdown()
        self.sweep_view.state.shutdown()

    def __panel__(self):
        return pn.Column(self.alert, self.status, *self.panels.values(),
                         sizing_mode="stretch_width")

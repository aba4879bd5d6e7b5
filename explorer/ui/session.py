"""One user's session as param state (no Panel import): data, model choice, fitting, sampling,
synthesis, comparison, export. The science runs in :mod:`explorer.core.workflows` inside
:class:`~explorer.ui.jobs.Job` threads; :meth:`Session.poll` (the page's event loop, or by hand in
a test or notebook) installs finished results::

    s = Session()                       # default data: the critical phi4 asset
    s.param.update(family="phi4", J=2)
    s.start_fit(); s.wait("fit")        # s.fit_rows: kappa(H) raw / preconditioned per scale
    s.start_sample(); s.wait("sample")  # s.samples: (n, L, L)
    s.start_compare(); s.wait("compare")
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np
import param

from explorer.core import wavelets as wv
from explorer.core import workflows as wf
from explorer.core.fields.base import FieldSet
from explorer.core.io import FieldFileError, json_default, load_fields, save_fields
from explorer.core.model import DEEPEST_DEPTH_GENERATORS, default_depth, max_depth, unbounded_factors
from explorer.core.progress import Progress
from explorer.ui.jobs import DONE, ERROR, STOPPED, Job
from explorer.ui.state import ASSETS_DIR, FieldData

MAX_UPLOAD_BYTES = 64 * 2**20
SYNTHESIS_FIELDS = 4  # data fields whose scattering spectra a synthesis matches (default)
_OPT = wf.FAMILY_OPTION_DEFAULTS

#: settings a link carries (URL query name: Session parameter); ``data`` is the shipped data set
MODEL_SETTINGS = ("family", "J", "wavelet", "method", "radius", "potential", "degree",
                  "n_windows", "eps_rel")
SAMPLER_SETTINGS = ("n_samples", "steps", "sample_method", "sample_seed", "allow_unbounded",
                    "sample_size", "synthesis_iterations", "synthesis_fields")
ACTIONS = ("generate", "fit", "sample", "synthesize", "compare")


class Session(param.Parameterized):
    """State of one explorer session."""

    # ---- generation
    gen_kind = param.Selector(default="phi4", objects=list(wf.GENERATORS), doc="generator")
    gen_size = param.Selector(default=32, objects=[16, 32, 64, 128, 256], doc="side L")
    gen_samples = param.Integer(default=64, bounds=(1, 1024), doc="number of fields")
    gen_beta = param.Number(default=0.68, bounds=(0.0, 2.0), doc="φ⁴ β")
    gen_lam = param.Number(default=1.0, bounds=(0.0, 10.0), doc="φ⁴ λ")
    gen_eta = param.Number(default=2.0, bounds=(0.0, 4.0), doc="Gaussian spectrum slope η")
    gen_seed = param.Integer(default=0, bounds=(0, None))

    # ---- model
    family = param.Selector(default="phi4", objects=wf.wcrg_families(), doc="feature family")
    J = param.Integer(default=2, bounds=(0, 4), doc="wavelet depth (0: single scale)")
    wavelet = param.Selector(default="db4", objects=list(wv.WAVELETS))
    method = param.Selector(default="score", objects=["score", "ml"],
                            doc="score matching (fast) or maximum likelihood (slow)")
    radius = param.Integer(default=_OPT["radius"], bounds=(1, 3), doc="coupling range")
    potential = param.Selector(default=_OPT["potential"], objects=["polynomial", "windows"])
    degree = param.Integer(default=_OPT["degree"], bounds=(3, 8))
    n_windows = param.Integer(default=_OPT["n_windows"], bounds=(2, 200),
                              doc="number of potential windows")
    eps_rel = param.Number(default=_OPT["eps_rel"], bounds=(1e-3, 10.0),
                           doc="smooth-modulus width relative to each scale's rms")
    parity = param.Selector(default=_OPT["parity"], objects=list(wf.PARITIES),
                            doc="polynomial potential: even powers, or all (odd terms: skewness)")
    dequantise = param.Number(default=0.0, bounds=(0.0, None),
                              doc="σ of the N(0, σ²) noise added to discrete data (0: none)")
    gaussianise = param.Boolean(default=False, doc="fit the one-point law mapped onto a normal "
                                "(Gaussian anamorphosis); samples are mapped back")
    observables = param.ListSelector(default=[], objects=["phi4", "turbulence"],
                                     doc="domain observables to compare beyond the data's own")

    # ---- sampling the fitted model
    n_samples = param.Integer(default=16, bounds=(1, 256))
    steps = param.Integer(default=wf.DEFAULT_STEPS, bounds=(10, 5000), doc="MALA steps per scale")
    sample_method = param.Selector(default="mala", objects=["mala", "ula"],
                                   doc="Langevin sampler of the fitted model")
    sample_seed = param.Integer(default=0, bounds=(0, None))
    sample_size = param.Integer(default=0, bounds=(0, 1024),
                                doc="side of the sampled fields: 0 = the fitted side; 2^k times it "
                                    "samples a larger lattice (learn small, generate large)")
    allow_unbounded = param.Boolean(default=False, doc="sample even an energy the fit found "
                                    "unbounded below (experiments; runaways are still stopped)")
    # ---- scattering synthesis from the data (no model)
    synthesis_iterations = param.Integer(default=100, bounds=(10, 5000),
                                         doc="L-BFGS iterations of the scattering synthesis")
    synthesis_fields = param.Integer(default=SYNTHESIS_FIELDS, bounds=(1, 16),
                                     doc="data fields whose scattering spectra are matched")

    # ---- results (set on the event loop by poll())
    model = param.Parameter(default=None, doc="the fitted WCRGModel")
    fit_rows = param.List(default=[], doc="per-scale fit summary rows")
    learned = param.Dict(default=None, allow_None=True,
                         doc="learned potentials and coupling kernels of the fitted model")
    rgflow = param.Dict(default=None, allow_None=True)
    samples = param.Array(default=None, doc="(n, L, L) float32 samples")
    sample_meta = param.Dict(default={})
    live = param.Array(default=None, doc="current field of the running sampler")
    compare_report = param.Dict(default=None, allow_None=True)
    message = param.String(default="", doc="last error, shown in place")
    status = param.String(default="")

    def __init__(self, data: FieldData | None = None, folder: Path = ASSETS_DIR, **params):
        if "family" in params:  # an alias (e.g. a renamed family's old name) names its family
            params["family"] = wf.resolve_family(params["family"])
        super().__init__(**params)
        self.data = data if data is not None else FieldData(folder=folder)
        self.jobs = {name: Job(name) for name in ("generate", "fit", "sample", "compare")}
        self.finished_jobs: list[str] = []
        self.pending: list[str] = []  # actions to start one after the other (a story)
        self._data_version = 0  # results of jobs started on older data are discarded
        self._job_data: dict[str, int] = {}
        self.data.param.watch(self._on_data, "fields")
        self._on_data()

    # ------------------------------------------------------------ data
    @property
    def L(self) -> int:
        return 0 if self.data.fields is None else int(self.data.fields.shape[-1])

    def _on_data(self, *_):
        """New data: bound the depth by the size, forget results fitted on the old data (and
        stop the model's jobs: their results would belong to the old data)."""
        self._data_version = getattr(self, "_data_version", 0) + 1
        for name in ("fit", "sample", "compare"):
            if name in getattr(self, "jobs", {}):
                self.jobs[name].stop()
        L = self.L
        if L:
            jmax = max_depth(L)
            self.param.J.bounds = (0, jmax)
            generator = self.data.meta.get("generator")
            generic = (self.data.summary or {}).get("generic")
            if generic and generator not in ("phi4", "gaussian", "turbulence"):
                self.J = generic["suggested_depth"]["depth"]  # a file: the depth info suggests
            elif self.J > jmax or generator in DEEPEST_DEPTH_GENERATORS:
                self.J = default_depth(L, generator, self.data.fields)
        self.param.update(model=None, fit_rows=[], learned=None, rgflow=None, samples=None,
                          sample_meta={}, live=None, compare_report=None)

    def upload(self, filename: str, content: bytes) -> bool:
        """Validate and install an uploaded file; never unpickles. False (and ``message``) when
        the file is refused; the current data stay."""
        if not filename:
            self.message = "no file chosen"
            return False
        if content is None or len(content) == 0:
            self.message = f"{filename}: the file is empty"
            return False
        try:
            fs = load_fields(bytes(content), name=filename, max_bytes=MAX_UPLOAD_BYTES)
        except FieldFileError as exc:
            self.message = f"upload refused: {exc}"
            return False
        fs.meta.setdefault("params", {})["source"] = Path(filename).name
        self.data.set_fieldset(fs)
        self.message = ""
        self.status = f"loaded {filename}: {fs.n} fields of {fs.fields.shape[-1]}²"
        return True

    def generator_params(self) -> tuple[int, int, dict]:
        """(size, number of fields, parameters) of the chosen generator as the app offers it
        (turbulence: at least 32², at most 64 snapshots)."""
        kind, L, N = self.gen_kind, int(self.gen_size), int(self.gen_samples)
        if kind == "phi4":
            return L, N, {"beta": self.gen_beta, "lam": self.gen_lam}
        if kind == "gaussian":
            return L, N, {"spectrum": "powerlaw", "eta": self.gen_eta}
        return max(L, 32), min(N, 64), {}

    # ------------------------------------------------------------ what can start now
    def refusal(self, action: str) -> str:
        """Why ``action`` (one of :data:`ACTIONS`) cannot start now; "" when it can. One job
        runs at a time per session: a second one would work on data or a model about to
        change."""
        job = "sample" if action == "synthesize" else action
        running = [n for n, j in self.jobs.items() if j.running]
        if job in running:
            return f"{job} is already running: stop it first"
        if running:
            return f"wait: {running[0]} is running (or press its Stop)"
        if action in ("fit", "synthesize") and self.data.fields is None:
            return "load data first"
        if action == "sample" and self.model is None:
            return "fit a model first (Model: Fit)"
        if action == "compare" and self.samples is None:
            return "sample the model first"
        if action == "compare" and self.data.fields is not None and \
                np.shape(self.samples)[-1] != np.shape(self.data.fields)[-1]:
            n, L = np.shape(self.samples)[-1], np.shape(self.data.fields)[-1]
            return (f"the samples are {n}x{n} (size transfer), the data {L}x{L}: Compare needs "
                    "one size; the transfer's own check is under Sample")
        return ""

    def _refused(self, action: str) -> bool:
        why = self.refusal(action)
        if why:
            self.message = why
        return bool(why)

    # ------------------------------------------------------------ settings (links, stories)
    def settings(self) -> dict:
        """The data set, model and sampler settings (what a link carries)."""
        return {"data": self.data.asset, **{k: getattr(self, k) for k in MODEL_SETTINGS},
                **{k: getattr(self, k) for k in SAMPLER_SETTINGS}}

    def apply_settings(self, values: dict) -> list[str]:
        """Apply settings one by one (the data set first: it resets the depth), keeping every
        valid one; returns the refused ones as ``"name=value (why)"`` and says so in
        ``message``. Unknown names are ignored (a link may carry other things)."""
        refused = []
        data = values.get("data")
        if data is not None and data != self.data.asset:
            if data in self.data.param.asset.objects.values():
                self.data.asset = data
            else:
                refused.append(f"data={data} (not a shipped data set)")
        for name in (*MODEL_SETTINGS, *SAMPLER_SETTINGS):
            if name not in values:
                continue
            v = values[name]
            try:
                if name == "family":
                    v = wf.resolve_family(str(v))
                elif isinstance(self.param[name], param.Integer) and isinstance(v, str):
                    v = int(v)
                elif isinstance(self.param[name], param.Boolean) and isinstance(v, str):
                    v = {"true": True, "false": False}[v.lower()]
                elif isinstance(self.param[name], param.Number) and isinstance(v, str):
                    v = float(v)
                if getattr(self, name) != v:
                    setattr(self, name, v)
            except (ValueError, TypeError, KeyError) as exc:
                why = str(exc).split(":")[0] if isinstance(exc, ValueError) else "wrong type"
                refused.append(f"{name}={v} ({why[:80]})")
        if refused:
            self.message = "settings not applied: " + "; ".join(refused)
        return refused

    def start_story(self, story) -> bool:
        """Load a story's data and settings (:mod:`explorer.ui.stories`) and start its first
        action; the others follow as each one finishes (:meth:`poll`)."""
        if any(j.running for j in self.jobs.values()):
            self._refused("fit")
            return False
        self.pending = []
        self.apply_settings({"data": story.asset, **story.settings})
        self.status = f"story: {story.title}"
        ok = self.start(story.first_action)
        if ok:
            self.pending = list(story.actions[1:])
        return ok

    def start(self, action: str) -> bool:
        return {"generate": self.start_generate, "fit": self.start_fit,
                "sample": self.start_sample, "synthesize": self.start_synthesis,
                "compare": self.start_compare}[action]()

    def start_generate(self) -> bool:
        if self._refused("generate"):
            return False
        kind, seed = self.gen_kind, self.gen_seed
        size, n, params = self.generator_params()
        try:
            wf.check_generate(kind, size, n, **params)
        except ValueError as exc:
            self.message = f"generate refused: {exc}"
            return False
        return self._start("generate", lambda stop: wf.iter_generate(kind, size, n, seed=seed,
                                                                     stop=stop, **params))

    # ------------------------------------------------------------ model
    def family_options(self) -> dict:
        return wf.family_options(self.family, radius=self.radius, potential=self.potential,
                                 degree=self.degree, n_windows=self.n_windows,
                                 eps_rel=self.eps_rel, parity=self.parity)

    def start_fit(self) -> bool:
        if self._refused("fit"):
            return False
        x, meta = self.data.fields, dict(self.data.meta)
        source = (meta.get("params") or {}).get("source") or self.data.asset \
            or meta.get("generator", "data")
        kwargs = dict(family=self.family, J=self.J, wavelet=self.wavelet, method=self.method,
                      options=self.family_options(), data_meta=meta,
                      provenance={"data": source}, rgflow=True,
                      dequantise=self.dequantise or None, gaussianise=self.gaussianise)
        return self._start("fit", lambda stop: wf.iter_fit(x, stop=stop, **kwargs))

    # ------------------------------------------------------------ sampling
    def start_sample(self) -> bool:
        """Sample the fitted model coarse to fine (MALA or ULA)."""
        if self._refused("sample"):
            return False
        model, n, steps = self.model, self.n_samples, self.steps
        method, seed, allow = self.sample_method, self.sample_seed, self.allow_unbounded
        bad = unbounded_factors(model)
        if bad and not allow:
            self.message = ("sampling refused: the fitted energy is not bounded below at "
                            + "; ".join(f"{wf.scale_label(name)}: {why}" for name, why in bad)
                            + ". Refit with a larger depth J or another family (or tick "
                              "'allow unbounded' for an experiment).")
            return False
        size = self.sample_size or None
        if size is not None and size != model.stats.get("L"):
            from explorer.core.transfer import check_transfer

            try:
                check_transfer(model, size)
            except ValueError as e:
                self.message = f"sampling refused: {e}"
                return False
        else:
            size = None
        self.live = None
        return self._start("sample", lambda stop: wf.iter_sample(
            model, n, steps=steps, method=method, seed=seed, allow_unbounded=allow, stop=stop,
            size=size))

    def start_synthesis(self) -> bool:
        """Scattering synthesis: n_samples fields matching the scattering spectra of the first
        ``synthesis_fields``) data fields, from white noise; no model involved."""
        if self._refused("synthesize"):
            return False
        from explorer.core.scattering import iter_synthesize

        d = np.asarray(self.data.fields[:self.synthesis_fields], np.float64)
        n, iterations, seed = self.n_samples, self.synthesis_iterations, self.sample_seed
        self.live = None
        return self._start("sample", lambda stop: iter_synthesize(
            d, n_samples=n, iterations=iterations, seed=seed, stop=stop, report_every=2))

    # ------------------------------------------------------------ compare
    def compare_inputs(self) -> dict:
        """The arguments of :func:`~explorer.core.workflows.comparison_report` for the current
        data and samples: the model only when the samples are its own."""
        own = self.sample_meta.get("generator") == "wcrg-sample"
        return {"data": self.data.fields, "samples": self.samples,
                "model": self.model if own else None, "data_meta": dict(self.data.meta),
                "sample_meta": dict(self.sample_meta), "observables": list(self.observables)}

    def start_compare(self) -> bool:
        if self._refused("compare"):
            return False
        inputs = self.compare_inputs()
        return self._start("compare", lambda stop: wf.iter_comparison_report(stop=stop, **inputs))

    # ------------------------------------------------------------ jobs
    def _start(self, name: str, make) -> bool:
        job = self.jobs[name]
        if job.running:
            self.message = f"{name} is already running: stop it first"
            return False
        self.message = ""
        self.status = f"{name} started"
        self._job_data[name] = self._data_version
        return job.start(make)

    def stop(self, name: str | None = None) -> None:
        for n, job in self.jobs.items():
            if name is None or n == name:
                job.stop()

    def poll(self) -> dict[str, Progress | None]:
        """Move finished results into the param state; returns the new reports per job. Call
        from the thread that owns the state (the page's event loop)."""
        new = {}
        self.finished_jobs = []
        for name, job in self.jobs.items():
            rep, fresh, finished = job.poll()
            if fresh:
                new[name] = rep
                if name == "sample" and rep is not None and rep.snapshot is not None:
                    self.live = rep.snapshot
            if finished:
                try:
                    self._finish(name, job)
                except Exception as exc:  # a view failing to draw a result: say so, go on
                    traceback.print_exc()
                    self.message = f"{name} finished, but showing its result failed: {exc}"
                self.finished_jobs.append(name)
        self._next_pending()
        return new

    def _next_pending(self) -> None:
        """Start the next action of a story once nothing runs (dropped after a failure)."""
        if not self.pending or any(j.running for j in self.jobs.values()):
            return
        action = self.pending.pop(0)
        if not self.start(action):
            self.pending = []

    def _finish(self, name: str, job: Job) -> None:
        if job.status != DONE:
            self.pending = []  # a story stops at a failed or stopped step
        if job.status == ERROR:
            self.message = job.error
            self.status = f"{name} failed"
            return
        if job.status == STOPPED:
            self.status = f"{name} stopped after {job.seconds:.1f} s"
            return
        if (job.status == DONE and name != "generate"
                and self._job_data.get(name) != self._data_version):
            self.status = f"{name} result discarded: the data changed while it ran"
            return
        if job.status != DONE:
            return
        r = job.result
        if name == "generate":
            self.data.set_fieldset(r)
        elif name == "fit":
            rep = r["report"]
            self.param.update(model=r["model"], fit_rows=rep["rows"],
                              learned={"potential": rep["potential"], "kernels": rep["kernels"]},
                              rgflow=r["rgflow"], samples=None, compare_report=None)
        elif name == "sample":
            self.param.update(samples=r.fields, sample_meta=r.meta, live=r.fields[0],
                              compare_report=None)
        elif name == "compare":
            self.compare_report = r
        extra = f" ({len(self.samples)} fields)" if name == "sample" else ""
        self.status = f"{name} done in {job.seconds:.1f} s{extra}"
        # warnings of the run (unequilibrated data, unbounded or degenerate fits) shown in place
        warnings = list(dict.fromkeys(i["warning"] for i in job.infos if i.get("warning")))
        if warnings:
            self.message = f"{name} warning: " + "; ".join(warnings)

    def wait(self, name: str, timeout: float = 600.0) -> str:
        """Block until a job ends (tests, notebooks), polling as the page would; its status."""
        job = self.jobs[name]
        t0 = time.perf_counter()
        while job.running and time.perf_counter() - t0 < timeout:
            time.sleep(0.05)
            self.poll()
        self.poll()
        return job.status

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every job of the session and wait for the threads (session end)."""
        self.stop()
        for job in self.jobs.values():
            job.join(timeout)

    # ------------------------------------------------------------ export
    def export_samples(self) -> bytes:
        if self.samples is None:
            raise ValueError("no samples yet")
        with tempfile.TemporaryDirectory() as d:
            return save_fields(Path(d) / "samples.npz",
                               FieldSet(np.asarray(self.samples), dict(self.sample_meta))).read_bytes()

    def export_model(self) -> bytes:
        if self.model is None:
            raise ValueError("no fitted model yet")
        with tempfile.TemporaryDirectory() as d:
            return self.model.save(Path(d) / "model.npz").read_bytes()

    def summary(self) -> dict:
        out = {"data": {"generator": self.data.meta.get("generator"),
                        "params": self.data.meta.get("params"),
                        "shape": None if self.data.fields is None else list(self.data.fields.shape)},
               "model": None if self.model is None else self.model.summary(),
               "fit": self.fit_rows, "rgflow": self.rgflow,
               "sampling": self.sample_meta.get("sampling")}
        if self.compare_report:
            out["compare"] = {k: v for k, v in self.compare_report.items()
                              if k not in ("spectrum", "coupling")}
        return out

    def export_summary(self) -> bytes:
        return json.dumps(self.summary(), indent=2, default=json_default).encode()

    def export_figures(self) -> bytes:
        """A zip of PNG figures of the current state (data, fit, samples, comparison)."""
        from explorer.ui import figures

        figures.ensure_backends()
        figs = {"data_field": figures.field_image(self.data.current, title="data"),
                "data_spectrum": figures.power_spectrum(self.data.fields)}
        if self.learned:
            figs.update(figures.model_figures(self.learned))
        if self.samples is not None:
            figs["sample_field"] = figures.field_image(self.samples[0], title="sample")
            figs.update(figures.compare_figures(self.data.fields, self.samples,
                                                self.compare_report))
        buf = io.BytesIO()
        with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(buf, "w") as z:
            for name in figures.write_figures(figs, d):
                z.write(Path(d) / name, name)
        return buf.getvalue()

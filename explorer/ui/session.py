"""One user's session as param state (no Panel import): data, model choice, fitting, sampling,
comparison, export. Long work runs in :class:`~explorer.ui.jobs.Job` threads; :meth:`Session.poll`
(called from the page's event loop, or by hand in a test/notebook) installs finished results.

Everything the dashboard shows can be driven from here without a browser::

    s = Session()                       # default data: the critical phi4 asset
    s.param.update(family="phi4", J=2)
    s.start_fit(); s.wait("fit")        # s.fit_rows: kappa(H) raw / preconditioned per scale
    s.start_sample(); s.wait("sample")  # s.samples: (n, L, L)
    s.start_compare(); s.wait("compare")
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import param

from explorer.core import diagnostics as dg
from explorer.core import wavelets as wv
from explorer.core.features import FAMILIES
from explorer.core.fields.base import FieldSet
from explorer.core.io import FieldFileError, json_default, load_fields, save_fields
from explorer.core.model import (DEEPEST_DEPTH_GENERATORS, WCRGModel, default_depth,
                                  max_depth, unbounded_factors)
from explorer.core.progress import Progress, should_stop
from explorer.ui.jobs import DONE, ERROR, STOPPED, Job
from explorer.ui.state import ASSETS_DIR, FieldData

GENERATORS = ("phi4", "gaussian", "turbulence")
#: families offered in the menus (the depth-0 ansatz is an internal reference, not a WCRG family)
MENU_FAMILIES = ("gaussian", "phi4", "scattering")
MAX_UPLOAD_BYTES = 64 * 2**20
HESSIAN_FIELDS = 2  # data / sample fields at which Hessian spectra are taken in Compare


class Session(param.Parameterized):
    """State of one explorer session."""

    # ---- generation
    gen_kind = param.Selector(default="phi4", objects=list(GENERATORS), doc="generator")
    gen_size = param.Selector(default=32, objects=[16, 32, 64, 128, 256], doc="side L")
    gen_samples = param.Integer(default=64, bounds=(1, 1024), doc="number of fields")
    gen_beta = param.Number(default=0.68, bounds=(0.0, 2.0), doc="φ⁴ β / free-field β")
    gen_lam = param.Number(default=1.0, bounds=(0.0, 10.0), doc="φ⁴ λ")
    gen_eta = param.Number(default=2.0, bounds=(0.0, 4.0), doc="Gaussian spectrum slope η")
    gen_seed = param.Integer(default=0, bounds=(0, None))

    # ---- model
    family = param.Selector(default="phi4", objects=["gaussian", "phi4"], doc="feature family")
    J = param.Integer(default=2, bounds=(0, 4), doc="wavelet depth (0: single scale)")
    wavelet = param.Selector(default="db4", objects=list(wv.WAVELETS))
    method = param.Selector(default="score", objects=["score", "ml"],
                            doc="score matching (fast) or maximum likelihood (slow)")
    radius = param.Integer(default=1, bounds=(1, 3), doc="coupling range")
    potential = param.Selector(default="polynomial", objects=["polynomial", "windows"])
    degree = param.Integer(default=4, bounds=(3, 8))

    # ---- sampling
    n_samples = param.Integer(default=16, bounds=(1, 256))
    steps = param.Integer(default=100, bounds=(10, 5000), doc="MALA steps per scale")
    sampler = param.Selector(default="mala", objects=["mala", "ula", "synthesis"],
                             doc="MALA/ULA from the fitted model, or scattering-spectra "
                                 "microcanonical synthesis from the data (steps = L-BFGS "
                                 "iterations)")
    sample_seed = param.Integer(default=0, bounds=(0, None))
    allow_unbounded = param.Boolean(default=False, doc="sample even an energy the fit found "
                                    "unbounded below (experiments; runaways are still stopped)")

    # ---- results (set on the event loop by poll())
    model = param.Parameter(default=None, doc="the fitted WCRGModel")
    fit_rows = param.List(default=[], doc="per-scale fit summary rows")
    rgflow = param.Dict(default=None, allow_None=True)
    samples = param.Array(default=None, doc="(n, L, L) float32 samples")
    sample_meta = param.Dict(default={})
    live = param.Array(default=None, doc="current field of the running sampler")
    compare_report = param.Dict(default=None, allow_None=True)
    message = param.String(default="", doc="last error, shown in place")
    status = param.String(default="")

    def __init__(self, data: FieldData | None = None, folder: Path = ASSETS_DIR, **params):
        super().__init__(**params)
        self.param.family.objects = available_families()
        self.data = data if data is not None else FieldData(folder=folder)
        self.jobs = {name: Job(name) for name in ("generate", "fit", "sample", "compare")}
        self.finished_jobs: list[str] = []
        self.data.param.watch(self._on_data, "fields")
        self._on_data()

    # ------------------------------------------------------------ data
    @property
    def L(self) -> int:
        return 0 if self.data.fields is None else int(self.data.fields.shape[-1])

    def _on_data(self, *_):
        """New data: bound the depth by the size, forget results fitted on the old data."""
        L = self.L
        if L:
            jmax = max_depth(L)
            self.param.J.bounds = (0, jmax)
            generator = self.data.meta.get("generator")
            if self.J > jmax or generator in DEEPEST_DEPTH_GENERATORS:
                self.J = default_depth(L, generator)
        self.param.update(model=None, fit_rows=[], rgflow=None, samples=None, sample_meta={},
                          live=None, compare_report=None)

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

    def start_generate(self) -> bool:
        kind, L, N, seed = self.gen_kind, int(self.gen_size), int(self.gen_samples), self.gen_seed
        if kind == "phi4":
            from explorer.core.fields.phi4 import iter_phi4

            def make(stop):
                return iter_phi4(size=L, n_samples=N, beta=self.gen_beta, lam=self.gen_lam,
                                 seed=seed, stop=stop)
        elif kind == "gaussian":
            from explorer.core.fields.gaussian import iter_gaussian

            def make(stop):
                return iter_gaussian(size=L, n_samples=N, kind="powerlaw", eta=self.gen_eta,
                                     seed=seed, stop=stop)
        else:
            from explorer.core.fields.turbulence import iter_turbulence

            def make(stop):
                return iter_turbulence(size=max(L, 32), n_snapshots=min(N, 64), seed=seed,
                                       stop=stop)
        return self._start("generate", make)

    # ------------------------------------------------------------ model
    def family_options(self) -> dict:
        opts: dict = {"radius": self.radius}
        if self.family == "phi4":
            opts["potential"] = self.potential
            if self.potential == "polynomial":
                opts["degree"] = self.degree
            else:
                opts["n_windows"] = 20
        return opts

    def start_fit(self) -> bool:
        if self.data.fields is None:
            self.message = "load data first"
            return False
        x = np.asarray(self.data.fields, np.float64)
        family, J, wavelet, method = self.family, self.J, self.wavelet, self.method
        opts = self.family_options()
        source = self.data.meta.get("generator", "data")

        def make(stop):
            model = WCRGModel(family, J, wavelet, **opts)
            t0 = time.perf_counter()
            result = None
            for rep in model.iter_fit(x, method=method, stop=stop,
                                      provenance={"data": source, "n_fields": len(x)}):
                if rep.done:
                    result = rep
                    break
                yield rep
            if result is None or result.stopped:
                yield Progress(0, 1, "fit", done=True, stopped=True)
                return
            flow = None
            if family in ("phi4", "gaussian") and x.shape[-1] >= 8:  # RG flow needs a few steps
                from explorer.core.rgflow import rg_flow

                flow = rg_flow(x, family="phi4" if family == "phi4" else "gaussian")
            yield Progress(1, 1, "done", done=True,
                           result={"model": model, "rgflow": flow,
                                   "seconds": time.perf_counter() - t0})
        return self._start("fit", make)

    @staticmethod
    def fit_table(model: WCRGModel) -> list[dict]:
        rows = []
        for f in model.factors():
            s = f.fit
            rows.append({"scale": "coarse" if f.level == "depth0" else f"j={f.j}",
                         "parameters": len(f.theta),
                         "kappa_raw": s.get("kappa_H_raw"),
                         "kappa_preconditioned": s.get("kappa_H_preconditioned"),
                         "seconds": s.get("seconds"),
                         "quadratic_base": s.get("quadratic_base"),
                         "bounded": s.get("bounded"),
                         "warnings": list(s.get("warnings") or []),
                         "theta": dict(zip(f.names, map(float, f.theta)))})
        return rows

    # ------------------------------------------------------------ sampling
    def start_sample(self) -> bool:
        if self.sampler == "synthesis":
            return self.start_synthesis()
        if self.model is None:
            self.message = "fit a model first"
            return False
        model, n, steps = self.model, self.n_samples, self.steps
        method, seed, allow = self.sampler, self.sample_seed, self.allow_unbounded
        bad = unbounded_factors(model)
        if bad and not allow:
            self.message = ("sampling refused: the fitted energy is not bounded below at "
                            + "; ".join(f"{name}: {why}" for name, why in bad)
                            + ". Refit with a larger depth J or another family (or tick "
                              "'allow unbounded' for an experiment).")
            return False
        self.live = None
        return self._start("sample", lambda stop: model.iter_sample(
            n, steps=steps, burn_in=steps, method=method, seed=seed, stop=stop, report_every=5,
            allow_unbounded=allow))

    def start_synthesis(self) -> bool:
        """Microcanonical synthesis: n_samples fields matching the scattering spectra of the
        first (up to 4) data fields, from white noise (explorer.core.scattering)."""
        try:
            from explorer.core.scattering import iter_synthesize
        except ImportError:
            self.message = "scattering synthesis is not available"
            return False
        if self.data.fields is None:
            self.message = "load data first"
            return False
        d = np.asarray(self.data.fields[: min(4, len(self.data.fields))], np.float64)
        n, iterations, seed = self.n_samples, self.steps, self.sample_seed
        self.live = None
        return self._start("sample", lambda stop: iter_synthesize(
            d, n_samples=n, iterations=iterations, seed=seed, stop=stop, report_every=2))

    # ------------------------------------------------------------ compare
    def start_compare(self) -> bool:
        if self.samples is None:
            self.message = "sample the model first"
            return False
        data = np.asarray(self.data.fields, np.float64)
        samples = np.asarray(self.samples, np.float64)
        synthesis = self.sample_meta.get("generator") == "scattering-synthesis"
        model = None if synthesis else self.model
        traces = list(self.jobs["sample"].infos)
        beta = (self.data.meta.get("params") or {}).get("beta")
        is_phi4 = self.data.meta.get("generator") == "phi4" and beta is not None

        def make(stop):
            yield Progress(0, 4, "distances")
            J = model.J if model is not None and model.J else None
            wavelet = model.wavelet if model is not None else "db4"
            report = dg.compare(data, samples, J=J, wavelet=wavelet, couplings=True)
            if "coupling" not in report and report["J"] >= 1:  # depth 0: the default depth
                report["coupling"] = dg.coupling_report(data, samples, report["J"], wavelet)
            report["scattering"] = scattering_comparison(data, samples)
            yield Progress(1, 4, "Hessian spectra")
            hists = {}
            if model is None:  # samples from synthesis: no energy to differentiate
                report["hessian_histograms"] = {}
                report["mixing"] = {}
                yield Progress(4, 4, "done", done=True, result=report)
                return
            pixel_model = model if model.J == 0 else None
            if is_phi4:
                hists["pixel (true φ⁴ energy)"] = dg.eigenvalue_histogram(
                    dg.phi4_hessian_spectra(data[:HESSIAN_FIELDS], float(beta)))
            else:
                pixel_model = pixel_model or WCRGModel(model.family, 0, model.wavelet,
                                                       **model.options).fit(data)
            if pixel_model is not None:
                hists["pixel (fitted)"] = dg.eigenvalue_histogram(
                    dg.model_hessian_spectra(pixel_model, data[:HESSIAN_FIELDS])["coarse"])
            if should_stop(stop):
                yield Progress(1, 4, "stopped", done=True, stopped=True)
                return
            if model.J:
                spectra = dg.model_hessian_spectra(model, data[:HESSIAN_FIELDS])
                for k, v in spectra.items():
                    if k != "coarse":
                        hists[f"conditional {k}"] = dg.eigenvalue_histogram(v)
            report["hessian_histograms"] = hists
            yield Progress(2, 4, "mixing")
            report["mixing"] = mixing_from_traces(traces)
            yield Progress(4, 4, "done", done=True, result=report)
        return self._start("compare", make)

    # ------------------------------------------------------------ jobs
    def _start(self, name: str, make) -> bool:
        job = self.jobs[name]
        if job.running:
            self.message = f"{name} is already running: stop it first"
            return False
        self.message = ""
        self.status = f"{name} started"
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
                self._finish(name, job)
                self.finished_jobs.append(name)
        return new

    def _finish(self, name: str, job: Job) -> None:
        if job.status == ERROR:
            self.message = job.error
            self.status = f"{name} failed"
            return
        if job.status == STOPPED:
            self.status = f"{name} stopped after {job.seconds:.1f} s"
            return
        if job.status != DONE:
            return
        r = job.result
        if name == "generate":
            self.data.set_fieldset(r)
        elif name == "fit":
            self.param.update(model=r["model"], fit_rows=self.fit_table(r["model"]),
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
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            return save_fields(Path(d) / "samples.npz",
                               FieldSet(np.asarray(self.samples), dict(self.sample_meta))).read_bytes()

    def export_model(self) -> bytes:
        if self.model is None:
            raise ValueError("no fitted model yet")
        import tempfile

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
        from explorer.ui import export, plots

        export.ensure_backends()
        figs = {"data_field": plots.field_image(self.data.current, title="data"),
                "data_spectrum": plots.power_spectrum(self.data.fields)}
        if self.model is not None:
            rep = {"histograms": {}, "potential": potential_report(self.model, self.data.fields),
                   "kernels": {}}
            figs.update({k: v for k, v in export.diagnose_figures(rep).items()
                         if k != "hessian_eigenvalues"})
        if self.samples is not None:
            figs["sample_field"] = plots.field_image(self.samples[0], title="sample")
            figs.update(export.compare_figures(self.data.fields, self.samples,
                                               self.compare_report))
        if self.compare_report and self.compare_report.get("hessian_histograms"):
            figs["hessian_eigenvalues"] = plots.eigen_histograms(
                self.compare_report["hessian_histograms"])
        buf = io.BytesIO()
        import tempfile

        with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(buf, "w") as z:
            for name in export.write_figures(figs, d):
                z.write(Path(d) / name, name)
        return buf.getvalue()


def available_families() -> list[str]:
    """The WCRG families in the menus: every registered one among :data:`MENU_FAMILIES` (the
    scattering family registers itself when its module is importable)."""
    try:
        import explorer.core.scattering  # noqa: F401  (registers the family)
    except ImportError:
        pass
    return [f for f in MENU_FAMILIES if f in FAMILIES]


def potential_report(model: WCRGModel, fields) -> dict:
    lim = float(np.abs(np.asarray(fields)).max())
    grid = np.linspace(-lim, lim, 201)
    return {"grid": grid.tolist(),
            "V": {k: v.tolist() for k, v in dg.learned_potential(model, grid).items()}}


def scattering_comparison(data: np.ndarray, samples: np.ndarray, max_fields: int = 16) -> dict | None:
    """Reduced scattering spectra of data and samples side by side (None when the scattering
    module is unavailable): per coefficient the data and sample means (modulus) and, per kind,
    the mean relative difference |S_samples − S_data| / |S_data| over coefficients above 1e-3
    of the kind's largest."""
    try:
        from explorer.core.scattering import scattering_statistics
    except ImportError:
        return None
    a = scattering_statistics(data[:max_fields])
    b = scattering_statistics(samples[:max_fields], J=a.params.get("J"), L=a.params.get("L", 4))
    ma, mb = np.abs(a.mean()), np.abs(b.mean())
    kinds = [t["kind"] for t in a.table]
    per_kind = {}
    for k in dict.fromkeys(kinds):
        if k == "mean":  # the spatial mean is ~0 for these fields: a relative error means nothing
            continue
        idx = np.array([i for i, kk in enumerate(kinds) if kk == k])
        ref = ma[idx]
        keep = ref > 1e-3 * (ref.max() or 1.0)
        if keep.any():
            per_kind[k] = float(np.mean(np.abs(mb[idx][keep] - ref[keep]) / ref[keep]))
    return {"names": a.names, "kinds": kinds, "data": ma.tolist(), "samples": mb.tolist(),
            "relative_difference": per_kind, "params": a.params}


def mixing_from_traces(infos: list[dict], max_lag: int = 200) -> dict:
    """Autocorrelation of the mean energy along the production phase of each scale's sampler
    (reports every few steps; lags in reports) and its τ_int (Sokal window)."""
    by_stage: dict[str, list[float]] = {}
    for i in infos:
        if "mean_energy" in i and str(i.get("stage", "")).endswith("sampling"):
            by_stage.setdefault(i["stage"], []).append(float(i["mean_energy"]))
    out = {}
    for stage, series in by_stage.items():
        s = np.asarray(series)
        if len(s) >= 8 and np.std(s) > 0:
            out[stage] = {"acf": dg.autocorrelation_function(s, min(max_lag, len(s) - 1)).tolist(),
                          **dg.mixing_summary(s)}
    return out

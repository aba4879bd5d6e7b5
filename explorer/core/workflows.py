"""One pipeline for the app, the command line and notebooks: generate, fit, sample and compare.

Each long step is an iterator of :class:`~explorer.core.progress.Progress` reports honouring a
stop event (numpy / scipy only). Factors are labelled ``coarse`` and ``j=1`` ... ``j=J``.
"""

from __future__ import annotations

import inspect
import itertools
import math
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from explorer.core import diagnostics as dg
from explorer.core import wavelets as wv
from explorer.core.features import FAMILIES, make_features
from explorer.core.fields.base import FieldSet, as_batch, check_number
from explorer.core.defaults import DEFAULT_STEPS, default_refinement
from explorer.core.fit.generated import precheck as precheck_generated, refine_on_generated
from explorer.core.model import UnboundedModelError, WCRGModel, default_depth
from explorer.core.progress import Progress, run, should_stop
from explorer.core.summary import domain_observables
from explorer.core.support import DEFAULT_FLOOR

# ====================================================================== generators
GENERATORS = ("phi4", "gaussian", "turbulence")
#: accepted sizes (powers of two) per generator, the generators' own limits
GENERATE_SIZES = {"phi4": (8, 256), "gaussian": (8, 1024), "turbulence": (16, 4096)}
#: every parameter of each generator with its default (names of the core iterators; the Gaussian
#: spectrum kind is ``spectrum``: "powerlaw" or "free")
GENERATOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "phi4": {"beta": 0.68, "lam": 1.0, "n_chains": None, "cluster": True,
             "require_equilibrium": False},
    "gaussian": {"spectrum": "powerlaw", "eta": 2.0, "mass": 0.0, "beta": 1.0},
    "turbulence": {"spinup": 10.0, "interval": 1.0, "nu": None, "p": 4, "alpha": 0.1, "kf": 4,
                   "cfl": 0.5},
}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_generate(kind: str, size: int, n_samples: int, **params) -> dict:
    """Every parameter of generator ``kind`` checked before any work (ValueError, one clear
    message); returns the full parameters (defaults filled in)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; available: {list(GENERATORS)}")
    unknown = sorted(set(params) - set(GENERATOR_DEFAULTS[kind]))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} of the {kind} generator; known: "
                         f"{sorted(GENERATOR_DEFAULTS[kind])}")
    p = {**GENERATOR_DEFAULTS[kind], **params}
    lo, hi = GENERATE_SIZES[kind]
    if not (_is_int(size) and lo <= size <= hi and size & (size - 1) == 0):
        raise ValueError(f"the {kind} size must be a power of two in {lo}..{hi}, got {size!r}")
    if not (_is_int(n_samples) and n_samples >= 1):
        raise ValueError(f"the number of fields must be a whole number >= 1, got {n_samples!r}")
    if kind == "phi4":
        check_number("beta", p["beta"], lambda v: v >= 0, ">= 0")
        check_number("lambda", p["lam"], lambda v: v > 0, "> 0")
        if p["n_chains"] is not None and not (_is_int(p["n_chains"]) and p["n_chains"] >= 1):
            raise ValueError(f"the number of chains must be a whole number >= 1, got "
                             f"{p['n_chains']!r}")
    elif kind == "gaussian":
        from explorer.core.fields.gaussian import check_gaussian_params

        check_gaussian_params(size, n_samples, p["spectrum"], p["eta"], p["mass"], p["beta"])
    else:
        from explorer.core.fields.turbulence import check_solver_params

        check_solver_params(size, p["nu"], p["p"], p["alpha"], p["kf"], p["cfl"])
        check_number("the spin-up time", p["spinup"], lambda v: v >= 0, ">= 0")
        check_number("the snapshot interval", p["interval"], lambda v: v > 0, "> 0")
    return p


def generate_memory_bytes(kind: str, size: int, n_samples: int, **params) -> tuple[int, int]:
    """(peak bytes, working bytes beyond the float32 output) of :func:`iter_generate`: the larger
    of the generator's own peak and the output plus the summary computed on it."""
    N, pixels = int(n_samples), int(size) * int(size)
    out = 4 * N * pixels
    if kind == "phi4":
        chains = params.get("n_chains") or min(N, 256)
        per_chain = math.ceil(N / chains)
        run_peak, summary = (4 * per_chain * chains + 64 * chains + 8 * N) * pixels, 40 * N * pixels
    elif kind == "gaussian":
        from explorer.core.fields.gaussian import gaussian_memory_bytes

        run_peak, summary = gaussian_memory_bytes(size, N), 16 * N * pixels
    else:
        from explorer.core.fields.turbulence import turbulence_memory_bytes

        run_peak, summary = turbulence_memory_bytes(size, N), 64 * N * pixels
    peak = max(run_peak, out + summary)
    return peak, peak - out


def iter_generate(kind: str, size: int, n_samples: int, seed: int = 0,
                  stop: threading.Event | None = None, **params) -> Iterator[Progress]:
    """The generator ``kind``'s progress iterator (parameters checked now, before any work); the
    final report carries a :class:`FieldSet`."""
    p = check_generate(kind, size, n_samples, **params)
    if kind == "phi4":
        from explorer.core.fields.phi4 import iter_phi4

        return iter_phi4(size=size, n_samples=n_samples, seed=seed, stop=stop, **p)
    if kind == "gaussian":
        from explorer.core.fields.gaussian import iter_gaussian

        return iter_gaussian(size=size, n_samples=n_samples, kind=p["spectrum"], eta=p["eta"],
                             mass=p["mass"], beta=p["beta"], seed=seed, stop=stop)
    from explorer.core.fields.turbulence import iter_turbulence

    return iter_turbulence(size=size, n_snapshots=n_samples, seed=seed, stop=stop, **p)


# ====================================================================== families
def _wcrg_capable(name: str) -> bool:
    try:
        make_features(name, level="conditional", L=None)
    except ValueError:  # a depth-0-only feature set (the phi4 ansatz), not a WCRG family
        return False
    return True


def family_aliases() -> dict[str, str]:
    """{alias: family} for registered names sharing another registered family's builder."""
    seen: dict[int, str] = {}
    for name, builder in FAMILIES.items():
        seen.setdefault(id(builder), name)
    return {name: seen[id(b)] for name, b in FAMILIES.items() if seen[id(b)] != name}


def wcrg_families() -> list[str]:
    """The WCRG feature families of the registry (one name each, in registration order)."""
    aliases = family_aliases()
    return [n for n in FAMILIES if n not in aliases and _wcrg_capable(n)]


def family_choices() -> list[str]:
    """Every name a user may give for a WCRG family: the families and their aliases."""
    fams = wcrg_families()
    return fams + [a for a, f in family_aliases().items() if f in fams]


def resolve_family(name: str) -> str:
    return family_aliases().get(name, name)


def _builder_default(option: str, fallback):
    for builder in FAMILIES.values():
        p = inspect.signature(builder).parameters.get(option)
        if p is not None and p.default is not inspect.Parameter.empty:
            return p.default
    return fallback


#: the options the app and the command line offer, with their defaults
FAMILY_OPTION_DEFAULTS = {"radius": 1, "potential": "polynomial", "degree": 4, "parity": "even",
                          "n_windows": 20, "eps_rel": _builder_default("eps_rel", 0.5)}
#: parities of a polynomial potential: even powers only (a law symmetric under x -> -x when the
#: couplings are), or all powers (odd terms: skewed one-point laws)
PARITIES = ("even", "all")


def family_options(family: str, radius: int = 1, potential: str = "polynomial", degree: int = 4,
                   n_windows: int = 20, eps_rel: float = FAMILY_OPTION_DEFAULTS["eps_rel"],
                   parity: str = "even") -> dict:
    """The options of ``family`` from the offered ones: the coupling radius always; a potential
    basis (degree and parity, or number of windows) and the modulus width ``eps_rel`` where the
    family's builder takes them. ``parity="all"`` adds the odd powers (φ, φ³, ...) to a
    polynomial potential; the even default is stored as before (no option)."""
    if parity not in PARITIES:
        raise ValueError(f"parity must be one of {list(PARITIES)}, got {parity!r}")
    accepted = inspect.signature(FAMILIES[resolve_family(family)]).parameters
    opts: dict[str, Any] = {"radius": radius}
    if "potential" in accepted:
        opts["potential"] = potential
        if potential == "windows":
            opts["n_windows"] = n_windows
        else:
            opts["degree"] = degree
            if parity != "even" and "parity" in accepted:
                opts["parity"] = parity
    if "eps_rel" in accepted:
        opts["eps_rel"] = eps_rel
    return opts


# ====================================================================== labels
_COARSE = re.compile(r"scale \d+ \(coarsest[^)]*\)")
_SCALE = re.compile(r"scale (\d+)(?: \(conditional\))?")


def scale_label(text: str) -> str:
    """The user-facing name of a factor in a model's message: ``coarse`` or ``j=1``."""
    return _SCALE.sub(r"j=\1", _COARSE.sub("coarse", text))


def factor_label(factor) -> str:
    return "coarse" if factor.level == "depth0" else f"j={factor.j}"


def _relabel(rep: Progress, extra: int = 0) -> Progress:   # the app's labels, extra steps
    rep.stage, rep.total = scale_label(rep.stage), rep.total + extra
    if isinstance(rep.info.get("scale"), str):
        rep.info = {**rep.info, "scale": scale_label(rep.info["scale"])}
    return rep


# ====================================================================== fitting
def fit_rows(model: WCRGModel) -> list[dict]:
    """Per factor (coarse first): parameters, κ(H) raw / preconditioned, time, boundedness,
    warnings and the couplings θ by name."""
    rows = []
    for f in model.factors():
        s = f.fit
        rows.append({"scale": factor_label(f), "parameters": len(f.theta),
                     "kappa_raw": s.get("kappa_H_raw"),
                     "kappa_preconditioned": s.get("kappa_H_preconditioned"),
                     "seconds": s.get("seconds"), "quadratic_base": s.get("quadratic_base"),
                     "bounded": s.get("bounded"), "warnings": list(s.get("warnings") or []),
                     "theta": dict(zip(f.names, map(float, f.theta)))})
    return rows


def potential_report(model: WCRGModel, fields, points: int = 201) -> dict:
    """The learned V(φ) per factor on a grid spanning the data's range."""
    lim = float(np.abs(np.asarray(fields)).max())
    grid = np.linspace(-lim, lim, points)
    return {"grid": grid.tolist(),
            "V": {k: v.tolist() for k, v in dg.learned_potential(model, grid).items()}}


def kernel_report(model: WCRGModel) -> dict:
    """The quadratic coupling kernels of every factor that has coupling features."""
    out = {}
    for f in model.factors():
        try:
            k = dg.quadratic_kernels(f)
        except ValueError:  # no quadratic coupling block in this factor
            continue
        out[factor_label(f)] = {"channels": k["channels"], "radius": k["radius"],
                                "kernels": np.asarray(k["kernels"]).tolist()}
    return out


def model_report(model: WCRGModel, fields) -> dict:
    """What a fitted model shows: the fit rows, learned potentials and coupling kernels."""
    return {"rows": fit_rows(model), "potential": potential_report(model, fields),
            "kernels": kernel_report(model)}


def prepare_fit_data(fields, dequantise: float | None = None, gaussianise: bool = False,
                     seed: int = 0) -> tuple[np.ndarray, dict]:
    """The fields a model is fitted on, and the preprocessing to record in its provenance.

    Discrete data (at most :data:`explorer.core.statistics.DISCRETE_MAX_VALUES` distinct values,
    e.g. ±1 spins) are refused with the recipe unless ``dequantise`` = σ adds N(0, σ²) noise
    (seeded by ``seed``); ``gaussianise`` maps the one-point law onto a standard normal
    (:mod:`explorer.core.marginal`), undone on the samples by :func:`iter_sample`."""
    from explorer.core import statistics as st

    x = as_batch(fields)
    pre: dict[str, Any] = {}
    check = st.discrete_check(x)
    if dequantise is not None:
        x = st.dequantise(x, dequantise, seed)
        pre["dequantise"] = {"sigma": float(dequantise), "seed": int(seed),
                             # the levels of discrete data: samples are mapped back onto them
                             "levels": None if check is None else check["values"]}
    elif check is not None:
        raise ValueError(st.discrete_message(check))
    if gaussianise:
        from explorer.core.marginal import fit_anamorphosis, to_gaussian

        pre["marginal"] = fit_anamorphosis(x)
        x = to_gaussian(x, pre["marginal"])
    return x, pre


def model_space(model: WCRGModel, fields) -> np.ndarray:
    """Fields in the variables the model was fitted in (its Gaussian anamorphosis applied, when
    it has one): what its energies and Hessians take."""
    marginal = (model.provenance.get("preprocessing") or {}).get("marginal")
    x = np.asarray(fields, np.float64)
    if marginal is None:
        return x
    from explorer.core.marginal import to_gaussian

    return to_gaussian(x, marginal)


def data_space(model: WCRGModel, samples) -> tuple[np.ndarray, dict]:
    """Samples of ``model`` in the data's variables, and notes on what was done: its Gaussian
    anamorphosis undone; for a model of dequantised discrete data, every value moved to the
    nearest level of the data (the noise the fit added, removed)."""
    pre = model.provenance.get("preprocessing") or {}
    x, notes = np.asarray(samples), {}
    if pre.get("marginal") is not None:
        from explorer.core.marginal import from_gaussian

        x = from_gaussian(x, pre["marginal"]).astype(x.dtype)
        notes["marginal"] = "Gaussian anamorphosis of the model undone"
    levels = (pre.get("dequantise") or {}).get("levels")
    if levels:
        lv = np.asarray(levels, x.dtype)
        edges = (lv[1:] + lv[:-1]) / 2
        x = lv[np.searchsorted(edges, x)]
        notes["requantised"] = (f"values moved to the nearest of the data's {len(lv)} levels "
                                f"(the model is of the data plus N(0, "
                                f"{pre['dequantise']['sigma']:g}^2) noise)")
    return x, notes


def iter_fit(fields, family: str = "phi4", J: int | None = None, wavelet: str = wv.DEFAULT_WAVELET,
             method: str = "score", options: dict | None = None,
             support_floor: float | None = DEFAULT_FLOOR, ridge: float = 1e-6,
             data_meta: dict | None = None, provenance: dict | None = None, rgflow: bool = False,
             dequantise: float | None = None, gaussianise: bool = False, seed: int = 0,
             refine_generated: bool = False,
             stop: threading.Event | None = None) -> Iterator[Progress]:
    """Fit a :class:`WCRGModel` (depth ``J``, default :func:`default_depth` for the data, with
    :func:`~explorer.core.defaults.default_refinement`) with its provenance; the final report
    carries ``{"model", "report" (:func:`model_report`), "rgflow" (the couplings' RG flow when
    asked and the family has one), "seconds"}``. ``dequantise``, ``gaussianise``, ``seed``:
    :func:`prepare_fit_data` (recorded in the model's ``provenance["preprocessing"]``).
    ``refine_generated``: then :func:`~explorer.core.fit.refine_on_generated` (~5x the fit)."""
    x, pre = prepare_fit_data(fields, dequantise, gaussianise, seed)
    meta = data_meta or {}
    J = default_depth(x.shape[-1], meta.get("generator"), x) if J is None else J
    family = resolve_family(family)
    precheck_generated(family, J, len(x), wanted=refine_generated)
    model = WCRGModel(family, J, wavelet, support_floor=support_floor, **(options or {}))
    refine = default_refinement(family, J, meta.get("generator"), method)
    prov = {"data_meta": {k: meta.get(k) for k in ("generator", "params", "seed")},
            "n_fields": len(x), **(provenance or {})}
    if pre:
        prov["preprocessing"] = pre
    t0, final = time.perf_counter(), None
    flows = rgflow and family in ("phi4", "gaussian") and x.shape[-1] >= 8
    extra = int(bool(refine_generated)) + int(flows)   # the steps after the factors' fits
    for rep in model.iter_fit(x, method=method, ridge=ridge, stop=stop, provenance=prov, **refine):
        if rep.done:
            final = rep
            break
        yield _relabel(rep, extra)
    if final is None or final.stopped:
        yield Progress(0, 1, "fit", done=True, stopped=True)
        return
    total, done, flow = final.total + extra, final.total, None
    if refine_generated:
        yield Progress(done, total, "refinement on generated fields")
        model, done = refine_on_generated(model, x), done + 1
    if flows:
        from explorer.core.rgflow import rg_flow
        yield Progress(done, total, "RG flow")
        flow = rg_flow(x, family=family)
    yield Progress(1, 1, "done", done=True,
                   result={"model": model, "report": model_report(model, x), "rgflow": flow,
                           "seconds": time.perf_counter() - t0})


# ====================================================================== sampling
REPORT_EVERY = 5  # MALA steps between progress reports (and energy-trace points)


def iter_sample(model: WCRGModel, n: int, steps: int = DEFAULT_STEPS, burn_in: int | None = None,
                method: str = "mala", seed: int = 0, allow_unbounded: bool = False,
                report_every: int = REPORT_EVERY, stop: threading.Event | None = None,
                size: int | None = None) -> Iterator[Progress]:
    """Coarse-to-fine sampling of ``model`` (burn-in defaults to ``steps``; ``size``: 2^k times
    the fitted side, the size transfer recorded in ``meta["size_transfer"]``). The final
    :class:`FieldSet`'s meta carries the production energy trace of every scale,
    ``traces = {scale: {"gradient_evaluations": [...], "mean_energy": [...]}}``, from which
    :func:`comparison_report` measures the mixing."""
    traces: dict[str, dict[str, list]] = {}
    reports = model.iter_sample(n, steps=steps, burn_in=steps if burn_in is None else burn_in,
                                method=method, seed=seed, stop=stop, report_every=report_every,
                                allow_unbounded=allow_unbounded, size=size)
    try:
        first = next(reports)
    except UnboundedModelError as e:  # refused before any work: name the factor as we do
        raise UnboundedModelError(scale_label(str(e))) from None
    for rep in itertools.chain([first], reports):
        rep = _relabel(rep)
        if rep.done:
            if rep.result is not None and not rep.stopped:
                meta = rep.result.meta
                for s in meta.get("sampling", {}).get("scales", []):
                    s["scale"] = scale_label(s["scale"])
                meta["traces"] = traces
                rep.result.fields, notes = data_space(model, rep.result.fields)
                meta.update(notes)
            yield rep
            return
        scale, _, phase = rep.stage.partition(": ")
        if phase == "sampling" and "mean_energy" in rep.info and "n_grad" in rep.info:
            t = traces.setdefault(scale, {"gradient_evaluations": [], "mean_energy": []})
            t["gradient_evaluations"].append(int(rep.info["n_grad"]))
            t["mean_energy"].append(float(rep.info["mean_energy"]))
        yield rep


def mixing_from_traces(traces: dict, max_lag: int = 200) -> dict:
    """Per scale: the autocorrelation of the chains' mean energy along production, lags and
    τ_int in gradient evaluations (``tau_int_reports``: in reports), Sokal's window."""
    out = {}
    for scale, t in traces.items():
        e = np.asarray(t["mean_energy"], np.float64)
        g = np.asarray(t["gradient_evaluations"], np.float64)
        if len(e) < 8 or not np.std(e) > 0:
            continue
        unit = float(np.median(np.diff(g))) if len(g) > 1 else 1.0
        acf = dg.autocorrelation_function(e, min(max_lag, len(e) - 1))
        m = dg.mixing_summary(e)
        out[scale] = {"lag": (np.arange(len(acf)) * unit).tolist(), "acf": acf.tolist(),
                      "tau_int": m["tau_int"] * unit, "tau_int_reports": m["tau_int"],
                      "gradient_evaluations_per_report": unit, "window": m["window"],
                      "T": m["T"], "n_eff": m["n_eff"]}
    return out


# ====================================================================== comparison
HESSIAN_FIELDS = 2  # data fields at which Hessian spectra are taken
SECTIONS = ("coupling", "hessian", "mixing", "scattering")


def scattering_comparison(data, samples, max_fields: int = 16) -> dict:
    """Reduced scattering spectra of data and samples side by side: per coefficient the data and
    sample means (modulus) and, per kind, the mean relative difference |S_samples − S_data| /
    |S_data| over coefficients above 1e-3 of the kind's largest (the mean is left out)."""
    from explorer.core.scattering import scattering_statistics

    a = scattering_statistics(np.asarray(data)[:max_fields])
    b = scattering_statistics(np.asarray(samples)[:max_fields], J=a.params.get("J"),
                              L=a.params.get("L", 4))
    ma, mb = np.abs(a.mean()), np.abs(b.mean())
    kinds = [t["kind"] for t in a.table]
    per_kind = {}
    for k in dict.fromkeys(kinds):
        if k == "mean":  # ~0 for these fields: a relative error means nothing
            continue
        idx = np.array([i for i, kk in enumerate(kinds) if kk == k])
        ref = ma[idx]
        keep = ref > 1e-3 * (ref.max() or 1.0)
        if keep.any():
            per_kind[k] = float(np.mean(np.abs(mb[idx][keep] - ref[keep]) / ref[keep]))
    return {"names": list(a.names), "kinds": kinds, "data": ma.tolist(), "samples": mb.tolist(),
            "relative_difference": per_kind, "params": dict(a.params)}


def _histogram_entry(spectra) -> dict:
    h = dg.eigenvalue_histogram(spectra)
    return {**h, "report": dg.hessian_report(h["summary"])}


def hessian_section(data, model: WCRGModel | None = None, data_meta: dict | None = None,
                    n_fields: int = HESSIAN_FIELDS,
                    stop: threading.Event | None = None) -> tuple[dict | None, str | None]:
    """Hessian eigenvalue histograms at the first data fields: the true φ⁴ pixel energy (φ⁴
    data with a known β), the pixel energy of the model's family refitted at depth 0 (other
    data; the model itself at J = 0), the model's coarse factor and conditionals. (section or
    None, reason)."""
    meta = data_meta or {}
    params = meta.get("params") or {}
    beta = params.get("beta") if meta.get("generator") == "phi4" else None
    if beta is None and model is None:
        return None, ("no energy to differentiate: no model, and the data are not φ⁴ with a "
                      "known β")
    x = np.asarray(data, np.float64)[:n_fields]
    hists = {}
    if beta is not None:
        hists["pixel (true φ⁴ energy)"] = _histogram_entry(
            dg.phi4_hessian_spectra(x, float(beta), float(params.get("lam", 1.0))))
    if model is not None:
        pixel = model if model.J == 0 else None
        if pixel is None and beta is None:
            pixel = WCRGModel(model.family, 0, model.wavelet, support_floor=model.support_floor,
                              **model.options).fit(np.asarray(data, np.float64))
        if pixel is not None:
            hists["pixel (fitted)"] = _histogram_entry(dg.model_hessian_spectra(pixel, x)["coarse"])
        if should_stop(stop):
            return None, "stopped"
        if model.J:
            for k, v in dg.model_hessian_spectra(model, x).items():
                hists["coarse" if k == "coarse" else f"conditional {k}"] = _histogram_entry(v)
    return {"n_fields": int(len(x)), "histograms": hists}, None


def _meta_summary(meta: dict | None) -> dict:
    meta = meta or {}
    return {"generator": meta.get("generator"), "params": meta.get("params")}


def iter_comparison_report(data, samples, *, J: int | None = None, wavelet: str | None = None,
                           model: WCRGModel | None = None, data_meta: dict | None = None,
                           sample_meta: dict | None = None, hessian_fields: int = HESSIAN_FIELDS,
                           observables=(), stop: threading.Event | None = None
                           ) -> Iterator[Progress]:
    """Progress of :func:`comparison_report`; the final report carries the report."""
    if isinstance(data, FieldSet):
        data, data_meta = data.fields, data_meta if data_meta is not None else data.meta
    if isinstance(samples, FieldSet):
        samples, sample_meta = samples.fields, (sample_meta if sample_meta is not None
                                                else samples.meta)
    a, b = np.asarray(data, np.float64), np.asarray(samples, np.float64)
    if model is not None:
        if model.stats.get("L") != a.shape[-1]:
            raise ValueError(f"the model was fitted on {model.stats.get('L')}x"
                             f"{model.stats.get('L')} fields, the data are "
                             f"{a.shape[-1]}x{a.shape[-1]}")
        if J is None and model.J:
            J = model.J
    wavelet = wavelet or (model.wavelet if model is not None else wv.DEFAULT_WAVELET)
    total = 4
    reasons: dict[str, str | None] = dict.fromkeys(SECTIONS)
    yield Progress(0, total, "distances")
    report = dg.compare(a, b, J=J, wavelet=wavelet, couplings=True)
    asked = domain_observables(data_meta, observables)
    report["observables_shown"] = list(asked)
    if "phi4" in asked:  # the Binder cumulants themselves, next to their difference
        from explorer.core.observables import binder_cumulant, magnetisation

        report["binder_data"] = binder_cumulant(magnetisation(a))
        report["binder_samples"] = binder_cumulant(magnetisation(b))
    else:  # a spin observable means nothing for other data: not reported
        report["binder_difference"] = None
    from explorer.core.statistics import comparison_verdicts

    report["generic"] = comparison_verdicts(a, b, report, asked)
    report["inputs"] = {"data": _meta_summary(data_meta), "samples": _meta_summary(sample_meta),
                        "model": None if model is None else {
                            "family": model.family, "J": model.J, "wavelet": model.wavelet,
                            "options": model.options, "support_floor": model.support_floor}}
    report.setdefault("coupling", None)
    if report["coupling"] is None:
        reasons["coupling"] = "J = 0: no wavelet scales to couple"
    yield Progress(1, total, "scattering statistics")
    try:
        report["scattering"] = scattering_comparison(a, b)
    except ValueError as e:  # e.g. fields too small for the filter bank
        report["scattering"], reasons["scattering"] = None, str(e)
    if should_stop(stop):
        yield Progress(1, total, "stopped", done=True, stopped=True)
        return
    yield Progress(2, total, "Hessian spectra")
    report["hessian"], reasons["hessian"] = hessian_section(
        a if model is None else model_space(model, a), model, data_meta, hessian_fields, stop)
    if should_stop(stop):
        yield Progress(2, total, "stopped", done=True, stopped=True)
        return
    yield Progress(3, total, "mixing")
    traces = (sample_meta or {}).get("traces")
    report["mixing"] = None
    if (sample_meta or {}).get("generator") == "scattering-synthesis":
        reasons["mixing"] = "samples from scattering synthesis: no Markov chain"
    elif not traces:
        reasons["mixing"] = "the samples carry no sampler energy traces"
    else:
        scales = mixing_from_traces(traces)
        if scales:
            report["mixing"] = {"unit": "gradient evaluations", "scales": scales}
        else:
            reasons["mixing"] = "every energy trace is shorter than 8 reports or constant"
    report["reasons"] = reasons
    yield Progress(total, total, "done", done=True, result=report)


def comparison_report(data, samples, *, J: int | None = None, wavelet: str | None = None,
                      model: WCRGModel | None = None, data_meta: dict | None = None,
                      sample_meta: dict | None = None, hessian_fields: int = HESSIAN_FIELDS,
                      observables=(), callback=None) -> dict:
    """Samples against data, everything the app's Compare shows, JSON-serialisable.

    Distances (:func:`explorer.core.diagnostics.compare`: radial and 2D spectra on the data's
    support, corner power, histograms, per-scale std ratios, Binder, kurtosis per scale) at the
    top level, with ``J`` defaulting to the model's depth, then the sections ``coupling``,
    ``hessian`` (:func:`hessian_section`), ``mixing`` (from ``sample_meta["traces"]``, lags in
    gradient evaluations) and ``scattering`` (:func:`scattering_comparison`); a section that
    cannot be computed is None, with the reason in ``reasons[section]``. ``inputs`` names the
    data, samples and model. ``data``/``samples`` may be FieldSets (their meta is used).

    ``generic`` (:func:`explorer.core.statistics.comparison_verdicts`): the one-point statistics
    of both (moments, extremes, quantiles, per-field mean spread) and one verdict per statistic
    against its threshold. Domain observables only when the data's meta names them or
    ``observables`` asks (``"phi4"``: ``binder_data``, ``binder_samples``,
    ``binder_difference``; otherwise ``binder_difference`` is None).
    """
    return run(iter_comparison_report(data, samples, J=J, wavelet=wavelet, model=model,
                                      data_meta=data_meta, sample_meta=sample_meta,
                                      hessian_fields=hessian_fields, observables=observables),
               callback, allow_partial=False)

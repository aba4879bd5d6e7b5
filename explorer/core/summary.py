"""One summary of a field batch, for any file: shape, dtype, the generic statistics of
:mod:`explorer.core.statistics` (moments with skewness and kurtosis, extremes, quantiles,
per-field mean spread, spectral slope with its fitted range, discreteness, a suggested depth),
and the domain observables only when the file's ``meta`` says what the fields are (φ⁴,
turbulence) or the caller asks for them.

Used by ``explorer info``, ``explorer generate --json`` and the app's data and upload panels.
"""

from __future__ import annotations

from typing import Any

from explorer.core.fields.base import FieldSet
from explorer.core.io import describe_fields
from explorer.core.statistics import generic_summary

_SAMPLER_KEYS = ("tau_int_m2", "tau_int_energy", "tau_int_m2_pilot", "tau_int_energy_pilot",
                 "burn_in", "thin", "tau_measured", "equilibrated", "tau_used", "pilot",
                 "warnings")
#: domain observables: phi4 (magnetisation, Binder cumulant), turbulence (vorticity statistics)
DOMAIN_OBSERVABLES = ("phi4", "turbulence")


def domain_observables(meta: dict | None, asked=()) -> tuple[str, ...]:
    """The domain observables of a data set: those its ``meta`` names (φ⁴ data: ``phi4``;
    turbulence: ``turbulence``) and those asked for; none for people's own files."""
    gen = (meta or {}).get("generator")
    own = (gen,) if gen in DOMAIN_OBSERVABLES else ()
    asked = tuple(asked or ())
    bad = sorted(set(asked) - set(DOMAIN_OBSERVABLES))
    if bad:
        raise ValueError(f"unknown observables {bad}; known: {list(DOMAIN_OBSERVABLES)}")
    return tuple(dict.fromkeys(own + asked))


def field_summary(fs: FieldSet, observables=()) -> dict[str, Any]:
    """``summary`` (shape, dtype, mean, std, min, max), ``source`` (how the file was read: its
    array, stored dtype and the cast), ``generic`` (:func:`generic_summary`) and
    ``observables``: φ⁴ observables for φ⁴ data (energy per site with its β), turbulence
    observables for turbulence, and those in ``observables`` for any data."""
    gen = fs.meta.get("generator", "file")
    params = fs.meta.get("params", {})
    out: dict[str, Any] = {"summary": describe_fields(fs), "generator": gen, "params": params}
    if getattr(fs, "source", None):
        out["source"] = dict(fs.source)
    out["generic"] = generic_summary(fs.fields, fs.meta)
    obs: dict[str, Any] = {}
    asked = domain_observables(fs.meta, observables)
    if "phi4" in asked:
        from explorer.core.fields.phi4 import phi4_observables

        beta = params.get("beta") if gen == "phi4" else None
        obs["phi4"] = phi4_observables(fs.fields, beta, params.get("lam", 1.0))
        if fs.n < 2:
            obs["phi4"]["binder_err"] = None  # one field: no error estimate
        sampler = fs.meta.get("sampler", {})
        obs["phi4"].update({k: sampler[k] for k in _SAMPLER_KEYS if k in sampler})
    if "turbulence" in asked:
        from explorer.core.fields.turbulence import turbulence_observables

        try:  # the slope range [2 k_f, L/6] needs L >= 96 with k_f = 4
            obs["turbulence"] = turbulence_observables(fs)
        except ValueError as e:
            obs["turbulence"] = {"not_computed": str(e)}
    out["observables"] = obs
    out.update({k: fs.meta[k] for k in ("seed", "command") if k in fs.meta})
    return out

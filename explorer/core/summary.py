"""One summary of a field batch: shape, moments and the physics observables of its kind.

Used by ``explorer info``, ``explorer generate --json`` and the app's info panel.
"""

from __future__ import annotations

from typing import Any

from explorer.core.fields.base import FieldSet
from explorer.core.fields.phi4 import phi4_observables
from explorer.core.fields.turbulence import turbulence_observables
from explorer.core.io import describe_fields
from explorer.core.observables import increment_flatness, kurtosis, skewness

_SAMPLER_KEYS = ("tau_int_m2", "tau_int_energy", "tau_int_m2_pilot", "tau_int_energy_pilot",
                 "burn_in", "thin", "tau_measured", "equilibrated", "tau_used", "pilot",
                 "warnings")


def field_summary(fs: FieldSet) -> dict[str, Any]:
    """Summary and observables.  phi^4 observables for phi^4 data and for people's own files
    (energy per site only when beta is known); turbulence observables for turbulence and files."""
    gen = fs.meta.get("generator", "file")
    params = fs.meta.get("params", {})
    out: dict[str, Any] = {"summary": describe_fields(fs), "generator": gen, "params": params}
    obs: dict[str, Any] = {}
    if gen in ("phi4", "file"):
        beta = params.get("beta") if gen == "phi4" else None
        obs["phi4"] = phi4_observables(fs.fields, beta, params.get("lam", 1.0))
        sampler = fs.meta.get("sampler", {})
        obs["phi4"].update({k: sampler[k] for k in _SAMPLER_KEYS if k in sampler})
    if gen in ("turbulence", "file"):
        try:  # the slope range [2 k_f, L/6] needs L >= 96 with k_f = 4
            obs["turbulence"] = turbulence_observables(fs)
        except ValueError:
            lags = tuple(r for r in (1, 2, 4, 8, 16) if r < fs.size // 2)
            obs["non_gaussian"] = {"kurtosis": kurtosis(fs.fields), "skewness": skewness(fs.fields),
                                   "flatness": increment_flatness(fs.fields, lags)}
    out["observables"] = obs
    out.update({k: fs.meta[k] for k in ("seed", "command") if k in fs.meta})
    return out

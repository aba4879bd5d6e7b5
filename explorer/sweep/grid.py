"""Sweep points: a grid over generator parameters, model settings and seeds, each point with a
stable key.

A *point* is a plain dict of JSON scalars (what a Dask task receives: parameters and seeds, never
arrays)::

    {"kind": "phi4", "size": 16, "beta": 0.68, "lam": 1.0, "eta": None, "drag": None,
     "family": "phi4", "J": 1, "method": "score", "n_data": 32, "n_samples": 32,
     "steps": 20, "burn_in": 20, "sampler": "mala", "seed": 0,
     "index": 3, "key": "9c1f..."}

``index`` is the point's position in the grid (the order of the final table); ``key`` identifies
its result: ``sha256`` of the canonical JSON of the parameters and seed (``index`` excluded) and of
:func:`code_version`.

Code version (the choice, documented): ``explorer.__version__`` plus the first 12 hex digits of a
sha256 over the source text of every ``explorer/core/**/*.py`` file and of
``explorer/sweep/point.py`` (the code that turns a point into a row), in sorted path order. It
needs no git (an installed wheel has the same sources), it changes when anything a result depends
on changes, and a rerun after such a change recomputes instead of mixing stale rows in; it is
conservative (a comment edit in the core also counts as a change).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from explorer.core.fields.base import check_number

KINDS = ("phi4", "gaussian", "turbulence")
FAMILIES = ("gaussian", "phi4", "modulus", "scattering")  # scattering: the modulus family's former name
METHODS = ("score", "ml")
SAMPLERS = ("mala", "ula")

#: the parameters of a point, in the order of the table's columns (index and key excluded)
PARAMETERS = ("kind", "size", "beta", "lam", "eta", "drag", "family", "J", "method", "n_data",
              "n_samples", "steps", "burn_in", "sampler", "seed")

FLOAT_PARAMETERS = ("beta", "lam", "eta", "drag")

#: the model family of a kind's points when none is given
DEFAULT_FAMILY = {"phi4": "phi4", "gaussian": "gaussian", "turbulence": "gaussian"}

#: generator parameters that each kind uses (the others are None in its points)
KIND_PARAMETERS = {"phi4": ("beta", "lam"), "gaussian": ("eta",), "turbulence": ("drag",)}

_PACKAGE = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def code_version() -> str:
    """``"<explorer version>+<12 hex digits>"``: the package version and a hash of the sources
    that determine a point's result (see the module docstring)."""
    from explorer import __version__

    files = sorted((_PACKAGE / "core").rglob("*.py")) + [_PACKAGE / "sweep" / "point.py"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(_PACKAGE).as_posix().encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return f"{__version__}+{h.hexdigest()[:12]}"


def _canonical(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value


def point_key(point: dict) -> str:
    """sha256 (hex) of the point's parameters and seed and of :func:`code_version`."""
    params = {k: _canonical(point.get(k)) for k in PARAMETERS}
    text = json.dumps({"params": params, "code": code_version()}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def make_point(index: int = 0, **params) -> dict:
    """A point from keyword parameters (missing ones None), with its ``index`` and ``key``; no
    validation (:func:`make_grid` validates)."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown point parameter(s): {', '.join(sorted(unknown))}")
    point = {k: _canonical(params.get(k)) for k in PARAMETERS}
    for name in FLOAT_PARAMETERS:  # beta = 1 and beta = 1.0 are one point
        if isinstance(point[name], int):
            point[name] = float(point[name])
    point["index"] = int(index)
    point["key"] = point_key(point)
    return point


def _as_list(values, what: str) -> list:
    if values is None:
        return [None]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]
    out = list(values)
    if not out:
        raise ValueError(f"{what}: give at least one value")
    return out




def _integer(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        where = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be a whole number {where}, got {value}")
    return int(value)


def _check_size(kind: str, size) -> int:
    from explorer.core.fields.gaussian import MAX_SIZE as GAUSS_MAX
    from explorer.core.fields.turbulence import MAX_SIZE as TURB_MAX

    lo, hi = {"phi4": (8, 256), "gaussian": (8, GAUSS_MAX), "turbulence": (16, TURB_MAX)}[kind]
    v = _integer(f"{kind} size", size, lo, hi)
    if v & (v - 1):
        raise ValueError(f"{kind} size must be a power of two in {lo}..{hi}, got {v}")
    return v


def check_point(point: dict) -> None:
    """Raise ValueError (one line) for a parameter no run could use, before any work."""
    from explorer.core.wavelets import max_levels

    kind = point["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown field kind {kind!r}; use one of {', '.join(KINDS)}")
    L = _check_size(kind, point["size"])
    for name in ("beta", "lam", "eta", "drag"):
        used = name in KIND_PARAMETERS[kind]
        if used and point[name] is None:
            raise ValueError(f"{kind} points need {name}")
        if not used and point[name] is not None:
            raise ValueError(f"{name} is not a parameter of {kind} fields")
    if kind == "phi4":
        check_number("beta", point["beta"], lambda v: v >= 0, ">= 0")
        check_number("lam", point["lam"], lambda v: v > 0, "> 0")
    elif kind == "gaussian":
        check_number("eta (the spectral slope)", point["eta"], lambda v: v >= 0, ">= 0")
    else:
        check_number("drag", point["drag"], lambda v: v >= 0, ">= 0")
    if point["family"] not in FAMILIES:
        raise ValueError(f"unknown model family {point['family']!r}; use one of "
                         f"{', '.join(FAMILIES)}")
    if point["method"] not in METHODS:
        raise ValueError(f"unknown fit method {point['method']!r}; use one of {', '.join(METHODS)}")
    if point["sampler"] not in SAMPLERS:
        raise ValueError(f"unknown sampler {point['sampler']!r}; use one of {', '.join(SAMPLERS)}")
    jmax = max_levels(L)
    J = _integer("the depth J", point["J"], 0)
    if J > jmax:
        raise ValueError(f"depth J={J} is too deep for size {L}: at most {jmax} "
                         f"(2^J must divide the size)")
    _integer("n_samples (model samples)", point["n_samples"], 1)
    _integer("n_data (data fields)", point["n_data"], 2)
    _integer("steps", point["steps"], 1, 10_000_000)
    _integer("burn_in", point["burn_in"], 1, 10_000_000)
    _integer("seed", point["seed"], 0, 2**63 - 1)


def make_grid(kind: str = "phi4", size=(16,), beta=None, lam=None, eta=None, drag=None,
              family=None, J=None, method=("score",), seeds=(0,), n_samples: int = 64,
              n_data: int | None = None, steps: int = 200, burn_in: int | None = None,
              sampler: str = "mala") -> list[dict]:
    """The points of the grid, validated, in grid order: size (outermost), then beta / eta /
    drag, lam, family, J, method, seed (innermost).

    Scalars or sequences. Defaults for the kind's generator parameters: phi4 beta = 0.68,
    lam = 1; gaussian eta = 2; turbulence drag = 0.1. ``family``: phi4 for phi4 fields, gaussian
    for the others. ``J=None``: the app's default depth for the size and kind (:func:`explorer.core.model.default_depth`). ``n_data`` (data fields, default
    ``n_samples``) and ``n_samples`` (model samples); ``steps`` and ``burn_in`` (default
    ``steps``) are the model sampler's steps per scale. Duplicate points are kept once.
    """
    from explorer.core.model import default_depth

    if kind not in KINDS:
        raise ValueError(f"unknown field kind {kind!r}; use one of {', '.join(KINDS)}")
    given = {"beta": beta, "lam": lam, "eta": eta, "drag": drag}
    for name, value in given.items():
        if value is not None and name not in KIND_PARAMETERS[kind]:
            raise ValueError(f"{name} is not a parameter of {kind} fields")
    defaults = {"phi4": {"beta": 0.68, "lam": 1.0}, "gaussian": {"eta": 2.0},
                "turbulence": {"drag": 0.1}}[kind]
    axes = {name: _as_list(given[name] if given[name] is not None else defaults.get(name), name)
            for name in ("beta", "lam", "eta", "drag")}
    family = DEFAULT_FAMILY[kind] if family is None else family
    n_data = n_samples if n_data is None else n_data
    burn_in = steps if burn_in is None else burn_in
    points, seen = [], set()
    for L, b, e, d, lm, fam, j, meth, seed in itertools.product(
            _as_list(size, "size"), axes["beta"], axes["eta"], axes["drag"], axes["lam"],
            _as_list(family, "family"), _as_list(J, "J"), _as_list(method, "method"),
            _as_list(seeds, "seeds")):
        if j is None:
            j = default_depth(_check_size(kind, L), kind)
        p = make_point(len(points), kind=kind, size=L, beta=b, lam=lm, eta=e, drag=d,
                       family=fam, J=j, method=meth, n_data=n_data, n_samples=n_samples,
                       steps=steps, burn_in=burn_in, sampler=sampler, seed=seed)
        check_point(p)
        if p["key"] in seen:
            continue
        seen.add(p["key"])
        points.append(p)
    return points

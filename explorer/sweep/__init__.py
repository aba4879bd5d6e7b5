"""Sweeps and ensembles on Dask: many generate -> fit -> sample -> compare runs over a grid of
parameters, model settings and seeds, and large phi^4 ensembles split over workers.

This package sits beside :mod:`explorer.core` rather than inside it: it drives the core *and*
its diagnostics (:func:`explorer.core.diagnostics.compare`, which no core module may import),
and it adds Dask, which the core (numpy / scipy / pywavelets) does not use. It imports no UI or
plotting library; Dask itself is imported only when a cluster is used
(:mod:`explorer.sweep.cluster`).

* :mod:`~explorer.sweep.grid` — :func:`make_grid`, :func:`make_point`, :func:`point_key`,
  :func:`code_version`
* :mod:`~explorer.sweep.point` — :func:`run_point` (one tidy row)
* :mod:`~explorer.sweep.runner` — :func:`iter_sweep`, :func:`run_sweep`
* :mod:`~explorer.sweep.table` — ``results.csv``: :data:`COLUMNS`, :func:`read_table`, ...
* :mod:`~explorer.sweep.ensemble` — :func:`iter_ensemble`, :func:`load_ensemble`,
  :func:`ensemble_observables`
* :mod:`~explorer.sweep.curves` — :func:`curves`: U(beta), <|m|>(beta), chi(beta) per L
"""

from explorer.sweep.curves import binder_crossings, curves
from explorer.sweep.ensemble import ensemble_observables, iter_ensemble, load_ensemble, run_ensemble
from explorer.sweep.grid import code_version, make_grid, make_point, point_key
from explorer.sweep.point import run_point
from explorer.sweep.runner import iter_sweep, run_sweep
from explorer.sweep.table import (COLUMNS, COMPARED_COLUMNS, VOLATILE_COLUMNS, read_table,
                                  same_results, typed)

__all__ = ["COLUMNS", "COMPARED_COLUMNS", "VOLATILE_COLUMNS", "binder_crossings",
           "code_version", "curves", "ensemble_observables", "iter_ensemble", "iter_sweep",
           "load_ensemble", "make_grid", "make_point", "point_key", "read_table",
           "run_ensemble", "run_point", "run_sweep", "same_results", "typed"]

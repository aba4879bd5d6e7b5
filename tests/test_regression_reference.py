"""Refactorings change no number: fits, samples, comparisons, RG flow and scattering statistics with
fixed seeds equal the ones recorded by scripts/make_regression_reference.py (rerun it only for an
intended change, and say so in the commit)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "regression_reference.npz"


def recorded() -> dict[str, np.ndarray]:
    with np.load(REFERENCE, allow_pickle=False) as z:
        names = json.loads(str(z["names"][()]))
        return {k: np.array(z[k.replace("/", "__")]) for k in names}


@pytest.fixture(scope="module")
def fresh() -> dict[str, np.ndarray]:
    spec = importlib.util.spec_from_file_location("make_ref", ROOT / "scripts" /
                                                  "make_regression_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.cases()


def test_same_seeds_give_the_recorded_numbers(fresh):
    ref = recorded()
    assert sorted(fresh) == sorted(ref)
    for name, want in ref.items():
        got = fresh[name]
        assert got.shape == want.shape, name
        # bit-identical today; the tolerance only absorbs a reordered floating-point sum
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * (np.abs(want).max() + 1e-300),
                                   err_msg=name)

"""The shipped default data: present, small, reproducible by their recorded command, right phase."""

from pathlib import Path

import pytest

from explorer.cli import ASSET_COMMANDS
from explorer.core.fields.turbulence import turbulence_observables
from explorer.core.io import load_fields

ASSETS = Path(__file__).resolve().parent.parent / "assets"


@pytest.mark.parametrize("name", sorted(ASSET_COMMANDS))
def test_asset_is_shipped_small_and_records_its_command(name):
    path = ASSETS / name
    assert path.exists(), f"missing asset {name}: run `explorer assets`"
    assert path.stat().st_size <= 8 * 2**20
    fs = load_fields(path)
    assert fs.meta["command"].startswith("explorer generate " + " ".join(ASSET_COMMANDS[name]))
    minimum = 16 if name.startswith("turbulence") else 256
    assert fs.n >= minimum


@pytest.mark.parametrize("beta,low,high", [("0.50", 0.0, 0.3), ("0.68", 0.58, 0.64),
                                           ("0.76", 0.63, 0.667)])
def test_phi4_assets_are_in_their_phase(beta, low, high):
    fs = load_fields(ASSETS / f"phi4_L64_beta{beta}.npz")
    obs = fs.meta["observables"]
    assert fs.meta["params"]["beta"] == float(beta) and fs.meta["params"]["lam"] == 1.0
    assert low - 2 * obs["binder_err"] <= obs["binder"] <= high + 2 * obs["binder_err"], obs


@pytest.mark.parametrize("size", [128, 256])
def test_turbulence_assets_are_non_gaussian(size):
    obs = turbulence_observables(load_fields(ASSETS / f"turbulence_L{size}.npz"))
    assert -5 <= obs["slope"] <= -3
    assert obs["kurtosis"] > 3.5
    assert obs["flatness"][1] > obs["flatness"][16]

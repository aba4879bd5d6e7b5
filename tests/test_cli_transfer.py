"""The command line of the phase-diagram capabilities: `sample --size` (learn small, generate
large) and `rgflow` over several files (the distances between successive couplings)."""

import json

import numpy as np
import pytest

from explorer.cli import main
from explorer.core.fields.phi4 import generate_phi4
from explorer.core.io import load_fields, save_fields
from tests.test_cli_errors import assert_one_line_error, tree


@pytest.fixture(scope="module")
def phi4_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("transfer_inputs")
    for beta in (0.5, 0.68):
        save_fields(d / f"b{beta}.npz", generate_phi4(size=16, n_samples=64, beta=beta, seed=4))
    assert main(["fit", str(d / "b0.68.npz"), "--family", "phi4", "--depth", "2",
                 "--out", str(d / "m.npz"), "--quiet"]) == 0
    assert main(["fit", str(d / "b0.68.npz"), "--family", "phi4", "--depth", "0",
                 "--out", str(d / "m0.npz"), "--quiet"]) == 0
    return d


def test_sample_at_twice_the_fitted_side_records_what_was_extrapolated(phi4_files, tmp_path,
                                                                      capsys):
    capsys.readouterr()
    out = tmp_path / "s32.npz"
    assert main(["sample", str(phi4_files / "m.npz"), "--samples", "8", "--steps", "20",
                 "--size", "32", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "size transfer: fitted at 16x16, sampled at 32x32; extrapolated j=3 from j=2" in text
    fs = load_fields(out)
    assert fs.fields.shape == (8, 32, 32) and np.isfinite(fs.fields).all()
    tr = fs.meta["size_transfer"]
    assert tr["fitted_size"] == 16 and tr["size"] == 32 and tr["levels_added"] == 1
    assert tr["conditionals_reused"] == [1, 2] and list(tr["conditionals_extrapolated"]) == ["3"]
    # how the per-scale normalisation was extrapolated is printed and recorded
    how = tr["extrapolation"]
    assert f"extrapolated with: {how['method']}" in text
    assert how["method"] in ("lattice spectrum", "last measured ratios")
    if how["method"] == "lattice spectrum":
        assert {"amplitude", "mass2", "exponent", "correlation_length"} <= set(how["spectrum"])
    else:
        assert how["reason"]
    # --json carries the same record
    assert main(["sample", str(phi4_files / "m.npz"), "--samples", "4", "--steps", "10",
                 "--size", "32", "--out", str(tmp_path / "s.npz"), "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["size_transfer"]["size"] == 32


@pytest.mark.parametrize("model,size,needle", [
    ("m.npz", "24", "2^k times"),      # not a power-of-two multiple
    ("m.npz", "8", "2^k times"),       # smaller than fitted
    ("m0.npz", "32", "depth J >= 1"),  # no conditionals to reuse
    ("m.npz", "2", "4.."),             # below the parser's range
])
def test_sample_size_refusals_are_one_line_before_any_work(phi4_files, tmp_path, monkeypatch,
                                                           capsys, model, size, needle):
    monkeypatch.chdir(tmp_path)
    code = main(["sample", str(phi4_files / model), "--size", size, "--out", "s.npz"])
    assert_one_line_error(code, capsys.readouterr().err, needle)
    assert tree(tmp_path) == set()


def test_rgflow_of_several_files_prints_the_distance_table_and_its_figure(phi4_files, tmp_path,
                                                                        capsys):
    capsys.readouterr()
    files = [str(phi4_files / "b0.5.npz"), str(phi4_files / "b0.68.npz")]
    assert main(["rgflow", *files, "--plot", str(tmp_path / "figs")]) == 0
    text = capsys.readouterr().out
    assert "beta 0.5 " in text and "beta 0.68 " in text and "closest to a fixed point" in text
    assert (tmp_path / "figs" / "rgflow_distances.png").stat().st_size > 5000
    assert main(["rgflow", *files, "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = table["rows"]
    assert set(rows) == {"beta 0.5", "beta 0.68"}
    for row in rows.values():   # sides 16 -> 8 -> 4: two distances, finite and >= 0
        assert row["L"] == [16, 8, 4] and len(row["distance"]) == 2
        assert all(np.isfinite(d) and d >= 0 for d in row["distance"])
    assert table["closest_to_fixed"] in rows
    # one file: the flow itself, with the distance at every step after the first
    assert main(["rgflow", files[1], "--json"]) == 0
    flow = json.loads(capsys.readouterr().out)
    assert "distance" not in flow["scales"][0] and len(flow["distances"]) == 2
    assert tree(phi4_files) >= {"b0.5.npz", "b0.68.npz"}

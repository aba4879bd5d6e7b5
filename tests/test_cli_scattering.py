"""CLI: explorer scattering / synthesize and fit --family scattering; errors are one line, exit 2."""

import json

import numpy as np
import pytest

from explorer.cli import main
from explorer.core.fields.base import FieldSet
from explorer.core.io import load_fields, save_fields
from explorer.core.model import WCRGModel


@pytest.fixture()
def small(tmp_path):
    x = load_fields("assets/turbulence_L128.npz").fields[:3, ::4, ::4]     # 32 x 32
    path = tmp_path / "t32.npz"
    save_fields(path, FieldSet(x, {"generator": "test", "params": {}}))
    return path


def test_scattering_json_names_every_coefficient(small, capsys):
    assert main(["scattering", str(small), "--J", "3", "--L", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 1 + 2 * 3 + 4 * 6 + 16 * 10 == len(out["coefficients"])
    names = [c["name"] for c in out["coefficients"]]
    assert len(set(names)) == len(names) and names[0] == "mean"
    assert {"kind", "j1", "j2", "j3", "re", "im", "std"} <= set(out["coefficients"][-1])
    assert main(["scattering", str(small), "--J", "3", "--reduction", "raw", "--fields", "0",
                 "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["n_fields"] == 1 and raw["reduction"] == "raw"


def test_synthesize_writes_fields(small, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["synthesize", str(small), "--fields", "0", "--samples", "2", "--J", "3",
                 "--iterations", "5", "--out", str(out), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    fs = load_fields(out)
    assert fs.fields.shape == (2, 32, 32) and summary["iterations"] == 5
    assert fs.meta["generator"] == "scattering-synthesis"
    assert fs.meta["command"].startswith("explorer synthesize")
    assert main(["synthesize", str(small), "--model", "gaussian", "--samples", "1",
                 "--out", str(tmp_path / "g.npz"), "--quiet"]) == 0


def test_fit_family_scattering(small, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["fit", str(small), "--family", "scattering", "--depth", "2", "--out", str(out),
                 "--quiet", "--json"]) == 0
    m = WCRGModel.load(out)
    # "scattering" is the modulus family's former name: accepted, resolved to the family
    assert m.family == "modulus" and "|HL|" in m.conditionals[0].features.names
    assert np.isfinite(m.coarse.theta).all()


def test_fit_records_the_spectral_support(tmp_path):
    """The native 128^2 turbulence is dealiased: the fit completes the modes off its support
    (and says how many); --support-floor none turns that off."""
    data, out = tmp_path / "t128.npz", tmp_path / "m.npz"
    save_fields(data, FieldSet(load_fields("assets/turbulence_L128.npz").fields[:2], {}))
    assert main(["fit", str(data), "--family", "gaussian", "--depth", "5", "--out", str(out),
                 "--quiet"]) == 0
    m = WCRGModel.load(out)
    assert m.support_floor == 1e-5 and m.stats["support"]["fraction_off_support"] > 0.5
    assert main(["fit", str(data), "--family", "gaussian", "--depth", "5", "--support-floor",
                 "none", "--out", str(out), "--quiet"]) == 0
    m = WCRGModel.load(out)
    assert m.support_floor is None and m.support is None and m.stats["support"] is None


@pytest.mark.parametrize("args,needle", [
    (["scattering", "{f}", "--J", "9"], "J must be"),
    (["scattering", "{f}", "--fields", "7"], "out of range"),
    (["scattering", "missing.npz"], "missing.npz"),
    (["synthesize", "{f}", "--out", "x.txt"], ".npz"),
    (["fit", "{f}", "--family", "nope", "--out", "m.npz"], "invalid choice"),
    (["fit", "{f}", "--support-floor", "2", "--out", "m.npz"], "support floor"),
    (["fit", "{f}", "--support-floor", "lots", "--out", "m.npz"], "expected a number"),
])
def test_scattering_errors_are_one_line(small, capsys, args, needle):
    code = main([a.format(f=small) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and needle in err


def test_fit_warns_when_a_factor_is_unbounded_below(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["fit", "assets/turbulence_L128.npz", "--family", "gaussian", "--depth", "2",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if line.startswith("warning (coarse):")]
    assert len(warn) == 1 and "indefinite" in warn[0], err
    assert main(["fit", "assets/turbulence_L128.npz", "--family", "gaussian", "--depth", "7",
                 "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err

"""One error path for the command line: every failure a user can cause is one line on stderr,
exit status 2, no traceback and no output file left behind; huge requests are refused up front."""

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from explorer import cli
from explorer.cli import commands, main
from explorer.core import budget
from explorer.core.fields.base import FieldSet
from explorer.core.fields.gaussian import generate_gaussian, iter_gaussian
from explorer.core.io import load_fields, save_fields
from explorer.core.model import WCRGModel
from explorer.core.rgflow import rg_flow
from explorer.core.sampling import SamplerDiverged


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs in their own folder (the commands run in an empty one)."""
    d = tmp_path_factory.mktemp("cli_errors_inputs")
    fs = generate_gaussian(size=16, n_samples=8, kind="free", beta=1.0, mass=0.5, seed=1)
    save_fields(d / "data.npz", fs)
    save_fields(d / "small.npz", FieldSet(fs.fields[:, :8, :8].copy(), dict(fs.meta)))
    WCRGModel("gaussian", J=1).fit(fs.fields).save(d / "model.npz")
    # an improper model: a negative on-site term and nothing else (U = -|x|^2 / 2)
    bad = WCRGModel("gaussian", J=0).fit(fs.fields)
    bad.coarse.theta = np.zeros_like(bad.coarse.theta)
    bad.coarse.theta[bad.coarse.names.index("phi^2/2")] = -1.0
    bad.coarse.fit.pop("bounded", None)     # what the fit of such couplings records
    bad.coarse.fit["quadratic_base"] = {"ritz_min": -1.0, "ritz_max": -1.0, "indefinite": True}
    bad.save(d / "improper.npz")
    np.savez(d / "incomplete.npz", header=np.array('{"format": "explorer-wcrg-model"}'))
    (d / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (d / "notes.txt").write_text("not fields\n")
    spins = np.where(fs.fields > 0, 1, -1).astype(np.int8)   # two levels: no density
    np.savez(d / "spins.npz", fields=spins)
    np.savez(d / "maps.npz", maps=fs.fields)                  # an array not named 'fields'
    np.save(d / "plain.npy", fs.fields)
    return d


def tree(folder: Path) -> set[str]:
    """Every file and folder below ``folder`` (hidden temporary files included)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_line_error(code, err, needle=""):
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("explorer: error: "), lines[0]
    assert needle.lower() in lines[0].lower(), (needle, lines[0])


D, M = "{d}/data.npz", "{d}/model.npz"

# (argv with {d} = the inputs' folder, a fragment the message must contain)
BAD = [
    # sweep, ensemble, generate phi4 --store (checked before any cluster starts)
    (["sweep", "phi4", "--size", "12", "--out", "sw"], "power of two"),
    (["sweep", "phi4", "--beta", "-1", "--out", "sw"], ">= 0"),
    (["sweep", "phi4", "--samples", "0", "--out", "sw"], ">= 1"),
    (["ensemble", "phi4", "--size", "12", "--store", "e"], "power of two"),
    (["ensemble", "phi4", "--samples", "10", "--chunk", "0", "--store", "e"], "chunk"),
    (["generate", "phi4", "--store", "e", "--out", "o.npz"], "not both"),
    (["generate", "phi4", "--workers", "2", "--out", "o.npz"], "--store"),
    (["generate", "phi4"], "--out FILE is required"),
    # generate phi4
    (["generate", "phi4", "--size", "12", "--out", "o.npz"], "power of two"),
    (["generate", "phi4", "--size", "512", "--out", "o.npz"], "8..256"),
    (["generate", "phi4", "--size", "256", "--samples", "1000000", "--out", "o.npz"],
     "would need"),
    (["generate", "phi4", "--lam", "-1", "--out", "o.npz"], ">= 0"),
    (["generate", "phi4", "--beta", "nan", "--out", "o.npz"], "finite"),
    (["generate", "phi4", "--chains", "0", "--out", "o.npz"], "positive"),
    (["generate", "phi4", "--samples", "-3", "--out", "o.npz"], "positive"),
    (["generate", "phi4", "--seed", "-1", "--out", "o.npz"], ">= 0"),
    # generate gaussian
    (["generate", "gaussian", "--size", "1024", "--samples", "100000", "--out", "o.npz"],
     "would need"),
    (["generate", "gaussian", "--mass", "-1", "--out", "o.npz"], ">= 0"),
    (["generate", "gaussian", "--kind", "free", "--beta", "0", "--out", "o.npz"], "> 0"),
    (["generate", "gaussian", "--slope", "inf", "--out", "o.npz"], "finite"),
    (["generate", "gaussian", "--out", "o.txt"], ".npz"),
    (["generate", "gaussian", "--out", "nowhere/o.npz"], "does not exist"),
    (["generate", "gaussian", "--out", "{d}"], ".npz"),
    # generate turbulence
    (["generate", "turbulence", "--size", "100000", "--out", "o.npz"], "power of two"),
    (["generate", "turbulence", "--size", "100", "--out", "o.npz"], "power of two"),
    (["generate", "turbulence", "--size", "4096", "--samples", "100000", "--out", "o.npz"],
     "would need"),
    (["generate", "turbulence", "--nu", "0", "--out", "o.npz"], "> 0"),
    (["generate", "turbulence", "--order", "0", "--out", "o.npz"], "1..16"),
    (["generate", "turbulence", "--drag", "-0.1", "--out", "o.npz"], ">= 0"),
    (["generate", "turbulence", "--size", "32", "--kf", "11", "--out", "o.npz"], "kf"),
    (["generate", "turbulence", "--cfl", "2", "--out", "o.npz"], "(0, 1.5]"),
    (["generate", "turbulence", "--interval", "0", "--out", "o.npz"], "> 0"),
    (["generate", "turbulence", "--spinup", "nan", "--out", "o.npz"], "finite"),
    (["generate", "ising", "--out", "o.npz"], "invalid choice"),
    # info
    (["info", "{d}/missing.npz"], "no such file"),
    (["info", "{d}/corrupt.npz"], "corrupt"),
    (["info", "{d}/incomplete.npz"], "incomplete or corrupt"),
    (["info", M, "--observables", "phi4"], "model file"),
    (["info", "{d}/notes.txt"], "extension"),
    (["info", "{d}/maps.npz"], "--key maps"),
    (["info", "{d}/maps.npz", "--key", "fields"], "no array 'fields'"),
    (["info", D, "--key", "maps"], "--key fields"),
    (["info", D, "--key", "meta"], "not 'meta'"),
    (["info", D, "--key", "../fields"], "name of an array"),
    (["info", D, "--key", ""], "name of an array"),
    (["info", "{d}/plain.npy", "--key", "fields"], "--key 'fields' names an array"),
    (["info", D, "--observables", "ising"], "invalid choice"),
    # fit
    (["fit", D, "--depth", "5", "--out", "m.npz"], "too deep"),
    (["fit", D, "--depth", "-1", "--out", "m.npz"], "whole number"),
    (["fit", D, "--radius", "-2", "--out", "m.npz"], "0..8"),
    (["fit", D, "--degree", "2", "--out", "m.npz"], "4..16"),
    (["fit", D, "--potential", "windows", "--windows", "1", "--out", "m.npz"], "2..200"),
    (["fit", D, "--ridge", "nan", "--out", "m.npz"], "finite"),
    (["fit", D, "--family", "scattering", "--eps-rel=-inf", "--out", "m.npz"], "finite"),
    (["fit", D, "--wavelet", "nope", "--out", "m.npz"], "wavelet"),
    (["fit", M, "--out", "m.npz"], "model file"),
    (["fit", "{d}/maps.npz", "--out", "m.npz"], "--key maps"),
    (["fit", "{d}/maps.npz", "--key", "map", "--out", "m.npz"], "no array 'map'"),
    (["fit", "{d}/spins.npz", "--out", "m.npz"], "--dequantise 0.2"),
    (["fit", D, "--dequantise", "0", "--out", "m.npz"], "> 0"),
    (["fit", D, "--dequantise", "-0.2", "--out", "m.npz"], "> 0"),
    (["fit", D, "--dequantise", "nan", "--out", "m.npz"], "finite"),
    (["fit", D, "--dequantise", "lots", "--out", "m.npz"], "expected a number"),
    (["fit", D, "--parity", "odd", "--out", "m.npz"], "invalid choice"),
    (["fit", D, "--out", D], "overwrite"),
    (["fit", D, "--out", "m.json"], ".npz"),
    # sample
    (["sample", D, "--out", "s.npz"], "not a model"),
    (["sample", "{d}/missing.npz", "--out", "s.npz"], "no such file"),
    (["sample", "{d}/notes.txt", "--out", "s.npz"], ".npz"),
    (["sample", "{d}/corrupt.npz", "--out", "s.npz"], "not an npz archive"),
    (["sample", M, "--samples", "100000000", "--out", "s.npz"], "would need"),
    (["sample", M, "--steps", "0", "--out", "s.npz"], "whole number"),
    (["sample", M, "--burn-in", "nan", "--out", "s.npz"], "whole number"),
    (["sample", "{d}/incomplete.npz", "--out", "s.npz"], "incomplete or corrupt"),
    (["sample", M, "--out", "s.npz", "--sampler", "hmc"], "invalid choice"),
    # energy
    (["energy", D, D], "not a model"),
    (["energy", M, M], "model file"),
    (["energy", M, "{d}/small.npz"], "fitted on 16x16"),
    # rgflow
    (["rgflow", D, "--radius", "-2"], "1..8"),
    (["rgflow", D, "--radius", "0"], "1..8"),
    (["rgflow", M], "model file"),
    # compare
    (["compare", D, D, "--depth", "9"], "too deep"),
    (["compare", D, D, "--depth", "-1"], "whole number"),
    (["compare", D, M], "model file"),
    (["compare", "{d}/maps.npz", D], "--key maps"),
    (["compare", D, D, "--observables", "binder"], "invalid choice"),
    (["compare", D, D, "--plot", "{d}/notes.txt"], "folder"),
    # diagnose
    (["diagnose", M, D, "--fields", "0"], "positive"),
    (["diagnose", M, D, "--fields", "99"], "more than the 8 fields"),
    (["diagnose", D, D], "not a model"),
    (["diagnose", M, "{d}/small.npz"], "fitted on 16x16"),
    # scattering
    (["scattering", D, "--J", "9"], "J must be"),
    (["scattering", D, "--L", "0"], "1..16"),
    (["scattering", D, "--L", "17"], "1..16"),
    (["scattering", D, "--fields", "-1"], "out of range"),
    # synthesize
    (["synthesize", D, "--samples", "10000000", "--out", "s.npz"], "would need"),
    (["synthesize", D, "--out", "s.txt"], ".npz"),
    (["synthesize", D, "--iterations", "0", "--out", "s.npz"], "whole number"),
    # assets
    (["assets", "--out", "a", "--only", "nope.npz"], "unknown asset"),
    (["assets", "--out", "{d}/notes.txt"], "folder"),
    # no command at all
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_arguments_fail_in_one_line_and_leave_nothing(files, tmp_path, monkeypatch, capsys,
                                                          args, needle):
    monkeypatch.chdir(tmp_path)
    before_inputs = tree(files)
    code = main([a.replace("{d}", str(files)) for a in args])
    out = capsys.readouterr()
    assert_one_line_error(code, out.err, needle)
    assert out.out == ""
    assert tree(tmp_path) == set()          # no output, no temporary file, no folder
    assert tree(files) == before_inputs     # the inputs untouched


def test_every_subcommand_is_covered():
    covered = {a[0] for a, _ in BAD} | {a[1] for a, _ in BAD if a[0] == "generate"}
    assert set(cli.COMMANDS) | {"phi4", "gaussian", "turbulence"} <= covered
    assert len(BAD) >= 30


def test_huge_requests_are_refused_without_allocating(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["generate", "gaussian", "--size", "8", "--samples", "1", "--out", "warm.npz", "--quiet"])
    os.remove("warm.npz")                                   # imports done
    capsys.readouterr()
    for argv in (["generate", "gaussian", "--size", "1024", "--samples", "100000"],
                 ["generate", "phi4", "--size", "256", "--samples", "1000000"],
                 ["generate", "turbulence", "--size", "4096", "--samples", "100000"]):
        tracemalloc.start()
        code = main([*argv, "--out", "o.npz"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        err = capsys.readouterr().err
        assert_one_line_error(code, err, "would need")
        assert "available" in err and "use fewer --samples or a smaller --size" in err
        assert peak < 20 * 2**20, peak                     # nothing of the 100s of GB asked
    assert tree(tmp_path) == set()


def test_the_memory_message_states_what_would_be_needed(tmp_path, monkeypatch, capsys):
    """With 1 GB available, 64 gaussian fields of 1024^2 (268 MB of float32 output and a
    64-field float64 FFT batch) do not fit; 8 fields of 256^2 do."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(budget, "available_memory", lambda: 10**9)
    code = main(["generate", "gaussian", "--size", "1024", "--samples", "64", "--out", "o.npz"])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, "generate gaussian would need")
    assert "64 fields of 1024x1024: 268 MB of float32 output" in err
    assert "more than the 1 GB available" in err
    assert main(["generate", "gaussian", "--size", "256", "--samples", "8", "--out", "o.npz",
                 "--quiet"]) == 0
    assert load_fields("o.npz").fields.shape == (8, 256, 256)


def test_a_diverging_sampler_is_one_line_and_writes_nothing(files, tmp_path, monkeypatch,
                                                            capsys):
    monkeypatch.chdir(tmp_path)
    model = str(files / "improper.npz")
    # refused up front: the fit flags the factor as unbounded below
    code = main(["sample", model, "--samples", "2", "--steps", "400", "--out", "s.npz"])
    assert_one_line_error(code, capsys.readouterr().err, "bounded below")
    # sampled anyway: the runaway is stopped (a FloatingPointError), still one line
    code = main(["sample", model, "--samples", "2", "--steps", "400", "--sampler", "ula",
                 "--allow-unbounded", "--out", "s.npz", "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, "diverged")
    assert tree(tmp_path) == set()


class _Diverged(FloatingPointError):
    pass


def _array_memory_error() -> MemoryError:
    """numpy's own error for an allocation that fails (8 TB: refused, nothing allocated)."""
    try:
        np.empty((10**6, 10**6))
    except MemoryError as e:
        return e
    raise AssertionError("8 TB were allocated")


def _failing_iterator(exc):
    from explorer.core.progress import Progress

    def it(args):
        yield Progress(1, 10, "sampling")
        raise exc

    return it


@pytest.mark.parametrize("exc,needle", [
    (_Diverged("the solver blew up at t = 3"), "the solver blew up at t = 3"),
    (SamplerDiverged("energy is not finite", 12, "burn-in"), "diverged at step 12"),
    (MemoryError(), "out of memory"),
    (_array_memory_error(), "out of memory (unable to allocate"),
])
def test_numeric_and_memory_failures_inside_a_command(tmp_path, monkeypatch, capsys, exc, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "_iterator_for", _failing_iterator(exc))
    code = main(["generate", "gaussian", "--size", "16", "--samples", "4", "--out", "o.npz",
                 "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, needle)
    assert tree(tmp_path) == set()


def test_a_failure_while_writing_leaves_no_partial_file(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def partial_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise MemoryError()

    monkeypatch.setattr(np, "savez_compressed", partial_savez)
    code = main(["generate", "gaussian", "--size", "16", "--samples", "4", "--out", "o.npz",
                 "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, "out of memory")

    def partial_save(self, path):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(WCRGModel, "save", partial_save)
    code = main(["fit", str(files / "data.npz"), "--family", "gaussian", "--out", "m.npz",
                 "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, "no space left")
    assert tree(tmp_path) == set()


def test_figures_half_written_are_removed(files, tmp_path, monkeypatch, capsys):
    import types

    import explorer.ui

    def write_figures(figures, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "spectra.png").write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    fake = types.SimpleNamespace(ensure_backends=lambda *a: None, write_figures=write_figures,
                                 compare_figures=lambda a, b, r: {"spectra": None})
    monkeypatch.setitem(sys.modules, "explorer.ui.figures", fake)
    monkeypatch.setattr(explorer.ui, "figures", fake, raising=False)
    monkeypatch.chdir(tmp_path)
    data = str(files / "data.npz")
    code = main(["compare", data, data, "--plot", "figs"])
    assert_one_line_error(code, capsys.readouterr().err, "no space left")
    assert tree(tmp_path) == set()                   # the folder it made is gone too
    Path("figs").mkdir()
    Path("figs/mine.txt").write_text("kept")
    assert main(["compare", data, data, "--plot", "figs"]) == 2
    assert tree(tmp_path) == {"figs", "figs/mine.txt"}


def test_an_existing_output_survives_a_failed_run(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("m.npz").write_bytes(b"previous result")
    monkeypatch.setattr(WCRGModel, "iter_fit", lambda self, *a, **k: (_ for _ in ()).throw(
        _Diverged("chains became non-finite")))
    code = main(["fit", str(files / "data.npz"), "--out", "m.npz", "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, "chains became non-finite")
    assert Path("m.npz").read_bytes() == b"previous result" and tree(tmp_path) == {"m.npz"}


def test_an_error_clears_the_live_progress_line():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    from explorer.core.progress import Progress

    show = cli.ProgressPrinter(stream=term)
    show(Progress(3, 10, "sampling", info={"acceptance": 0.5}))
    live = term.getvalue()
    assert "[sampling]" in live and "3/10" in live and "acceptance=0.5" in live
    assert not live.endswith("\n")                              # a live bar, no newline yet
    assert cli._fail("it broke") == 2
    assert term.getvalue().endswith("\r\033[K")                  # erased before the message
    assert cli.ProgressPrinter.open_line is None and cli.ProgressPrinter.live is None
    del show                                                    # a forgotten bar stays silent
    import gc

    gc.collect()
    assert term.getvalue().endswith("\r\033[K")


def test_a_key_error_message_is_never_a_repr():
    assert cli._one_line(KeyError("header is not a file in the archive")) == \
        "header is not a file in the archive"
    assert cli._one_line(ValueError("two\n  lines")) == "two lines"


@pytest.mark.parametrize("args,needle", [
    (["generate", "turbulence", "--size", "100000", "--out", "o.npz"], "power of two"),
    (["generate", "gaussian", "--size", "1024", "--samples", "100000", "--out", "o.npz"],
     "would need"),
    (["generate", "phi4", "--size", "256", "--samples", "1000000", "--out", "o.npz"],
     "would need"),
    (["info", "{d}/corrupt.npz"], "corrupt"),
    (["sample", "{d}/improper.npz", "--samples", "2", "--steps", "400", "--sampler", "ula",
      "--allow-unbounded", "--out", "s.npz", "--quiet"], "diverged"),
])
def test_the_real_exit_path(files, tmp_path, args, needle):
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    r = subprocess.run([sys.executable, "-m", "explorer",
                        *[a.replace("{d}", str(files)) for a in args]],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert_one_line_error(r.returncode, r.stderr, needle)
    assert r.stdout == "" and tree(tmp_path) == set()


# ------------------------------------------------------------------ the budget itself
def test_check_memory_refuses_above_the_available_memory_with_both_sizes():
    budget.check_memory(10**9, "x", available=2 * 10**9)            # fits: no error
    with pytest.raises(budget.MemoryBudgetError) as e:
        budget.check_memory(262 * 10**9, "generate phi4", "1000000 fields of 256x256",
                            "use fewer --samples", available=20 * 10**9)
    assert str(e.value) == ("generate phi4 would need 262 GB of memory (1000000 fields of "
                            "256x256), more than the 20 GB available; use fewer --samples")
    assert isinstance(e.value, ValueError) and e.value.needed == 262 * 10**9
    assert budget.format_bytes(1_050_000) == "1.05 MB" and budget.format_bytes(512) == "512 bytes"


def test_available_memory_reads_meminfo(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       24683652 kB\nMemFree: 1 kB\nMemAvailable:   2000000 kB\n")
    assert budget._meminfo_available(str(f)) == 2000000 * 1024
    assert budget._meminfo_available(str(tmp_path / "none")) is None
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("250000\n")
    assert budget._cgroup_room(str(tmp_path)) == 750000
    (tmp_path / "memory.max").write_text("max\n")
    assert budget._cgroup_room(str(tmp_path)) is None
    avail = budget.available_memory()
    assert isinstance(avail, int) and avail > 0


# ------------------------------------------------------------------ core entry checks
@pytest.mark.parametrize("kwargs,needle", [
    (dict(size=100), "power of two"),
    (dict(size=16.0), "power of two"),
    (dict(n_samples=0), ">= 1"),
    (dict(mass=float("nan")), "mass"),
    (dict(beta=-1.0, kind="free"), "beta"),
    (dict(eta=float("inf")), "eta"),
    (dict(kind="pink"), "kind"),
])
def test_the_gaussian_generator_checks_its_parameters_first(kwargs, needle):
    with pytest.raises(ValueError) as e:
        next(iter_gaussian(**{"size": 16, "n_samples": 2, **kwargs}))
    assert needle in str(e.value)


def test_the_gaussian_generator_refuses_what_does_not_fit(monkeypatch):
    monkeypatch.setattr(budget, "available_memory", lambda: 10**6)
    with pytest.raises(budget.MemoryBudgetError, match="Gaussian generator would need"):
        next(iter_gaussian(size=256, n_samples=64))


@pytest.mark.parametrize("radius", [0, -2, 1.5, True])
def test_rg_flow_needs_a_radius_of_at_least_one(radius):
    x = generate_gaussian(size=8, n_samples=2, seed=0).fields
    with pytest.raises(ValueError, match="radius must be an integer >= 1"):
        rg_flow(x, family="gaussian", radius=radius)

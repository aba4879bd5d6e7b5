"""``explorer sweep ... --plot DIR``: the sweep's figures as PNG files with drawn content, the
folder checked before any work; the figure function from a table, rows or curves output."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from explorer.cli import main
from explorer.sweep import curves, read_table

TINY = ["sweep", "phi4", "--beta", "0.5", "0.68", "--size", "8", "--samples", "16",
        "--depth", "1", "--steps", "20", "--workers", "1"]


def drawn(path) -> bool:
    """The PNG holds more than one colour (something was drawn, not a blank canvas)."""
    import matplotlib.image as mpimg

    img = mpimg.imread(str(path))
    return img.ndim == 3 and len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 10


def test_cli_sweep_plot_writes_the_figures(tmp_path, capsys):
    plots = tmp_path / "plots"
    assert main([*TINY, "--out", str(tmp_path / "s"), "--plot", str(plots)]) == 0
    out = capsys.readouterr().out
    names = ["binder.png", "abs_m.png", "distances.png"]
    assert f"figures in {plots}: " + ", ".join(names) in out
    for name in names:
        assert (plots / name).stat().st_size > 1000 and drawn(plots / name), name
    # the same figures from the table, its rows and its curves (a notebook's ways in)
    from explorer.ui.sweep_figures import sweep_figure, sweep_figures

    rows = read_table(tmp_path / "s" / "results.csv")
    assert list(sweep_figures(tmp_path / "s")) == ["binder", "abs_m", "distances"]
    layout = sweep_figure(rows)
    assert isinstance(layout, hv.Layout) and len(layout) == 3
    assert len(sweep_figure(curves(rows))) == 2  # curves output carries no distances
    scatter = [e for e in layout[0] if isinstance(e, hv.Scatter) and e.label == "data L=8"]
    assert sorted(scatter[0].dimension_values(0)) == [0.5, 0.68]


def test_cli_sweep_plot_folder_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import explorer.sweep.runner as runner

    def no_cluster(*a, **k):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(runner, "dask_client", no_cluster)
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    assert main([*TINY, "--out", str(tmp_path / "s"), "--plot", str(f)]) == 2
    assert "--plot must name a folder" in capsys.readouterr().err
    assert main([*TINY, "--out", str(tmp_path / "s"), "--plot", str(tmp_path / "a" / "b")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s" / "results.csv").exists()


@pytest.mark.parametrize("table", [[], "curves"])
def test_sweep_figure_of_an_empty_table_draws_empty_axes(table):
    from explorer.ui.sweep_figures import sweep_figure

    t = curves([]) if table == "curves" else table
    assert isinstance(sweep_figure(t), hv.Layout)


def test_sweep_figures_and_the_sweep_state_import_no_panel():
    import subprocess
    import sys

    code = ("import sys\nimport explorer.ui.sweep_figures, explorer.ui.sweep_state\n"
            "assert 'panel' not in sys.modules, sorted(m for m in sys.modules if 'panel' in m)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

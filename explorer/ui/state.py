"""Application state as param classes (no Panel import): which data set is loaded, which sample is
shown.  Everything here can be driven from a test or a notebook without a browser."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import numpy as np
import param

from explorer.core.fields.base import FieldSet
from explorer.core.io import FieldFileError, load_fields
from explorer.core.summary import field_summary

ASSETS_DIR = Path(__file__).resolve().parent.parent.parent / "assets"
DEFAULT_ASSET = "phi4_L64_beta0.68.npz"

ASSET_LABELS = {
    "phi4_L64_beta0.68.npz": "φ⁴ 64² β=0.68 (critical)",
    "phi4_L64_beta0.50.npz": "φ⁴ 64² β=0.50 (disordered)",
    "phi4_L64_beta0.76.npz": "φ⁴ 64² β=0.76 (ordered)",
    "gaussian_L64_eta2.npz": "Gaussian 64², P ∝ |k|⁻²",
    "turbulence_L128.npz": "2D turbulence 128² (vorticity)",
    "turbulence_L256.npz": "2D turbulence 256² (vorticity)",
}


def available_assets(folder: Path = ASSETS_DIR) -> dict[str, str]:
    """{label: file name} of the shipped data present on disk, default first."""
    names = sorted(p.name for p in folder.glob("*.npz"))
    names.sort(key=lambda n: (n != DEFAULT_ASSET, list(ASSET_LABELS).index(n)
                              if n in ASSET_LABELS else len(ASSET_LABELS), n))
    return {ASSET_LABELS.get(n, n): n for n in names}


@lru_cache(maxsize=8)
def _load_asset_cached(path: Path, mtime_ns: int, size: int) -> tuple[FieldSet, dict]:
    """A shipped file and its summary, read and computed once per server process (every page
    opens the default data: its observables cost more than building the page). The fields are
    read-only, as every session shares them; ``mtime_ns`` and ``size`` key a rebuilt file anew."""
    fs = load_fields(path)
    fs.fields = np.asarray(fs.fields, dtype=np.float32)
    fs.fields.flags.writeable = False
    return fs, field_summary(fs)


def load_asset(path: Path) -> tuple[FieldSet, dict]:
    """(fields, summary) of a shipped file: the fields shared read-only, the meta and summary
    copied (a session may annotate its own)."""
    st = Path(path).stat()
    fs, summary = _load_asset_cached(Path(path), st.st_mtime_ns, st.st_size)
    shared = copy.copy(fs)
    shared.meta = copy.deepcopy(fs.meta)
    return shared, copy.deepcopy(summary)


class FieldData(param.Parameterized):
    """The loaded batch of fields and the sample on display."""

    asset = param.Selector(default=None, objects=[], doc="shipped data set (file in assets/)")
    index = param.Integer(default=0, bounds=(0, None), doc="sample shown")
    fields = param.Array(default=None, constant=True, doc="(N, L, L) float32")
    meta = param.Dict(default={}, constant=True)
    summary = param.Dict(default={}, constant=True, doc="observables of the batch")
    message = param.String(default="", doc="last error or status, shown to the user")

    def __init__(self, folder: Path = ASSETS_DIR, **params):
        super().__init__(**params)
        self.folder = Path(folder)
        choices = available_assets(self.folder)
        self.param.asset.objects = choices
        # only the shipped files: a name from a link (../../x) is refused, never opened
        self.param.asset.check_on_set = True
        if self.asset is None and choices:
            self.asset = next(iter(choices.values()))
        elif self.asset is not None:
            self._load_asset()

    @param.depends("asset", watch=True)
    def _load_asset(self) -> None:
        if self.asset is None:
            return
        if self.asset not in self.param.asset.objects.values():
            self.message = f"{self.asset}: not a shipped data set"
            return
        try:
            self.set_fieldset(*load_asset(self.folder / self.asset))
        except (FieldFileError, OSError) as e:
            self.message = str(e)

    def set_fieldset(self, fs: FieldSet, summary: dict | None = None) -> None:
        """Install a new batch (from an asset, a generator or an upload); ``summary``: its
        :func:`~explorer.core.summary.field_summary` when already known."""
        summary = field_summary(fs) if summary is None else summary
        with param.edit_constant(self):
            self.param.update(fields=np.asarray(fs.fields, dtype=np.float32), meta=fs.meta,
                              summary=summary)
        self.param.index.bounds = (0, fs.n - 1)
        self.index = min(self.index, fs.n - 1)
        self.message = ""

    @property
    def current(self) -> np.ndarray:
        return self.fields[self.index]

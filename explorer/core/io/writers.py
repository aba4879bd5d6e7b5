"""Writing field files (``.npz`` with its JSON ``meta``, or a bare ``.npy``) atomically, a
temporary path for other writers, JSON conversion of numpy values, and a short description of a
field batch. The formats are described in :mod:`explorer.core.io`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.fields.base import FieldSet
from explorer.core.io.validation import FieldFileError, validate_fields


def json_default(obj: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy scalars and arrays, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def save_fields(path: str | os.PathLike, fieldset: FieldSet, *, validate: bool = True) -> Path:
    """Write ``fieldset`` to ``path`` (``.npz`` with its meta, or a bare ``.npy``); return the path.

    Fields are stored as float32 (``np.savez_compressed`` for ``.npz``); ``meta`` as a JSON
    string in a 0-d unicode array.  A ``.npy`` file keeps the fields only.  With ``validate``
    (the default) the fields must pass :func:`validate_fields` with its defaults, so that what
    is saved can be loaded again.  The file is written to a temporary name and then moved into
    place, so an existing file is never left half-written.  Raises :class:`FieldFileError`.
    """
    path = Path(path)
    label = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise FieldFileError(
            f"fields are saved as .npz (with metadata) or .npy, not '{suffix or 'no extension'}'.",
            label, action="save",
        )
    try:
        if validate:
            fields = validate_fields(fieldset.fields)
        else:
            fields = np.ascontiguousarray(fieldset.fields, dtype=np.float32)
        meta_json = json.dumps(fieldset.meta, default=json_default, ensure_ascii=False)
    except FieldFileError as exc:
        raise FieldFileError(exc.reason, label, action="save") from None
    except (TypeError, ValueError) as exc:
        raise FieldFileError(
            f"the metadata is not JSON-serialisable ({exc}).", label, action="save"
        ) from None

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FieldFileError(f"the directory '{directory}' does not exist.", label, action="save")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            if suffix == ".npz":
                np.savez_compressed(fh, fields=fields, meta=np.array(meta_json, dtype=np.str_))
            else:
                np.save(fh, fields, allow_pickle=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise FieldFileError(
            f"the file cannot be written ({exc.strerror or exc}).", label, action="save"
        ) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in the folder of ``path``, with the same suffix, for a writer to fill.

    When the block ends normally the temporary file replaces ``path`` (one rename: ``path`` is
    never half-written); when it raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=directory)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def describe_fields(fs: FieldSet) -> dict[str, Any]:
    """A small JSON-serialisable summary: shape, dtype, mean, std, min, max, generator."""
    a = np.asarray(fs.fields)
    return {
        "shape": [int(s) for s in a.shape],
        "n": int(a.shape[0]),
        "size": int(a.shape[-1]),
        "dtype": str(a.dtype),
        "mean": float(np.mean(a, dtype=np.float64)),
        "std": float(np.std(a, dtype=np.float64)),
        "min": float(np.min(a)),
        "max": float(np.max(a)),
        "generator": str(fs.meta.get("generator", "unknown")),
    }

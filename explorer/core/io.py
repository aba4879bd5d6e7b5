"""Reading, writing and validating batches of fields.

Formats
-------
``.npz``  (what :func:`save_fields` writes)
    ``fields``: array ``(N, H, W)`` or ``(H, W)``, stored as float32 with
    :func:`numpy.savez_compressed`; ``meta``: a JSON object stored as a 0-d unicode array
    (``np.str_``) holding the generator, its parameters, the seed, ...  ``meta`` is optional
    when reading: a file without it gets ``{"generator": "file", "params": {...}}``.
``.npy``
    a bare array ``(N, H, W)`` or ``(H, W)``; no metadata.
``.png``, ``.jpg``, ``.jpeg``
    one field ``(1, H, W)``: the image as grayscale in ``[0, 1]``.  8-bit images are converted
    with Pillow's ``convert("F")`` (ITU-R 601-2 luma for colour images, the grey value itself for
    grayscale ones) and divided by 255; 16-bit grayscale PNGs are divided by 65535.  Alpha is
    ignored; of an animated PNG only the first frame is read; EXIF orientation is not applied.

Safety
------
Nothing is ever unpickled: every ``.npy`` header (also inside an ``.npz``) is read and checked
*before* the array is, object arrays are refused with a :class:`FieldFileError`, and the array
itself is read with ``np.load(..., allow_pickle=False)``.  Input size is bounded twice: the bytes
on disk / uploaded (``max_bytes``) and the size the array will occupy in memory
(``max_array_bytes``), the latter checked from the zip directory and the ``.npy`` header before
any data is decompressed (zip bombs, headers announcing huge shapes).

Every problem is raised as :class:`FieldFileError` (a ``ValueError``) whose message alone is a
complete sentence naming the problem and the offending value, so a command line can print
``str(error)`` as a one-line diagnostic and a web app can show it to the user.
"""

from __future__ import annotations

import contextlib
import io as _stdio
import json
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from explorer.core.fields.base import FieldSet

__all__ = [
    "DEFAULT_MAX_ARRAY_BYTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_SIZE",
    "SUPPORTED_SUFFIXES",
    "FieldFileError",
    "atomic_path",
    "describe_fields",
    "json_default",
    "load_fields",
    "read_meta",
    "save_fields",
    "validate_fields",
]

#: Largest file (on disk, or uploaded bytes) that is read at all.
DEFAULT_MAX_BYTES = 256 * 2**20
#: Largest array (in memory, in its stored dtype) that is decompressed / decoded.
DEFAULT_MAX_ARRAY_BYTES = 512 * 2**20
#: Smallest and largest accepted side length of a field.
DEFAULT_MIN_SIZE = 8
DEFAULT_MAX_SIZE = 4096

SUPPORTED_SUFFIXES = (".npz", ".npy", ".png", ".jpg", ".jpeg")

_FORMAT_OF_SUFFIX = {".npz": "npz", ".npy": "npy", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}
_FORMAT_LABEL = {
    "npz": "an NPZ archive",
    "npy": "an NPY array",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "tiff": "a TIFF image",
    "bmp": "a BMP image",
    "webp": "a WebP image",
    "gzip": "a gzip file",
    "pdf": "a PDF document",
}
_FORMAT_SUFFIX = {"npz": ".npz", "npy": ".npy", "png": ".png", "jpeg": ".jpg"}

_MAGIC = (
    (b"PK\x03\x04", "npz"),
    (b"PK\x05\x06", "npz"),  # an empty zip archive
    (b"\x93NUMPY", "npy"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
    (b"\x1f\x8b", "gzip"),
    (b"%PDF", "pdf"),
)

_MAX_META_BYTES = 16 * 2**20
_MAX_LISTED = 8

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class FieldFileError(ValueError):
    """A field file or array that cannot be used, with a message for people.

    ``str(error)`` is a complete sentence.  ``reason`` is the problem alone, ``source`` the file
    (path or upload name) it concerns, if any.
    """

    def __init__(self, reason: str, source: str | None = None, action: str = "load") -> None:
        self.reason = reason
        self.source = source
        self.action = action
        if source is None:
            message = reason[:1].upper() + reason[1:]
        else:
            message = f"Cannot {action} '{source}': {reason}"
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# validation of arrays


def _list_indices(indices: np.ndarray | list[int]) -> str:
    indices = [int(i) for i in indices]
    shown = ", ".join(str(i) for i in indices[:_MAX_LISTED])
    if len(indices) > _MAX_LISTED:
        shown += f", ... ({len(indices)} in all)"
    return shown


def _check_dtype(dtype: np.dtype) -> None:
    """Refuse every dtype that is not a real number (ints and floats pass)."""
    if dtype.hasobject:
        raise FieldFileError(
            f"the array has dtype {dtype} (Python objects); object arrays are refused because "
            "loading them would need pickle, which can run arbitrary code."
        )
    kind = dtype.kind
    if kind in "fiu":
        return
    what = {
        "b": "booleans",
        "c": "complex numbers",
        "U": "text",
        "S": "bytes",
        "V": "raw or structured records",
        "M": "dates",
        "m": "time intervals",
    }.get(kind, "non-numeric values")
    raise FieldFileError(
        f"the array has dtype {dtype} ({what}); fields must be real numbers "
        "(a float or integer dtype)."
    )


def _check_shape(
    shape: tuple[int, ...],
    require_power_of_two: bool,
    min_size: int,
    max_size: int | None,
) -> tuple[int, int, int]:
    """Check rank, batch size and side lengths; return the (N, H, W) shape."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise FieldFileError(
            f"the array has {len(shape)} dimension{'s' if len(shape) != 1 else ''} "
            f"(shape {shape}); fields must have 2 dimensions (H, W) or 3 dimensions (N, H, W)."
        )
    n, h, w = (1, *shape) if len(shape) == 2 else shape
    if n == 0:
        raise FieldFileError(f"the batch is empty: shape {shape} holds no fields (N = 0).")
    if h != w:
        raise FieldFileError(
            f"the fields are not square: height {h} and width {w} (shape {shape}); "
            "periodic fields must be square (H = W)."
        )
    if h < min_size:
        raise FieldFileError(
            f"the fields are {h}x{w}, below the minimum size of {min_size}x{min_size}."
        )
    if max_size is not None and h > max_size:
        raise FieldFileError(
            f"the fields are {h}x{w}, above the maximum size of {max_size}x{max_size}."
        )
    if require_power_of_two and h & (h - 1):
        below = 1 << (h.bit_length() - 1)
        raise FieldFileError(
            f"the field size {h} is not a power of two (the nearest are {below} and "
            f"{2 * below}); crop or resample the fields."
        )
    return n, h, w


def validate_fields(
    array: Any,
    require_power_of_two: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int | None = DEFAULT_MAX_SIZE,
) -> np.ndarray:
    """Check that ``array`` is a usable batch of fields and return it as float32 ``(N, H, W)``.

    Refused, each with its own message: a dtype that is not a real number (object, text, bytes,
    bool, complex, structured, dates; integers are accepted and converted), a rank other than 2
    or 3, an empty batch, non-square fields, a side below ``min_size`` or above ``max_size``, a
    side that is not a power of two (if ``require_power_of_two``), NaN or infinite values
    (also values too large for float32), and constant fields (zero variance).

    The result is C-contiguous float32; it may share memory with ``array`` when that already is.
    Raises :class:`FieldFileError`.
    """
    if isinstance(array, np.ndarray):
        a = array
    else:
        try:
            a = np.asarray(array)
        except (ValueError, TypeError) as exc:
            raise FieldFileError(
                "the input is not a regular numeric array (its rows have different lengths "
                "or it holds values that are not numbers)."
            ) from None
    _check_dtype(a.dtype)
    _check_shape(a.shape, require_power_of_two, min_size, max_size)
    if a.ndim == 2:
        a = a[None]

    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            n_nan = int(np.isnan(a).sum())
            n_inf = int(bad.sum()) - n_nan
            where = np.flatnonzero(bad.reshape(a.shape[0], -1).any(axis=1))
            counts = [f"{n_nan} NaN value{'s' if n_nan != 1 else ''}"] if n_nan else []
            if n_inf:
                counts.append(f"{n_inf} infinite value{'s' if n_inf != 1 else ''}")
            raise FieldFileError(
                f"the fields contain {' and '.join(counts)} (in field"
                f"{'s' if len(where) != 1 else ''} {_list_indices(where)}); "
                "all values must be finite."
            )

    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(a, dtype=np.float32)
    if out is not a and a.dtype.kind == "f" and a.dtype.itemsize > 4:
        overflow = np.isinf(out)
        if overflow.any():
            where = np.flatnonzero(overflow.reshape(out.shape[0], -1).any(axis=1))
            raise FieldFileError(
                f"the fields hold {int(overflow.sum())} value{'s' if overflow.sum() != 1 else ''} "
                f"too large for float32 (|x| > {np.finfo(np.float32).max:.3g}, in field"
                f"{'s' if len(where) != 1 else ''} {_list_indices(where)})."
            )

    flat = out.reshape(out.shape[0], -1)
    constant = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))
    if constant.size:
        n = out.shape[0]
        if constant.size == 1:
            which = f"field {int(constant[0])} of {n} is constant (value {flat[constant[0], 0]:g})"
        else:
            which = f"fields {_list_indices(constant)} are constant ({constant.size} of {n})"
        raise FieldFileError(f"{which}; a field with zero variance carries no information.")
    return out


# --------------------------------------------------------------------------------------------
# input handling


def _read_source(
    source: Source, name: str | None, max_bytes: int
) -> tuple[bytes, str]:
    """Return the raw bytes of ``source`` and the name used in messages and for the format."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        if name is None:
            raise FieldFileError(
                "raw bytes need a file name such as 'fields.npz' (the name argument) to "
                "tell their format.", label
            )
        data = bytes(source)
        if len(data) > max_bytes:
            raise FieldFileError(
                f"the file is {_human(len(data))}, above the limit of {_human(max_bytes)}.", label
            )
        return data, label

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(source)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise FieldFileError("no such file.", label) from None
        except OSError as exc:
            reason = f"the file cannot be read ({exc.strerror or exc})."
            raise FieldFileError(reason, label) from None
        if path.is_dir():
            raise FieldFileError("this is a directory, not a file.", label)
        if st.st_size > max_bytes:
            raise FieldFileError(
                f"the file is {_human(st.st_size)}, above the limit of {_human(max_bytes)}.", label
            )
        try:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            reason = f"the file cannot be read ({exc.strerror or exc})."
            raise FieldFileError(reason, label) from None
        if len(data) > max_bytes:  # grew since stat
            raise FieldFileError(f"the file is above the limit of {_human(max_bytes)}.", label)
        return data, label

    if hasattr(source, "read"):
        label = name or str(getattr(source, "name", "<stream>"))
        data = source.read(max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise FieldFileError("the stream must be opened in binary mode.", label)
        if len(data) > max_bytes:
            raise FieldFileError(f"the file is above the limit of {_human(max_bytes)}.", label)
        return bytes(data), label

    raise FieldFileError(
        f"cannot read fields from an object of type {type(source).__name__}; pass a path, "
        "bytes with a name, or a binary file object."
    )


def _human(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _format_of_name(label: str) -> str:
    suffix = Path(label).suffix.lower()
    fmt = _FORMAT_OF_SUFFIX.get(suffix)
    if fmt is None:
        got = f"extension '{suffix}'" if suffix else "no extension"
        raise FieldFileError(
            f"the file has {got}; supported are {', '.join(SUPPORTED_SUFFIXES)}.", label
        )
    return fmt


def _format_of_content(data: bytes) -> str | None:
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return None


def _check_magic(data: bytes, fmt: str, label: str) -> None:
    if not data:
        raise FieldFileError("the file is empty (0 bytes).", label)
    actual = _format_of_content(data)
    if actual == fmt:
        return
    expected = _FORMAT_LABEL[fmt]
    if actual is None:
        raise FieldFileError(
            f"the name says {expected} but the content does not start with its signature "
            f"(it starts with {data[:8]!r}); the file is corrupt or of another type.", label
        )
    hint = (
        f"; rename it to {_FORMAT_SUFFIX[actual]}" if actual in _FORMAT_SUFFIX else ""
    )
    raise FieldFileError(
        f"the name says {expected} but the content is {_FORMAT_LABEL[actual]}{hint}.", label
    )


# --------------------------------------------------------------------------------------------
# .npy headers (read before any data, so nothing is unpickled or over-allocated)


def _read_npy_header(fp: BinaryIO, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Parse a .npy header from ``fp``; return (shape, dtype, header length in bytes)."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise FieldFileError(
                f"{what} uses .npy format version {version[0]}.{version[1]}, which is not "
                "supported (versions 1.0 and 2.0 are)."
            )
    except FieldFileError:
        raise
    except (zlib.error, zipfile.BadZipFile) as exc:
        raise FieldFileError(
            f"{what} is damaged inside the archive ({exc}); the file is corrupt."
        ) from None
    except (ValueError, EOFError, OSError) as exc:
        raise FieldFileError(f"{what} has a corrupt .npy header ({exc}).") from None
    return tuple(int(s) for s in shape), np.dtype(dtype), fp.tell()


def _check_npy_member(
    shape: tuple[int, ...], dtype: np.dtype, header_len: int, stored: int, what: str,
    max_array_bytes: int,
) -> None:
    """Refuse object dtypes, oversize arrays and headers that disagree with the stored size."""
    if dtype.hasobject:
        raise FieldFileError(
            f"{what} is an object array (dtype {dtype}); it is refused because loading it "
            "would need pickle, which can run arbitrary code."
        )
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > max_array_bytes:
        raise FieldFileError(
            f"{what} would take {_human(nbytes)} in memory (shape {shape}, dtype {dtype}), "
            f"above the limit of {_human(max_array_bytes)}."
        )
    if stored != header_len + nbytes:
        raise FieldFileError(
            f"{what} is truncated or corrupt: its header announces {nbytes} bytes of data "
            f"(shape {shape}, dtype {dtype}) but {max(stored - header_len, 0)} are stored."
        )


# --------------------------------------------------------------------------------------------
# readers: each returns (array, meta)


def _npz_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    members = {}
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        members.setdefault(key, info)
    return members


def _open_npz(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(_stdio.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise FieldFileError(
            f"the NPZ archive is corrupt or truncated ({exc})."
        ) from None


def _inspect_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, max_array_bytes: int
) -> np.dtype:
    """Check one member from the zip directory and its .npy header, before reading it."""
    if info.file_size > max_array_bytes + 65536:
        raise FieldFileError(
            f"{what} would decompress to {_human(info.file_size)}, above the limit of "
            f"{_human(max_array_bytes)}."
        )
    try:
        with zf.open(info) as fp:
            shape, dtype, header_len = _read_npy_header(fp, what)
    except FieldFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError, ValueError) as exc:
        raise FieldFileError(f"{what} cannot be read from the archive ({exc}).") from None
    _check_npy_member(shape, dtype, header_len, info.file_size, what, max_array_bytes)
    return dtype


def _parse_meta(text: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        snippet = text[:40] + ("..." if len(text) > 40 else "")
        raise FieldFileError(
            f"the 'meta' entry is not valid JSON ({exc.msg} at character {exc.pos}; "
            f"it starts with {snippet!r})."
        ) from None
    if not isinstance(meta, dict):
        raise FieldFileError(
            f"the 'meta' entry must be a JSON object, but it is a JSON {type(meta).__name__}."
        )
    return meta


def _load_npz_meta(
    zf: zipfile.ZipFile, npz: Any, members: dict[str, zipfile.ZipInfo]
) -> dict[str, Any] | None:
    info = members.get("meta")
    if info is None:
        return None
    dtype = _inspect_member(zf, info, "the 'meta' entry", _MAX_META_BYTES)
    if dtype.kind not in "US":
        raise FieldFileError(
            f"the 'meta' entry has dtype {dtype}; it must be a JSON string "
            "(a 0-d unicode array)."
        )
    raw = npz["meta"]
    if raw.size != 1:
        raise FieldFileError(
            f"the 'meta' entry has shape {raw.shape}; it must hold a single JSON string."
        )
    value = raw.reshape(()).item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FieldFileError("the 'meta' entry is not valid UTF-8 text.") from None
    return _parse_meta(value)


def _read_npz(data: bytes, max_array_bytes: int, with_fields: bool = True):
    zf = _open_npz(data)
    with zf:
        members = _npz_members(zf)
        if "fields" not in members:
            have = ", ".join(repr(k) for k in sorted(members)) or "nothing"
            raise FieldFileError(
                f"the archive has no 'fields' array (it contains: {have})."
            )
        if with_fields:
            _inspect_member(zf, members["fields"], "the 'fields' array", max_array_bytes)
        try:
            npz = np.load(_stdio.BytesIO(data), allow_pickle=False)
            with npz:
                meta = _load_npz_meta(zf, npz, members)
                fields = npz["fields"] if with_fields else None
        except FieldFileError:
            raise
        except (ValueError, EOFError, OSError, zlib.error, zipfile.BadZipFile,
                RuntimeError, NotImplementedError) as exc:
            raise FieldFileError(f"the NPZ archive is corrupt ({exc}).") from None
    return fields, meta


def _read_npy(data: bytes, max_array_bytes: int) -> np.ndarray:
    fp = _stdio.BytesIO(data)
    shape, dtype, header_len = _read_npy_header(fp, "the array")
    _check_npy_member(shape, dtype, header_len, len(data), "the array", max_array_bytes)
    try:
        return np.load(_stdio.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise FieldFileError(f"the NPY file is corrupt ({exc}).") from None


def _read_image(
    data: bytes, fmt: str, max_array_bytes: int, require_power_of_two: bool,
    min_size: int, max_size: int | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    pil_format = {"png": "PNG", "jpeg": "JPEG"}[fmt]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(_stdio.BytesIO(data), formats=[pil_format])
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise FieldFileError(f"the image cannot be decoded ({exc}).") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise FieldFileError("the image has too many pixels to be decoded safely.") from None
        with img:
            width, height = img.size
            # Geometry and size are checked on the header, before any pixel is decoded.
            _check_shape((height, width), require_power_of_two, min_size, max_size)
            if width * height * 8 > max_array_bytes:
                raise FieldFileError(
                    f"the image ({width}x{height}) would take {_human(width * height * 8)} in "
                    f"memory, above the limit of {_human(max_array_bytes)}."
                )
            mode = img.mode
            try:
                if mode.startswith("I;16") or mode == "I":
                    arr = np.asarray(img, dtype=np.float64) / 65535.0
                    conversion = "16-bit grey / 65535"
                else:
                    if mode not in ("L", "RGB", "F"):
                        img = img.convert("RGB")
                    arr = np.asarray(img.convert("F"), dtype=np.float64) / 255.0
                    conversion = "Pillow convert('F') luma / 255"
            except (OSError, ValueError, SyntaxError) as exc:
                raise FieldFileError(f"the image is truncated or corrupt ({exc}).") from None
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise FieldFileError(
                    "the image has too many pixels to be decoded safely."
                ) from None
    arr = np.clip(arr, 0.0, 1.0)
    return arr, {"format": fmt, "image_mode": mode, "conversion": conversion}


# --------------------------------------------------------------------------------------------
# public API


def _default_meta(label: str, fmt: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"source": Path(label).name, "format": fmt}
    if extra:
        params.update(extra)
    return {"generator": "file", "params": params}


def load_fields(
    source: Source,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    max_array_bytes: int = DEFAULT_MAX_ARRAY_BYTES,
    require_power_of_two: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int | None = DEFAULT_MAX_SIZE,
) -> FieldSet:
    """Read and validate a batch of fields from ``.npz``, ``.npy``, ``.png`` or ``.jpg``/``.jpeg``.

    ``source`` is a path, raw bytes (a browser upload: then ``name`` is required) or a binary
    file object.  The format comes from the suffix of ``name`` (or of the path) and is checked
    against the file's signature.  ``max_bytes`` bounds the file size, ``max_array_bytes`` the
    decoded array; the remaining arguments go to :func:`validate_fields`.

    Returns a :class:`FieldSet` with float32 fields ``(N, H, W)``.  The ``meta`` of an ``.npz``
    is returned as stored (``generator`` and ``params`` are filled in if absent); other formats
    and ``.npz`` files without ``meta`` get ``{"generator": "file", "params": {"source": ...,
    "format": ...}}``.  Every problem raises :class:`FieldFileError`.
    """
    data, label = _read_source(source, name, max_bytes)
    try:
        fmt = _format_of_name(label)
        _check_magic(data, fmt, label)
        if fmt == "npz":
            array, meta = _read_npz(data, max_array_bytes)
            if meta is None:
                meta = _default_meta(label, fmt)
        elif fmt == "npy":
            array, meta = _read_npy(data, max_array_bytes), _default_meta(label, fmt)
        else:
            array, extra = _read_image(
                data, fmt, max_array_bytes, require_power_of_two, min_size, max_size
            )
            meta = _default_meta(label, fmt, extra)
        fields = validate_fields(array, require_power_of_two, min_size, max_size)
    except FieldFileError as exc:
        if exc.source is not None:
            raise
        raise FieldFileError(exc.reason, label) from None
    if not fields.flags.writeable:
        fields = fields.copy()
    meta.setdefault("generator", "file")
    meta.setdefault("params", {})
    return FieldSet(fields, meta)


def read_meta(
    source: Source, name: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, Any]:
    """Return the ``meta`` dict of a field file without reading (or validating) its fields.

    For ``.npz`` files this is the stored ``meta`` (or the default one when absent); for
    ``.npy`` and images, which carry none, it is ``{"generator": "file", "params": {...}}``.
    """
    data, label = _read_source(source, name, max_bytes)
    try:
        fmt = _format_of_name(label)
        _check_magic(data, fmt, label)
        meta = None
        if fmt == "npz":
            _, meta = _read_npz(data, DEFAULT_MAX_ARRAY_BYTES, with_fields=False)
    except FieldFileError as exc:
        if exc.source is not None:
            raise
        raise FieldFileError(exc.reason, label) from None
    if meta is None:
        meta = _default_meta(label, fmt)
    meta.setdefault("generator", "file")
    meta.setdefault("params", {})
    return meta


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

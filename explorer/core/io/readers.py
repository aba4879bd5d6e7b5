"""Reading field files (``.npz``, ``.npy``, PNG/JPEG) safely: the format from the name checked
against the file's signature, every ``.npy`` header (also inside an ``.npz``) read and checked
before its array, the decoded size bounded before decompression, nothing ever unpickled. The
formats are described in :mod:`explorer.core.io`.
"""

from __future__ import annotations

import io as _stdio
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from explorer.core.fields.base import FieldSet
from explorer.core.io.validation import (DEFAULT_MAX_ARRAY_BYTES, DEFAULT_MAX_BYTES,
                                         DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE, FieldFileError,
                                         _check_shape, validate_fields)

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

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


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


def _read_npz(data: bytes, max_array_bytes: int, with_fields: bool = True, key: str = "fields"):
    zf = _open_npz(data)
    with zf:
        members = _npz_members(zf)
        if key == "meta" or key not in members:
            arrays = [k for k in sorted(members) if k != "meta"]
            have = ", ".join(repr(k) for k in arrays) or "nothing"
            hint = (f"; name the array holding the fields (key {arrays[0]!r})"
                    if len(arrays) == 1 else "; name the array holding the fields"
                    if arrays else "")
            raise FieldFileError(
                f"the archive has no {key!r} array (it contains: {have}){hint}."
            )
        if with_fields:
            _inspect_member(zf, members[key], f"the {key!r} array", max_array_bytes)
        try:
            npz = np.load(_stdio.BytesIO(data), allow_pickle=False)
            with npz:
                meta = _load_npz_meta(zf, npz, members)
                fields = npz[key] if with_fields else None
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
    key: str | None = None,
) -> FieldSet:
    """Read and validate a batch of fields from ``.npz``, ``.npy``, ``.png`` or ``.jpg``/``.jpeg``.

    ``key``: the array of an ``.npz`` holding the fields (default ``"fields"``); given for
    another format it is refused. The returned FieldSet's ``source`` says how the file was read:
    ``format``, ``key``, the stored ``dtype`` and ``cast`` (e.g. "float64 -> float32").

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
        if key is not None and fmt != "npz":
            raise FieldFileError(f"a key ({key!r}) names an array of an .npz archive; this is "
                                 f"{_FORMAT_LABEL[fmt]}.")
        _check_magic(data, fmt, label)
        if fmt == "npz":
            array, meta = _read_npz(data, max_array_bytes, key=key or "fields")
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
    if fmt in ("npz", "npy"):
        stored = str(np.asarray(array).dtype)
        cast = None if stored == "float32" else f"{stored} -> float32"
    else:
        stored = f"image mode {meta['params'].get('image_mode')}"
        cast = f"{meta['params'].get('conversion')} -> float32"
    src = {"format": fmt, "key": (key or "fields") if fmt == "npz" else None, "dtype": stored,
           "cast": cast}
    return FieldSet(fields, meta, source=src)


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

"""Validation of field arrays and the one error type of file handling, :class:`FieldFileError`,
whose message alone is a complete sentence naming the problem and the offending value (a command
line prints ``str(error)``, the app shows it). Conventions: docs/README.md, "Conventions".
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Largest file (on disk, or uploaded bytes) that is read at all.
DEFAULT_MAX_BYTES = 256 * 2**20
#: Largest array (in memory, in its stored dtype) that is decompressed / decoded.
DEFAULT_MAX_ARRAY_BYTES = 512 * 2**20
#: Smallest and largest accepted side length of a field.
DEFAULT_MIN_SIZE = 8
DEFAULT_MAX_SIZE = 4096

_MAX_LISTED = 8


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

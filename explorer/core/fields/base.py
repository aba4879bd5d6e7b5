from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FieldSet:
    """A batch of real periodic fields ``(N, H, W)`` with its provenance.

    ``meta`` always holds ``generator`` (str) and ``params`` (dict); generators add ``seed`` and
    their own diagnostics.  Everything in ``meta`` is JSON-serialisable.
    """

    fields: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    #: how the fields were read (not saved): the file's array name, stored dtype, the cast made
    source: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        a = np.asarray(self.fields)
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise ValueError(f"fields must have shape (N, H, W), got {a.shape}")
        self.fields = a

    @property
    def n(self) -> int:
        return self.fields.shape[0]

    @property
    def size(self) -> int:
        return self.fields.shape[-1]


def as_batch(x, what: str = "fields") -> np.ndarray:
    """A float64 batch of square fields (N, L, L) from one field or a batch; a clear ValueError
    for a wrong shape, an empty batch or NaN/inf values."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"{what} must be a batch of square fields (N, L, L), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"no {what}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contain NaN or inf")
    return x


def check_number(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> float:
    """``float(value)`` when it is a finite number satisfying ``ok``; otherwise a one-line
    ValueError naming the parameter and the rule (e.g. ">= 0")."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and ok(v)):
        raise ValueError(f"{name} must be finite and {rule}, got {value!r}")
    return v

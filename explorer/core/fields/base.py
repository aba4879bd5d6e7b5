from __future__ import annotations

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

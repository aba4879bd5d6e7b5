"""Physical fields: lattice phi^4, exact Gaussian fields, 2D turbulence.

Every generator returns (through the progress protocol of :mod:`explorer.core.progress`) a
:class:`FieldSet`: a float32 batch ``(N, L, L)`` and a JSON-serialisable ``meta`` dict with the
generator name, its parameters, the seed and generator-specific diagnostics.
"""

from explorer.core.fields.base import FieldSet

__all__ = ["FieldSet"]

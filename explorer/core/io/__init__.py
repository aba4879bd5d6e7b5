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

Modules: :mod:`.validation` (:func:`validate_fields`, :class:`FieldFileError`, the limits),
:mod:`.readers` (:func:`load_fields`, :func:`read_meta`), :mod:`.writers` (:func:`save_fields`,
:func:`atomic_path`, :func:`json_default`, :func:`describe_fields`); every public name is
re-exported here.
"""

from explorer.core.io.readers import (SUPPORTED_SUFFIXES, Source,  # noqa: F401  (type alias)
                                      load_fields, read_meta)
from explorer.core.io.validation import (DEFAULT_MAX_ARRAY_BYTES, DEFAULT_MAX_BYTES,
                                         DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE, FieldFileError,
                                         validate_fields)
from explorer.core.io.writers import atomic_path, describe_fields, json_default, save_fields

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

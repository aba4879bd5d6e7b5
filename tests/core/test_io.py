"""Field file I/O: exact round trips, image reading, and one test per class of bad input."""

from __future__ import annotations

import builtins
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

import explorer.core.io as fio
from explorer.core.fields.base import FieldSet
from explorer.core.io import (
    FieldFileError,
    describe_fields,
    load_fields,
    read_meta,
    save_fields,
    validate_fields,
)

META = {"generator": "gaussian", "params": {"L": 16, "slope": -2.0, "name": "été"}, "seed": 7}


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def npy_bytes(array, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def png_bytes(array, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def raises(*fragments, call, **kwargs):
    """``call`` raises FieldFileError: a one-line sentence containing every fragment."""
    with pytest.raises(FieldFileError) as info:
        call(**kwargs) if kwargs else call()
    message = str(info.value)
    assert type(info.value) is FieldFileError
    assert "\n" not in message and message.endswith("."), message
    assert message[0].isupper(), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------- round trips


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
        a.view(np.uint32), b.view(np.uint32)
    )


def test_npz_round_trip_batch_is_bit_exact(tmp_path):
    fields = rand(3, 16, 16)
    fields[0, 0, 0] = np.float32(1e-40)  # a subnormal survives too
    path = save_fields(tmp_path / "f.npz", FieldSet(fields, META))
    back = load_fields(path)
    assert same_bits(back.fields, fields)
    assert back.meta == META


def test_npz_round_trip_single_field(tmp_path):
    fields = rand(32, 32, seed=1)
    save_fields(tmp_path / "one.npz", FieldSet(fields, META))
    back = load_fields(tmp_path / "one.npz")
    assert back.fields.shape == (1, 32, 32)
    assert same_bits(back.fields[0], fields)
    # a hand-made archive with a 2-D array is read as one field as well
    (tmp_path / "hand.npz").write_bytes(npz_bytes(fields=fields, meta=np.str_(json.dumps(META))))
    back = load_fields(str(tmp_path / "hand.npz"))
    assert same_bits(back.fields[0], fields) and back.meta == META


def test_npz_stores_float32_and_meta_as_json_string(tmp_path):
    fields64 = rand(2, 8, 8, dtype=np.float64)
    meta = {"generator": "phi4", "params": {"beta": np.float64(0.68), "L": np.int64(8)}}
    save_fields(tmp_path / "f.npz", FieldSet(fields64, meta))
    with np.load(tmp_path / "f.npz", allow_pickle=False) as raw:
        assert raw["fields"].dtype == np.float32
        assert raw["meta"].ndim == 0 and raw["meta"].dtype.kind == "U"
        assert json.loads(str(raw["meta"])) == {"generator": "phi4",
                                                "params": {"beta": 0.68, "L": 8}}
    back = load_fields(tmp_path / "f.npz")
    assert same_bits(back.fields, fields64.astype(np.float32))


@pytest.mark.parametrize("shape", [(2, 16, 16), (16, 16)])
def test_npy_round_trip(tmp_path, shape):
    fields = rand(*shape, seed=2)
    (tmp_path / "raw.npy").write_bytes(npy_bytes(fields))
    back = load_fields(tmp_path / "raw.npy")
    assert same_bits(back.fields.reshape(shape), fields)
    assert back.meta["generator"] == "file" and back.meta["params"]["format"] == "npy"
    save_fields(tmp_path / "again.npy", back)
    assert same_bits(load_fields(tmp_path / "again.npy").fields, back.fields)


def test_integer_fields_are_accepted_as_float(tmp_path):
    ints = np.arange(2 * 8 * 8, dtype=np.int16).reshape(2, 8, 8)
    (tmp_path / "i.npz").write_bytes(npz_bytes(fields=ints))
    back = load_fields(tmp_path / "i.npz")
    assert back.fields.dtype == np.float32
    np.testing.assert_array_equal(back.fields, ints)


def test_missing_meta_gets_file_generator(tmp_path):
    (tmp_path / "bare.npz").write_bytes(npz_bytes(fields=rand(8, 8)))
    fs = load_fields(tmp_path / "bare.npz")
    assert fs.meta == {"generator": "file", "params": {"source": "bare.npz", "format": "npz"}}


def test_bytes_and_file_object_input(tmp_path):
    fields = rand(2, 8, 8, seed=3)
    data = npz_bytes(fields=fields, meta=np.str_(json.dumps(META)))
    fs = load_fields(data, name="upload.NPZ")
    assert same_bits(fs.fields, fields) and fs.meta == META
    fs = load_fields(memoryview(data), name="upload.npz")
    assert same_bits(fs.fields, fields)
    fs = load_fields(io.BytesIO(data), name="upload.npz")
    assert same_bits(fs.fields, fields)
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    fs = load_fields(png_bytes(grey), name="photo.png")
    np.testing.assert_allclose(fs.fields[0], grey / 255.0, rtol=0, atol=1e-7)


def test_bytes_need_a_name():
    raises("need a file name", call=lambda: load_fields(npz_bytes(fields=rand(8, 8))))


def test_save_refuses_bad_fields_and_suffix_and_leaves_no_temp_files(tmp_path):
    bad = rand(2, 8, 8)
    bad[1, 2, 3] = np.nan
    raises("Cannot save", "NaN", call=lambda: save_fields(tmp_path / "x.npz", FieldSet(bad, META)))
    raises("Cannot save", ".txt",
           call=lambda: save_fields(tmp_path / "x.txt", FieldSet(rand(8, 8), META)))
    raises("JSON", call=lambda: save_fields(tmp_path / "x.npz",
                                            FieldSet(rand(8, 8), {"generator": object()})))
    assert list(tmp_path.iterdir()) == []


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "f.npz"
    save_fields(path, FieldSet(rand(8, 8, seed=1), META))
    save_fields(path, FieldSet(rand(8, 8, seed=2), META))
    assert same_bits(load_fields(path).fields[0], rand(8, 8, seed=2))
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]


def test_read_meta_and_describe(tmp_path):
    fields = rand(2, 16, 16, seed=4)
    save_fields(tmp_path / "f.npz", FieldSet(fields, META))
    assert read_meta(tmp_path / "f.npz") == META
    (tmp_path / "f.npy").write_bytes(npy_bytes(fields))
    assert read_meta(tmp_path / "f.npy")["generator"] == "file"
    d = describe_fields(load_fields(tmp_path / "f.npz"))
    assert d["shape"] == [2, 16, 16] and d["dtype"] == "float32" and d["generator"] == "gaussian"
    assert d["mean"] == pytest.approx(float(fields.astype(np.float64).mean()))
    assert d["std"] == pytest.approx(float(fields.astype(np.float64).std()))
    assert (d["min"], d["max"]) == (float(fields.min()), float(fields.max()))
    json.dumps(d)


# ---------------------------------------------------------------------------- images


def test_png_grayscale_is_exact(tmp_path):
    grey = (np.arange(256, dtype=np.uint8).reshape(16, 16))
    (tmp_path / "g.png").write_bytes(png_bytes(grey))
    fs = load_fields(tmp_path / "g.png")
    assert fs.fields.shape == (1, 16, 16) and fs.fields.dtype == np.float32
    np.testing.assert_array_equal(fs.fields[0], (grey / 255.0).astype(np.float32))
    assert fs.meta["generator"] == "file" and fs.meta["params"]["format"] == "png"


def test_png_colour_uses_luma_and_16_bit_uses_full_range(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    (tmp_path / "c.png").write_bytes(png_bytes(rgb))
    fs = load_fields(tmp_path / "c.png")
    assert fs.fields[0, 0, 0] == pytest.approx(0.299, abs=1e-6)
    expected = (rgb @ np.array([0.299, 0.587, 0.114])) / 255
    np.testing.assert_allclose(fs.fields[0], expected, atol=1e-5)
    rgba = np.dstack([rgb, np.full((8, 8), 10, np.uint8)])
    (tmp_path / "a.png").write_bytes(png_bytes(rgba))
    np.testing.assert_allclose(load_fields(tmp_path / "a.png").fields, fs.fields, atol=1e-6)

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    (tmp_path / "d.png").write_bytes(png_bytes(deep))
    fs = load_fields(tmp_path / "d.png")
    np.testing.assert_allclose(fs.fields[0], deep / 65535.0, atol=1e-7)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
def test_jpeg_read(tmp_path, suffix):
    y, x = np.mgrid[0:32, 0:32]
    grey = ((x + y) * 4).astype(np.uint8)
    (tmp_path / f"p{suffix}").write_bytes(png_bytes(grey, fmt="JPEG", quality=95))
    fs = load_fields(tmp_path / f"p{suffix}")
    assert fs.fields.shape == (1, 32, 32)
    assert 0.0 <= fs.fields.min() and fs.fields.max() <= 1.0
    np.testing.assert_allclose(fs.fields[0], grey / 255.0, atol=0.03)


def test_image_geometry_is_checked_before_decoding(tmp_path, monkeypatch):
    (tmp_path / "wide.png").write_bytes(png_bytes(np.zeros((16, 32), np.uint8)))

    def no_decode(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    raises("wide.png", "not square", "height 16 and width 32",
           call=lambda: load_fields(tmp_path / "wide.png"))


def test_other_raster_formats_are_refused(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="GIF")
    (tmp_path / "a.gif").write_bytes(buf.getvalue())
    raises("extension '.gif'", ".npz, .npy, .png, .jpg, .jpeg",
           call=lambda: load_fields(tmp_path / "a.gif"))
    # a GIF renamed .png is recognised as such, not handed to a GIF decoder
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    raises("name says a PNG image but the content is a GIF image",
           call=lambda: load_fields(tmp_path / "a.png"))


def test_corrupt_image(tmp_path):
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    raises("t.png", "image", call=lambda: load_fields(tmp_path / "t.png"))


# ---------------------------------------------------------------------------- the pickle attack

_PAYLOAD = (
    "import builtins, pathlib; pathlib.Path({marker!r}).write_text('pwned'); "
    "builtins._explorer_pwned = True"
)


class _Exploit:
    """Unpickling this runs code that creates a marker file and sets a global."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (_PAYLOAD.format(marker=self.marker),))


def _evil_npz(marker, where="fields") -> bytes:
    evil = np.array([_Exploit(marker)], dtype=object)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        good = {"fields": rand(8, 8), "meta": np.str_(json.dumps(META))}
        good[where] = evil
        for key, value in good.items():
            zf.writestr(f"{key}.npy", npy_bytes(value, allow_pickle=True))
    return buf.getvalue()


def test_crafted_payload_really_runs_when_unpickled(tmp_path):
    """Control: the archive used below is a live exploit when loaded with allow_pickle=True."""
    marker = tmp_path / "control-marker"
    (tmp_path / "evil.npz").write_bytes(_evil_npz(marker))
    try:
        with np.load(tmp_path / "evil.npz", allow_pickle=True) as npz:
            npz["fields"]
        assert marker.exists() and getattr(builtins, "_explorer_pwned", False)
    finally:
        if hasattr(builtins, "_explorer_pwned"):
            del builtins._explorer_pwned


@pytest.mark.parametrize("where", ["fields", "meta"])
def test_pickled_object_archive_is_refused_and_nothing_runs(tmp_path, where):
    marker = tmp_path / "marker"
    data = _evil_npz(marker, where)
    (tmp_path / "evil.npz").write_bytes(data)
    calls = [lambda: load_fields(tmp_path / "evil.npz"), lambda: load_fields(data, name="evil.npz")]
    if where == "meta":  # read_meta reads only the meta entry
        calls.append(lambda: read_meta(tmp_path / "evil.npz"))
    for call in calls:
        raises("evil.npz", f"'{where}'", "object array", "pickle", call=call)
    assert not marker.exists()
    assert not hasattr(builtins, "_explorer_pwned")


def test_pickled_object_npy_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "evil.npy").write_bytes(
        npy_bytes(np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    )
    raises("evil.npy", "object array", "pickle", call=lambda: load_fields(tmp_path / "evil.npy"))
    assert not marker.exists() and not hasattr(builtins, "_explorer_pwned")


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("shape, fragment", [
    ((64,), "1 dimension (shape (64,))"),
    ((1, 2, 8, 8), "4 dimensions (shape (1, 2, 8, 8))"),
])
def test_wrong_rank(shape, fragment):
    raises(fragment, "(N, H, W)", call=lambda: validate_fields(rand(*shape)))


def test_non_square():
    raises("not square", "height 16 and width 8", call=lambda: validate_fields(rand(2, 16, 8)))


def test_not_power_of_two():
    raises("size 48 is not a power of two", "32 and 64",
           call=lambda: validate_fields(rand(48, 48)))
    assert validate_fields(rand(48, 48), require_power_of_two=False).shape == (1, 48, 48)


def test_size_limits():
    raises("4x4", "minimum size of 8x8", call=lambda: validate_fields(rand(4, 4)))
    raises("64x64", "maximum size of 32x32",
           call=lambda: validate_fields(rand(64, 64), max_size=32))


def test_nan_and_inf_are_counted():
    a = rand(4, 8, 8)
    a[1, 0, :3] = np.nan
    a[3, 5, 5] = np.inf
    raises("3 NaN values and 1 infinite value", "fields 1, 3", "finite",
           call=lambda: validate_fields(a))
    a[3, 5, 5] = 0.0
    raises("contain 3 NaN values (in field 1)", call=lambda: validate_fields(a))


def test_float64_overflowing_float32():
    a = rand(2, 8, 8, dtype=np.float64)
    a[1, 0, 0] = 1e300
    raises("too large for float32", "field 1", call=lambda: validate_fields(a))


def test_constant_field_is_named():
    a = rand(4, 8, 8)
    a[2] = 0.5
    raises("Field 2 of 4 is constant", "zero variance", call=lambda: validate_fields(a))
    a[0] = 1.0
    raises("Fields 0, 2 are constant (2 of 4)", call=lambda: validate_fields(a))


@pytest.mark.parametrize("array, fragment", [
    (np.full((8, 8), "x"), "text"),
    (np.zeros((8, 8), dtype=object), "object"),
    (np.zeros((8, 8), dtype=complex), "complex"),
    (np.zeros((8, 8), dtype=bool), "booleans"),
    (np.zeros((8, 8), dtype="datetime64[s]"), "dates"),
    (np.zeros((8, 8), dtype=[("a", "f4"), ("b", "f4")]), "structured"),
])
def test_non_numeric_dtypes(array, fragment):
    raises(fragment, f"dtype {array.dtype}", call=lambda: validate_fields(array))


def test_complex_in_file_is_refused(tmp_path):
    (tmp_path / "c.npy").write_bytes(npy_bytes(rand(8, 8) + 1j * rand(8, 8)))
    raises("c.npy", "complex numbers", call=lambda: load_fields(tmp_path / "c.npy"))


def test_empty_batch(tmp_path):
    raises("empty", "N = 0", call=lambda: validate_fields(np.zeros((0, 8, 8))))
    (tmp_path / "e.npz").write_bytes(npz_bytes(fields=np.zeros((0, 8, 8), np.float32)))
    raises("e.npz", "N = 0", call=lambda: load_fields(tmp_path / "e.npz"))


def test_ragged_input():
    raises("not a regular numeric array", call=lambda: validate_fields([[1.0, 2.0], [3.0]]))


def test_errors_from_files_name_the_file(tmp_path):
    a = rand(2, 16, 16)
    a[1] = 3.0
    (tmp_path / "flat.npz").write_bytes(npz_bytes(fields=a))
    raises("Cannot load '", "flat.npz': field 1 of 2 is constant",
           call=lambda: load_fields(tmp_path / "flat.npz"))


# ---------------------------------------------------------------------------- files


def test_file_too_large(tmp_path):
    data = npz_bytes(fields=rand(2, 16, 16))
    (tmp_path / "big.npz").write_bytes(data)
    raises("big.npz", "above the limit of 100 bytes",
           call=lambda: load_fields(tmp_path / "big.npz", max_bytes=100))
    raises("up.npz", "above the limit of 100 bytes",
           call=lambda: load_fields(data, name="up.npz", max_bytes=100))


def test_zip_bomb_is_refused_from_the_declared_size(tmp_path, monkeypatch):
    data = npz_bytes(fields=np.zeros((16, 256, 256)))  # 8 MB of zeros, a few kB compressed
    assert len(data) < 100_000

    def no_read(*args, **kwargs):
        raise AssertionError("the archive was read")

    monkeypatch.setattr(np, "load", no_read)  # numpy's own: every reader uses it
    raises("bomb.npz", "'fields'", "decompress to 8.0 MB", "limit of 1.0 MB",
           call=lambda: load_fields(data, name="bomb.npz", max_array_bytes=2**20))


def test_header_announcing_a_huge_array_is_refused(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
    )
    data = buf.getvalue() + b"\0" * 64
    raises("huge.npy", "74.5 GB", "shape (100000, 100000)",
           call=lambda: load_fields(data, name="huge.npy"))
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as zf:
        zf.writestr("fields.npy", data)
    raises("huge.npz", "74.5 GB", call=lambda: load_fields(buf.getvalue(), name="huge.npz"))


def test_truncated_and_bad_zip(tmp_path):
    data = npz_bytes(fields=rand(4, 32, 32))
    raises("cut.npz", "corrupt or truncated",
           call=lambda: load_fields(data[: len(data) // 2], name="cut.npz"))
    raises("bad.npz", "corrupt or truncated",
           call=lambda: load_fields(b"PK\x03\x04" + b"\x00garbage" * 20, name="bad.npz"))


def test_damaged_member_data(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, fields=rand(2, 16, 16))  # stored uncompressed: easy to damage in place
    data = bytearray(buf.getvalue())
    data[len(data) // 2] ^= 0xFF
    raises("dmg.npz", "damaged inside the archive", "corrupt",
           call=lambda: load_fields(bytes(data), name="dmg.npz"))


def test_npz_without_fields_lists_its_content(tmp_path):
    (tmp_path / "other.npz").write_bytes(npz_bytes(x=rand(8, 8), labels=np.arange(3)))
    raises("other.npz", "no 'fields' array", "'labels', 'x'",
           call=lambda: load_fields(tmp_path / "other.npz"))
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    raises("empty zip", "contains: nothing",
           call=lambda: load_fields(buf.getvalue(), name="empty zip.npz"))


def test_truncated_npy(tmp_path):
    data = npy_bytes(rand(2, 16, 16))
    raises("cut.npy", "truncated", call=lambda: load_fields(data[:-10], name="cut.npy"))
    raises("hdr.npy", "corrupt .npy header", call=lambda: load_fields(data[:12], name="hdr.npy"))


@pytest.mark.parametrize("meta, fragment", [
    (np.str_("{generator: phi4"), "not valid JSON"),
    (np.str_("[1, 2]"), "must be a JSON object, but it is a JSON list"),
    (np.arange(3, dtype=np.int64), "dtype int64"),
])
def test_bad_meta(tmp_path, meta, fragment):
    (tmp_path / "m.npz").write_bytes(npz_bytes(fields=rand(8, 8), meta=meta))
    raises("m.npz", "'meta'", fragment, call=lambda: load_fields(tmp_path / "m.npz"))


@pytest.mark.parametrize("name, fragment", [
    ("fields.txt", "extension '.txt'"),
    ("fields.h5", "extension '.h5'"),
    ("fields", "no extension"),
])
def test_unknown_extension(name, fragment):
    raises(name, fragment, "supported are .npz", call=lambda: load_fields(b"data", name=name))


def test_renamed_files_are_recognised(tmp_path):
    png = png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8))
    (tmp_path / "photo.npz").write_bytes(png)
    raises("photo.npz", "the name says an NPZ archive but the content is a PNG image",
           "rename it to .png", call=lambda: load_fields(tmp_path / "photo.npz"))
    npz = npz_bytes(fields=rand(8, 8))
    raises("name says a PNG image but the content is an NPZ archive", "rename it to .npz",
           call=lambda: load_fields(npz, name="f.png"))
    raises("name says an NPY array but the content is an NPZ archive",
           call=lambda: load_fields(npz, name="f.npy"))
    jpg = png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8), fmt="JPEG")
    raises("content is a JPEG image", "rename it to .jpg",
           call=lambda: load_fields(jpg, name="f.png"))
    raises("does not start with its signature", "corrupt or of another type",
           call=lambda: load_fields(b"hello world", name="f.npz"))


def test_empty_missing_and_directory(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    raises("empty.npz", "empty (0 bytes)", call=lambda: load_fields(tmp_path / "empty.npz"))
    raises("nope.npz", "no such file", call=lambda: load_fields(tmp_path / "nope.npz"))
    (tmp_path / "dir.npz").mkdir()
    raises("dir.npz", "directory", call=lambda: load_fields(tmp_path / "dir.npz"))


def test_unsupported_source_type():
    raises("type int", call=lambda: load_fields(42))


def test_atomic_path_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    with fio.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npz" and tmp != target
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"          # nothing replaced before the block ends
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]

    with pytest.raises(MemoryError):
        with fio.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise MemoryError
    assert target.read_bytes() == b"new"              # untouched, and no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]

    fresh = tmp_path / "fresh.npz"
    with pytest.raises(KeyboardInterrupt):
        with fio.atomic_path(fresh) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]

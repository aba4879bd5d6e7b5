"""Checks of the command line's arguments and files, before any work: argument types, output
paths, field and model files, depths, the memory a request needs. Failures are :class:`CLIError`
(or the core's ValueErrors), printed as one line."""

from __future__ import annotations

import argparse
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from explorer.core import workflows as wf
from explorer.core.budget import check_memory, format_bytes


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """The command line's parser: defaults shown in --help, errors as one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, no usage dump
        raise CLIError(f"{message} (see '{self.prog} --help')")


def one_line(e: BaseException) -> str:
    """An exception's message on one line, never a repr (a KeyError's message is its argument)."""
    if isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    else:
        text = str(e)
    return re.sub(r"\s*\n\s*", " ", text).strip()


# ------------------------------------------------------------------ argument types
def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {v}")
    return v


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def int_in(lo: int, hi: int | None = None):
    """Argument type: a whole number in lo..hi (no upper bound when hi is None)."""
    where = f"in {lo}..{hi}" if hi is not None else f">= {lo}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"expected a whole number {where}, got {v}")
        return v

    return parse


def power_of_two(lo: int, hi: int):
    """Argument type: a power of two in lo..hi (checked before any work)."""

    def parse(text: str) -> int:
        v = int_in(1)(text)
        if not lo <= v <= hi or v & (v - 1):
            raise argparse.ArgumentTypeError(f"expected a power of two in {lo}..{hi}, got {v}")
        return v

    return parse


def float_where(rule: str, ok):
    """Argument type: a finite number satisfying ``ok`` (described by ``rule``, e.g. '> 0')."""

    def parse(text: str) -> float:
        v = finite_float(text)
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected a finite number {rule}, got {text!r}")
        return v

    return parse


positive_float = float_where("> 0", lambda v: v > 0)
nonnegative_float = float_where(">= 0", lambda v: v >= 0)


def array_key(text: str) -> str:
    """Argument type: the name of an array inside an .npz archive (not 'meta')."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", text) or text == "meta":
        raise argparse.ArgumentTypeError(
            f"expected the name of an array in the .npz (letters, digits, '_', '.', '-'; not "
            f"'meta'), got {text!r}")
    return text


def support_floor(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    v = finite_float(text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"the support floor must be in [0, 1) or 'none', got {text!r}")
    return v


# ------------------------------------------------------------------ generate
def generate_params(args) -> dict:
    """The generator parameters of ``explorer generate KIND`` (names of the workflows)."""
    if args.kind == "phi4":
        return {"beta": args.beta, "lam": args.lam, "n_chains": args.chains,
                "cluster": not args.local_only, "require_equilibrium": args.require_equilibrium}
    if args.kind == "gaussian":
        return {"spectrum": args.spectrum, "eta": args.slope, "mass": args.mass,
                "beta": args.beta}
    return {"spinup": args.spinup, "interval": args.interval, "nu": args.nu, "p": args.order,
            "alpha": args.drag, "kf": args.kf, "cfl": args.cfl}


def check_generate(args) -> None:
    """Every parameter of ``generate`` and the memory it needs, before any work."""
    if args.kind == "turbulence" and not args.kf < args.size / 3:
        raise CLIError(f"--kf {args.kf} is too large for --size {args.size}: the forcing must "
                       f"lie inside the dealiased band, kf < size/3 = {args.size / 3:.4g}")
    params = generate_params(args)
    wf.check_generate(args.kind, args.size, args.samples, **params)
    needed, working = wf.generate_memory_bytes(args.kind, args.size, args.samples, **params)
    N, L = args.samples, args.size
    check_memory(needed, f"generate {args.kind}",
                 f"{N} fields of {L}x{L}: {format_bytes(4 * N * L * L)} of float32 output plus "
                 f"{format_bytes(working)} of float64 working arrays",
                 "use fewer --samples or a smaller --size")


# ------------------------------------------------------------------ files
def check_out(text: str, *inputs: str) -> Path:
    """A usable --out path: an .npz file in an existing, writable folder, not one of the inputs."""
    out = Path(text)
    if out.suffix != ".npz":
        raise CLIError(f"--out must name an .npz file, got {text!r}")
    folder = out.parent
    if not folder.exists():
        raise CLIError(f"the folder of --out does not exist: {str(folder)!r}")
    if not folder.is_dir():
        raise CLIError(f"the folder of --out is not a folder: {str(folder)!r}")
    if out.is_dir():
        raise CLIError(f"--out names a folder, not a file: {text!r}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write into the folder of --out: {str(folder)!r}")
    for source in inputs:
        if out.exists() and Path(source).exists() and out.resolve() == Path(source).resolve():
            raise CLIError(f"--out {text!r} would overwrite the input file")
    return out


def npz_members(path: str | Path) -> set[str] | None:
    """Names of the arrays in an .npz archive (None if it is not a readable archive)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {n[:-4] if n.endswith(".npy") else n for n in zf.namelist()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def load_fields(path: str, what: str = "fields", key: str | None = None):
    """load_fields with a clear message when a model file is given instead, or when the array
    of an .npz must be named with --key."""
    from explorer.core.io import FieldFileError
    from explorer.core.io import load_fields as load

    try:
        return load(path, key=key)
    except FieldFileError as e:
        members = npz_members(path) if Path(path).suffix.lower() == ".npz" else None
        if "header" in (members or ()) and key is None:
            raise CLIError(f"{path!r} is a model file (made by 'explorer fit'), not a field "
                           f"file; give the {what} as .npz/.npy/.png/.jpg fields") from None
        if members is not None and (key or "fields") not in members:
            arrays = sorted(m for m in members if m != "meta")
            raise CLIError(f"{path!r} has no array {key or 'fields'!r} (it holds "
                           f"{', '.join(map(repr, arrays)) or 'no array'}): name the one with "
                           f"the fields, e.g. --key {arrays[0] if arrays else 'NAME'}") from None
        if key is not None and members is None and "key" in str(e):
            raise CLIError(f"--key {key!r} names an array of an .npz archive; {path!r} is not "
                           "one") from None
        raise


def load_model(path: str):
    """WCRGModel.load with a clear message for a missing file, a wrong suffix or a field file."""
    from explorer.core.model import WCRGModel

    p = Path(path)
    if not p.exists():
        raise CLIError(f"Cannot load model {path!r}: no such file.")
    if p.is_dir():
        raise CLIError(f"Cannot load model {path!r}: this is a folder, not a file.")
    if p.suffix.lower() != ".npz":
        raise CLIError(f"Cannot load model {path!r}: a model is an .npz file made by "
                       f"'explorer fit', not {p.suffix or 'a file without extension'!r}.")
    members = npz_members(p)
    if members is None:
        raise CLIError(f"Cannot load model {path!r}: not an NPZ archive (corrupt, truncated or "
                       "of another type).")
    if "header" not in members:
        if "fields" in members:
            raise CLIError(f"{path!r} is a field file, not a model; make a model with "
                           "'explorer fit'")
        raise CLIError(f"Cannot load model {path!r}: not a model file (it has no header).")
    try:
        return WCRGModel.load(p)
    except (KeyError, IndexError, TypeError, AttributeError) as e:  # a header missing entries
        what = e.args[0] if isinstance(e, KeyError) and e.args else one_line(e)
        raise CLIError(f"Cannot load model {path!r}: the model file is incomplete or corrupt "
                       f"({what!s} missing or malformed).") from None


def check_depth(depth: int, L: int, flag: str = "--depth") -> None:
    from explorer.core import wavelets as wv

    deepest = wv.max_levels(L)
    if depth > deepest:
        raise CLIError(f"{flag} {depth} is too deep for {L}x{L} fields: at most {deepest} "
                       f"(2^depth must divide the size)")


def check_model_size(model, L: int, what: str) -> None:
    if L != model.stats["L"]:
        raise CLIError(f"the model was fitted on {model.stats['L']}x{model.stats['L']} fields, "
                       f"the {what} are {L}x{L}")


# ------------------------------------------------------------------ figures
def plot_dir(args):
    """Validated --plot folder (or None); loads the PNG backend before any figure is built."""
    if not getattr(args, "plot", None):
        return None
    d = Path(args.plot)
    if d.exists() and not d.is_dir():
        raise CLIError(f"--plot must name a folder, {args.plot!r} is a file")
    from explorer.ui import figures

    figures.ensure_backends(("matplotlib",))
    return d


def write_figures(figures: dict, directory: Path, pngs: dict | None = None) -> list[str]:
    """Write the figures (HoloViews elements, and ``pngs``: {name: PNG bytes}); on failure
    remove what this call created (files and the folder)."""
    from explorer.core.io import atomic_path
    from explorer.ui import figures as fig

    existed = directory.is_dir()
    before = set(os.listdir(directory)) if existed else set()
    try:
        names = fig.write_figures(figures, directory)
        for name, data in (pngs or {}).items():
            with atomic_path(directory / f"{fig.slug(name)}.png") as tmp:
                tmp.write_bytes(data)
            names.append(f"{fig.slug(name)}.png")
        return names
    except BaseException:
        if directory.is_dir():
            for name in set(os.listdir(directory)) - before:
                try:
                    (directory / name).unlink()
                except OSError:
                    pass
            if not existed:
                try:
                    directory.rmdir()
                except OSError:
                    pass
        raise

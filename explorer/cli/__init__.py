"""Command line: ``explorer ...`` or ``python -m explorer ...``.

Every command runs the workflows of :mod:`explorer.core.workflows`, as the app does. ``--json``
prints the whole result on stdout (progress goes to stderr). Parameters, and the memory a request
needs, are checked before any work; every failure a user can cause is one line on stderr
(``explorer: error: ...``), exit status 2, and leaves no output file behind.
"""

from __future__ import annotations

import os
import sys

from explorer.cli.commands import COMMANDS
from explorer.cli.parser import ASSET_COMMANDS, ASSETS_DIR, build_parser
from explorer.cli.printing import ProgressPrinter, print_result
from explorer.cli.validation import CLIError
from explorer.cli.validation import one_line as _one_line

__all__ = ["ASSET_COMMANDS", "ASSETS_DIR", "CLIError", "COMMANDS", "ProgressPrinter",
           "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        result = COMMANDS[args.command](args, argv)
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:
        detail = _one_line(e)
        return _fail("out of memory" + (f" ({detail})" if detail else ""))
    # user-caused failures: bad flags and files (CLIError, FieldFileError and other ValueErrors),
    # the file system (OSError), diverged samplers and solvers (FloatingPointError), numbers too
    # large for floats (OverflowError), refused or failed runs (RuntimeError)
    except (CLIError, ValueError, OSError, RuntimeError, FloatingPointError, OverflowError) as e:
        return _fail(_one_line(e))
    try:
        print_result(args, result)
    except BrokenPipeError:  # e.g. piped into `head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
    return 0


def _fail(message: str) -> int:
    live, ProgressPrinter.open_line = ProgressPrinter.open_line, None
    ProgressPrinter.abandon()
    if live is not None:  # clear the live progress line: the error is the line left
        try:
            live.write("\r\033[K")
        except (OSError, ValueError):
            pass
    print(f"explorer: error: {message}", file=sys.stderr)
    return 2

"""The CLI's one error boundary: every failure of every command ends as ``error: <what> (<where to look>)``
on stderr and a non-zero ``ExitCode``; a traceback goes to the error log (or the terminal with ``--debug``).

Commands raise :class:`CommandError` for problems they recognise; anything else is translated here by type
(a damaged store, a port in use, a missing file...) so that no operator ever reads a traceback to learn what
to fix.
"""

from __future__ import annotations

import errno
import gzip
import os
import sys
import tempfile
import traceback
import zlib
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from typer.exceptions import Abort, Exit, TyperException


class ExitCode(IntEnum):
    OK = 0
    INCOMPLETE = 1  # the command ran but left something undone (a position open, a gate failed)
    USAGE = 2  # bad arguments or config: fix the command line or the file
    INPUT = 3  # a file, data set or store that cannot be read or written
    UNAVAILABLE = 4  # a port in use, a venue unreachable or refusing us
    INTERRUPTED = 130
    INTERNAL = 70  # a bug: the traceback is in the error log


class CommandError(Exception):
    def __init__(self, what: str, where: str = "", code: ExitCode = ExitCode.INPUT) -> None:
        super().__init__(what)
        self.what, self.where, self.code = what, where, code

    def line(self) -> str:
        return f"error: {self.what}" + (f" ({self.where})" if self.where else "")


def error_log() -> Path:
    """Where tracebacks go: per user, outside the working directory (which may be read-only)."""
    return Path(os.environ.get("ATE_ERROR_LOG") or Path(tempfile.gettempdir()) / f"ate-{os.getuid()}-errors.log")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def translate(exc: BaseException) -> CommandError | None:
    """A known failure as a CommandError, or None for a bug."""
    if isinstance(exc, CommandError):
        return exc
    from ate.config import ConfigError

    if isinstance(exc, ConfigError):
        return CommandError("; ".join(exc.problems), "fix the config; `ate config validate FILE` lists every "
                            "problem", ExitCode.USAGE)
    from ate.store import StoreBusy

    if isinstance(exc, StoreBusy):
        return CommandError(str(exc), "`ate status` shows it; stop it first, or give this run its own store.url",
                            ExitCode.UNAVAILABLE)
    import sqlalchemy.exc as sa

    if isinstance(exc, sa.ArgumentError):
        return CommandError(f"store.url is not a database URL: {_first_line(exc)}",
                            "e.g. sqlite:///state/ate.db or postgresql+psycopg://user@host/db", ExitCode.USAGE)
    if isinstance(exc, sa.DBAPIError | sa.NoSuchModuleError):
        orig = getattr(exc, "orig", None) or exc
        return CommandError(f"the store cannot be used: {_first_line(orig)}",
                            "check store.url; a damaged SQLite file must be moved away and a backup restored",
                            ExitCode.INPUT)
    from ate.data.loaders import DataFormatError

    if isinstance(exc, DataFormatError):
        return CommandError(str(exc), "see data/README.md for the formats", ExitCode.INPUT)
    if isinstance(exc, gzip.BadGzipFile | zlib.error | EOFError):
        return CommandError(f"corrupt compressed file: {_first_line(exc)}", "re-download or re-record it",
                            ExitCode.INPUT)
    if isinstance(exc, OSError):
        return _os_error(exc)
    from ate.venues.errors import ClockSkewError, MissingCredentials, VenueError

    if isinstance(exc, VenueError | ClockSkewError):
        return CommandError(f"venue: {_first_line(exc)}", "`ate check --config FILE` tests every venue",
                            ExitCode.UNAVAILABLE)
    if isinstance(exc, MissingCredentials):
        return CommandError(_first_line(exc), "set the environment variables named by api_key_env/api_secret_env",
                            ExitCode.USAGE)
    return None


def _os_error(exc: OSError) -> CommandError:
    name = exc.filename if exc.filename is not None else ""
    if exc.errno == errno.EADDRINUSE:
        return CommandError(f"address already in use: {exc.strerror or exc}",
                            "another process holds the port: stop it, or change monitor.port in the config "
                            "(0 picks a free port; --port-base for `ate simulate`)", ExitCode.UNAVAILABLE)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CommandError(f"cannot write {name}: {exc.strerror}",
                            "make the directory writable or point store.url / kill_switch.file elsewhere",
                            ExitCode.INPUT)
    if exc.errno == errno.ENOENT:
        where = ("check the path" if Path(str(name)).is_absolute()
                 else f"relative paths are taken from the working directory {Path.cwd()}")
        return CommandError(f"{name}: no such file or directory", where, ExitCode.INPUT)
    return CommandError(f"{name + ': ' if name else ''}{exc.strerror or _first_line(exc)}", "", ExitCode.INPUT)


def _record(exc: BaseException) -> Path | None:
    path = error_log()
    try:
        with path.open("a") as fh:
            fh.write("".join(traceback.format_exception(exc)) + "\n")
    except OSError:
        return None
    return path


def run_cli(command: Any, argv: Sequence[str] | None, *, debug: Callable[[], bool]) -> int:
    """Run ``command`` and return its exit code; prints only ``error: ...`` lines for failures.

    ``debug`` is asked after the failure: the ``--debug`` option is parsed by the command itself."""
    try:
        rv = command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="ate",
                          standalone_mode=False)
        return int(rv) if isinstance(rv, int) else ExitCode.OK
    except Exit as exc:
        return exc.exit_code
    except Abort:
        _say("error: aborted")
        return ExitCode.INTERRUPTED
    except TyperException as exc:  # typer's (vendored click's) usage errors: bad or missing arguments
        ctx = getattr(exc, "ctx", None)
        hint = f"`{ctx.command_path} --help`" if ctx is not None else "`ate --help`"
        _say(f"error: {exc.format_message()} (see {hint})")
        return exc.exit_code or ExitCode.USAGE
    except KeyboardInterrupt:
        _say("error: interrupted")
        return ExitCode.INTERRUPTED
    except SystemExit as exc:  # load_config_or_exit and friends have already printed their lines
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    except Exception as exc:
        if debug():
            traceback.print_exception(exc, file=sys.stderr)
        known = translate(exc)
        if known is not None:
            _say(known.line())
            return known.code
        log = _record(exc)
        where = (f"traceback in {log}" if log else "the error log could not be written") + "; rerun with --debug"
        _say(f"error: unexpected {type(exc).__name__}: {_first_line(exc)} ({where})")
        return ExitCode.INTERNAL


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()

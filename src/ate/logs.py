"""One logging setup for every command: stdlib and structlog records, as JSON lines.

Results own stdout (`--json`, tables); logs go to stderr at WARNING by default, and a running engine
also writes every record at INFO to a log file beside its store, so the terminal summary stays readable.
The file rotates by size and keeps a configured number of old files.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import structlog

_SHARED = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
           structlog.processors.TimeStamper(fmt="iso", utc=True)]
# stdlib records carry their context as `extra=` attributes; without this they would be dropped.
_FOREIGN = [*_SHARED, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()]


def configure_logging(*, file: Path | None = None, stderr_level: int = logging.WARNING,
                      file_level: int = logging.INFO, max_bytes: int = 50_000_000, backups: int = 5) -> None:
    """`max_bytes`/`backups`: the log file rotates at that size and keeps that many old files."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(default=str), foreign_pre_chain=_FOREIGN)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(stderr_level)
    err.setFormatter(formatter)
    root.addHandler(err)
    level = stderr_level
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backups)
        fh.setLevel(file_level)
        fh.setFormatter(formatter)
        root.addHandler(fh)
        level = min(level, file_level)
    root.setLevel(level)
    # The in-process simulator's HTTP access lines would be most of an engine log and say nothing new.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.add_logger_name,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def state_dir(store_url: str) -> Path:
    """Where a run keeps its files: beside a SQLite store, else ./state."""
    if store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        return Path(store_url.removeprefix("sqlite:///")).parent
    return Path("state")

"""Running `ate` in this process through its real entry point (the error boundary included)."""

from __future__ import annotations

import logging

from ate.cli import main


def run_ate(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `ate <argv>`; logging is put back as it was (main configures it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    capsys.readouterr()
    try:
        code = main(argv)
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
        for name, lvl in levels.items():
            logging.getLogger(name).setLevel(lvl)
    out = capsys.readouterr()
    return code, out.out, out.err

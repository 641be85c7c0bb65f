"""A new user can write and backtest a strategy following only the docs: docs/tutorial.md is executed as
written. In a scratch directory holding the repository's data/, examples/ and configs/, every code block with
a title bar (```python title="my_strategies/breakout.py"```) is written to that path and every shell block runs
in page order with the installed `ate`; each must succeed, and the backtest of the user's strategy must trade.
Blocks marked `<!-- not run by the test: why -->` (they run until stopped, or need a venue account) are not
run, but their `ate` commands must name existing commands and options, and the venue config they use must
validate once its key variables are set."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"(?:^<!-- not run by the test: (?P<why>[^>]+?) -->\n)?^```(?P<lang>\w+)(?P<info>[^\n]*)\n"
                   r"(?P<body>.*?)^```$", re.M | re.S)
TITLE = re.compile(r'title="([^"]+)"')
BIN = Path(sys.executable).parent


def blocks(text: str) -> list[re.Match]:
    return list(BLOCK.finditer(text))


def ate_commands(script: str) -> list[list[str]]:
    """The `ate ...` command lines of a shell block, continuation lines joined."""
    lines = script.replace("\\\n", " ").splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("ate ")]


def run(script: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "100",
           **(extra_env or {})}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def statistic(output: str, name: str) -> str:
    found = re.search(rf"^[│|]\s*{re.escape(name)}\s*[│|]\s*(\S+)", output, re.M)
    assert found, f"no {name!r} row in:\n{output}"
    return found.group(1)


@pytest.mark.skipif(not (ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz").exists(), reason="data/ not present")
def test_the_tutorial_runs_as_written(tmp_path):
    assert (BIN / "ate").exists(), f"the `ate` command is not installed next to {sys.executable}"
    for name in ("data", "examples", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    ran = []
    for block in blocks(TUTORIAL.read_text()):
        title = TITLE.search(block["info"])
        if title:
            path = tmp_path / title.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block["body"])
        elif block["lang"] == "sh" and not block["why"]:
            result = run(block["body"], tmp_path)
            assert result.returncode == 0, f"{block['body']}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
            ran.append((block["body"], result.stdout))

    assert len(ran) == 4, [body for body, _ in ran]
    first = next(out for body, out in ran if "examples/strategies/ema_cross.json" in body)
    assert int(statistic(first, "trades")) > 0
    assert (tmp_path / "ema.html").stat().st_size > 10_000

    mine = next(out for body, out in ran if "ate backtest --config my.json" in body)
    assert mine.startswith("ok\n"), "ate config validate my.json"
    assert int(statistic(mine, "trades")) > 0, "the tutorial's own strategy did not trade"
    assert float(statistic(mine, "final equity")) > 0
    assert "<html" in (tmp_path / "breakout.html").read_text()[:200]

    sweep = next(out for body, out in ran if "ate sweep" in body)
    assert "2 backtests ranked by total_return" in sweep
    paper = next(out for body, out in ran if "my-demo.json" in body)
    assert paper.strip() == "ok", "my-demo.json does not validate"

    # The shadow config the page shows is valid once the key variables it names are set.
    keys = {f"ATE_{venue}_API_{part}": "not-a-real-key" for venue in ("BINANCE", "BACKPACK") for part in ("KEY", "SECRET")}
    live = run("ate config validate my-live.json", tmp_path, keys)
    assert (live.returncode, live.stdout.strip()) == (0, "ok"), live.stderr + live.stdout
    unset = run("ate config validate my-live.json", tmp_path, {name: "" for name in keys})
    assert unset.returncode == 2 and "ATE_BINANCE_API_KEY is not set" in unset.stdout + unset.stderr


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_ate_command_exists_with_its_options(doc):
    """Every `ate ...` line of the docs' shell blocks parses against the real command line (`--help` appended:
    an unknown command or option still fails, a missing file does not)."""
    runner = CliRunner()
    for block in blocks(doc.read_text()):
        if block["lang"] != "sh":
            continue
        for args in ate_commands(block["body"]):
            result = runner.invoke(app, [*args, "--help"])
            assert result.exit_code == 0, f"{doc.name}: ate {' '.join(args)}\n{result.output}"

"""The documentation cannot drift: the strategy guide's first example is written to disk exactly as printed
and backtested; every relative link in docs/ and the README resolves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md", ROOT / "examples" / "strategies" / "README.md"]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
runner = CliRunner()


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == []


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_the_first_strategy_of_the_guide_validates_and_backtests(tmp_path, monkeypatch):
    """What a new user does following docs/strategies.md §1 word for word."""
    guide = (ROOT / "docs" / "strategies.md").read_text()
    code, config = blocks(guide, "python")[0], blocks(guide, "json")[0]
    assert code.startswith("# my_strategies/breakout.py\n")
    (tmp_path / "my_strategies").mkdir()
    (tmp_path / "my_strategies" / "breakout.py").write_text(code)
    (tmp_path / "my.json").write_text(config)
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["config", "validate", "my.json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["backtest", "--config", "my.json", "--from", "2024-01-01", "--to", "2024-03-01",
                            "--data", "binance:BTCUSDT=data/binance_spot_BTCUSDT_1h.csv.gz", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["trades"] and {t["strategy"] for t in doc["trades"]} == {"breakout"}
    assert doc["orders_rejected"] == 0


def test_configuration_reference_is_generated_from_the_schema():
    from ate.config.reference import markdown_reference

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == markdown_reference(), \
        "docs/configuration.md is stale: run `ate docs config > docs/configuration.md`"
    assert "## `strategies.custom[]`" in committed and "| `class` | string | required | length ≥ 1 |" in committed


def test_cli_reference_is_generated_from_the_commands():
    from ate.cli_reference import markdown_reference

    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == markdown_reference(app), "docs/cli.md is stale: run `ate docs cli > docs/cli.md`"
    assert "## `ate data download`" in committed and "| `--venue` | required." in committed

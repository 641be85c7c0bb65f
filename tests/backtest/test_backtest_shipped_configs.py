"""`ate sweep`, `ate compare` and `ate promote --check` on every shipped config, each with --json, and progress
on stderr (never on stdout, which carries the JSON)."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
DVOL = ROOT / "data" / "deribit_BTC_DVOL_1d.csv"
CONFIGS = sorted((ROOT / "configs").glob("*.json"))
runner = CliRunner()
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")


@pytest.fixture(params=[p.name for p in CONFIGS])
def shipped(request, tmp_path, monkeypatch):
    """The shipped config, copied as is; the command runs in an empty directory (its relative store path and
    kill file land there, not in the repo)."""
    path = tmp_path / request.param
    shutil.copy(ROOT / "configs" / request.param, path)
    path.chmod(0o600)  # configs with inline keys must not be world-readable
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return path


def _data_args(primary="binance:BTCUSDT"):
    return ["--data", f"{primary}={DATA}", "--data", f"dvol={DVOL}"]


def test_shipped_configs_are_all_covered():
    assert {p.name for p in CONFIGS} >= {"demo.json", "shadow.json", "canary.json"}


def test_sweep_runs_every_combination_with_json(shipped, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"modules.combiner.min_confidence": [0.3, 0.6]}))
    r = runner.invoke(app, ["sweep", "--config", str(shipped), "--grid", str(grid), "--from", "2024-03-01",
                            "--to", "2024-03-03", "--workers", "1", "--json", *_data_args()])
    assert r.exit_code == 0, r.output
    ranked = json.loads(r.stdout)
    assert sorted(x["params"]["modules.combiner.min_confidence"] for x in ranked) == [0.3, 0.6]
    assert all(x["final_equity"] for x in ranked)
    assert "sweep (1 workers): 2/2 (100 %)" in r.stderr  # progress on stderr in --json mode too


def test_compare_explains_every_difference_with_json(shipped, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    r = runner.invoke(app, ["compare", "--config", str(shipped), "--from", "2024-03-01", "--to", "2024-03-02",
                            "--store", url, "--json", *_data_args()])
    assert r.exit_code == 1, r.output  # an empty session differs from the backtest everywhere
    doc = json.loads(r.stdout)
    assert doc["decisions"]["backtest"] == 24 and doc["differences"]
    assert all(d["cause"] for d in doc["differences"])
    assert "compare: backtest of the window" in r.stderr


def test_promote_check_has_json(shipped):
    r = runner.invoke(app, ["promote", "--config", str(shipped), "--check", "--json"])
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert doc["check"] is True and doc["promoted"] is False
    assert doc["eligible"] is (r.exit_code == 0)
    assert doc["gates"] and all({"gate", "measured", "required", "passed"} <= set(g) for g in doc["gates"])
    if not doc["eligible"]:
        assert doc["reasons"]

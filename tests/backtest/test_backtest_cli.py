"""`ate backtest`, `ate sweep`, `ate compare` through the real CLI app."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
runner = CliRunner()


@pytest.fixture()
def cfg(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"mode": "shadow", "run_id": "cli"}))  # run in backtest mode regardless
    return path


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_backtest_json_and_report(cfg, tmp_path):
    report = tmp_path / "r.html"
    args = ["backtest", "--config", str(cfg), "--from", "2024-03-01", "--to", "2024-03-08",
            "--data", f"binance:BTCUSDT={DATA}", "--json", "--report", str(report)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["bars"] == 7 * 24 and doc["run_id"] == "cli"
    assert {k["kpi"] for k in doc["stats"]["kpis"]} == {"monthly_return_equivalent", "sharpe", "max_drawdown", "win_rate"}
    assert report.stat().st_size > 1_000_000  # plotly inlined
    text = runner.invoke(app, args[:-3]).stdout
    assert "operator plan KPIs" in text and "final equity" in text


def test_backtest_rejects_bad_config_and_dates(cfg, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"modules": {"atr_supertrend": {"st_multiplier": -1}}}))
    r = runner.invoke(app, ["backtest", "--config", str(bad), "--from", "2024-01-01", "--to", "2024-01-02"])
    assert r.exit_code == 2
    assert "modules.atr_supertrend.st_multiplier:" in r.stderr
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2024-01-02", "--to", "2024-01-01"])
    assert r.exit_code == 2 and "is not after" in r.stderr
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2024-01-01", "--to", "2024-01-02",
                            "--data", "binance:BTCUSDT=/nonexistent.csv.gz"])
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_sweep_rejects_an_invalid_grid_before_running(cfg, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"modules.atr_supertrend.multiplier": [2, 3]}))
    r = runner.invoke(app, ["sweep", "--config", str(cfg), "--grid", str(grid), "--from", "2024-01-01",
                            "--to", "2024-01-02"])
    assert r.exit_code == 2
    assert "modules.atr_supertrend.multiplier: unknown key" in r.stderr


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_sweep_ranks_results(cfg, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"modules.combiner.min_confidence": [0.3, 0.6]}))
    r = runner.invoke(app, ["sweep", "--config", str(cfg), "--grid", str(grid), "--from", "2024-03-01",
                            "--to", "2024-03-04", "--workers", "1", "--rank-by", "total_return", "--json"])
    assert r.exit_code == 0, r.output
    ranked = json.loads(r.stdout)
    assert sorted(x["params"]["modules.combiner.min_confidence"] for x in ranked) == [0.3, 0.6]
    vals = [x["total_return"] for x in ranked]
    assert vals == sorted(vals, reverse=True)


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_compare_against_an_empty_store_lists_every_bar_as_missing(cfg, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    r = runner.invoke(app, ["compare", "--config", str(cfg), "--from", "2024-03-01", "--to", "2024-03-02",
                            "--store", url, "--json"])
    assert r.exit_code == 1, r.output  # differences found
    doc = json.loads(r.stdout)
    assert doc["decisions"] == {"session": 0, "backtest": 24} and not doc["identical"]
    assert {d["what"] for d in doc["differences"] if d["kind"] == "decision"} == {"missing in session"}

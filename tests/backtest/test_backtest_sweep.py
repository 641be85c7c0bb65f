"""Parameter sweeps: grid validation through the config model, parallel runs, ranking."""

import json
import sys
from pathlib import Path

import pytest

from ate.backtest.data import load_window, parse_date
from ate.backtest.sweep import GridError, Job, configs_for, load_grid, rank, run_local, run_ray
from ate.config import parse_config

DATA = Path(__file__).resolve().parents[2] / "data" / "binance_spot_BTCUSDT_1h.csv.gz"


def _base():
    return parse_config({"mode": "backtest"}, env={})


def test_every_combination_is_validated_with_field_paths(tmp_path):
    ok = configs_for(_base(), {"modules.atr_supertrend.st_multiplier": [2, 3],
                               "strategies.directional.stop_atr": [1.5, 2.0, 2.5]})
    assert len(ok) == 6
    assert {c.modules.atr_supertrend.st_multiplier for _, c in ok} == {2.0, 3.0}
    assert ok[0][0] == {"modules.atr_supertrend.st_multiplier": 2, "strategies.directional.stop_atr": 1.5}
    with pytest.raises(GridError) as e:
        configs_for(_base(), {"modules.atr_supertrend.multiplier": [2]})
    assert e.value.problems == ["modules.atr_supertrend.multiplier=2: modules.atr_supertrend.multiplier: unknown key"]
    with pytest.raises(GridError) as e:
        configs_for(_base(), {"modules.atr_supertrend.sma_fast": [5, 30]})  # 30 >= sma_slow 20
    assert len(e.value.problems) == 1 and "sma_fast=30" in e.value.problems[0]
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"risk_limits.capital_usd": []}))
    with pytest.raises(GridError, match="non-empty list"):
        load_grid(grid)


def test_rank_orders_best_first_and_undefined_last():
    rs = [{"index": 0, "sharpe": 0.5, "max_drawdown": 0.1}, {"index": 1, "sharpe": None, "max_drawdown": None},
          {"index": 2, "sharpe": 1.5, "max_drawdown": 0.3}]
    assert [r["index"] for r in rank(rs, "sharpe")] == [2, 0, 1]
    assert [r["index"] for r in rank(rs, "max_drawdown")] == [0, 2, 1]


def test_ray_path_explains_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # ray is an optional extra: as if it were not installed
    with pytest.raises(GridError, match=r"pip install 'ate\[ray\]'"):
        run_ray([], None, "127.0.0.1:1", lambda r: None)


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_process_pool_matches_serial_runs(monkeypatch):
    monkeypatch.chdir(DATA.parents[1])
    combos = configs_for(_base(), {"modules.combiner.min_confidence": [0.3, 0.6]})
    jobs = [Job(i, p, c.model_dump(mode="json")) for i, (p, c) in enumerate(combos)]
    data = load_window("binance:BTCUSDT", {}, parse_date("2024-01-01"), parse_date("2024-01-15"), warmup_ms=200 * 3_600_000)
    seen = []
    parallel = run_local(jobs, data, 2, seen.append)
    serial = run_local(jobs, data, 1, lambda r: None)
    assert len(seen) == 2
    assert sorted(parallel, key=lambda r: r["index"]) == serial
    # the parameter changed the run: a lower confidence bar lets more decisions trade
    assert serial[0]["trades"] >= serial[1]["trades"]
    assert serial[0]["final_equity"] != serial[1]["final_equity"]

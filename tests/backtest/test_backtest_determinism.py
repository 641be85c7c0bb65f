"""Two runs of the full engine (all modules, the config's strategies, risk) give byte-identical JSON:
in one process, and across processes with different hash seeds (through the `ate backtest` command)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ate.backtest.commands import dumps
from ate.backtest.data import load_window, parse_date
from ate.backtest.runner import run_backtest
from ate.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_two_runs_identical_json(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # default data paths are relative to the repo
    cfg = parse_config({"mode": "backtest", "run_id": "det"}, env={})
    data = load_window(cfg.markets.primary, {}, parse_date("2024-01-01"), parse_date("2024-02-01"))
    assert len(data.warmup) == 1100  # 1,100 hourly bars of warm-up before the window
    res = run_backtest(cfg, data)
    assert len(res.decisions) == 744  # every hourly decision bar of January
    assert res.orders and res.fills  # the directional strategy traded
    in_process = dumps(res.to_json())

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"mode": "backtest", "run_id": "det"}))
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        p = subprocess.run([sys.executable, "-m", "ate.cli", "backtest", "--config", str(path), "--from", "2024-01-01",
                            "--to", "2024-02-01", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout)
    assert outs[0] == outs[1]
    assert outs[0].strip() == in_process

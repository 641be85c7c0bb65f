"""`ate signals`: one CSV row per decision bar with every module's columns."""

from __future__ import annotations

import csv
import gzip
import json

from signals_helpers import DATA
from typer.testing import CliRunner

from ate.cli import app
from ate.config.modules import ModulesConfig
from ate.signals.report import header, run_signals

M1 = DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
DVOL = DATA / "deribit_BTC_DVOL_1d.csv"


def _slice_1h(tmp_path, n: int):
    src = DATA / "binance_spot_BTCUSDT_1h.csv.gz"
    out = tmp_path / "btc_1h.csv.gz"
    with gzip.open(src, "rt") as fi, gzip.open(out, "wt") as fo:
        lines = fi.readlines()
        fo.writelines([lines[0], *lines[-n:]])
    return out


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_run_signals_on_1h_file(tmp_path):
    data = _slice_1h(tmp_path, 1300)
    out = tmp_path / "signals.csv"
    summary = run_signals(ModulesConfig(), data, out, dvol=DVOL, equity=10_000.0)
    rows = _read(out)
    assert summary.candles == 1300 and summary.decisions == 1300 == len(rows)
    assert list(rows[0]) == header()
    last = rows[-1]
    assert last["garch_status"] == "OK" and float(last["garch_alpha"]) > 0 and float(last["garch_sigma_1step"]) > 0
    assert last["atr_supertrend_status"] in ("OK", "DEGRADED") and float(last["atr"]) > 0
    assert last["st_dir"] in ("1", "-1") and float(last["st_line"]) > 0
    assert last["multi_timeframe_status"] == "DEGRADED" and last["mtf_dir_15m"] == ""
    assert last["bitvol_source"] == "dvol" and last["bitvol_regime"] in ("low", "normal", "elevated", "high",
                                                                        "extreme")
    assert last["emergency_status"] == "OK" and last["emergency_level"] == "0"
    for r in rows:
        if r["intent"] == "ENTER":
            assert float(r["target_notional"]) == float(r["target_fraction"]) * 10_000.0
            assert r["decision"] == "BUY"


def test_cli_signals_on_1m_file(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"modules": {"lxvx": {"score_threshold": 1.4}}}))
    out = tmp_path / "s.csv"
    res = CliRunner().invoke(app, ["signals", "--config", str(cfg), "--data", str(M1), "--dvol", str(DVOL),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert len(rows) == 719 and rows[0]["time_utc"] == "2025-06-01 19:00"
    assert rows[-1]["multi_timeframe_status"] == "OK" and rows[-1]["mtf_dir_15m"] in ("1", "-1")
    assert rows[-1]["garch_status"] == "WARMUP"  # a month of data is < 1001 hours


def test_cli_signals_rejects_invalid_modules_config(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"modules": {"kelly": {"cap": 3}}}))
    res = CliRunner().invoke(app, ["signals", "--config", str(cfg), "--data", str(M1),
                                   "--out", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "modules.kelly.cap" in res.output


def test_shadow_counters_count_every_decision(btc_1h):
    from ate.signals.engine import MODULE_ORDER, SignalEngine
    from ate.signals.shadow import SignalCounters

    e = SignalEngine(ModulesConfig(), base_interval="1h")
    counters = SignalCounters()
    decisions = [d for c in btc_1h[-300:] if (d := e.on_candle(c)) is not None]
    for d in decisions:
        counters.record_decision(d)
    snap = json.loads(json.dumps(counters.snapshot()))
    mods = snap["shadow.modules"]
    assert set(mods) == set(MODULE_ORDER)
    assert all(sum(m["status"].values()) == 300 for m in mods.values())
    atr = mods["atr_supertrend"]
    assert atr["status"]["WARMUP"] == 113 and sum(atr["vote"].values()) == 300
    assert atr["last"] == decisions[-1].outputs["atr_supertrend"].to_dict()
    assert mods["garch"]["vote"] == {}  # scalers never vote
    assert sum(snap["shadow.combiner"]["decisions"].values()) == 300
    assert sum(snap["shadow.combiner"]["intents"].values()) == 300

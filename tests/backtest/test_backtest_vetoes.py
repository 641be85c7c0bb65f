"""Veto and warm-up periods read from decisions, and the start-date caveat; on a real run they are reported."""

from pathlib import Path

import pytest

from ate.backtest.data import load_window, parse_date
from ate.backtest.report import render
from ate.backtest.runner import run_backtest
from ate.backtest.vetoes import periods, start_date_dependence
from ate.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"


def _decision(ts, **outs):
    return {"ts": ts, "outputs": {name: {"status": status, "vetoes": [{"scope": s, "reason": r} for s, r in vetoes],
                                         "reason": why}
                                  for name, (status, vetoes, why) in outs.items()}}


def test_periods_open_close_and_run_to_the_end():
    ok = ("OK", [], "")
    decisions = [
        _decision(1, kelly=("WARMUP", [], "3 trades"), bitvol=ok),
        _decision(2, kelly=("WARMUP", [], "9 trades"), bitvol=("OK", [("directional", "pct 0.99")], "")),
        _decision(3, kelly=("OK", [("directional", "kelly fraction 0")], ""), bitvol=ok),
        _decision(4, kelly=("OK", [("directional", "kelly fraction 0 (f* -0.1)")], ""), bitvol=ok),
    ]
    found = periods(decisions, end_ms=5)
    assert found["warmup"] == [{"module": "kelly", "from_ms": 1, "to_ms": 3, "reason": "3 trades",
                                "last_reason": "9 trades", "decisions": 2, "open_at_end": False}]
    assert found["vetoes"] == [
        {"module": "bitvol", "scope": "directional", "from_ms": 2, "to_ms": 3, "reason": "pct 0.99",
         "last_reason": "pct 0.99", "decisions": 1, "open_at_end": False},
        {"module": "kelly", "scope": "directional", "from_ms": 3, "to_ms": 5, "reason": "kelly fraction 0",
         "last_reason": "kelly fraction 0 (f* -0.1)", "decisions": 2, "open_at_end": True}]
    dep = start_date_dependence(found)
    assert len(dep) == 1 and dep[0].startswith("kelly: ")
    assert start_date_dependence(periods(decisions[:0], 5)) == []


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_a_real_run_reports_its_veto_and_warmup_periods(monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = parse_config({"mode": "backtest", "run_id": "vetoes"}, env={})
    res = run_backtest(cfg, load_window(cfg.markets.primary, {}, parse_date("2024-01-01"), parse_date("2024-03-01")))
    s = res.stats
    # kelly starts in WARMUP (no closed trades yet): the run's outcome depends on where it starts
    kelly = [p for p in s["warmup_periods"] if p["module"] == "kelly"]
    assert kelly and kelly[0]["from_ms"] == res.decisions[0]["ts"]
    assert any(x.startswith("kelly: ") for x in s["start_date_dependence"])
    # every decision that carried a veto lies inside a reported period of that module and scope
    for d in res.decisions:
        for name, out in d["outputs"].items():
            for v in out["vetoes"]:
                assert any(p["module"] == name and p["scope"] == v["scope"] and p["from_ms"] <= d["ts"] < p["to_ms"]
                           or p["open_at_end"] and p["module"] == name and p["from_ms"] <= d["ts"]
                           for p in s["veto_periods"]), (d["ts"], name, v)
    html = render(res)
    assert "Veto periods" in html and "Warm-up periods" in html and "depend on the start date" in html
    assert "daily UTC returns" in html and "√365" in html and "not a calendar month" in html


PERP_1H = ROOT / "data" / "binance_usdm_BTCUSDT_perp_1h_2026-01-01_2026-05-17.csv.gz"


@pytest.mark.skipif(not (DATA.exists() and PERP_1H.exists()), reason="shipped 1h spot or perp absent")
def test_gamma_sees_the_hedge_books_of_the_decision_step(monkeypatch):
    """The carry's hedge book is snapshotted before the decision: gamma at a decision never reports a
    snapshot from the previous step as too old (which would list a veto that blocked nothing)."""
    monkeypatch.chdir(ROOT)
    cfg = parse_config({"mode": "backtest", "run_id": "gamma", "strategies": {"arbitrage": {"enabled": False}}},
                       env={})
    files = {"binance:BTCUSDT": DATA, "binance_usdm:BTCUSDT": PERP_1H}
    res = run_backtest(cfg, load_window(cfg.markets.primary, files, parse_date("2026-02-01"), parse_date("2026-02-15")))
    gamma = [d["outputs"]["gamma"] for d in res.decisions]
    assert gamma and all(g["status"] != "STALE" for g in gamma)
    assert not [p for p in res.stats["veto_periods"] if p["module"] == "gamma"]

"""Directional and carry over lists of markets, on the real BTC and ETH 1h data of ../shared/data.

- Directional on [BTCUSDT, ETHUSDT]: one signal engine per market; each market's decisions equal the
  single-market run's decisions for that market (capital and risk do not bind the signals), and so do its
  round trips; the summary shows per-market results and each market's own veto periods.
- Carry on the BTC and the ETH pair: both pairs open and collect their own funding; each pair's round trips
  are those of the single-pair run.
- The CLI: a two-market config runs end to end and prints a per-market table; bad lists exit 2 naming the field.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.backtest.data import load_window, parse_date
from ate.backtest.runner import BacktestResult, run_backtest
from ate.cli import app
from ate.config import parse_config
from ate.signals.engine import signal_markets

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
BTC, ETH = "binance:BTCUSDT", "binance:ETHUSDT"
BTC_PERP, ETH_PERP = "binance_usdm:BTCUSDT", "binance_usdm:ETHUSDT"
FILES = {BTC: "binance_spot_BTCUSDT_1h.csv.gz", ETH: "binance_spot_ETHUSDT_1h.csv.gz",
         BTC_PERP: "binance_usdm_BTCUSDT_perp_1h.csv.gz", ETH_PERP: "binance_usdm_ETHUSDT_perp_1h.csv.gz"}
pytestmark = pytest.mark.skipif(not all((SHARED / f).exists() for f in FILES.values()),
                                reason="../shared/data BTC/ETH 1h files absent")
MARKETS = {"backpack": [], "binance": [{"symbol": "BTCUSDT"}, {"symbol": "ETHUSDT"},
                                      {"symbol": "BTCUSDT", "kind": "perp"}, {"symbol": "ETHUSDT", "kind": "perp"}]}
CAPITAL = Decimal(1_000_000)  # signals never see the capital; a large one keeps every entry above the minimums
runner = CliRunner()


def _doc(primary: str, directional: dict, carry: dict) -> dict:
    return {"mode": "backtest", "run_id": "markets", "markets": {"primary": primary, **MARKETS},
            "strategies": {"arbitrage": {"enabled": False}, "directional": directional, "funding_carry": carry}}


def _run(doc: dict, markets: list[str], start: str, end: str) -> BacktestResult:
    cfg = parse_config(doc, env={})
    data = load_window(cfg.markets.primary, {m: SHARED / FILES[m] for m in markets}, parse_date(start),
                       parse_date(end), data_dirs=[SHARED], signal_markets=signal_markets(cfg))
    return run_backtest(cfg, data, capital=CAPITAL)


def _decision(d: dict) -> tuple:
    """What was decided: the bar, the combined vote and the intent (sizes to 1e-9: kelly learns from returns)."""
    i = d["intent"]
    return d["ts"], d["bar"], d["combined"], i["kind"], i["side"], i["reason"], round(i["size_fraction"], 9)


def _trips(res: BacktestResult, strategy: str, symbols: set[str]) -> list[tuple]:
    return [(t.symbol, t.side, t.entry_ms, t.exit_ms, t.entry_price, t.exit_price) for t in res.trades
            if t.strategy == strategy and set(t.symbol.split("+")) <= symbols]


OFF = {"enabled": False}


def test_each_directional_market_decides_as_its_single_market_run():
    start, end = "2024-01-01", "2024-03-01"
    both = _run(_doc(BTC, {"markets": [BTC, ETH]}, OFF), [BTC, ETH], start, end)
    alone = {BTC: _run(_doc(BTC, {"markets": [BTC]}, OFF), [BTC], start, end),
             ETH: _run(_doc(ETH, {"markets": [ETH]}, OFF), [ETH], start, end)}
    for market, single in alone.items():
        mine = [_decision(d) for d in both.decisions if d["market"] == market]
        assert len(mine) == len(single.decisions) > 1000  # every hourly bar of two months
        assert mine == [_decision(d) for d in single.decisions], market
        symbol = market.partition(":")[2]
        trips = _trips(both, "directional", {symbol})
        assert trips and trips == _trips(single, "directional", {symbol}), market
    assert {d["market"] for d in both.decisions} == {BTC, ETH}
    per = both.stats["per_market"]["directional"]
    assert per[BTC]["trades"] == alone[BTC].stats["trades"] and per[ETH]["trades"] == alone[ETH].stats["trades"]
    assert both.stats["trades"] == per[BTC]["trades"] + per[ETH]["trades"]  # never one trade across two markets
    # each market's vetoes are its own signal engine's: BTC's bitvol reads BTC's DVOL, ETH has none (proxy)
    assert per[BTC]["veto_periods"] == alone[BTC].stats["veto_periods"]
    assert per[ETH]["veto_periods"] == alone[ETH].stats["veto_periods"]
    assert {p["market"] for p in both.stats["veto_periods"]} == {BTC, ETH}
    assert "no ETH DVOL" in both.note


def test_carry_trades_both_pairs_as_each_single_pair_run():
    start, end = "2024-03-15", "2024-06-01"  # BTC's pair closes when its funding turns; ETH's is held throughout
    btc, eth = {"spot": BTC, "perp": BTC_PERP}, {"spot": ETH, "perp": ETH_PERP}
    both = _run(_doc(BTC, OFF, {"markets": [btc, eth]}), list(FILES), start, end)
    alone = {"BTCUSDT": _run(_doc(BTC, OFF, {"markets": [btc]}), [BTC, BTC_PERP], start, end),
             "ETHUSDT": _run(_doc(ETH, OFF, {"markets": [eth]}), [ETH, ETH_PERP], start, end)}
    for symbol, single in alone.items():
        def fills(res: BacktestResult, symbol: str = symbol) -> list[tuple]:
            return [(f["ts_ms"], f["market"], f["side"], f["qty"], f["price"]) for f in res.fills
                    if f["market"].endswith(f":{symbol}")]

        def funding(res: BacktestResult, symbol: str = symbol) -> list[tuple]:
            return [(f.ts_ms, f.amount) for f in res.funding if f.market == f"binance_usdm:{symbol}" and f.amount]

        assert fills(both) and fills(both) == fills(single), symbol  # each pair's notional is its own
        assert len(funding(both)) > 100 and funding(both) == funding(single), symbol
        assert _trips(both, "funding_carry", {symbol}) == _trips(single, "funding_carry", {symbol}), symbol
    per = both.stats["per_market"]["funding_carry"]
    assert per[f"{BTC}/{BTC_PERP}"]["trades"] == 1 and per[f"{ETH}/{ETH_PERP}"]["trades"] == 0  # ETH still open
    assert both.trades[0].legs == 2  # a pair is one round trip, never merged with the other pair's legs


def test_cli_prints_per_market_results(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = tmp_path / "two.json"
    cfg.write_text(json.dumps(_doc(BTC, {"markets": [BTC, ETH]}, OFF)))
    args = ["backtest", "--config", str(cfg), "--from", "2024-01-01", "--to", "2024-01-20", "--data-dir", str(SHARED),
            "--capital", "100000"]
    r = runner.invoke(app, [*args, "--report", str(tmp_path / "report.html")])
    assert r.exit_code == 0, r.output
    assert "per market" in r.stdout and "binance:ETHUSDT" in r.stdout
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Per market</h2>" in html and html.count("binance:ETHUSDT") > 2  # results and veto periods
    r = runner.invoke(app, [*args, "--json"])
    doc = json.loads(r.stdout)
    assert set(doc["stats"]["per_market"]["directional"]) == {BTC, ETH}


@pytest.mark.parametrize(("strategies", "message"), [
    ({"directional": {"markets": [BTC, BTC]}}, "strategies.directional.markets"),
    ({"directional": {"markets": ["kraken:BTCUSD"]}}, "unknown venue 'kraken'"),
    ({"directional": {"markets": []}}, "strategies.directional.markets"),
    ({"funding_carry": {"markets": [{"spot": BTC}]}}, "strategies.funding_carry.markets.0.perp"),
    ({"funding_carry": {"markets": [{"spot": BTC_PERP, "perp": ETH_PERP}]}}, "the spot leg must be a spot market"),
    ({"funding_carry": {"markets": [{"spot": BTC, "perp": BTC_PERP}, {"spot": BTC, "perp": ETH_PERP}]}},
     "binance:BTCUSDT is listed twice"),
    ({"directional": {"market": BTC, "markets": [ETH]}}, "not both"),
    ({"directional": {"markets": ["binance:XRPUSDT"]}}, "strategies.directional.markets.0: binance:XRPUSDT is not a "
                                                        "configured market"),
])
def test_bad_market_lists_exit_2_naming_the_field(tmp_path, monkeypatch, strategies, message):
    monkeypatch.chdir(ROOT)
    doc = _doc(BTC, {}, {})
    doc["strategies"].update(strategies)
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(doc))
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2024-01-01", "--to", "2024-01-03",
                            "--data-dir", str(SHARED)])
    assert r.exit_code == 2, r.output
    assert message in r.stderr

"""No look-ahead and no phantom trades: the full engine (default config, directional strategy) on real 1h BTC.

Invariants:
- Changing any bar after time t (every bar opening after t, and everything but the open of the bar opening
  at t: that open is the price at t, the next tradeable price) never changes a decision, an order or a
  fill at or before t. Property test over random t in the window.
- An order decided on a closed bar fills at the next tradeable price (the open of the next bar), and no
  round trip opens and closes in the same step: exits are checked only on bars that opened at or after
  the fill, and a stop or target exit happens only where that later bar's path crossed the level.
"""

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ate.backtest.data import load_window, parse_date
from ate.backtest.runner import run_backtest
from ate.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
HOUR_MS = 3_600_000
START, END = "2024-01-01", "2024-02-15"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")


def _config():
    return parse_config({"mode": "backtest", "run_id": "lookahead"}, env={})


@pytest.fixture(scope="module")
def window():
    return load_window("binance:BTCUSDT", {"binance:BTCUSDT": DATA}, parse_date(START), parse_date(END))


@pytest.fixture(scope="module")
def base(window):
    return run_backtest(_config(), window)


def _upto(res, t):
    return ([d for d in res.decisions if d["ts"] <= t], [o for o in res.orders if o["ts_ms"] <= t],
            [f for f in res.fills if f["ts_ms"] <= t])


def _perturbed(window, t, factor):
    md = window.markets["binance:BTCUSDT"]
    out = []
    for c in md.candles:
        if c.open_ms > t:
            c = replace(c, open=c.open * factor, high=c.high * factor, low=c.low * factor, close=c.close * factor)
        elif c.open_ms == t:  # the open at t is the price at t; everything after it may change
            hi, lo = max(c.open, c.high * factor), min(c.open, c.low * factor)
            c = replace(c, high=hi, low=lo, close=min(max(c.close * factor, lo), hi))
        out.append(c)
    return replace(window, markets={"binance:BTCUSDT": replace(md, candles=out)})


def test_base_run_trades(base):
    directional = [t for t in base.trades if t.strategy == "directional"]
    assert len(directional) >= 5  # enough round trips for the properties below to bite


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frac=st.floats(0.05, 0.9), factor=st.sampled_from([0.9, 0.97, 1.03, 1.1]))
def test_changing_bars_after_t_changes_nothing_at_or_before_t(window, base, frac, factor):
    start, end = parse_date(START), parse_date(END)
    t = start + int((end - start) * frac) // HOUR_MS * HOUR_MS
    other = run_backtest(_config(), _perturbed(window, t, factor))
    before = _upto(base, t)
    assert before[0]  # decisions at or before t exist
    assert _upto(other, t) == before
    # and the perturbation is real: the run after t differs
    assert [d for d in other.decisions if d["ts"] > t] != [d for d in base.decisions if d["ts"] > t]


def test_entries_fill_at_the_next_open_and_exits_come_from_later_bars(window, base):
    candles = {c.open_ms: c for c in window.markets["binance:BTCUSDT"].candles}
    directional = [t for t in base.trades if t.strategy == "directional"]
    for trade in directional:
        # an entry at t fills against the book at t: the open of the bar opening at t, ± half the spread
        nxt = candles[trade.entry_ms]
        assert abs(trade.entry_price - nxt.open) <= nxt.open * 1e-4 + 0.01
        assert trade.exit_ms >= trade.entry_ms + HOUR_MS, trade  # never the step it opened in
    exits = [f for f in base.fills if f["strategy"] == "directional" and f["purpose"] == "exit"]
    assert exits
    entries = sorted(f["ts_ms"] for f in base.fills if f["strategy"] == "directional" and f["purpose"] == "entry")
    for f in exits:
        opened = max(e for e in entries if e <= f["ts_ms"])
        trigger_bar = candles[f["ts_ms"] - HOUR_MS]  # the bar whose close triggered the exit
        assert trigger_bar.open_ms >= opened


def test_every_exit_is_the_first_later_bar_crossing_a_level_or_a_decision_or_the_time_stop(window, base):
    """Levels from the entry fill and the decision bar's ATR (stop 2·ATR, target 3·ATR, 72 h): a round trip
    ends at the first bar after its fill whose path crosses a level, unless an exit decision came first.
    The exit order is placed at that bar's close (an IOC capped from the trigger may fill a bar later)."""
    candles = {c.open_ms: c for c in window.markets["binance:BTCUSDT"].candles}
    decisions = {d["ts"]: d for d in base.decisions}
    crossed = 0
    for trade in (t for t in base.trades if t.strategy == "directional"):
        long = trade.side == "BUY"
        closing = "SELL" if long else "BUY"
        exit_at = min(o["ts_ms"] for o in base.orders if o["strategy"] == "directional" and o["side"] == closing
                      and o["market"] == "binance:BTCUSDT" and o["ts_ms"] > trade.entry_ms)
        assert exit_at <= trade.exit_ms
        atr = decisions[trade.entry_ms]["outputs"]["atr_supertrend"]["values"]["atr"]
        sign = 1.0 if long else -1.0
        stop, target = trade.entry_price - sign * 2 * atr, trade.entry_price + sign * 3 * atr
        first = None
        t = trade.entry_ms
        while t < exit_at and first is None:
            bar = candles[t]
            hit = (bar.low <= stop or bar.high >= target) if long else (bar.high >= stop or bar.low <= target)
            if hit:
                first = bar.open_ms + HOUR_MS
            t += HOUR_MS
        exit_decision = decisions.get(exit_at, {}).get("intent", {}).get("kind") in ("EXIT", "FLATTEN")
        timed_out = exit_at >= trade.entry_ms + 72 * HOUR_MS
        if first is not None:
            assert first == exit_at, trade  # the first crossing after the fill ends it
            crossed += 1
        else:
            assert exit_decision or timed_out, trade
    assert crossed > 0

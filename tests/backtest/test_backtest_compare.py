"""Shadow session vs backtest: a shadow session recorded into a real store by the same trading core (with
the ShadowExecutor) over the same data shows no signal difference; altered data is found and explained."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from ate.backtest.compare import compare, decision_cause, session_records
from ate.backtest.data import load_window, parse_date
from ate.backtest.runner import CoreDriver, run_backtest, strategies_from_config
from ate.config import parse_config
from ate.execution.executors import ShadowExecutor
from ate.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
FILES = {"binance:BTCUSDT": DATA, "dvol": DATA.parent / "deribit_BTC_DVOL_1d.csv"}
START, END = "2024-01-01", "2024-01-08"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    if not all(p.exists() for p in FILES.values()):
        pytest.skip(f"{FILES} not present")
    cfg = parse_config({"mode": "backtest", "run_id": "cmp"}, env={})
    start_ms, end_ms = parse_date(START), parse_date(END)
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'shadow.db'}")

    def shadow_driver(cfg, world):
        def executor(core):
            return ShadowExecutor(core.books.get, lambda venue: Decimal(10), core.on_order_update, world.clock.now_ms)
        return CoreDriver(cfg, world, strategies_from_config(cfg), store=store, shadow=True,
                          executor_factory=executor)

    run_backtest(cfg, load_window(cfg.markets.primary, FILES, start_ms, end_ms), driver_factory=shadow_driver)
    decisions, orders = session_records(store, start_ms, end_ms)
    store.close()
    return cfg, start_ms, end_ms, decisions, orders


def test_same_data_gives_the_same_signals(session):
    cfg, start_ms, end_ms, decisions, orders = session
    assert len(decisions) == 7 * 24
    res = run_backtest(cfg, load_window(cfg.markets.primary, FILES, start_ms, end_ms))
    cmp = compare(decisions, res.decisions, orders, res.orders, start_ms, end_ms)
    assert cmp.decisions_session == cmp.decisions_backtest == 7 * 24
    # Every module output and every combined vote is identical. Intents may differ only through the
    # position: the ShadowExecutor charges spot fees in quote, the venue (and the matching core) in the
    # base coin, so after a shadow exit the position is 0 while the backtest keeps sub-step dust.
    signal_diffs = [d for d in cmp.differences if d.kind == "decision" and d.what != "intent"]
    assert signal_diffs == []
    for d in cmp.differences:
        if d.kind == "decision":
            assert "position or state differed" in d.cause


def test_altered_candle_is_reported_with_its_cause(session):
    cfg, start_ms, end_ms, decisions, orders = session
    data = load_window(cfg.markets.primary, FILES, start_ms, end_ms)
    md = data.markets[cfg.markets.primary]
    i = 100
    c = md.candles[i]
    md.candles[i] = replace(c, close=c.close * 1.001, high=max(c.high, c.close * 1.001))
    res = run_backtest(cfg, data)
    cmp = compare(decisions, res.decisions, orders, res.orders, start_ms, end_ms)
    signal_diffs = [d for d in cmp.differences if d.kind == "decision" and d.what != "intent"]
    first = signal_diffs[0]
    assert first.ts_ms == c.close_ms and first.what in ("bar.high", "bar.close")
    assert "input candle differs" in first.cause
    assert first.session["close"] == c.close and first.backtest["close"] == c.close * 1.001
    # dropping a decision bar from the session is reported as missing, not silently skipped
    cmp2 = compare(decisions[1:], res.decisions, [], [], start_ms, end_ms)
    assert any(d.what == "missing in session" for d in cmp2.differences)


def test_cause_ordering_prefers_module_state_over_outputs():
    bar = {"open_ms": 0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0, "complete": True}
    base = {"ts": 1, "bar": bar, "outputs": {"lxvx": {"status": "OK", "vote": {"side": "BUY", "confidence": 0.8}}},
            "combined": {"side": "BUY", "confidence": 0.8}, "intent": {"kind": "ENTER", "side": "BUY"}}
    other = {**base, "outputs": {"lxvx": {"status": "WARMUP", "vote": {"side": "HOLD", "confidence": 0.0}}},
             "combined": {"side": None, "confidence": 0.0}, "intent": {"kind": "NONE", "side": None}}
    what, cause, _, _ = decision_cause(base, other)
    assert what == "outputs.lxvx.status" and "warm-up" in cause
    assert decision_cause(base, dict(base)) is None

"""The boundary around a plug-in: its exceptions and its bad intents never reach the engine; its state is never
overwritten by a failed save; a state it cannot restore stops the start."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ate.backtest.data import instrument_for
from ate.data.candles import Candle
from ate.model import OrderIntent, Severity, Side
from ate.strategies.base import SimpleContext
from ate.strategies.guard import Guarded, StrategyRestoreError
from ate.strategies.plugin import UserStrategy

MKT = "binance:BTCUSDT"


class Flaky(UserStrategy):
    name = "flaky"

    def __init__(self, params=None, *, name=None):
        super().__init__(params, name=name)
        self.mode = "ok"

    def on_bar(self, market, timeframe, bar, ctx):
        if self.mode == "raise":
            raise ZeroDivisionError("division by zero")
        if self.mode == "foreign":
            return [OrderIntent("binance", "BTCUSDT", Side.BUY, Decimal("0.01"), Decimal(42000), "directional"),
                    self.buy_usd(ctx, MKT, 500)]
        if self.mode == "junk":
            return ["BUY 1 BTC"]
        if self.mode == "not_a_sequence":
            return 42
        return [self.buy_usd(ctx, MKT, 500)]

    def on_book(self, market, ctx):  # hands back whatever on_bar made, unchecked
        return self.on_bar(market, "1m", BAR, ctx)

    def state(self):
        if self.mode == "raise":
            raise RuntimeError("cannot serialise")
        return {"memory": {"mode": self.mode}}

    def restore(self, state):
        if state.get("memory", {}).get("mode") == "poison":
            raise KeyError("fast")


@pytest.fixture()
def ctx():
    c = SimpleContext(now_ms=60_000, instruments={MKT: instrument_for(MKT)})
    c.set_book(MKT, "42000", "42000.01")
    return c


BAR = Candle(0, 1, 2, 0.5, 1.5, 10)


def test_an_exception_becomes_an_event_and_no_intents(ctx):
    g = Guarded(Flaky())
    g.inner.mode = "raise"
    assert g.on_candle(MKT, BAR, ctx) == ()
    assert g.has_reports
    (ev,) = g.drain_events()
    assert (ev.kind, ev.severity, ev.message) == ("flaky.error", Severity.WARNING,
                                                  "on_candle raised ZeroDivisionError: division by zero")
    g.inner.mode = "ok"
    (intent,) = g.on_candle(MKT, BAR, ctx)  # the next bar trades normally
    assert intent.strategy == "flaky" and intent.side is Side.BUY
    assert g.metrics()["errors"] == 1


@pytest.mark.parametrize(("mode", "message"), [
    ("foreign", "on_book returned an intent of strategy 'directional'; only 'flaky' is allowed"),
    ("junk", "on_book returned str, not an OrderIntent"),
    ("not_a_sequence", "on_book returned int, not a sequence of intents"),
])
def test_bad_intents_are_dropped_good_ones_kept(ctx, mode, message):
    g = Guarded(Flaky())
    g.inner.mode = mode
    kept = g.on_book(MKT, ctx)
    assert all(i.strategy == "flaky" for i in kept) and len(kept) == (1 if mode == "foreign" else 0)
    assert [e.message for e in g.drain_events()] == [message]


def test_a_failed_save_keeps_the_last_good_state_and_a_bad_restore_stops_the_start(ctx):
    g = Guarded(Flaky())
    assert g.state() == {"memory": {"mode": "ok"}}
    g.inner.mode = "raise"
    assert g.state() == {"memory": {"mode": "ok"}}
    with pytest.raises(StrategyRestoreError, match="strategy flaky: cannot restore its saved state: KeyError"):
        Guarded(Flaky()).restore({"memory": {"mode": "poison"}})

"""Books and candles reach only the strategies (and PerMarket slots) that read their market, from tables the
core builds once; a strategy that does not say what it reads gets every market, as before. What a skipped
call would have returned is provably nothing, so the tests check both sides: who is called, and that
nothing a called strategy reports is lost (events of a slot, a plug-in's own error)."""

from __future__ import annotations

from decimal import Decimal

from ate.config import parse_config
from ate.data.candles import Candle
from ate.model import Instrument, MarketKind, OrderIntent, Purpose, Side
from ate.model.market import BookTicker
from ate.strategies.base import NO_INTENTS, Strategy
from ate.strategies.guard import Guarded
from ate.strategies.per_market import PerMarket
from ate.strategies.plugin import UserStrategy
from ate.trading.core import TradingCore
from ate.trading.memory_state import MemoryState

D = Decimal
A, B = "binance:BTCUSDT", "backpack:BTC_USDC"
INSTRUMENTS = [Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"),
                          D("0.00001"), min_notional=D("5")),
               Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, D("0.01"), D("0.00001"),
                          D("0.00001"), min_notional=D("5"))]
T0 = 1_764_028_800_000


class Recorder(Strategy):
    """Records every book and candle it is given; with `event_on`, reports an event on that market's candle."""

    def __init__(self, name: str, reads: tuple[str, ...] | None = None, event_on: str | None = None) -> None:
        super().__init__()
        self.name = name
        self._reads = reads
        self.event_on = event_on
        self.seen: list[tuple[str, str]] = []
        self.traded = reads or ()

    def reads(self):
        return self._reads

    def on_book(self, market, ctx):
        self.seen.append(("book", market))
        return NO_INTENTS

    def on_candle(self, market, candle, ctx):
        self.seen.append(("candle", market))
        if market == self.event_on:
            self._event(ctx.now_ms, "saw", f"candle of {market}")
        return NO_INTENTS


class NoVenue:
    def submit(self, order, instrument) -> None:
        pass

    def cancel(self, order) -> None:
        pass


def core_with(strategies: list[Strategy]) -> tuple[TradingCore, list]:
    cfg = parse_config({"mode": "paper", "strategies": {"arbitrage": {"enabled": False},
                                                        "funding_carry": {"enabled": False},
                                                        "directional": {"enabled": False}}}, env={})
    core = TradingCore(cfg, instruments=INSTRUMENTS, strategies=strategies, clock=lambda: T0, state=MemoryState())
    core.attach(NoVenue())
    events: list = []
    core.on_event = events.append
    return core, events


def feed(core: TradingCore) -> None:
    """A book and a closed 1m candle of each market, twice (the second pass runs on the built tables)."""
    for _ in range(2):
        for market in (A, B):
            venue, symbol = market.split(":")
            core.on_book(BookTicker(venue, symbol, D("100"), D(1), D("101"), D(1), 0, T0))
            core.on_candle(market, Candle(T0 - 60_000, 100.0, 101.0, 99.0, 100.5, 1.0))


def test_a_strategy_gets_only_the_markets_it_reads_and_one_that_does_not_say_gets_all():
    only_a, every = Recorder("only_a", reads=(A,)), Recorder("every")
    core, _ = core_with([only_a, every])
    feed(core)
    assert only_a.seen == [("book", A), ("candle", A)] * 2
    assert every.seen == [("book", A), ("candle", A), ("book", B), ("candle", B)] * 2


def test_a_per_market_slot_gets_only_its_market_and_its_events_are_recorded():
    """Slot `b` reports an event from a candle while slot `a` is never called for `b`'s market: the event
    reaches the store/alerts through the one strategy (its slots share its report lists)."""
    a, b = Recorder("pm", reads=(A,)), Recorder("pm", reads=(B,), event_on=B)
    pm = PerMarket("pm", {"a": a, "b": b})
    core, events = core_with([pm])
    feed(core)
    assert a.seen == [("book", A), ("candle", A)] * 2
    assert b.seen == [("book", B), ("candle", B)] * 2
    assert [(e.kind, e.message) for e in events] == [("pm.saw", f"candle of {B}")] * 2
    assert not pm.has_reports


def test_two_slots_reading_one_market_answer_together():
    """Both slots read A: the strategy is called once per event and each slot sees it once, in slot order."""
    seen: list[str] = []

    class Leg(Recorder):
        def on_candle(self, market, candle, ctx):
            seen.append(self.key)
            return [OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.1"), D("100"), "pm", Purpose.ENTRY)] \
                if self.key == "second" else NO_INTENTS

        def on_intent_rejected(self, intent, reason, ctx):
            seen.append(f"rejected: {reason}")
            return NO_INTENTS

    first, second = Leg("pm", reads=(A,)), Leg("pm", reads=(A,))
    first.key, second.key = "first", "second"
    pm = PerMarket("pm", {"first": first, "second": second})
    core, _ = core_with([pm])
    core.on_book(BookTicker("binance", "BTCUSDT", D("100"), D(1), D("101"), D(1), 0, T0))
    core.on_candle(A, Candle(T0 - 60_000, 100.0, 101.0, 99.0, 100.5, 1.0))
    assert seen[:2] == ["first", "second"]
    # the slot's intent reached risk and execution: an order, or a refusal reported back to its slot
    assert len(core.orders.open_orders("pm")) + len(seen[2:]) == 1


class Plugin(UserStrategy):
    name = "plug"

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[str] = []

    def reads(self):
        raise RuntimeError("reads is broken")

    def on_bar(self, market, timeframe, bar, ctx):
        self.bars.append(market)
        return NO_INTENTS


def test_a_plugin_whose_reads_raises_gets_every_market_and_the_error_is_reported():
    inner = Plugin()
    core, events = core_with([Guarded(inner)])
    feed(core)
    assert inner.bars == [A, B, A, B]
    assert [e.kind for e in events] == ["plug.error"] * 4  # once per (hook, market) table built for it
    assert all("reads" in e.message for e in events)


def test_a_plugin_that_reads_one_market_is_not_called_for_another():
    class One(Plugin):
        def reads(self):
            return (B,)

    inner = One()
    core, events = core_with([Guarded(inner)])
    feed(core)
    assert inner.bars == [B, B] and events == []

"""A strategy over two markets (one slot each, ate.strategies.per_market) killed at every write of a session
in which both markets enter and fill, on a real SQLite store: after the restart each market's slot agrees
with that market's orders and fills in the store (an order written ⇔ its slot left flat; an open slot holds
exactly the store's fills), the other market's slot is untouched, and nothing reached the venue that the
store does not know."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ledger_support import (
    CFG,
    INSTRUMENTS,
    SPOT,
    START_MS,
    Clock,
    Killed,
    ScriptVenue,
    WriteFault,
    book,
    trade,
    view,
)

from ate.config import parse_config
from ate.model import Fill, Instrument, MarketKind, Order, OrderIntent, OrderStatus, Side
from ate.model.intent import Purpose
from ate.store import Store
from ate.strategies.base import NO_INTENTS, Strategy
from ate.strategies.per_market import PerMarket
from ate.trading.core import TradingCore

D = Decimal
ETH = Instrument("binance", "ETHUSDT", "ETH", "USDT", MarketKind.SPOT, D("0.01"), D("0.0001"), D("0.0001"))
PRICE = {SPOT.key: "70000", ETH.key: "3000"}


class Entry(Strategy):
    """One market's slot: buys once on its market's first book; phase and filled quantity are its state."""

    name = "slots"

    def __init__(self, inst: Instrument) -> None:
        super().__init__()
        self.inst = inst
        self.traded = (inst.key,)
        self.phase = "flat"
        self.filled = "0"

    def on_book(self, market: str, ctx) -> list[OrderIntent]:
        if market != self.inst.key or self.phase != "flat":
            return NO_INTENTS
        self.phase = "entering"
        return [OrderIntent(self.inst.venue, self.inst.symbol, Side.BUY, D("0.01"), D(PRICE[market]), self.name,
                            Purpose.ENTRY, meta={"leg": "entry"})]

    def on_order_update(self, order: Order, fill: Fill | None, ctx) -> list[OrderIntent]:
        if fill is not None:
            self.filled = str(D(self.filled) + fill.qty)
        if not order.is_open:
            self.phase = "open" if D(self.filled) else "flat"
        return NO_INTENTS

    def state(self) -> dict[str, Any]:
        return {"phase": self.phase, "filled": self.filled}

    def restore(self, state: dict[str, Any]) -> None:
        self.phase, self.filled = state["phase"], state["filled"]


def start(store: Store, clock: Clock, venue: ScriptVenue) -> TradingCore:
    slots = PerMarket("slots", {i.key: Entry(i) for i in (SPOT, ETH)})
    core = TradingCore(parse_config(CFG, env={}), instruments=(*INSTRUMENTS, ETH), strategies=[slots], clock=clock,
                       state=store, store=store)
    core.attach(venue)
    return core


def session(core: TradingCore, clock: Clock, venue: ScriptVenue) -> None:
    """Both markets enter; BTC's order fills in two parts, ETH's in one."""
    core.on_book(book(SPOT, "69999", "70001", clock.now))
    core.on_book(book(ETH, "2999", "3001", clock.now))
    btc, eth = (next(o for o in venue.sent if o.symbol == s) for s in ("BTCUSDT", "ETHUSDT"))
    core.on_order_update(view(btc, OrderStatus.PARTIALLY_FILLED, "0.004"), trade(btc, "0.004", "70000"))
    core.on_order_update(view(eth, OrderStatus.FILLED, "0.01"), trade(eth, "0.01", "3000"))
    core.on_order_update(view(btc, OrderStatus.FILLED, "0.01"), trade(btc, "0.006", "70000"))


def writes() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{d}/ate.db")
        count = WriteFault(store, None)
        clock, venue = Clock(START_MS), ScriptVenue()
        session(start(store, clock, venue), clock, venue)
        store.close()
        return count.count


@pytest.mark.parametrize("n", range(1, writes() + 2))
def test_each_market_slot_agrees_with_its_orders_after_a_kill_at_any_write(tmp_path, n):
    store = Store(f"sqlite:///{tmp_path}/ate.db")
    clock, venue = Clock(START_MS), ScriptVenue()
    WriteFault(store, n)
    try:
        session(start(store, clock, venue), clock, venue)
    except Killed:
        pass
    store.close()

    store = Store(f"sqlite:///{tmp_path}/ate.db")  # the restart: what the store kept is all there is
    slots = start(store, Clock(START_MS), ScriptVenue()).by_name["slots"]
    known = {o.client_order_id for o in store.orders()}
    assert {o.client_order_id for o in venue.sent} <= known  # nothing left for the venue before its write
    for inst in (SPOT, ETH):
        slot = slots.slots[inst.key]
        orders = [o for o in store.orders() if o.symbol == inst.symbol]
        filled = sum((f.qty for f in store.fills() if f.symbol == inst.symbol), D(0))
        assert (slot.phase != "flat") == bool(orders), (n, inst.key, slot.state())
        assert D(slot.filled) == filled, (n, inst.key, slot.state())
        if orders and not orders[0].is_open:
            assert slot.phase == "open"
    store.close()

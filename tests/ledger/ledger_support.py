"""Small factories for the ledger tests: a TradingCore on a real SQLite store, a scripted venue that keeps
what it was sent and the fills it made, and a two-leg strategy whose phase must survive every crash."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import event

from ate.config import parse_config
from ate.model import (
    Fill,
    Instrument,
    MarketKind,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from ate.model.intent import Purpose
from ate.model.market import BookTicker
from ate.store import Store
from ate.strategies.base import NO_INTENTS, Strategy
from ate.trading.core import TradingCore

D = Decimal
START_MS = 1_773_705_600_000
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"), D("0.00001"))
PERP = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.1"), D("0.001"), D("0.001"))
BP = Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, D("0.1"), D("0.00001"), D("0.00001"))
BNB = Instrument("binance", "BNBUSDT", "BNB", "USDT", MarketKind.SPOT, D("0.01"), D("0.001"), D("0.001"))
INSTRUMENTS = (SPOT, PERP, BP, BNB)
CFG = {
    "mode": "paper", "run_id": "ledger-test", "monitor": {"enabled": False},
    "risk_limits": {"capital_usd": 10_000_000, "max_position_size_usd": 1_000_000, "max_orders_per_second": 100,
                    "max_single_trade_pct": 0.25},
    "markets": {"primary": "binance:BTCUSDT", "binance": [{"symbol": "BTCUSDT", "kind": "spot"},
                                                          {"symbol": "BTCUSDT", "kind": "perp"}],
                "backpack": [{"symbol": "BTC_USDC", "kind": "spot"}]},
}


class Clock:
    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class PairStrategy(Strategy):
    """Opens one pair (buy spot, sell perp) on the first book; its phase and fills are its state."""

    name = "pair"

    def __init__(self, qty: Decimal = D("0.04")) -> None:
        super().__init__()
        self.qty = qty
        self.phase = "idle"
        self.filled: dict[str, str] = {}

    def on_book(self, market: str, ctx) -> list[OrderIntent]:
        if self.phase != "idle" or market != SPOT.key:
            return NO_INTENTS
        self.phase = "open"
        return [OrderIntent("binance", "BTCUSDT", Side.BUY, self.qty, D("70010"), self.name, Purpose.ENTRY,
                            meta={"leg": "spot"}),
                OrderIntent("binance_usdm", "BTCUSDT", Side.SELL, self.qty, D("69990"), self.name, Purpose.ENTRY,
                            meta={"leg": "perp"})]

    def on_order_update(self, order: Order, fill: Fill | None, ctx) -> list[OrderIntent]:
        if fill is not None:
            leg = order.meta["leg"]
            self.filled[leg] = str(D(self.filled.get(leg, "0")) + fill.qty)
        return NO_INTENTS

    def state(self) -> dict[str, Any]:
        return {"phase": self.phase, "filled": dict(self.filled)}

    def restore(self, state: dict[str, Any]) -> None:
        self.phase = state["phase"]
        self.filled = dict(state["filled"])


@dataclass
class ScriptVenue:
    """An executor that only records: the test decides what the venue answers and when."""

    sent: list[Order] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    on_submit: Callable[[Order], None] | None = None

    def submit(self, order: Order, instrument: Instrument) -> None:
        self.sent.append(order.view())
        if self.on_submit is not None:
            self.on_submit(order)

    def cancel(self, order: Order) -> None:
        self.cancels.append(order.client_order_id)


def make_core(store: Store, clock: Clock, venue: ScriptVenue | None = None, *, strategies=None,
              shadow: bool = False) -> TradingCore:
    cfg = parse_config(CFG, env={})
    core = TradingCore(cfg, instruments=INSTRUMENTS, strategies=[PairStrategy()] if strategies is None else strategies,
                       clock=clock, state=store, store=store, shadow=shadow)
    core.attach(venue or ScriptVenue())
    return core


def book(market: Instrument, bid: str, ask: str, ts: int, qty: str = "5") -> BookTicker:
    return BookTicker(market.venue, market.symbol, D(bid), D(qty), D(ask), D(qty), ts, ts)


def open_pair(core: TradingCore, clock: Clock) -> None:
    """Marks for both legs; the spot book then makes PairStrategy open its pair."""
    core.on_book(book(PERP, "69989", "69991", clock.now))
    core.on_book(book(SPOT, "69999", "70001", clock.now))


_trade_ids = itertools.count(1)


def trade(order: Order, qty: str, price: str, *, fee: str = "0", fee_asset: str = "USDT",
          trade_id: str | None = None, ts: int = START_MS) -> Fill:
    return Fill(order.venue, order.symbol, trade_id or f"t{next(_trade_ids)}", order.client_order_id,
                order.venue_order_id or "v-" + order.client_order_id, order.side, D(qty), D(price), D(fee),
                fee_asset, False, ts)


def view(order: Order, status: OrderStatus, filled: str = "0", ts: int = START_MS) -> Order:
    return order.view(status, ts, venue_order_id="v-" + order.client_order_id, filled_qty=D(filled))


def limit_order(coid: str, qty: str = "0.04", side: Side = Side.BUY, inst: Instrument = SPOT) -> Order:
    return Order(coid, inst.venue, inst.symbol, side, OrderType.LIMIT, D(qty), D("70000"), TimeInForce.IOC)


def before_statements(store: Store, fn: Callable[[str], None]) -> None:
    """Call `fn(sql)` before every statement the store executes: SQLAlchemy's, and the prepared sqlite3 writes
    of the hot path (orders, fills, ledger, state, events), which bypass SQLAlchemy's events."""
    event.listen(store.engine, "before_cursor_execute", lambda conn, cursor, statement, *_: fn(statement))
    rows = store._rows  # the writer class of this store's units (one per transaction)
    if hasattr(rows, "run"):

        class Hooked(rows):
            __slots__ = ()

            def run(self, sql: str, values: tuple) -> int:
                fn(sql)
                return super().run(sql, values)

        store._rows = Hooked


class WriteFault:
    """Raises at the n-th data-changing statement on a store: a kill at that instruction (SQLite rolls back
    the open transaction exactly as after a kill -9). `n=None` only counts."""

    def __init__(self, store: Store, n: int | None) -> None:
        self.n = n
        self.count = 0
        before_statements(store, self._before)

    def _before(self, statement: str) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() not in ("INSERT", "UPDATE", "DELETE"):
            return
        self.count += 1
        if self.n is not None and self.count == self.n:
            raise Killed(f"killed at write {self.n}: {statement[:60]}")


class Killed(BaseException):
    """Not an Exception: nothing in the engine may catch it, like a SIGKILL."""

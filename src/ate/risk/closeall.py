"""Emergency close-all: cancel every open order and close every position, reduce-only, on the venues.

Works without the engine: it reads the venues directly (open orders, perp positions, balances) and, for spot
markets, the engine's positions from the store (spot inventory the engine bought, capped by the free
balance: pre-funded inventory the engine never recorded is not sold). Every close order passes the
pre-trade checker in HALTED state as CLOSE_ALL (reduce-only, venue filters), and is written to the store
before it is sent (write-ahead, like every engine order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from ate.model import (
    Balance,
    EngineEvent,
    Instrument,
    MarketKind,
    Order,
    OrderIntent,
    OrderType,
    Position,
    Purpose,
    Severity,
    Side,
    TimeInForce,
    TradingState,
    client_order_id,
)
from ate.risk.capital import Limits
from ate.risk.events import CLOSE_ALL
from ate.risk.pretrade import PreTradeChecker

ZERO = Decimal(0)


class CloseAllClient(Protocol):
    """The part of ``ate.venues.base.VenueClient`` close-all needs."""

    venue: str

    async def instruments(self) -> list[Instrument]: ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def positions(self) -> list[Position]: ...

    async def balances(self) -> dict[str, Balance]: ...

    async def book_ticker(self, symbol: str) -> Any: ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> Any: ...

    async def place_order(self, order: Order, instrument: Instrument) -> Any: ...


class CloseAllStore(Protocol):
    def positions(self, *, shadow: bool = False) -> list[Position]: ...

    def orders(self, *, open_only: bool = False, venue: str | None = None) -> list[Order]: ...

    def save_order(self, order: Order, *, shadow: bool = False) -> None: ...

    def add_event(self, ev: EngineEvent) -> None: ...


@dataclass(slots=True)
class Close:
    instrument: Instrument
    intent: OrderIntent  # approved by the pre-trade checker


@dataclass(slots=True)
class CloseAllPlan:
    cancels: list[Order] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # positions that cannot be closed, with the reason

    def lines(self) -> list[str]:
        out = [f"cancel {o.venue} {o.symbol} {o.side.value} {o.remaining} @ {o.price or 'MKT'} ({o.client_order_id})"
               for o in self.cancels]
        out += [f"close  {c.intent.venue} {c.intent.symbol} {c.intent.side.value} {c.intent.qty} MARKET reduce-only"
                for c in self.closes]
        return out + [f"skip   {s}" for s in self.skipped]


@dataclass(slots=True)
class CloseAllResult:
    canceled: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def cancel_all_orders(clients: Mapping[str, CloseAllClient]) -> int:
    """Cancel every open order on every venue (kill switch canceller when no order manager runs);
    returns how many the venues accepted. Raises if any cancel was not accepted, so the kill switch retries."""
    done, failed = 0, []
    for client in clients.values():
        for o in await client.open_orders():
            res = await client.cancel_order(o.symbol, o.client_order_id)
            if res.accepted:
                done += 1
            else:
                failed.append(f"{o.venue} {o.client_order_id}: {res.outcome} {res.message}")
    if failed:
        raise RuntimeError("cancels not accepted: " + "; ".join(failed))
    return done


async def plan_close_all(clients: Mapping[str, CloseAllClient], store: CloseAllStore, limits: Limits,
                         clock: Callable[[], int]) -> CloseAllPlan:
    plan = CloseAllPlan()
    checker = PreTradeChecker(limits, clock, TradingState.HALTED)
    engine_spot = {(p.venue, p.symbol): p.qty for p in store.positions() if p.qty > 0}
    # The engine's own client order ids: a venue that only keeps a derived id (Backpack's uint32 clientId)
    # reports that one, and a fresh client cannot map it back; the store can, by venue order id.
    coids = {(o.venue, o.venue_order_id): o.client_order_id for o in store.orders(open_only=True)
             if o.venue_order_id}
    for client in clients.values():
        instruments = {i.symbol: i for i in await client.instruments()}
        for o in await client.open_orders():
            o.client_order_id = coids.get((o.venue, o.venue_order_id), o.client_order_id)
            plan.cancels.append(o)
        holdings = [(p.symbol, p.qty) for p in await client.positions()]
        spot = {s: q for (v, s), q in engine_spot.items() if v == client.venue and s in instruments
                and instruments[s].kind is MarketKind.SPOT}
        if spot:
            balances = await client.balances()
            for symbol, qty in spot.items():
                free = balances.get(instruments[symbol].base, Balance(instruments[symbol].base)).free
                holdings.append((symbol, min(qty, free)))
        for symbol, qty in holdings:
            inst = instruments.get(symbol)
            if inst is None:
                plan.skipped.append(f"{client.venue} {symbol} {qty}: unknown instrument")
                continue
            if qty == 0:
                continue
            book = await client.book_ticker(symbol)
            checker.update_mark(inst.key, (book.bid + book.ask) / 2, clock())
            checker.set_position(inst, qty)
            side = Side.SELL if qty > 0 else Side.BUY
            intent = OrderIntent(client.venue, symbol, side, abs(qty), None, "close_all", Purpose.CLOSE_ALL,
                                 OrderType.MARKET, TimeInForce.IOC, reduce_only=True)
            verdict = checker.check(intent, inst)
            if verdict.intent is None:
                plan.skipped.append(f"{client.venue} {symbol} {qty}: {verdict.reason.value} {verdict.detail}")
            else:
                plan.closes.append(Close(inst, verdict.intent))
    return plan


async def execute_close_all(plan: CloseAllPlan, clients: Mapping[str, CloseAllClient], store: CloseAllStore,
                            run_id: str, clock: Callable[[], int]) -> CloseAllResult:
    """Cancel first (freeing locked balances), then close; record everything in the store."""
    result = CloseAllResult()
    by_venue = {c.venue: c for c in clients.values()}
    for o in plan.cancels:
        res = await by_venue[o.venue].cancel_order(o.symbol, o.client_order_id)
        (result.canceled if res.accepted else result.errors).append(
            f"cancel {o.venue} {o.symbol} {o.client_order_id}" + ("" if res.accepted else f": {res.outcome} {res.message}"))
    now = clock()
    for seq, close in enumerate(plan.closes):
        i = close.intent
        order = Order(client_order_id(run_id, "closeall", now * 100 + seq), i.venue, i.symbol, i.side,
                      OrderType.MARKET, i.qty, None, TimeInForce.IOC,
                      reduce_only=close.instrument.kind is MarketKind.PERP, strategy="close_all", created_ms=now,
                      updated_ms=now, meta={"purpose": Purpose.CLOSE_ALL.value})
        store.save_order(order)  # write-ahead
        res = await by_venue[i.venue].place_order(order, close.instrument)
        if res.order is not None:
            order.status, order.venue_order_id = res.order.status, res.order.venue_order_id
            order.filled_qty, order.filled_quote = res.order.filled_qty, res.order.filled_quote
        order.reason = "" if res.accepted else f"{res.outcome}: {res.message}"
        store.save_order(order)
        line = f"close {i.venue} {i.symbol} {i.side.value} {i.qty} ({order.client_order_id})"
        (result.closed if res.accepted else result.errors).append(line + ("" if res.accepted else f": {order.reason}"))
    store.add_event(EngineEvent(clock(), CLOSE_ALL, f"close-all: {len(result.canceled)} canceled, "
                                f"{len(result.closed)} closed, {len(result.errors)} errors",
                                Severity.CRITICAL if result.errors else Severity.WARNING,
                                {"venues": sorted(by_venue), "canceled": result.canceled, "closed": result.closed,
                                 "errors": result.errors, "skipped": plan.skipped}))
    return result

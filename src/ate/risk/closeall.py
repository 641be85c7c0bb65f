"""Emergency close-all: cancel every open order and close every position, reduce-only, on the venues.

Works without the engine and venue by venue, so one venue down or refusing us never stops the others: it
reads each venue directly (open orders, perp positions, balances) and, for spot markets, the engine's
positions from the store (spot inventory the engine bought, capped by the free balance: pre-funded inventory
the engine never recorded is not sold). Every close order passes the pre-trade checker in HALTED state as
CLOSE_ALL (reduce-only, venue filters) and is written to the store before it is sent (write-ahead, like every
engine order) whenever the store can be written. Afterwards the venue is read again: what it still holds is
reported as left open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import structlog

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

log = structlog.get_logger("ate.risk")


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

    async def resolve(self, order: Order) -> Any: ...


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
class VenuePlan:
    venue: str
    cancels: list[Order] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # holdings that cannot be closed, with the reason

    def lines(self) -> list[str]:
        out = [f"cancel {o.venue} {o.symbol} {o.side.value} {o.remaining} @ {o.price or 'MKT'} ({o.client_order_id})"
               for o in self.cancels]
        out += [f"close  {c.intent.venue} {c.intent.symbol} {c.intent.side.value} {c.intent.qty} MARKET reduce-only"
                for c in self.closes]
        return out + [f"skip   {s}" for s in self.skipped]


@dataclass(slots=True)
class VenueResult:
    canceled: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # commands the venue did not accept, with its reason
    left_open: list[str] = field(default_factory=list)  # what the venue still holds afterwards


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


async def plan_venue(client: CloseAllClient, engine_spot: Mapping[str, Decimal] | None, coids: Mapping[str, str],
                     limits: Limits, clock: Callable[[], int]) -> VenuePlan:
    """What to cancel and close on one venue, from the venue's own holdings: its open orders, its perp
    positions, and for spot the engine's recorded position capped by the venue's free balance (pre-funded
    inventory the engine never bought is not sold). ``engine_spot`` None: the store is unreadable, so spot
    holdings cannot be told apart and are reported, not sold. ``coids`` maps venue order ids to the engine's
    client order ids (Backpack only reports a derived uint32 id). The engine's spot positions are net of the fees
    taken in the base coin (``Store.positions``)."""
    plan = VenuePlan(client.venue)
    checker = PreTradeChecker(limits, clock, TradingState.HALTED)
    instruments = {i.symbol: i for i in await client.instruments()}
    for o in await client.open_orders():
        o.client_order_id = coids.get(o.venue_order_id or "", o.client_order_id)
        plan.cancels.append(o)
    holdings = [(p.symbol, p.qty) for p in await client.positions()]
    spot_symbols = [s for s, i in instruments.items() if i.kind is MarketKind.SPOT]
    if engine_spot is None and spot_symbols:
        plan.skipped.append(f"{client.venue} spot: the store is unreadable, so the engine's spot positions are "
                            "unknown; spot balances are left as they are")
    elif engine_spot:
        balances = await client.balances()
        for symbol, qty in engine_spot.items():
            inst = instruments.get(symbol)
            if inst is not None and inst.kind is MarketKind.SPOT:
                holdings.append((symbol, min(qty, balances.get(inst.base, Balance(inst.base)).free)))
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


async def execute_venue(plan: VenuePlan, client: CloseAllClient, store: CloseAllStore | None, run_id: str,
                        clock: Callable[[], int]) -> VenueResult:
    """Cancel first (freeing locked balances), then close; then read back what the venue still holds.

    Each close is written to the store before it is sent when the store works; with the store damaged the
    closes still go out (closing matters more) and the engine's reconciliation finds them at its next start."""
    result = VenueResult()
    for o in plan.cancels:
        res = await client.cancel_order(o.symbol, o.client_order_id)
        line = f"cancel {o.venue} {o.symbol} {o.client_order_id}"
        (result.canceled if res.accepted else result.errors).append(
            line if res.accepted else f"{line}: {res.outcome} {res.code or ''} {res.message}".rstrip())
    now = clock()
    for seq, close in enumerate(plan.closes):
        i = close.intent
        order = Order(client_order_id(run_id, "closeall", now * 100 + seq), i.venue, i.symbol, i.side,
                      OrderType.MARKET, i.qty, None, TimeInForce.IOC,
                      reduce_only=close.instrument.kind is MarketKind.PERP, strategy="close_all", created_ms=now,
                      updated_ms=now, meta={"purpose": Purpose.CLOSE_ALL.value})
        _save(store, order)  # write-ahead
        res = await client.place_order(order, close.instrument)
        if res.outcome == "unknown":  # never resent: settled by client order id (risk does not import venues)
            res = await client.resolve(order)
        if res.order is not None:
            order.status, order.venue_order_id = res.order.status, res.order.venue_order_id
            order.filled_qty, order.filled_quote = res.order.filled_qty, res.order.filled_quote
        order.reason = "" if res.accepted else f"{res.outcome}: {res.code or ''} {res.message}".strip()
        _save(store, order)
        line = f"close {i.venue} {i.symbol} {i.side.value} {i.qty} ({order.client_order_id})"
        if not res.accepted:
            result.errors.append(f"{line}: {order.reason}")
        elif close.instrument.kind is MarketKind.SPOT and order.filled_qty < i.qty:
            result.left_open.append(f"{i.venue} {i.symbol} {i.qty - order.filled_qty} of {i.qty} not sold "
                                    f"({order.status.value})")
        else:
            result.closed.append(line)
    result.left_open += [f"open order {o.venue} {o.symbol} {o.client_order_id}" for o in await client.open_orders()]
    result.left_open += [f"position {p.venue} {p.symbol} {p.qty}" for p in await client.positions() if p.qty != 0]
    return result


def record_close_all(store: CloseAllStore, now_ms: int, results: Mapping[str, VenueResult | str],
                     skipped: list[str]) -> None:
    """One CLOSE_ALL event for the whole run; a venue that could not be used is given by its reason."""
    done = {v: r for v, r in results.items() if isinstance(r, VenueResult)}
    failed = {v: r for v, r in results.items() if isinstance(r, str)}
    canceled = [x for r in done.values() for x in r.canceled]
    closed = [x for r in done.values() for x in r.closed]
    errors = [x for r in done.values() for x in r.errors] + [f"{v}: {why}" for v, why in failed.items()]
    left = [x for r in done.values() for x in r.left_open]
    store.add_event(EngineEvent(now_ms, CLOSE_ALL, f"close-all: {len(canceled)} canceled, {len(closed)} closed, "
                                f"{len(errors)} errors, {len(left)} left open",
                                Severity.CRITICAL if errors or left or skipped else Severity.WARNING,
                                {"venues": sorted(results), "canceled": canceled, "closed": closed,
                                 "errors": errors, "left_open": left, "skipped": skipped}))


def _save(store: CloseAllStore | None, order: Order) -> None:
    if store is None:
        return
    try:
        store.save_order(order)
    except Exception:  # a damaged store must not stop an emergency close; reported by the caller
        log.exception("close_all_store_write_failed", client_order_id=order.client_order_id)

"""Executors: where approved orders go in each mode.

- ShadowExecutor: nothing is sent. An order is filled hypothetically as a taker at the touch seen at
  decision time, up to the displayed size and within its limit price, with the configured fees
  (signals-and-strategies.md §9 "would-be trades").
- VenueExecutor: a real venue client (canary, live — and the simulator's wire protocols). Each command
  has three outcomes; UNKNOWN is resolved by querying the client order id, never by resending. The query
  is retried with backoff for as long as it takes (5xx, a clock-skew refusal, an ambiguous match); an
  order still unresolved after `resolve_timeout_s` raises one CRITICAL `order_unresolved` event and is
  listed in `unresolved` until the venue answers. Meanwhile it stays open in the ledger, so its risk
  headroom and balance stay held: nothing is released on a guess.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ate.model import (
    EngineEvent,
    Fill,
    FilterError,
    Instrument,
    MarketKind,
    Order,
    OrderStatus,
    OrderType,
    Severity,
    Side,
    TimeInForce,
)
from ate.model.market import BookTicker
from ate.venues.errors import ClockSkewError, MissingCredentials

log = logging.getLogger(__name__)

UpdateSink = Callable[[Order, Fill | None], None]
BookSource = Callable[[str], BookTicker | None]


class ShadowExecutor:
    """Would-be fills at the touch; never calls a venue."""

    def __init__(self, books: BookSource, taker_fee_bps: Callable[[str], Decimal], sink: UpdateSink,
                 clock: Callable[[], int]) -> None:
        self.books = books
        self.fee_bps = taker_fee_bps
        self.sink = sink
        self.clock = clock

    def submit(self, order: Order, instrument: Instrument) -> None:
        now = self.clock()
        book = self.books(f"{order.venue}:{order.symbol}")
        # shadow orders have no venue: the client order id stands in as the venue's id
        self.sink(order.view(OrderStatus.SUBMITTED, now, venue_order_id=order.client_order_id), None)
        if book is None:
            self.sink(order.view(OrderStatus.EXPIRED, now, "no book"), None)
            return
        price, size = (book.ask, book.ask_qty) if order.side is Side.BUY else (book.bid, book.bid_qty)
        limit_ok = order.type is OrderType.MARKET or order.price is None or (
            price <= order.price if order.side is Side.BUY else price >= order.price)
        qty = instrument.round_qty(min(order.qty, size)) if limit_ok else Decimal(0)
        if qty > 0:
            # Fees as the venues charge them: spot buys pay in the base coin received, everything else in quote.
            rate = self.fee_bps(order.venue) / Decimal(10_000)
            in_base = instrument.kind is MarketKind.SPOT and order.side is Side.BUY
            fee, fee_asset = (qty * rate, instrument.base) if in_base else (qty * price * rate, instrument.quote)
            fill = Fill(order.venue, order.symbol, f"shadow-{order.client_order_id}", order.client_order_id,
                        order.client_order_id, order.side, qty, price, fee, fee_asset, False, now, order.strategy)
            view = order.view(OrderStatus.FILLED if qty == order.qty else OrderStatus.PARTIALLY_FILLED, now)
            view.filled_qty = qty
            self.sink(view, fill)
        if qty < order.qty and order.tif is not TimeInForce.GTC:
            self.sink(order.view(OrderStatus.EXPIRED, now, "shadow: not marketable at the touch"), None)
        elif qty < order.qty:
            # A resting would-be order: shadow keeps no book of its own, so it is withdrawn at once.
            self.sink(order.view(OrderStatus.CANCELED, now, "shadow: resting orders are not simulated"), None)

    def cancel(self, order: Order) -> None:
        self.sink(order.view(OrderStatus.CANCELED, self.clock()), None)


@dataclass(slots=True)
class Unresolved:
    """An order whose placement outcome the venue has not told yet."""

    client_order_id: str
    venue: str
    symbol: str
    since_ms: int
    attempts: int = 0
    last_error: str = ""
    alerted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"client_order_id": self.client_order_id, "market": f"{self.venue}:{self.symbol}",
                "since_ms": self.since_ms, "attempts": self.attempts, "last_error": self.last_error,
                "alerted": self.alerted}


# Raised before anything is sent: the venue never saw the order.
NOT_SENT = (FilterError, ClockSkewError, MissingCredentials)


class VenueExecutor:
    """Sends orders to venue clients from the event loop; results come back through `sink`."""

    def __init__(self, clients: dict, sink: UpdateSink, clock: Callable[[], int],
                 on_latency: Callable[[float], None] | None = None, *,
                 on_event: Callable[[EngineEvent], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 resolve_timeout_s: float = 60.0, backoff_s: tuple[float, float] = (0.2, 30.0)) -> None:
        self.clients = clients  # venue id -> ate.venues.base.VenueClient
        self.sink = sink
        self.clock = clock
        self.on_latency = on_latency  # order round trip, send → venue answer, in ms
        self.on_event = on_event
        self.sleep = sleep  # the engine clock's (simulated time in tests and replays)
        self.resolve_timeout_ms = int(resolve_timeout_s * 1000)
        self.backoff_s = backoff_s  # (first, longest) wait between resolution queries
        self.unresolved: dict[str, Unresolved] = {}
        self.tasks: set[asyncio.Task] = set()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def submit(self, order: Order, instrument: Instrument) -> None:
        self._spawn(self._place(order, instrument))

    def cancel(self, order: Order) -> None:
        self._spawn(self._cancel(order))

    async def _place(self, order: Order, instrument: Instrument) -> None:
        from ate.venues.base import CommandResult, Outcome

        client = self.clients[order.venue]
        try:
            sent = time.perf_counter()
            result = await client.place_order(order, instrument)
            if self.on_latency is not None:
                self.on_latency((time.perf_counter() - sent) * 1000)
        except NOT_SENT as exc:
            result = CommandResult(Outcome.REJECTED, None, type(exc).__name__, str(exc))
        except Exception as exc:  # a venue error never crashes the engine; the order may have gone out
            log.warning("place %s failed: %s", order.client_order_id, exc)
            result = CommandResult(Outcome.UNKNOWN, None, type(exc).__name__, str(exc))
        if result.outcome is Outcome.UNKNOWN:
            result = await self._resolve(order, client, f"{result.code}: {result.message}")
        if result.outcome is Outcome.REJECTED:
            self.sink(order.view(OrderStatus.REJECTED, self.clock(), f"{result.code}: {result.message}"), None)
        elif result.order is not None:
            self.sink(result.order, None)

    async def _resolve(self, order: Order, client: Any, why: str):
        """Query the order until the venue says what happened; alert once when it takes too long."""
        from ate.venues.base import Outcome

        coid = order.client_order_id
        info = self.unresolved[coid] = Unresolved(coid, order.venue, order.symbol, self.clock(), last_error=why)
        delay, longest = self.backoff_s
        try:
            while True:
                await self.sleep(delay)
                info.attempts += 1
                try:
                    result = await client.resolve(order)
                except Exception as exc:  # 5xx, refused timestamp, dropped connection: ask again later
                    info.last_error = f"{type(exc).__name__}: {exc}"
                else:
                    if result.outcome is not Outcome.UNKNOWN:
                        break
                    info.last_error = f"{result.code}: {result.message}"
                if not info.alerted and self.clock() - info.since_ms >= self.resolve_timeout_ms:
                    info.alerted = True
                    self._event("order_unresolved", Severity.CRITICAL,
                                f"{coid} on {order.venue}:{order.symbol}: outcome unknown for "
                                f"{(self.clock() - info.since_ms) / 1000:.0f} s ({info.last_error}); its risk "
                                "headroom stays held, still querying", info)
                delay = min(delay * 2, longest)
        finally:  # also on shutdown: a restart resolves it again through reconciliation
            del self.unresolved[coid]
        if info.alerted:
            self._event("order_resolved", Severity.WARNING, f"{coid}: outcome known after {info.attempts} queries "
                        f"({result.outcome.value})", info)
        return result

    def _event(self, kind: str, severity: Severity, message: str, info: Unresolved) -> None:
        log.log(logging.CRITICAL if severity is Severity.CRITICAL else logging.WARNING, message)
        if self.on_event is not None:
            self.on_event(EngineEvent(self.clock(), kind, message, severity,
                                      {**info.to_dict(), "key": info.client_order_id, "order": info.client_order_id}))

    async def _cancel(self, order: Order) -> None:
        client = self.clients[order.venue]
        try:
            result = await client.cancel_order(order.symbol, order.client_order_id)
        except Exception as exc:
            log.warning("cancel %s failed: %s", order.client_order_id, exc)
            return
        if result.order is not None:
            self.sink(result.order, None)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop every command still in progress (shutdown): an order still unresolved stays open in the
        ledger, and reconciliation settles it at the next start."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)

"""Executors: where approved orders go in each mode.

- ShadowExecutor: nothing is sent. An order is filled hypothetically as a taker at the touch seen at
  decision time, up to the displayed size and within its limit price, with the configured fees
  (signals-and-strategies.md §9 "would-be trades").
- VenueExecutor: a real venue client (canary, live — and the simulator's wire protocols). Each command
  has three outcomes; UNKNOWN is resolved by querying the client order id, never by resending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal

from ate.model import Fill, Instrument, MarketKind, Order, OrderStatus, OrderType, Side, TimeInForce
from ate.model.market import BookTicker

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


class VenueExecutor:
    """Sends orders to venue clients from the event loop; results come back through `sink`."""

    def __init__(self, clients: dict, sink: UpdateSink, clock: Callable[[], int],
                 on_latency: Callable[[float], None] | None = None) -> None:
        self.clients = clients  # venue id -> ate.venues.base.VenueClient
        self.sink = sink
        self.clock = clock
        self.on_latency = on_latency  # order round trip, send → venue answer, in ms
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
        from ate.venues.base import Outcome

        client = self.clients[order.venue]
        try:
            sent = time.perf_counter()
            result = await client.place_order(order, instrument)
            if self.on_latency is not None:
                self.on_latency((time.perf_counter() - sent) * 1000)
            while result.outcome is Outcome.UNKNOWN:
                await asyncio.sleep(0.2)
                result = await client.resolve(order)
        except Exception as exc:  # a venue error never crashes the engine
            log.warning("place %s failed: %s", order.client_order_id, exc)
            return
        if result.outcome is Outcome.REJECTED:
            self.sink(order.view(OrderStatus.REJECTED, self.clock(), f"{result.code}: {result.message}"), None)
        elif result.order is not None:
            self.sink(result.order, None)

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

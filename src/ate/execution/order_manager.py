"""Intents → orders: risk first, then a write-ahead record with a unique id, then the venue (outbox).

Order ids are `client_order_id(run_id, strategy, seq, epoch)`: the epoch is drawn from the store at each
start, so runs and modes sharing a store never reuse an id. Every order is written ahead in the caller's
unit of work (with the strategy decision that caused it) and handed to the executor only after that
unit committed, so a crash can neither lose an order that was sent nor send one the store does not hold
(DESIGN.md principle 3).

Venue updates (stream, REST, reconciliation) are applied idempotently, each in one unit of work. Fills
are facts: booked once by (venue, symbol, trade id) whatever the order's status, never raising. An
order's status follows from its fills and the venue's final word; a final word that reports more filled
than booked (a REST EXPIRED ahead of the stream's trade) waits for those fills. A fill of an order this
engine never sent (a liquidation, a manual trade) is booked as an external fill with an alert; one dated
before an account comparison that booked its market's position difference takes that difference back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol

from ate.execution.portfolio import Portfolio
from ate.model import (
    EngineEvent,
    Fill,
    IllegalTransition,
    Instrument,
    Order,
    OrderIntent,
    OrderStatus,
    Purpose,
    Severity,
    client_order_id,
)
from ate.store import Store

EXTERNAL = "external"  # the strategy of fills this engine did not cause
POSITION_DIFF = "reconcile:"  # trade id prefix of an external fill booked from a position difference
COMPARED = "compared:"  # trade id prefix of the fill taking back the position difference a late trade was in
EPOCH_KEY = "orders.epoch"
_PURPOSE_VALUE = {p: p.value for p in Purpose}  # `.value` of an enum member is a descriptor call on each read
_PROGRESS = {
    OrderStatus.NEW: 0, OrderStatus.SUBMITTED: 1, OrderStatus.PARTIALLY_FILLED: 2, OrderStatus.FILLED: 3,
    OrderStatus.CANCELED: 3, OrderStatus.REJECTED: 3, OrderStatus.EXPIRED: 3,
}


class Executor(Protocol):
    """Where orders go: a venue, the in-process matching core, or nowhere (shadow)."""

    def submit(self, order: Order, instrument: Instrument) -> None: ...

    def cancel(self, order: Order) -> None: ...


class RiskVerdict(Protocol):
    """The risk layer's answer (``ate.risk.verdict.Verdict``): ``intent`` is what may be sent."""

    @property
    def approved(self) -> bool: ...

    intent: OrderIntent | None
    reason: str


RiskCheck = Callable[[OrderIntent, Instrument], RiskVerdict]
FillSink = Callable[[Order | None, Fill], None]


@dataclass(slots=True)
class OrderStats:
    submitted: int = 0
    rejected_by_risk: dict[str, int] = field(default_factory=dict)


class OrderManager:
    def __init__(self, *, run_id: str, store: Store | None, portfolio: Portfolio, executor: Executor,
                 risk: RiskCheck, clock: Callable[[], int], shadow: bool = False,
                 on_fill: FillSink | None = None,
                 on_event: Callable[[EngineEvent], None] | None = None) -> None:
        self.run_id = run_id
        self.store = store
        self.portfolio = portfolio
        self.executor = executor
        self.risk = risk
        self.clock = clock
        self.shadow = shadow
        self.on_fill = on_fill
        self.on_event = on_event
        self.orders: dict[str, Order] = {}
        self.stats = OrderStats()
        self._seq: dict[str, int] = {}
        self._seen_trades: set[tuple[str, str, str]] = set()
        # Orders handed to the executor by this run that the venue has not acknowledged yet: the send (or the
        # executor's resolution of an unknown outcome) is still in progress, so "no such order" means nothing.
        self.in_flight: set[str] = set()
        self.epoch = 0
        if store is not None:
            with store.unit():
                self.epoch = int(store.get_state(EPOCH_KEY) or 0) + 1
                store.set_state(EPOCH_KEY, self.epoch, clock())
            self.reload()

    def reload(self) -> None:
        """Open orders and the trade ids already booked, as the store has them (at start, and after a unit
        that was rolled back)."""
        if self.store is None:
            return
        self.orders = {o.client_order_id: o for o in self.store.orders(open_only=True, shadow=self.shadow)}
        self._seen_trades = {(f.venue, f.symbol, f.trade_id) for f in self.store.fills(shadow=self.shadow)}
        self.in_flight &= self.orders.keys()  # a rolled-back write-ahead was never handed to the executor

    def unit(self):
        """The store's unit of work (no store: nothing to group)."""
        return self.store.unit() if self.store is not None else contextlib.nullcontext()

    # -- outbound --

    def submit(self, intent: OrderIntent) -> Order | None:
        """Risk, then the write-ahead in the current unit; the executor gets the order once it committed."""
        inst = self.portfolio.instruments[intent.market]
        verdict = self.risk(intent, inst)
        if not verdict.approved or verdict.intent is None:
            reason = str(verdict.reason)
            self.stats.rejected_by_risk[reason] = self.stats.rejected_by_risk.get(reason, 0) + 1
            return None
        intent = verdict.intent
        seq = self._seq.get(intent.strategy, 0)
        self._seq[intent.strategy] = seq + 1
        now = self.clock()
        order = Order(
            client_order_id=client_order_id(self.run_id, intent.strategy, seq, self.epoch), venue=intent.venue,
            symbol=intent.symbol, side=intent.side, type=intent.type, qty=intent.qty, price=intent.price,
            tif=intent.tif, reduce_only=intent.reduce_only, strategy=intent.strategy, created_ms=now,
            updated_ms=now, meta={"purpose": _PURPOSE_VALUE[intent.purpose], **intent.meta},
        )
        self.orders[order.client_order_id] = order
        self.in_flight.add(order.client_order_id)
        self.stats.submitted += 1
        if self.store is None:
            self.executor.submit(order, inst)
        else:
            self.store.save_order(order, shadow=self.shadow, new=True)
            self.store.after_commit(lambda: self.executor.submit(order, inst))
        return order

    def cancel(self, order: Order) -> None:
        if order.is_open:
            self.executor.cancel(order)

    def open_orders(self, strategy: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and (strategy is None or o.strategy == strategy)]

    # -- inbound --

    def knows_fill(self, fill: Fill) -> bool:
        """Whether this fill (by venue trade id) is already booked: stream, REST and replay repeat fills."""
        return (fill.venue, fill.symbol, fill.trade_id) in self._seen_trades

    def find(self, fill: Fill) -> Order | None:
        """The order a fill belongs to: by client order id, else by the venue's order id (Backpack reports a
        uint32 derived from our id, which a restarted client may not map back)."""
        order = self.orders.get(fill.client_order_id)
        if order is None and self.store is not None:
            order = self.store.get_order(fill.client_order_id)
            if order is None and fill.venue_order_id:
                order = self.store.order_by_venue_id(fill.venue, fill.venue_order_id)
        return order

    def on_update(self, view: Order, fill: Fill | None) -> Order | None:
        """Apply the venue's view of one of our orders and, if given, one fill, in one unit. Idempotent."""
        with self.unit():
            order = self.orders.get(view.client_order_id)
            if order is None:
                if self.store is not None:
                    order = self.store.get_order(view.client_order_id) or (fill and self.find(fill))
                if order is None:
                    if fill is not None:
                        self.book_external(fill, "fill of an order this engine did not send")
                    else:
                        self._event("unknown_order_update", f"update for unknown order {view.client_order_id}",
                                    Severity.WARNING, {"venue": view.venue, "symbol": view.symbol})
                    return None
                if order.is_open:
                    self.orders[order.client_order_id] = order
            changed = False
            if view.venue_order_id and order.venue_order_id != view.venue_order_id:
                order.venue_order_id = view.venue_order_id
                changed = True
            if fill is not None:
                changed |= self._book_fill(order, fill)
            changed |= self._advance(order, view)
            if changed and self.store is not None:
                self.store.save_order(order, shadow=self.shadow)
        if order.status is not OrderStatus.NEW:
            self.in_flight.discard(order.client_order_id)
        if not order.is_open:
            self.orders.pop(order.client_order_id, None)
        return order

    def book_external(self, fill: Fill, why: str) -> bool:
        """A fill nobody here asked for (liquidation, manual trade, a venue's autoclose): booked once, with an
        alert; positions and balances follow it, strategy P&L does not."""
        fill = replace(fill, strategy=EXTERNAL)
        if not self._record_fill(fill):
            return False
        self._take_back_position_difference(fill)
        self._event("external_fill", f"{fill.venue}:{fill.symbol} {fill.side.value} {fill.qty} @ {fill.price}: {why}",
                    Severity.CRITICAL, {"venue": fill.venue, "symbol": fill.symbol, "trade_id": fill.trade_id,
                                        "client_order_id": fill.client_order_id, "qty": str(fill.qty),
                                        "price": str(fill.price), "side": fill.side.value})
        if f"{fill.venue}:{fill.symbol}" in self.portfolio.instruments:
            self.portfolio.apply_fill(fill)
        if self.on_fill is not None:
            self.on_fill(None, fill)
        return True

    def _take_back_position_difference(self, fill: Fill) -> None:
        """A trade dated before an account comparison that booked its market's position difference (its
        history lagged: a close-out seen after the comparison) was already in that comparison, position and
        wallet. The difference is taken back by the trade's quantity, at the trade's price and fee, so the
        trade moves neither the position nor the P&L again."""
        if self.store is None or fill.trade_id.startswith((POSITION_DIFF, COMPARED)):
            return
        market = (fill.venue, fill.symbol)
        later = [f for f in self.store.fills(since_ms=fill.ts_ms, strategy=EXTERNAL, shadow=self.shadow)
                 if (f.venue, f.symbol) == market and f.trade_id.startswith((POSITION_DIFF, COMPARED))]
        open_diff = sum((f.side.sign * f.qty for f in later), Decimal(0))
        if not later or open_diff * fill.side.sign <= 0:
            return
        qty = min(fill.qty, abs(open_diff))
        back = replace(fill, trade_id=f"{COMPARED}{fill.trade_id}", client_order_id="", venue_order_id="",
                       side=fill.side.opposite, qty=qty, fee=-fill.fee * qty / fill.qty, ts_ms=later[-1].ts_ms)
        if self._record_fill(back):
            self.portfolio.apply_fill(back)
            if self.on_fill is not None:
                self.on_fill(None, back)

    def _record_fill(self, fill: Fill) -> bool:
        key = (fill.venue, fill.symbol, fill.trade_id)
        if key in self._seen_trades:
            return False
        self._seen_trades.add(key)
        return self.store is None or self.store.add_fill(fill, shadow=self.shadow)

    def _book_fill(self, order: Order, fill: Fill) -> bool:
        if fill.strategy != order.strategy or fill.client_order_id != order.client_order_id:
            fill = replace(fill, client_order_id=order.client_order_id, strategy=order.strategy)
        if not self._record_fill(fill):
            return False
        order.apply_fill(fill.qty, fill.price, fill.ts_ms)
        if order.status.is_terminal:
            self._reopen_to_fills(order, fill)
        if order.overfilled:
            self._event("order_overfilled", f"{order.client_order_id}: filled {order.filled_qty} of {order.qty}",
                        Severity.CRITICAL, {"order": order.client_order_id, "trade_id": fill.trade_id})
        self._settle_final_word(order)
        self.portfolio.apply_fill(fill)
        if self.on_fill is not None:
            self.on_fill(order, fill)
        return True

    def _reopen_to_fills(self, order: Order, fill: Fill) -> None:
        """A fill after a final word: the fill is a fact, so the status follows it — a REJECTED order that
        filled did reach the venue (CANCELED with its filled quantity, or FILLED), and a closed order that
        filled in full is FILLED. Risk and the strategy were told it was closed: an alert, never silence."""
        before = order.status
        if order.filled_qty >= order.qty:
            order.status = OrderStatus.FILLED
        elif before is OrderStatus.REJECTED:
            order.status = OrderStatus.CANCELED
        if order.status is not before or before is OrderStatus.REJECTED:
            self._event("fill_after_final", f"{order.client_order_id}: {before.value} order filled {fill.qty} "
                        f"(now {order.status.value}, filled {order.filled_qty} of {order.qty})", Severity.CRITICAL,
                        {"order": order.client_order_id, "trade_id": fill.trade_id, "was": before.value,
                         "status": order.status.value, "filled": str(order.filled_qty)})

    def _advance(self, order: Order, view: Order) -> bool:
        """Fills move an order to PARTIALLY_FILLED / FILLED; the venue's view adds acknowledgements and final
        words. A stale view (out-of-order stream vs REST) never moves an order backwards, and a final word
        that reports fills not booked yet is kept on the order until they are."""
        target = view.status
        if target == order.status or order.status.is_terminal or _PROGRESS[target] < _PROGRESS[order.status]:
            return False
        if target in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            return False  # follows from fills only
        if target.is_terminal and view.filled_qty > order.filled_qty:
            final = {"status": target.value, "filled": str(view.filled_qty), "reason": view.reason}
            if order.meta.get("final") == final:
                return False
            order.meta["final"] = final
            return True
        try:
            order.transition(target, view.updated_ms or self.clock(), view.reason)
        except IllegalTransition as exc:
            self._event("order_state_conflict", str(exc), Severity.WARNING, {"order": order.client_order_id})
            return False
        return True

    def _settle_final_word(self, order: Order) -> None:
        final = order.meta.get("final")
        if final is None or order.filled_qty < Decimal(final["filled"]):
            return
        del order.meta["final"]
        if order.is_open:
            with contextlib.suppress(IllegalTransition):  # e.g. REJECTED after fills: the fills stand
                order.transition(OrderStatus(final["status"]), order.updated_ms, final["reason"])

    def _event(self, kind: str, message: str, severity: Severity, data: dict) -> None:
        ev = EngineEvent(self.clock(), kind, message, severity, data)
        if self.on_event is not None:
            self.on_event(ev)  # the owner records it
        elif self.store is not None:
            self.store.add_event(ev)

"""Intents → orders: risk first, then a write-ahead record with a deterministic id, then the venue.

Order ids are `client_order_id(run_id, strategy, seq)`; `seq` continues from the number of orders the
store already holds for the strategy, and every order is durable in the store before an executor sees
it, so a crash can neither lose an order that was sent nor reuse an id (DESIGN.md principle 3).
Updates from the venue (stream, REST, reconciliation) are applied idempotently: fills are keyed by
trade id, and a stale view never moves an order backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    Severity,
    client_order_id,
)
from ate.store import Store

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


@dataclass(slots=True)
class OrderStats:
    submitted: int = 0
    rejected_by_risk: dict[str, int] = field(default_factory=dict)


class OrderManager:
    def __init__(self, *, run_id: str, store: Store | None, portfolio: Portfolio, executor: Executor,
                 risk: RiskCheck, clock: Callable[[], int], shadow: bool = False,
                 on_fill: Callable[[Order, Fill], None] | None = None,
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
        if store is not None:
            for o in store.orders(shadow=shadow):
                self._seq[o.strategy] = self._seq.get(o.strategy, 0) + 1
                if o.is_open:
                    self.orders[o.client_order_id] = o
            self._seen_trades = {(f.venue, f.symbol, f.trade_id) for f in store.fills(shadow=shadow)}

    # -- outbound --

    def submit(self, intent: OrderIntent) -> Order | None:
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
            client_order_id=client_order_id(self.run_id, intent.strategy, seq), venue=intent.venue,
            symbol=intent.symbol, side=intent.side, type=intent.type, qty=intent.qty, price=intent.price,
            tif=intent.tif, reduce_only=intent.reduce_only, strategy=intent.strategy, created_ms=now,
            updated_ms=now, meta={"purpose": intent.purpose.value, **intent.meta},
        )
        if self.store is not None:
            self.store.save_order(order, shadow=self.shadow, new=True)  # write-ahead: durable before it is sent
        self.orders[order.client_order_id] = order
        self.stats.submitted += 1
        self.executor.submit(order, inst)
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

    def on_update(self, view: Order, fill: Fill | None) -> Order | None:
        """Apply the venue's view of one of our orders and, if given, one fill. Idempotent."""
        order = self.orders.get(view.client_order_id)
        if order is None:
            if self.store is None or (order := self.store.get_order(view.client_order_id)) is None:
                self._event("unknown_order_update", f"update for unknown order {view.client_order_id}",
                            Severity.WARNING, {"venue": view.venue, "symbol": view.symbol})
                return None
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
        if not order.is_open:
            self.orders.pop(order.client_order_id, None)
        return order

    def _book_fill(self, order: Order, fill: Fill) -> bool:
        key = (fill.venue, fill.symbol, fill.trade_id)
        if key in self._seen_trades:
            return False
        self._seen_trades.add(key)
        if fill.strategy != order.strategy:
            fill = Fill(fill.venue, fill.symbol, fill.trade_id, order.client_order_id, fill.venue_order_id, fill.side,
                        fill.qty, fill.price, fill.fee, fill.fee_asset, fill.is_maker, fill.ts_ms, order.strategy)
        if self.store is not None:
            self.store.add_fill(fill, shadow=self.shadow)
        order.apply_fill(fill.qty, fill.price, fill.ts_ms)
        self.portfolio.apply_fill(fill)
        if self.on_fill is not None:
            self.on_fill(order, fill)
        return True

    def _advance(self, order: Order, view: Order) -> bool:
        """Move to the venue's status unless it is behind ours (out-of-order stream vs REST)."""
        target = view.status
        if target == order.status or _PROGRESS[target] < _PROGRESS[order.status]:
            return False
        if target in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED) and view.filled_qty > order.filled_qty:
            return False  # fills not yet booked: the fill events (or reconciliation) will move it
        if target is OrderStatus.FILLED and order.filled_qty < order.qty:
            return False
        try:
            order.transition(target, view.updated_ms or self.clock(), view.reason)
        except IllegalTransition as exc:
            self._event("order_state_conflict", str(exc), Severity.WARNING, {"order": order.client_order_id})
            return False
        return True

    def _event(self, kind: str, message: str, severity: Severity, data: dict) -> None:
        ev = EngineEvent(self.clock(), kind, message, severity, data)
        if self.store is not None:
            self.store.add_event(ev)
        if self.on_event is not None:
            self.on_event(ev)

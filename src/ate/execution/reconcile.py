"""Reconciliation of the store with a venue, at start and after every reconnect.

Order by order: what the venue says wins, and every correction is an event. Orders on the venue that
this engine never wrote are cancelled or adopted per `execution.unknown_orders`; orders the store
thinks open but the venue no longer lists are settled from the venue's record, and an order the venue
never heard of (the engine died between the write-ahead and the send) is closed as never sent. Fills
since the stored cursor are replayed through the order manager, which ignores those already booked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ate.model import EngineEvent, OrderStatus, Severity
from ate.venues.errors import VenueUnknown

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    venue: str
    adopted: list[str] = field(default_factory=list)
    cancelled_unknown: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    never_sent: list[str] = field(default_factory=list)
    fills_replayed: int = 0
    unresolved: list[str] = field(default_factory=list)  # the venue's answer was unknown or ambiguous

    @property
    def corrections(self) -> int:
        return len(self.adopted) + len(self.cancelled_unknown) + len(self.settled) + len(self.never_sent)


async def reconcile(core, client, store, now_ms: int, *, unknown_orders: str = "cancel") -> ReconcileReport:
    venue = client.venue
    report = ReconcileReport(venue)
    om = core.orders
    ours = {o.client_order_id: o for o in om.open_orders() if o.venue == venue}
    # A venue that keys orders by its own form of our ids (Backpack: a uint32) maps them back only for ids
    # it has seen; after a restart it must learn the open ones before their fills are read back.
    learn = getattr(client, "client_id", None)
    if learn is not None:
        for coid in ours:
            learn(coid)
    symbols = sorted({k.partition(":")[2] for k in core.portfolio.instruments if k.startswith(venue + ":")})

    for view in await client.open_orders():
        if view.client_order_id in ours or store.get_order(view.client_order_id) is not None:
            core.on_order_update(view, None)
            ours.pop(view.client_order_id, None)
        elif unknown_orders == "adopt":
            view.strategy = view.strategy or "adopted"
            store.save_order(view)
            om.orders[view.client_order_id] = view
            report.adopted.append(view.client_order_id)
        else:
            await client.cancel_order(view.symbol, view.client_order_id)
            report.cancelled_unknown.append(view.client_order_id)

    for symbol in symbols:
        key = f"cursor:{venue}:{symbol}"
        fills, cursor = await client.fills_since(symbol, store.get_state(key))
        for fill in fills:
            order = om.orders.get(fill.client_order_id) or store.get_order(fill.client_order_id)
            if order is None:
                continue
            before = len(om._seen_trades)
            core.on_order_update(order.view(), fill)
            report.fills_replayed += len(om._seen_trades) - before
        if cursor is not None:
            store.set_state(key, cursor, now_ms)

    for coid, order in ours.items():
        if not order.is_open:
            continue
        try:
            view = await client.query_order(order.symbol, coid, like=order)
        except VenueUnknown as exc:  # e.g. two venue orders match a colliding client id: leave it open, say so
            report.unresolved.append(coid)
            log.warning("reconcile %s: %s", coid, exc)
            continue
        if view is None:
            view = order.view(OrderStatus.REJECTED if order.filled_qty == 0 else OrderStatus.CANCELED,
                              reason="never reached the venue (reconciliation)")
            report.never_sent.append(coid)
        else:
            report.settled.append(coid)
        core.on_order_update(view, None)

    if report.corrections:
        ev = EngineEvent(now_ms, "reconciliation", f"{venue}: {report.corrections} corrections", Severity.WARNING,
                         {"venue": venue, "adopted": report.adopted, "cancelled_unknown": report.cancelled_unknown,
                          "settled": report.settled, "never_sent": report.never_sent})
        store.add_event(ev)
    if report.unresolved:
        ev = EngineEvent(now_ms, "order_unresolved", f"{venue}: {len(report.unresolved)} open orders could not be "
                         "matched to one venue order; kept open", Severity.CRITICAL,
                         {"venue": venue, "orders": report.unresolved})
        store.add_event(ev)
    return report


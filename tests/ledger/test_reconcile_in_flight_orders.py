"""Reconciliation after a reconnect runs while the engine keeps trading. An order whose write-ahead committed
and whose REST submit is still on the wire is not yet known to the venue: `query_order` answers "no such
order", and reconciliation closes it as "never reached the venue" — then the venue accepts and fills it.
Risk has released the order's headroom and the strategy was told it was rejected (so it may send again),
while the venue holds the position: a duplicate exposure and a breached position cap.

Only an order no executor of this run is sending (left open by a previous run) may be declared never sent; an
order still in flight is skipped and checked again at the next reconciliation. A fill that arrives after a
final word is a fact: the order's status follows it, with a CRITICAL event."""

import asyncio
from decimal import Decimal

import pytest
from ledger_support import SPOT, Clock, ScriptVenue, make_core, open_pair, trade, view

from ate.execution.reconcile import reconcile
from ate.model import OrderStatus, Severity

D = Decimal


class VenueNotYetSeen:
    """A venue client whose REST view lags our in-flight POST: no open orders, no fills, no such order yet."""

    venue = "binance"

    async def open_orders(self):
        return []

    async def fills_since(self, symbol, cursor):
        return [], cursor

    async def query_order(self, symbol, coid, like=None):
        return None

    async def funding_since(self, cursor):
        return [], cursor


def test_reconciliation_does_not_close_an_order_still_on_the_wire_as_never_sent(store):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)  # both legs handed to the executor this instant: the POSTs are in flight
    spot = venue.sent[0]
    report = asyncio.run(reconcile(core, VenueNotYetSeen(), store, clock.now))
    assert spot.client_order_id not in report.never_sent, "an order sent 0 ms ago was declared never sent"
    # the POST lands: the venue acknowledges and fills the order reconciliation just closed
    core.on_order_update(view(spot, OrderStatus.FILLED, "0.04"), trade(spot, "0.04", "70000"))
    stored = store.get_order(spot.client_order_id)
    assert (stored.status, stored.filled_qty) == (OrderStatus.FILLED, D("0.04"))
    assert core.risk.position(SPOT.key) == D("0.04")
    assert spot.client_order_id not in core.orders.in_flight  # the venue's word ended the send


def test_an_in_flight_order_is_checked_again_at_the_next_reconciliation(store):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    spot = venue.sent[0]
    first = asyncio.run(reconcile(core, VenueNotYetSeen(), store, clock.now))
    assert first.in_flight == [spot.client_order_id]
    assert first.never_sent == [] and first.corrections == 0
    assert store.get_order(spot.client_order_id).status is OrderStatus.NEW  # still open: headroom held
    core.on_order_update(view(spot, OrderStatus.SUBMITTED), None)  # the executor's send ended: acknowledged
    assert spot.client_order_id not in core.orders.in_flight
    # no longer skipped: a venue that acknowledged an order and then has no record of it is settled as before
    second = asyncio.run(reconcile(core, VenueNotYetSeen(), store, clock.now))
    assert second.in_flight == [] and second.never_sent == [spot.client_order_id]


def test_at_start_an_order_left_open_by_a_previous_run_is_declared_never_sent(store):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    spot = venue.sent[0]
    restarted = make_core(store, clock, ScriptVenue())  # the process died after the write-ahead
    assert restarted.orders.in_flight == set()  # nothing of this run is being sent
    report = asyncio.run(reconcile(restarted, VenueNotYetSeen(), store, clock.now))
    assert spot.client_order_id in report.never_sent and report.in_flight == []
    stored = store.get_order(spot.client_order_id)
    assert (stored.status, stored.filled_qty) == (OrderStatus.REJECTED, D("0"))


@pytest.mark.parametrize(("filled", "status"), [("0.01", OrderStatus.CANCELED), ("0.04", OrderStatus.FILLED)])
def test_a_rejected_order_that_fills_ends_consistent_with_its_fills_with_an_alert(store, filled, status):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    spot = venue.sent[0]
    core.on_order_update(view(spot, OrderStatus.REJECTED), None)
    core.on_order_update(view(spot, OrderStatus.REJECTED), trade(spot, filled, "70000"))
    stored = store.get_order(spot.client_order_id)
    assert (stored.status, stored.filled_qty) == (status, D(filled))
    assert core.risk.position(SPOT.key) == D(filled)
    [ev] = store.events(kind="fill_after_final")
    assert (ev.severity, ev.data["was"], ev.data["status"]) == (Severity.CRITICAL, "REJECTED", status.value)


def test_a_canceled_order_whose_remainder_then_fills_is_filled(store):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    spot = venue.sent[0]
    core.on_order_update(view(spot, OrderStatus.SUBMITTED), trade(spot, "0.01", "70000"))
    core.on_order_update(view(spot, OrderStatus.CANCELED, "0.01"), None)
    assert store.events(kind="fill_after_final") == []
    core.on_order_update(view(spot, OrderStatus.CANCELED, "0.04"), trade(spot, "0.03", "70000"))
    stored = store.get_order(spot.client_order_id)
    assert (stored.status, stored.filled_qty) == (OrderStatus.FILLED, D("0.04"))
    [ev] = store.events(kind="fill_after_final")
    assert (ev.severity, ev.data["was"]) == (Severity.CRITICAL, "CANCELED")

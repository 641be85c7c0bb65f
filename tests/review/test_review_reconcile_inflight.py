"""Reconciliation after a reconnect runs while the engine keeps trading. An order whose write-ahead committed
and whose REST submit is still on the wire is not yet known to the venue: `query_order` answers "no such
order", and reconciliation closes it as "never reached the venue" — then the venue accepts and fills it.
Risk has released the order's headroom and the strategy was told it was rejected (so it may send again),
while the venue holds the position: a duplicate exposure and a breached position cap."""

import asyncio
from decimal import Decimal

import pytest
from ledger_support import SPOT, Clock, ScriptVenue, make_core, open_pair, trade, view

from ate.execution.reconcile import reconcile
from ate.model import OrderStatus
from ate.store import Store

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


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/ate.db")
    yield s
    s.close()


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

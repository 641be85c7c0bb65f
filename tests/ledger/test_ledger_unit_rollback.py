"""A venue event whose unit raises mid-way (a transient store error such as SQLite's "database is locked",
or any exception inside the unit) is rolled back in the store and in memory alike: the same fill delivered
again (stream repeat, REST, reconciliation) is booked once, with the order, position and strategy following
it (adversarial review: the trade id used to stay marked as seen, so the fill was never booked)."""

from decimal import Decimal

import pytest
from ledger_support import SPOT, Clock, ScriptVenue, before_statements, make_core, open_pair, trade, view

from ate.model import OrderStatus
from ate.store import Store

D = Decimal


class LockedOnce:
    """The first INSERT into fills fails like a busy SQLite file; later writes succeed."""

    def __init__(self, store: Store) -> None:
        self.fired = False
        before_statements(store, self._before)

    def _before(self, statement: str) -> None:
        if not self.fired and statement.lstrip().upper().startswith("INSERT INTO FILLS"):
            self.fired = True
            raise RuntimeError("database is locked")


def test_a_fill_whose_unit_failed_is_booked_when_the_venue_repeats_it(store):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    spot = venue.sent[0]
    fill = trade(spot, "0.03", "70000")
    fault = LockedOnce(store)
    with pytest.raises(RuntimeError):
        core.on_order_update(view(spot, OrderStatus.PARTIALLY_FILLED, "0.03"), fill)
    assert fault.fired and store.fills() == []  # rolled back: nothing of the fill is in the ledger
    core.on_order_update(view(spot, OrderStatus.PARTIALLY_FILLED, "0.03"), fill)  # the stream/REST repeat
    assert [f.trade_id for f in store.fills()] == [fill.trade_id]
    assert store.get_order(spot.client_order_id).filled_qty == D("0.03")
    assert core.portfolio.position(SPOT.key).qty == D("0.03")
    assert core.by_name["pair"].filled == {"spot": "0.03"}

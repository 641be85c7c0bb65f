"""Property: whatever the interleaving and duplication of REST replies and stream events of random partial
fills, each fill is booked exactly once, every order ends with the venue's filled quantity and final
status, and the positions (in memory, in risk and replayed from the store) equal the venue's."""

from __future__ import annotations

import os
import shutil
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_support import SPOT, Clock, make_core, trade, view

from ate.model import Order, OrderStatus, OrderType, Side, TimeInForce
from ate.store import Store

D = Decimal
STEP = D("0.001")


class TEMPLATE:
    """One migrated store, copied per example: migrations are not what is under test."""

    _path = None

    @classmethod
    def path(cls, factory):
        if cls._path is None:
            cls._path = factory.mktemp("tpl") / "ate.db"
            Store(f"sqlite:///{cls._path}").close()
        return cls._path


@st.composite
def venue_orders(draw):
    """Per order: side, quantity, its fills (trade id, qty) and the venue's final status."""
    out = []
    for i in range(draw(st.integers(1, 3))):
        qty_steps = draw(st.integers(2, 40))
        n_fills = draw(st.integers(0, 3))
        cuts = sorted(draw(st.lists(st.integers(1, qty_steps), min_size=n_fills, max_size=n_fills)))
        fills, done = [], 0
        for j, c in enumerate(cuts):
            if c > done:
                fills.append((f"o{i}-t{j}", (c - done) * STEP))
                done = c
        final = OrderStatus.FILLED if done == qty_steps else draw(st.sampled_from([OrderStatus.EXPIRED,
                                                                                   OrderStatus.CANCELED]))
        out.append((draw(st.sampled_from([Side.BUY, Side.SELL])), qty_steps * STEP, fills, final))
    return out


def events_of(order: Order, fills, final):
    """The venue's messages: the REST ack, one stream report per trade, the REST final reply."""
    evs = [(view(order, OrderStatus.SUBMITTED), None)]
    cum = D(0)
    for trade_id, q in fills:
        cum += q
        status = OrderStatus.FILLED if cum == order.qty else OrderStatus.PARTIALLY_FILLED
        evs.append((view(order, status, str(cum)), trade(order, str(q), "70000", fee="0.01", trade_id=trade_id)))
    evs.append((view(order, final, str(cum)), None))
    return evs


@settings(max_examples=int(os.environ.get("ATE_PROPERTY_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=venue_orders(), data=st.data())
def test_any_interleaving_books_each_fill_once_and_positions_equal_the_venue(tmp_path_factory, spec, data):
    path = tmp_path_factory.mktemp("prop") / "ate.db"
    shutil.copy(TEMPLATE.path(tmp_path_factory), path)
    store = Store(f"sqlite:///{path}")
    clock = Clock()
    core = make_core(store, clock, strategies=[])
    events, venue_pos, expect = [], D(0), {}
    for i, (side, qty, fills, final) in enumerate(spec):
        order = Order(f"ord-{i}", SPOT.venue, SPOT.symbol, side, OrderType.LIMIT, qty, D("70000"), TimeInForce.IOC,
                      strategy="prop")
        store.save_order(order, new=True)
        core.orders.orders[order.client_order_id] = order
        events += events_of(order, fills, final)
        filled = sum((q for _, q in fills), D(0))
        venue_pos += side.sign * filled
        expect[order.client_order_id] = (final, filled)
    order_of = data.draw(st.permutations(range(len(events))))
    dups = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=6))
    for k in [*order_of, *dups]:
        core.on_order_update(*events[k])

    stored_fills = store.fills()
    assert len(stored_fills) == len({f.trade_id for f in stored_fills}) == sum(len(s[2]) for s in spec)
    for coid, (final, filled) in expect.items():
        o = store.get_order(coid)
        assert (o.status, o.filled_qty) == (final, filled), coid
    assert core.portfolio.position(SPOT.key).qty == venue_pos == core.risk.position(SPOT.key)
    assert sum((p.qty for p in store.positions() if p.symbol == SPOT.symbol), D(0)) == venue_pos
    assert len(store.ledger(kind="fee")) == len(stored_fills)
    store.close()

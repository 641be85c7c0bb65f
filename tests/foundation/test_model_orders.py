import itertools
from decimal import Decimal

import pytest

from ate.model import (
    IllegalTransition,
    Order,
    OrderStatus,
    OrderType,
    Side,
    backpack_client_id,
    client_order_id,
)
from ate.model.order import TRANSITIONS

S = OrderStatus


def _order(status: OrderStatus = S.NEW) -> Order:
    o = Order("c1", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("1"), Decimal("100"))
    o.status = status
    return o


LEGAL = {
    (S.NEW, S.SUBMITTED), (S.NEW, S.PARTIALLY_FILLED), (S.NEW, S.FILLED), (S.NEW, S.REJECTED),
    (S.NEW, S.CANCELED), (S.NEW, S.EXPIRED),
    (S.SUBMITTED, S.PARTIALLY_FILLED), (S.SUBMITTED, S.FILLED), (S.SUBMITTED, S.CANCELED),
    (S.SUBMITTED, S.REJECTED), (S.SUBMITTED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED), (S.PARTIALLY_FILLED, S.CANCELED),
    (S.PARTIALLY_FILLED, S.EXPIRED),
}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(S, S)))
def test_every_transition_is_legal_or_raises(src, dst):
    o = _order(src)
    if (src, dst) in LEGAL:
        o.transition(dst, ts_ms=5)
        assert o.status is dst and o.updated_ms == 5
    else:
        with pytest.raises(IllegalTransition):
            o.transition(dst)
        assert o.status is src


def test_table_matches_the_documented_machine():
    assert {(a, b) for a, bs in TRANSITIONS.items() for b in bs} == LEGAL
    assert all(not TRANSITIONS[s] for s in (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED))


def test_fills_move_the_state_and_are_booked_even_past_the_order():
    o = _order(S.SUBMITTED)
    o.apply_fill(Decimal("0.4"), Decimal("100"))
    assert o.status is S.PARTIALLY_FILLED and o.remaining == Decimal("0.6")
    o.apply_fill(Decimal("0.6"), Decimal("110"))
    assert o.status is S.FILLED and o.avg_price == Decimal("106") and not o.overfilled
    o.apply_fill(Decimal("0.1"), Decimal("100"))  # a fact: booked and flagged, never refused
    assert o.filled_qty == Decimal("1.1") and o.overfilled and o.status is S.FILLED


def test_a_fill_after_the_final_word_keeps_the_status():
    o = _order(S.SUBMITTED)
    o.transition(S.EXPIRED)
    o.apply_fill(Decimal("0.3"), Decimal("100"), ts_ms=9)
    assert (o.status, o.filled_qty, o.updated_ms) == (S.EXPIRED, Decimal("0.3"), 9)


def test_epochs_keep_ids_of_runs_sharing_a_store_apart():
    assert client_order_id("run1", "arbitrage", 0, 1) != client_order_id("run1", "arbitrage", 0, 2)
    assert client_order_id("run1", "arbitrage", 0) == client_order_id("run1", "arbitrage", 0, 0)


def test_client_order_ids_are_deterministic_and_venue_legal():
    import re

    a = client_order_id("run1", "arbitrage", 7)
    assert a == client_order_id("run1", "arbitrage", 7)
    assert a != client_order_id("run1", "arbitrage", 8) != client_order_id("run2", "arbitrage", 7)
    assert re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", a)
    cid = backpack_client_id(a)
    assert 0 < cid < 2**32 and cid == backpack_client_id(a)

"""The SQLite fast path under the Store interface: the hot writes are prepared sqlite3 statements on the
unit's connection, read back by SQLAlchemy; positions kept between calls.

What it must not change: exact Decimals, JSON, booleans and enums as SQLAlchemy stores them, writes joining
the unit's one transaction (a rolled-back unit leaves nothing, a committed one is seen by another
connection), and idempotent fills and ledger entries."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from ate.model import EngineEvent, Fill, Order, OrderStatus, OrderType, Severity, Side, TimeInForce
from ate.store import Store
from ate.store.rows import JsonText

D = Decimal


def an_order(coid: str = "ate-arbitr-1") -> Order:
    return Order(coid, "binance", "BTCUSDT", Side.SELL, OrderType.LIMIT, D("0.00012345678901234567"),
                 D("123456789.123456789"), TimeInForce.IOC, reduce_only=True, strategy="arbitrage", created_ms=5,
                 updated_ms=5, meta={"purpose": "entry", "leg": {"n": [1, 2.5, None, True]}})


def a_fill(order: Order, trade_id: str = "t1") -> Fill:
    return Fill(order.venue, order.symbol, trade_id, order.client_order_id, "v1", order.side, D("0.0001"),
                D("70000.10"), D("1E-8"), "BTC", True, 7, order.strategy)


def test_hot_writes_read_back_exactly_through_sqlalchemy(store):
    order = an_order()
    store.save_order(order, shadow=True, new=True)
    assert store.get_order(order.client_order_id) == order
    assert store.orders(shadow=True) == [order] and store.orders(shadow=False) == []
    order.transition(OrderStatus.SUBMITTED, 6)
    order.apply_fill(D("0.0001"), D("70000.10"), 7)
    order.meta["final"] = {"status": "EXPIRED", "filled": "0.0002"}
    store.save_order(order, shadow=True)  # an update of the same row, not a second one
    assert store.orders(shadow=True) == [order]
    assert store.orders(open_only=True) == [order]  # PARTIALLY_FILLED is open: the status index sees it

    fill = a_fill(order)
    assert store.add_fill(fill, shadow=True) and not store.add_fill(fill, shadow=True)
    assert store.fills(shadow=True) == [fill] and store.fills(shadow=False) == []

    entry = {"ts_ms": 7, "kind": "fee", "amount": D("-1E-8"), "asset": "BTC", "venue": "binance",
             "ref": "fee:binance:BTCUSDT:t1", "symbol": "BTCUSDT", "strategy": "arbitrage", "shadow": True,
             "value_usd": D("-0.000700001"), "price_source": "mark"}
    assert store.add_ledger(**entry) and not store.add_ledger(**entry)
    assert store.add_ledger(**{**entry, "shadow": False})  # the other book's entry is another entry
    row = store.ledger(shadow=True)[0]
    assert (row["amount"], row["value_usd"], row["shadow"]) == (D("-0.00000001"), D("-0.000700001"), True)
    assert store.has_ledger("fee", "binance", "fee:binance:BTCUSDT:t1", shadow=True)

    store.set_state("k", {"a": [1, "2"], "b": None}, 1)
    store.set_state("k", {"a": [3]}, 2)  # one row per key, overwritten
    store.set_state("j", JsonText('{"z": 1, "a": [2]}'), 3)  # already encoded: stored as such, read as JSON
    assert store.get_state("k") == {"a": [3]} and store.get_state("j") == {"z": 1, "a": [2]}
    assert store.all_state()["j"] == {"z": 1, "a": [2]}

    ev = EngineEvent(9, "external_fill", "a fill", Severity.CRITICAL, {"qty": "0.1", "n": [1]})
    store.add_event(ev)
    assert store.events(kind="external_fill") == [ev]


def test_fast_writes_join_the_units_one_transaction(store):
    other = Store(store.url)
    with pytest.raises(RuntimeError), store.unit():
        store.save_order(an_order(), new=True)
        store.add_fill(a_fill(an_order()))
        store.set_state("s", 1)
        assert store.get_order(an_order().client_order_id) is not None  # the unit reads its own writes
        raise RuntimeError("rolled back")
    assert store.orders() == [] and store.fills() == [] and store.get_state("s") is None
    assert store.add_fill(a_fill(an_order()))  # the rolled-back fill was never booked: it is now
    with store.unit():
        store.save_order(an_order(), new=True)
        store.set_state("s", 2)
        assert other.get_state("s") is None  # not committed yet: invisible to another connection
    assert other.get_state("s") == 2 and other.get_order(an_order().client_order_id) == an_order()
    other.close()


def test_a_reused_client_order_id_fails_loudly_instead_of_overwriting(store):
    store.save_order(an_order(), new=True)
    with pytest.raises(IntegrityError):  # SQLAlchemy's error, as on PostgreSQL and before the fast path
        store.save_order(an_order(), new=True)


def fill_at(trade_id: str, side: Side, qty: str, price: str, ts: int, symbol: str = "BTCUSDT") -> Fill:
    return Fill("binance", symbol, trade_id, "c", "v", side, D(qty), D(price), D(0), "USDT", False, ts)


def replayed(store: Store) -> list:
    fresh = Store(store.url)  # nothing kept: the whole history replayed
    try:
        return fresh.positions()
    finally:
        fresh.close()


def test_positions_kept_between_calls_equal_a_full_replay_whatever_order_fills_arrive_in(store):
    store.add_fill(fill_at("1", Side.BUY, "0.3", "60000", 1_000))
    store.add_fill(fill_at("2", Side.BUY, "0.1", "61000", 2_000, symbol="ETHUSDT"))
    assert store.positions() == replayed(store)
    store.add_fill(fill_at("3", Side.SELL, "0.1", "62000", 3_000))  # after the kept replay: applied on top
    assert store.positions() == replayed(store)
    # reconciliation books a fill older than the last one applied: the order of application changes the
    # entry price and realised P&L, so everything is replayed again
    store.add_fill(fill_at("4", Side.BUY, "0.2", "50000", 1_500))
    positions = store.positions()
    assert positions == replayed(store)
    btc = next(p for p in positions if p.symbol == "BTCUSDT")
    assert (btc.qty, btc.entry_price) == (D("0.4"), D("56000"))  # (0.3·60000 + 0.2·50000)/0.5, then a sell
    with pytest.raises(RuntimeError), store.unit():
        store.add_fill(fill_at("5", Side.SELL, "0.4", "70000", 4_000))
        assert next(p for p in store.positions() if p.symbol == "BTCUSDT").qty == 0  # the unit's own fill
        raise RuntimeError("rolled back")
    assert store.positions() == replayed(store) == positions  # the rolled-back fill left nothing kept
    other = Store(store.url)  # another writer's fill (another process reading the same store)
    other.add_fill(fill_at("6", Side.SELL, "0.1", "65000", 5_000))
    other.close()
    assert store.positions() == replayed(store) != positions


def test_strategy_state_encoded_by_msgspec_reads_back_as_json_would_have_stored_it(store):
    """The core encodes strategy state with msgspec (canonical: keys sorted, Decimals as their str): what the
    store returns is what `json.dumps(..., sort_keys=True, default=str)` stored before, digit for digit."""
    from ate.trading.core import _encode

    state = {"z": [D("0.00999"), D("7.042E+4"), D("-0"), D("1E-8")], "a": {"ü": 1.1, "n": None, "t": True},
             "m": {"y": 34.495562929207, "b": [1, "2", [3.0]]}, "big": 12345678901234567890}
    text = _encode(state)
    assert text == _encode(json.loads(text))  # canonical: the saved state compares equal to itself reloaded
    assert list(json.loads(text)) == sorted(state)
    store.set_state("strategy.x", JsonText(text), 1)
    assert store.get_state("strategy.x") == json.loads(json.dumps(state, sort_keys=True, default=str))
    # the one difference from json: a non-finite float is written as null (PostgreSQL's JSON refuses NaN)
    assert json.loads(_encode({"x": float("nan")})) == {"x": None}

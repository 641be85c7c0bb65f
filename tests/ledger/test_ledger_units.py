"""Units of work: each venue event and each strategy decision is one store transaction, and orders leave
only after the transaction holding their write-ahead committed (outbox)."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from ledger_support import (
    BNB,
    PERP,
    SPOT,
    Clock,
    PairStrategy,
    ScriptVenue,
    book,
    limit_order,
    make_core,
    open_pair,
    trade,
    view,
)
from sqlalchemy import event

from ate.model import OrderStatus, Side
from ate.store import Store

D = Decimal


def test_a_unit_commits_everything_or_nothing_and_runs_its_outbox_after_commit(store, tmp_path):
    other = Store(store.url)  # another connection: sees only what is committed
    seen = []
    with store.unit():
        store.set_state("a", 1)
        store.after_commit(lambda: seen.append(other.get_state("a")))
        assert other.get_state("a") is None and seen == []
    assert seen == [1]
    with pytest.raises(RuntimeError), store.unit():
        store.set_state("b", 2)
        store.after_commit(lambda: seen.append("never"))
        raise RuntimeError("boom")
    assert other.get_state("b") is None and seen == [1]
    other.close()


def test_a_pair_decision_is_one_transaction_and_both_legs_leave_after_it(store):
    clock = Clock()
    other = Store(store.url)
    visible_at_send = []
    venue = ScriptVenue(on_submit=lambda o: visible_at_send.append(
        (other.get_order(o.client_order_id) is not None, other.get_state("strategy.pair"))))
    core = make_core(store, clock, venue)
    commits = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    open_pair(core, clock)
    assert [o.meta["leg"] for o in venue.sent] == ["spot", "perp"]
    assert len(commits) == 1  # both write-aheads and the strategy's new phase: one fsync
    assert visible_at_send == [(True, {"phase": "open", "filled": {}})] * 2
    other.close()


def test_an_ioc_expired_by_rest_before_its_trade_keeps_the_fill_and_the_stream(store):
    """Finding 1: REST EXPIRED (executedQty 0.03 of 0.04) arrives before the stream's trade."""
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    spot = venue.sent[0]
    core.on_order_update(view(spot, OrderStatus.EXPIRED, "0.03"), None)
    held = core.orders.orders[spot.client_order_id]
    assert held.is_open and held.meta["final"]["status"] == "EXPIRED"  # the final word waits for its fill
    core.on_order_update(view(spot, OrderStatus.PARTIALLY_FILLED, "0.03"), trade(spot, "0.03", "70000"))
    stored = store.get_order(spot.client_order_id)
    assert (stored.status, stored.filled_qty) == (OrderStatus.EXPIRED, D("0.03"))
    assert core.by_name["pair"].filled == {"spot": "0.03"}
    assert core.portfolio.position(SPOT.key).qty == D("0.03")
    assert core.risk.position(SPOT.key) == D("0.03")
    assert store.get_state("strategy.pair")["filled"] == {"spot": "0.03"}  # saved with the fill


def test_a_fill_after_the_final_word_is_booked_once_without_an_error(store):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    open_pair(core, clock)
    perp = venue.sent[1]
    core.on_order_update(view(perp, OrderStatus.CANCELED, "0"), None)
    late = trade(perp, "0.01", "69990")
    for _ in range(3):  # stream, REST and reconciliation all repeat it
        core.on_order_update(view(perp, OrderStatus.CANCELED, "0.01"), late)
    assert [f.trade_id for f in store.fills()] == [late.trade_id]
    stored = store.get_order(perp.client_order_id)
    assert (stored.status, stored.filled_qty) == (OrderStatus.CANCELED, D("0.01"))
    assert core.portfolio.position(PERP.key).qty == D("-0.01")
    assert core.by_name["pair"].filled == {"perp": "0.01"}


def test_a_fill_of_an_order_never_sent_is_an_external_fill_with_an_alert(store):
    clock = Clock()
    core = make_core(store, clock)
    liq = limit_order("autoclose-123", "0.002", Side.SELL, PERP)
    core.on_order_update(view(liq, OrderStatus.FILLED, "0.002"), trade(liq, "0.002", "69000", trade_id="L1"))
    core.on_order_update(view(liq, OrderStatus.FILLED, "0.002"), trade(liq, "0.002", "69000", trade_id="L1"))
    assert [(f.trade_id, f.strategy) for f in store.fills()] == [("L1", "external")]
    assert core.portfolio.position(PERP.key).qty == D("-0.002") == core.risk.position(PERP.key)
    assert [e.kind for e in store.events(kind="external_fill")] == ["external_fill"]
    assert store.orders() == []


def test_a_fee_in_bnb_is_valued_at_the_bnb_mark_and_says_so(store):
    clock = Clock()
    core = make_core(store, clock)
    core.on_book(book(BNB, "599", "601", clock.now))
    order = limit_order("o-bnb")
    store.save_order(order, new=True)
    core.on_order_update(view(order, OrderStatus.FILLED, "0.04"),
                         trade(order, "0.04", "70000", fee="0.001", fee_asset="BNB", trade_id="b1"))
    (fee,) = store.ledger(kind="fee")
    assert (fee["amount"], fee["asset"], fee["value_usd"], fee["price_source"]) == (
        D("-0.001"), "BNB", D("-0.6"), "mark:BNB")
    assert core.portfolio.position(SPOT.key).fees == D("0.6")


def test_restart_resumes_positions_balances_and_the_strategy_phase(store, tmp_path):
    clock = Clock()
    venue = ScriptVenue()
    core = make_core(store, clock, venue)
    core.book_transfer("binance", "USDT", D("5000"), clock.now, "opening:USDT", "opening balance", opening=True)
    open_pair(core, clock)
    spot, perp = venue.sent
    core.on_order_update(view(spot, OrderStatus.FILLED, "0.04"), trade(spot, "0.04", "70000", fee="0.00004",
                                                                       fee_asset="BTC"))
    core.on_order_update(view(perp, OrderStatus.FILLED, "0.04"), trade(perp, "0.04", "69990", fee="1.12"))
    before = ({k: p.qty for k, p in core.portfolio.positions.items()},
              {v: dict(w) for v, w in core.portfolio.balances.items()})
    again = Store(store.url)
    resumed = make_core(again, clock, ScriptVenue(), strategies=[PairStrategy()])
    after = ({k: p.qty for k, p in resumed.portfolio.positions.items()},
             {v: {a: x for a, x in w.items()} for v, w in resumed.portfolio.balances.items()})
    assert after == before
    assert before[1]["binance"] == {"USDT": D("5000") - D("2800"), "BTC": D("0.03996")}
    assert resumed.by_name["pair"].phase == "open"
    # the spot position holds what the buy left after its fee in BTC
    assert resumed.risk.position(SPOT.key) == D("0.03996") and resumed.risk.position(PERP.key) == D("-0.04")
    assert resumed.orders.epoch == core.orders.epoch + 1
    again.close()


OPEN = "import sys; from ate.store import Store; Store(sys.argv[1]).close()"


def test_concurrent_opens_of_a_new_store_all_succeed(tmp_path):
    """Two processes creating one store raced to "table orders already exists"; the migration lock orders them."""
    url = f"sqlite:///{tmp_path}/new.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", OPEN, url], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors

"""Kill at every write: a fault is injected at the n-th data-changing statement of a trading session, for
every n. Invariants:

- right after the kill the store is before or after each venue event, never between: every order's filled
  quantity is the sum of its fills, every fill has its fee entry, and the strategy's state agrees with the
  fills of its orders and holds the phase of every order written ahead;
- after a restart that replays the ledger and receives the venue's events again (at-least-once, as a
  reconnecting stream and reconciliation deliver them), the store, the positions, the balances and the
  strategy state equal those of the same session without a kill.
"""

from __future__ import annotations

import shutil
from collections import Counter
from decimal import Decimal

import pytest
from ledger_support import (
    PERP,
    Clock,
    Killed,
    ScriptVenue,
    WriteFault,
    make_core,
    open_pair,
    trade,
    view,
)

from ate.model import OrderStatus
from ate.store import Store

D = Decimal
FUNDING_TS = 1_773_734_400_000


def venue_script(order) -> list[tuple[OrderStatus, str, tuple | None]]:
    """What the venue says about each leg, in arrival order: (status, cumulative filled, fill)."""
    if order.meta["leg"] == "spot":  # ack, two partial fills (fee in BTC), the last one completes it
        return [(OrderStatus.SUBMITTED, "0", None),
                (OrderStatus.PARTIALLY_FILLED, "0.01", ("spot-1", "0.01", "70000", "0.00001", "BTC")),
                (OrderStatus.FILLED, "0.04", ("spot-2", "0.03", "70001", "0.00003", "BTC"))]
    # the IOC perp leg: REST EXPIRED with 0.03 executed arrives before the stream's trade (finding 1)
    return [(OrderStatus.EXPIRED, "0.03", None),
            (OrderStatus.PARTIALLY_FILLED, "0.03", ("perp-1", "0.03", "69990", "0.84", "USDT"))]


def session(core, clock: Clock, venue: ScriptVenue, sent_before: list) -> None:
    core.book_transfer("binance", "USDT", D("10000"), clock.now, "open:binance:USDT", "opening", opening=True)
    core.book_transfer("binance_usdm", "USDT", D("10000"), clock.now, "open:usdm:USDT", "opening", opening=True)
    open_pair(core, clock)
    for order in [*sent_before, *venue.sent]:  # everything the venue ever received, its events again
        for status, filled, fill in venue_script(order):
            f = None if fill is None else trade(order, fill[1], fill[2], fee=fill[3], fee_asset=fill[4],
                                                trade_id=fill[0])
            core.on_order_update(view(order, status, filled), f)
    core.on_funding(PERP.key, D("0.0001"), D("70000"), FUNDING_TS)


def snapshot(store: Store, core) -> dict:
    return {
        "fills": sorted((f.trade_id, f.qty, f.price, f.fee) for f in store.fills()),
        "ledger": Counter((e["kind"], e["venue"], e["asset"], e["amount"], e["ref"]) for e in store.ledger()),
        "orders": sorted((o.meta["leg"], o.status, o.filled_qty) for o in store.orders()),
        "positions": {k: (p.qty, p.entry_price) for k, p in core.portfolio.positions.items() if p.qty},
        "balances": {v: {a: x for a, x in w.items() if x} for v, w in core.portfolio.balances.items()},
        "risk": {k: core.risk.position(k) for k in core.portfolio.instruments},
        "strategy": store.get_state("strategy.pair"),
    }


def assert_between_events_never(store: Store) -> None:
    fills = store.fills()
    fee_refs = {e["ref"] for e in store.ledger(kind="fee")}
    for f in fills:
        assert not f.fee or f"fee:{f.venue}:{f.symbol}:{f.trade_id}" in fee_refs, f
    state = store.get_state("strategy.pair") or {"phase": "idle", "filled": {}}
    orders = store.orders()
    assert (state["phase"] == "open") == bool(orders)
    for o in orders:
        mine = sum((f.qty for f in fills if f.client_order_id == o.client_order_id), D(0))
        assert o.filled_qty == mine, o
        assert D(state["filled"].get(o.meta["leg"], "0")) == mine


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("tpl") / "ate.db"
    Store(f"sqlite:///{path}").close()
    return path


def run(path, fault_at: int | None):
    store = Store(f"sqlite:///{path}")
    fault = WriteFault(store, fault_at)
    clock = Clock()
    venue = ScriptVenue()
    try:
        session(make_core(store, clock, venue), clock, venue, [])
    except Killed:
        return None, fault.count, venue.sent
    return snapshot(store, make_core(Store(store.url), clock)), fault.count, venue.sent


def test_a_kill_at_any_write_leaves_the_store_before_or_after_an_event_and_a_restart_resumes(template, tmp_path):
    reference, writes, _ = run(shutil.copy(template, tmp_path / "ref.db"), None)
    assert reference["orders"] == [("perp", OrderStatus.EXPIRED, D("0.03")), ("spot", OrderStatus.FILLED, D("0.04"))]
    assert reference["strategy"] == {"phase": "open", "filled": {"spot": "0.04", "perp": "0.03"}}
    assert writes > 15
    for n in range(1, writes + 1):
        path = shutil.copy(template, tmp_path / f"kill{n}.db")
        killed, count, sent = run(path, n)
        assert killed is None and count == n
        dead = Store(f"sqlite:///{path}")
        assert_between_events_never(dead)
        dead.close()
        store = Store(f"sqlite:///{path}")
        clock = Clock(Clock().now + 1000)
        venue = ScriptVenue()
        session(make_core(store, clock, venue), clock, venue, sent)
        resumed = snapshot(store, make_core(Store(store.url), clock))
        assert resumed == reference, f"kill at write {n}"
        store.close()

"""Backpack order identity under 32-bit clientId collisions (issue 19, item 3).

Backpack's clientId is a uint32 derived from the ate client order id, so after ~77,000 orders two ids
share one number. Invariants: resolving an order never returns another order's outcome — a lookup only
accepts a venue order with the same symbol, side, quantity, price and sent inside the signing window,
and refuses (AMBIGUOUS → still unknown) when more than one qualifies. The colliding ids are real ones,
found by a birthday search over the engine's own deterministic ids.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_venues_sim_e2e import REPO, SEED, SPOT, START_MS, SimTime, sim_config  # noqa: E402

from ate.model import Order, OrderStatus, OrderType, Side, TimeInForce, backpack_client_id
from ate.model.order import client_order_id
from ate.sim.clock import SteppingClock
from ate.sim.runner import run_simulator
from ate.venues.backpack.client import AmbiguousOrder, BackpackClient, BackpackUrls, pick_order
from ate.venues.backpack.signing import public_key_from_seed
from ate.venues.base import Outcome
from ate.venues.credentials import Credentials


def colliding_pairs(wanted: int = 3) -> list[tuple[str, str]]:
    """Pairs of real ate client order ids (run "ate", strategy arbitrage) with the same Backpack clientId."""
    seen: dict[int, str] = {}
    pairs = []
    seq = 0
    while len(pairs) < wanted:
        coid = client_order_id("ate", "arbitrage", seq)
        cid = backpack_client_id(coid)
        if cid in seen:
            pairs.append((seen[cid], coid))
        else:
            seen[cid] = coid
        seq += 1
    return pairs


PAIRS = colliding_pairs()
T0 = 1_748_822_400_000
WINDOW = 5000


def venue_order(coid: str, side: Side, qty: str, price: str, created_ms: int, vid: int) -> Order:
    return Order(coid, "backpack", "BTC_USDC", side, OrderType.LIMIT, Decimal(qty), Decimal(price),
                 TimeInForce.IOC, status=OrderStatus.FILLED, venue_order_id=str(vid), created_ms=created_ms)


@settings(max_examples=300, deadline=None)
@given(pair=st.sampled_from(PAIRS), reached=st.booleans(), n_old=st.integers(0, 4),
       sides=st.lists(st.sampled_from(list(Side)), min_size=4, max_size=4),
       qtys=st.lists(st.sampled_from(["0.001", "0.002", "0.01"]), min_size=4, max_size=4),
       ages_s=st.lists(st.integers(-3, 30 * 86_400), min_size=4, max_size=4), same_as_ours=st.integers(0, 4))
def test_lookup_never_takes_a_colliding_order(pair, reached, n_old, sides, qtys, ages_s, same_as_ours):
    """Whatever older orders share our clientId, the lookup yields ours, nothing, or a refusal."""
    old_coid, ours_coid = pair
    assert backpack_client_id(old_coid) == backpack_client_id(ours_coid) and old_coid != ours_coid
    sent = T0 + 40 * 86_400_000
    ours = Order(ours_coid, "backpack", "BTC_USDC", Side.BUY, OrderType.LIMIT, Decimal("0.002"), Decimal("60000"),
                 TimeInForce.IOC, created_ms=sent)
    # the venue echoes the clientId only: every candidate comes back under the same (mapped) id
    history = [venue_order(ours_coid, sides[i], qtys[i], "60000", sent - ages_s[i] * 1000, 100 + i)
               for i in range(n_old)]
    # some older orders may be identical to ours in every attribute but their time
    for i in range(min(same_as_ours, n_old)):
        history[i] = replace(history[i], side=Side.BUY, qty=Decimal("0.002"))
    if reached:
        history.append(venue_order(ours_coid, Side.BUY, "0.002", "60000", sent + 40, 999))
    lo, hi = sent - 1000, sent + WINDOW + 1000
    qualifying = [o for o in history if o.side is Side.BUY and o.qty == Decimal("0.002") and lo <= o.created_ms <= hi]
    try:
        found = pick_order(history, ours, lo, hi)
    except AmbiguousOrder:
        assert len(qualifying) > 1
        return
    if found is None:
        assert qualifying == [] and not reached
    else:
        assert qualifying == [found]
        assert found.side is Side.BUY and found.qty == ours.qty and lo <= found.created_ms <= hi
        assert found.venue_order_id == "999" or not reached


def client(sim) -> BackpackClient:
    return BackpackClient(BackpackUrls(sim.url("backpack", "rest"), sim.url("backpack", "ws")),
                          Credentials(public_key_from_seed(SEED), SEED), clock=SimTime(sim))


@pytest.mark.skipif(not (REPO / SPOT).exists(), reason="simulator data files absent")
async def test_resolve_on_the_simulator_ignores_an_older_order_with_the_same_client_id():
    """Old code: an order that never reached the venue was "found" as the older colliding order (FILLED)."""
    old_coid, ours_coid = PAIRS[0]
    async with run_simulator(sim_config(), clock=SteppingClock(START_MS), base_dir=REPO) as sim:
        sim.advance(120_000)
        c = client(sim)
        await c.sync_clock()
        inst = {i.symbol: i for i in await c.instruments()}["BTC_USDC"]
        book = await c.book_ticker("BTC_USDC")
        old = Order(old_coid, "backpack", "BTC_USDC", Side.BUY, OrderType.LIMIT, Decimal("0.002"),
                    book.ask * Decimal("1.01"), TimeInForce.IOC, created_ms=c.clock.now_ms())
        assert (await c.place_order(old, inst)).order.status is OrderStatus.FILLED
        sim.advance(3_600_000)
        # ours never reached the venue (the request was lost): nothing may be found
        ours = Order(ours_coid, "backpack", "BTC_USDC", Side.BUY, OrderType.LIMIT, Decimal("0.002"),
                     book.ask * Decimal("1.01"), TimeInForce.IOC, created_ms=c.clock.now_ms())
        c.order_body(ours, inst)  # what would have been sent
        r = await c.resolve(ours)
        assert r.outcome is Outcome.REJECTED and r.code == "RESOURCE_NOT_FOUND"
        # ours reached the venue: the lookup returns it, not the older one with the same clientId
        book = await c.book_ticker("BTC_USDC")
        ours = replace(ours, price=book.ask * Decimal("1.01"), created_ms=c.clock.now_ms())
        placed = await c.place_order(ours, inst)
        r = await c.resolve(ours)
        assert r.outcome is Outcome.ACCEPTED and r.order.venue_order_id == placed.order.venue_order_id
        sim_orders = [o for o in sim.core.all_orders("alice", "backpack", "BTC_USDC")
                      if o.client_order_id == str(backpack_client_id(ours_coid))]
        assert len(sim_orders) == 2  # both really carry the same clientId at the venue
        # two qualifying orders inside one signing window: refused, never guessed
        twin = replace(ours, client_order_id=old_coid)
        twin_placed = await c.place_order(twin, inst)
        assert twin_placed.outcome is Outcome.ACCEPTED
        r = await c.resolve(ours)
        assert r.outcome is Outcome.UNKNOWN and r.code == "AMBIGUOUS"
        await c.close()

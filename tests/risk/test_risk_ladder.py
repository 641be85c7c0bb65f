from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_support import BP_SPOT, PERP, SPOT

from ate.model import OrderType, Purpose, Side
from ate.risk import Book, EmergencyLadder, Holding
from ate.risk.events import EMERGENCY_ACTION
from ate.risk.ladder import cut_intents, gross_exposure

D = Decimal
MARK = D("50000")


def book(directional="0.2", spot="0.1", perp="-0.1", arb="0.05"):
    return [
        Holding(PERP, D(directional), MARK, Book.DIRECTIONAL, strategy="directional"),
        Holding(SPOT, D(spot), MARK, Book.PAIR, pair="carry-1", strategy="carry"),
        Holding(PERP, D(perp), MARK, Book.PAIR, pair="carry-1", strategy="carry"),
        Holding(BP_SPOT, D(arb), MARK, Book.ARBITRAGE, strategy="arbitrage"),
    ]


def apply(holdings, intents):
    out = []
    for h in holdings:
        q = h.qty
        for i in intents:
            if (i.venue, i.symbol, i.strategy) == (h.instrument.venue, h.instrument.symbol, h.strategy):
                q += i.side.sign * i.qty
        out.append(Holding(h.instrument, q, h.mark, h.book, h.pair, h.strategy))
    return out


def test_reduce_25_then_nothing_more_at_the_same_level(store, clock):
    ladder = EmergencyLadder(store, clock)
    hs = book()
    assert gross_exposure(hs) == D("20000")  # arbitrage inventory excluded
    plan = ladder.plan(2, hs)
    assert plan.target == D("15000") and not plan.halt
    assert all(i.reduce_only and i.purpose is Purpose.CLOSE_ALL and i.type is OrderType.MARKET for i in plan.intents)
    by = {(i.symbol, i.strategy): (i.side, i.qty) for i in plan.intents}
    assert by == {("BTCUSDT_PERP", "directional"): (Side.SELL, D("0.05")),
                  ("BTCUSDT", "carry"): (Side.SELL, D("0.025")),   # the pair loses the same coins on both legs
                  ("BTCUSDT_PERP", "carry"): (Side.BUY, D("0.025"))}
    after = apply(hs, plan.intents)
    assert gross_exposure(after) == D("15000")
    assert ladder.plan(2, after).intents == []  # one-shot: the target is 75 % of X_ref, not of today
    assert ladder.plan(3, after).target == D("10000")
    assert len(store.events(kind=EMERGENCY_ACTION)) == 2


def test_shortfall_is_reissued_and_state_survives_restart(store, clock):
    ladder = EmergencyLadder(store, clock)
    hs = book()
    ladder.plan(4, hs)  # target 5,000
    restarted = EmergencyLadder(store, clock)
    assert restarted.x_ref == D("20000") and restarted.level == 4
    partially = apply(hs, [i for i in ladder.plan(4, hs).intents if i.strategy == "carry"])  # directional unfilled
    again = restarted.plan(4, partially)
    assert again.intents and gross_exposure(apply(partially, again.intents)) <= D("5000")
    # a lower level later the same episode never re-adds or cuts less than the deepest level
    assert restarted.plan(2, apply(partially, again.intents)).intents == []


def test_level_5_flattens_and_halts_keeping_arbitrage_inventory(store, clock):
    plan = EmergencyLadder(store, clock).plan(5, book())
    assert plan.halt and gross_exposure(apply(book(), plan.intents)) == 0
    assert {i.symbol for i in plan.intents} == {"BTCUSDT", "BTCUSDT_PERP"}  # backpack inventory kept
    plan = EmergencyLadder(store, clock, flatten_inventory=True).plan(5, book())
    assert any(i.symbol == "BTC_USDC" and i.side is Side.SELL and i.qty == D("0.05") for i in plan.intents)


def test_levels_below_2_do_nothing(store, clock):
    ladder = EmergencyLadder(store, clock)
    assert ladder.plan(1, book()).intents == [] and ladder.x_ref is None


@settings(max_examples=200, deadline=None)
@given(st.decimals(D("-2"), D("2"), places=3), st.decimals(D("0"), D("2"), places=3),
       st.decimals(D("0.01"), D("1"), places=2))
def test_cuts_only_reduce_and_keep_pairs_balanced(directional, pair_qty, fraction):
    hs = book(str(directional), str(pair_qty), str(-pair_qty))
    intents = cut_intents(hs, fraction, "t")
    after = apply(hs, intents)
    for before, now in zip(hs, after, strict=True):
        assert abs(now.qty) <= abs(before.qty) and now.qty * before.qty >= 0
    assert after[1].qty == -after[2].qty  # the pair stays delta neutral
    assert gross_exposure(after) <= gross_exposure(hs) * (1 - fraction) + 2 * D("0.001") * MARK

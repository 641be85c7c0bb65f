"""check_group: every leg of a multi-leg intent at one size, or none. One test per branch; each fails if its
condition is inverted or deleted. Headroom for strategies is pinned at the end."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_support import BP_SPOT, PERP, SPOT

from ate.config.risk import CanaryConfig, CapitalStagesConfig, RiskLimits
from ate.model import Mode, OrderIntent, Purpose, Side, TradingState
from ate.risk import Decision, PreTradeChecker, Reason, limits_in_force

D = Decimal
MARK = D("50000")


def checker(clock, mode=Mode.PAPER, **risk) -> PreTradeChecker:
    c = PreTradeChecker(limits_in_force(mode, RiskLimits(**risk), CanaryConfig(), CapitalStagesConfig(), None), clock)
    for inst in (SPOT, PERP, BP_SPOT):
        c.update_mark(inst.key, MARK, clock())
    return c


def leg(inst, side, qty, price=MARK, purpose=Purpose.ENTRY, **kw) -> OrderIntent:
    return OrderIntent(inst.venue, inst.symbol, side, D(qty), D(price), "arbitrage", purpose, group="g1", **kw)


def pair(qty="0.005", buy=SPOT, sell=BP_SPOT, **kw):
    return [leg(buy, Side.BUY, qty, **kw), leg(sell, Side.SELL, qty, **kw)], [buy, sell]


def pending(c: PreTradeChecker) -> list[Decimal]:
    return [c.pending(SPOT.key, Side.BUY), c.pending(BP_SPOT.key, Side.SELL)]


def test_within_every_cap_both_legs_approved_as_asked_and_reserved(clock):
    c = checker(clock)
    v = c.check_group(*pair("0.005"))
    assert (v.decision, v.reason) == (Decision.APPROVE, Reason.OK)
    assert [i.qty for i in v.intents] == [D("0.005"), D("0.005")]
    assert [i.group for i in v.intents] == ["g1", "g1"]
    assert pending(c) == [D("0.005"), D("0.005")]


def test_a_group_without_legs_or_with_a_missing_instrument_is_invalid(clock):
    c = checker(clock)
    assert c.check_group([], []).reason is Reason.INVALID
    intents, insts = pair()
    assert c.check_group(intents, insts[:1]).reason is Reason.INVALID
    assert pending(c) == [0, 0]


def test_one_leg_rejected_rejects_the_group_and_reserves_nothing(clock):
    """Finding 2: the position cap used on the buy market must stop the sell leg too."""
    c = checker(clock)  # position cap 2,500 USD = 0.05 BTC
    c.set_position(SPOT, D("0.05"))
    v = c.check_group(*pair("0.005"))
    assert (v.decision, v.reason, v.leg) == (Decision.REJECT, Reason.POSITION_CAP, 0)
    assert v.intents == ()
    assert pending(c) == [0, 0]


def test_a_rule_rejection_on_the_second_leg_rejects_the_first(clock):
    c = checker(clock)
    clock.advance(10_000)
    c.update_mark(SPOT.key, MARK, clock())  # backpack's mark is now stale
    v = c.check_group(*pair("0.005"))
    assert (v.decision, v.reason, v.leg) == (Decision.REJECT, Reason.NO_TRUSTED_PRICE, 1)
    assert pending(c) == [0, 0]


def test_the_tightest_leg_scales_every_leg_to_one_size(clock):
    """Finding 2: with the default 5 % single-trade cap the legs came out 0.00833 vs 0.00829."""
    c = checker(clock, max_single_trade_pct=0.25)
    c.set_position(BP_SPOT, D("-0.043"))  # sell room 0.007 BTC on backpack; buy room 0.05 on binance
    v = c.check_group(*pair("0.02"))
    assert (v.decision, v.reason, v.leg) == (Decision.TRIM, Reason.POSITION_CAP, 1)
    assert [i.qty for i in v.intents] == [D("0.007"), D("0.007")]
    assert pending(c) == [D("0.007"), D("0.007")]


def test_scaled_legs_land_on_a_step_every_venue_accepts(clock):
    c = checker(clock)  # single trade 500 USD at 50,000 = 0.01 BTC; ask 0.01 at a price above the mark
    v = c.check_group(*pair("0.0199", price="50010"))
    # binance alone would take 0.00999 (step 0.00001); backpack's step is 0.0001: both get 0.0099
    assert [i.qty for i in v.intents] == [D("0.0099"), D("0.0099")]
    assert v.reason is Reason.SINGLE_TRADE_CAP


def test_a_leg_asking_more_keeps_its_ratio_rounded_up(clock):
    """Carry: the spot buy is grossed up for a fee taken in base (q/(1-fee)), the perp short is q."""
    c = checker(clock, max_single_trade_pct=0.25)
    c.set_position(PERP, D("-0.04"))  # perp sell room 0.01 BTC: the perp leg binds
    spot = leg(SPOT, Side.BUY, "0.02002")  # 0.02 / 0.999, rounded up to the spot step
    perp = leg(PERP, Side.SELL, "0.02")
    v = c.check_group([spot, perp], [SPOT, PERP])
    assert (v.decision, v.reason, v.leg) == (Decision.TRIM, Reason.POSITION_CAP, 1)
    assert [i.qty for i in v.intents] == [D("0.01001"), D("0.01")]


def test_a_rounded_up_leg_above_its_own_bound_steps_the_hedge_down(clock):
    c = checker(clock, max_single_trade_pct=0.25)
    c.set_position(SPOT, D("0.04")); c.set_position(PERP, D("-0.04"))  # noqa: E702 both rooms 0.01 BTC
    spot = leg(SPOT, Side.BUY, "0.02002")
    perp = leg(PERP, Side.SELL, "0.02")
    v = c.check_group([spot, perp], [SPOT, PERP])
    # 0.01 perp would need 0.01001 spot > its 0.01 room: one perp step down
    assert [i.qty for i in v.intents] == [D("0.00901"), D("0.009")]
    assert v.leg == 0 and v.reason is Reason.POSITION_CAP


def test_a_rounded_up_leg_never_exceeds_its_bound_on_a_fine_grid(clock):
    c = checker(clock, max_single_trade_pct=0.25)
    c.set_position(BP_SPOT, D("-0.03993"))  # backpack sell room 0.01007 BTC, its step 0.0001
    base = leg(SPOT, Side.BUY, "0.02")
    more = leg(BP_SPOT, Side.SELL, "0.0201")
    v = c.check_group([base, more], [SPOT, BP_SPOT])
    # 0.01 × 1.005 = 0.01005 → 0.0101 (up) would pass the room: the base steps down until 0.0100 fits
    assert [i.qty for i in v.intents] == [D("0.00995"), D("0.01")]
    assert v.intents[1].qty <= D("0.01007") and (v.reason, v.leg) == (Reason.POSITION_CAP, 1)


def test_nothing_left_for_the_group_rejects_with_the_binding_limit(clock):
    c = checker(clock)
    c.set_position(BP_SPOT, D("-0.04995"))  # sell room 0.00005 BTC: below backpack's step
    v = c.check_group(*pair("0.005"))
    assert (v.decision, v.reason, v.leg) == (Decision.REJECT, Reason.POSITION_CAP, 1)
    assert pending(c) == [0, 0]


def test_a_venue_filter_at_the_common_size_rejects_every_leg(clock):
    """Canary: headroom below one venue's minimum notional sends nothing rather than one leg."""
    c = checker(clock)
    v = c.check_group(*pair("0.0002"))  # 10 USD: backpack (min 1) would take it, binance spot (min 5) too
    assert v.approved
    c2 = checker(clock)
    spot = leg(SPOT, Side.BUY, "0.001")
    perp = leg(PERP, Side.SELL, "0.001")  # 50 USD < the perp's 100 USD minimum
    v = c2.check_group([spot, perp], [SPOT, PERP])
    assert (v.decision, v.reason, v.leg) == (Decision.REJECT, Reason.MIN_NOTIONAL, 1)
    assert c2.pending(SPOT.key, Side.BUY) == 0


def test_the_rate_limit_must_take_every_leg(clock):
    c = checker(clock, max_orders_per_second=2)
    assert c.check(leg(SPOT, Side.BUY, "0.001"), SPOT).approved  # one of two slots on binance used
    both_binance = [leg(SPOT, Side.BUY, "0.001"), leg(PERP, Side.SELL, "0.002")]
    v = c.check_group(both_binance, [SPOT, PERP])
    assert (v.decision, v.reason) == (Decision.REJECT, Reason.RATE_LIMIT)
    assert c.pending(PERP.key, Side.SELL) == 0
    v = c.check_group(*pair("0.001"))  # one leg per venue: room on each
    assert v.approved


def test_halted_rejects_the_group_but_reducing_lets_a_hedge_pair_reduce(clock):
    c = checker(clock)
    c.set_state(TradingState.HALTED)
    assert c.check_group(*pair()).reason is Reason.HALTED
    c.set_state(TradingState.REDUCING)
    assert c.check_group(*pair()).reason is Reason.REDUCING
    c.set_position(SPOT, D("0.01")); c.set_position(PERP, D("-0.01"))  # noqa: E702
    exits = [leg(SPOT, Side.SELL, "0.01", purpose=Purpose.EXIT), leg(PERP, Side.BUY, "0.01", purpose=Purpose.EXIT)]
    v = c.check_group(exits, [SPOT, PERP])
    assert v.decision is Decision.APPROVE and [i.qty for i in v.intents] == [D("0.01"), D("0.01")]


def test_headroom_is_the_entry_notional_risk_would_still_accept(clock):
    c = checker(clock, mode=Mode.CANARY)  # canary: 2 % of 1,000 = 20 USD position, 5 % = 50 USD per trade
    assert c.headroom_usd() == D("50")
    assert c.headroom_usd(SPOT.key, Side.BUY) == D("20")
    c.set_position(SPOT, D("0.0003"))  # 15 USD held
    assert c.headroom_usd(SPOT.key, Side.BUY) == D("5")
    assert c.headroom_usd(SPOT.key, Side.SELL) == D("35")
    assert c.headroom_usd("binance:NOMARK", Side.BUY) == 0
    clock.advance(6_000)  # every mark older than the 5 s trust window
    assert c.headroom_usd(SPOT.key, Side.SELL) == 0
    c.update_mark(SPOT.key, MARK, clock())
    c.set_daily_loss(D("30"))
    assert c.headroom_usd() == 0
    c.set_daily_loss(D("0"))
    c.set_state(TradingState.REDUCING)
    assert c.headroom_usd(SPOT.key, Side.SELL) == 0


def test_markets_the_limits_leave_untradeable_are_named(clock):
    c = checker(clock, mode=Mode.CANARY)  # 20 USD position cap
    assert c.unreachable([SPOT, BP_SPOT, PERP]) == [
        "binance:BTCUSDT_PERP: the canary limits allow 20.00 USD per entry, below the venue's minimum notional "
        "100 USD"]
    assert checker(clock).unreachable([SPOT, BP_SPOT, PERP]) == []  # paper: 500 USD per entry


pairs = st.tuples(
    st.sampled_from([(SPOT, BP_SPOT), (BP_SPOT, SPOT), (SPOT, PERP)]),  # (buy leg, sell leg)
    st.decimals(D("0.0001"), D("0.2"), places=4),  # hedge quantity
    st.sampled_from([D(1), D("1.001"), D("1.0005")]),  # the buy leg grossed up for a fee taken in base
    st.decimals(D("-0.06"), D("0.06"), places=5), st.decimals(D("-0.06"), D("0.06"), places=5),  # positions
    st.sampled_from([0.05, 0.1, 0.25]),  # single-trade cap
    st.sampled_from(list(TradingState)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=pairs)
def test_property_all_legs_at_one_size_within_every_cap_or_none(clock, case):
    """Any pair, any positions and state: an approved group keeps its legs' ratio (hedge legs equal, a
    grossed-up leg within one step of the ratio asked), never asks more of a leg than that leg alone would get,
    passes every venue filter and reserves exactly what it sends; a rejected group reserves nothing."""
    (buy_i, sell_i), q, gross, p_buy, p_sell, single, state = case
    c = checker(clock, max_single_trade_pct=single)
    c.set_position(buy_i, p_buy)
    c.set_position(sell_i, p_sell)
    c.set_state(state)
    buy = leg(buy_i, Side.BUY, str(buy_i.round_qty(q * gross) if gross == 1 else _up(q * gross, buy_i)))
    sell = leg(sell_i, Side.SELL, str(q))
    alone = []
    for i, inst in ((buy, buy_i), (sell, sell_i)):
        probe = checker(clock, max_single_trade_pct=single)
        probe.set_position(buy_i, p_buy)
        probe.set_position(sell_i, p_sell)
        probe.set_state(state)
        v1 = probe.check(i, inst)
        alone.append(v1.intent.qty if v1.approved else None)
    v = c.check_group([buy, sell], [buy_i, sell_i])
    reserved = [c.pending(buy_i.key, Side.BUY), c.pending(sell_i.key, Side.SELL)]
    if not v.approved:
        assert v.intents == () and reserved == [0, 0]
        return
    qb, qs = (i.qty for i in v.intents)
    assert reserved == [qb, qs]
    assert all(a is not None for a in alone), "a leg no check would send alone went out with its group"
    assert qb <= alone[0] and qs <= alone[1]
    if buy.qty == sell.qty:
        assert qb == qs
    else:
        asked = buy.qty / sell.qty  # the ratio the strategy asked for (its fee gross-up, rounded up)
        assert qs * asked - D("1e-20") <= qb < qs * asked + buy_i.step_size  # (Decimal division's last digit)
    for o, inst in zip(v.intents, (buy_i, sell_i), strict=True):
        inst.check(o.qty, o.price)


def _up(x: Decimal, inst) -> Decimal:
    step = inst.step_size
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step

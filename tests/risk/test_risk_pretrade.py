from __future__ import annotations

from decimal import Decimal

import pytest
from risk_support import BP_SPOT, PERP, SPOT, FakeClock

from ate.config.risk import CanaryConfig, CapitalStagesConfig, RiskLimits
from ate.model import Mode, OrderIntent, OrderType, Purpose, Side, TradingState
from ate.risk import Decision, PreTradeChecker, Reason, limits_in_force

D = Decimal
MARK = D("50000")


def limits(mode=Mode.PAPER, stage=None, **risk):
    return limits_in_force(mode, RiskLimits(**risk), CanaryConfig(), CapitalStagesConfig(), stage)


def checker(clock, mode=Mode.PAPER, stage=None, **risk) -> PreTradeChecker:
    c = PreTradeChecker(limits(mode, stage, **risk), clock)
    for inst in (SPOT, PERP, BP_SPOT):
        c.update_mark(inst.key, MARK, clock())
    return c


def intent(qty, price=MARK, side=Side.BUY, purpose=Purpose.ENTRY, inst=SPOT, **kw) -> OrderIntent:
    return OrderIntent(inst.venue, inst.symbol, side, D(qty), None if price is None else D(price), "t", purpose, **kw)


def test_capital_in_force_by_mode():
    paper = limits(Mode.PAPER)
    assert (paper.capital, paper.max_order_usd, paper.max_single_trade_usd) == (10000, 2500, 500)
    assert (paper.max_position_usd, paper.daily_loss_usd) == (2500, 300)
    canary = limits(Mode.CANARY)
    # 2 % of 1,000 canary capital; daily loss the stricter of $30 and 3 % of 1,000
    assert (canary.capital, canary.max_position_usd, canary.daily_loss_usd) == (1000, 20, 30)
    live = limits(Mode.LIVE, stage=3)  # stage4: 10k, position 5 %, daily loss 3 %
    assert (live.capital, live.max_position_usd, live.daily_loss_usd, live.source) == (10000, 500, 300, "stage4")
    assert limits(Mode.LIVE, stage=None).capital == 1000  # never promoted: first stage


def test_approve_rounds_to_filters(clock):
    v = checker(clock).check(intent("0.0012345", "49999.999"), SPOT)
    assert v.decision is Decision.APPROVE and v.reason is Reason.OK
    assert (v.intent.qty, v.intent.price) == (D("0.00123"), D("49999.99"))


def test_single_trade_cap_trims_entries_only(clock):
    c = checker(clock)  # 5 % of 10,000 = 500 USD per entry = 0.01 BTC
    v = c.check(intent("0.05"), SPOT)
    assert (v.decision, v.reason, v.intent.qty) == (Decision.TRIM, Reason.SINGLE_TRADE_CAP, D("0.01"))
    c.set_position(PERP, D("-0.2"))
    v = c.check(intent("0.2", purpose=Purpose.EXIT, inst=PERP), PERP)
    assert (v.decision, v.reason, v.intent.qty) == (Decision.TRIM, Reason.ORDER_CAP, D("0.05"))  # 25 % = 2,500


def test_position_cap_counts_pending_orders(clock):
    c = checker(clock, max_single_trade_pct=0.25)  # position cap 2,500 USD = 0.05 BTC binds
    c.set_position(SPOT, D("0.03"))
    v = c.check(intent("0.04"), SPOT)
    assert (v.reason, v.intent.qty) == (Reason.POSITION_CAP, D("0.02"))
    # the approved 0.02 is pending: nothing more may be added until it fills or ends
    assert c.check(intent("0.01"), SPOT).reason is Reason.POSITION_CAP
    c.on_order_closed(SPOT.key, Side.BUY, D("0.015"))  # 0.005 filled... rest released
    c.on_fill(SPOT, Side.BUY, D("0.005"))
    assert c.position(SPOT.key) == D("0.035") and c.pending(SPOT.key, Side.BUY) == 0
    assert c.check(intent("0.1"), SPOT).intent.qty == D("0.015")


def test_price_deviation_and_stale_mark(clock):
    c = checker(clock)
    v = c.check(intent("0.001", "55000.01"), SPOT)
    assert (v.decision, v.reason) == (Decision.REJECT, Reason.PRICE_DEVIATION)
    assert c.check(intent("0.001", "55000"), SPOT).approved  # exactly 10 % is allowed
    clock.advance(5001)
    v = c.check(intent("0.001"), SPOT)
    assert v.reason is Reason.NO_TRUSTED_PRICE
    v = c.check(intent("0.001", side=Side.SELL, purpose=Purpose.EXIT), SPOT)
    assert v.reason is Reason.NO_TRUSTED_PRICE  # any order, not only entries


def test_daily_loss_blocks_entries_not_exits(clock):
    c = checker(clock)
    c.set_position(SPOT, D("0.01"))
    c.set_daily_loss(D("300"))
    assert c.check(intent("0.001"), SPOT).reason is Reason.DAILY_LOSS
    assert c.check(intent("0.001", side=Side.SELL, purpose=Purpose.EXIT), SPOT).approved


def test_rate_limit_per_venue_sliding_window(clock):
    c = checker(clock)
    assert all(c.check(intent("0.001"), SPOT).approved for _ in range(5))
    for _ in range(5):
        clock.advance(100)
        assert c.check(intent("0.0002", side=Side.SELL), SPOT).approved  # short 0.001 — still within caps
    assert c.check(intent("0.001"), SPOT).reason is Reason.RATE_LIMIT
    assert c.check(intent("0.0002", inst=BP_SPOT), BP_SPOT).approved  # another venue has its own budget
    clock.advance(501)  # the first five leave the window (t0 + 1000 < now)
    assert c.check(intent("0.001"), SPOT).approved


def test_reduce_only_only_shrinks(clock):
    c = checker(clock)
    c.set_position(PERP, D("0.01"))
    v = c.check(intent("0.005", side=Side.BUY, inst=PERP, reduce_only=True), PERP)
    assert v.reason is Reason.NOTHING_TO_REDUCE
    v = c.check(intent("0.02", side=Side.SELL, inst=PERP, reduce_only=True, purpose=Purpose.EXIT), PERP)
    assert (v.decision, v.reason, v.intent.qty) == (Decision.TRIM, Reason.REDUCE_ONLY, D("0.01"))
    # perp reduce-only orders are exempt from min notional (0.01 × 50,000 = 500 ≥ 100 anyway; try 0.001)
    c.on_order_closed(PERP.key, Side.SELL, D("0.01"))
    assert c.check(intent("0.001", side=Side.SELL, inst=PERP, reduce_only=True), PERP).approved
    assert c.check(intent("0.001", side=Side.SELL, inst=PERP), PERP).reason is Reason.MIN_NOTIONAL


def test_filters_reject_with_filter_name(clock):
    c = checker(clock)
    assert c.check(intent("0.00005"), SPOT).reason is Reason.MIN_NOTIONAL  # 2.5 USD < 5
    assert c.check(intent("0.000001"), SPOT).reason is Reason.LOT_SIZE
    v = c.check(intent("0.00005", None, type=OrderType.MARKET), SPOT)
    assert v.reason is Reason.MIN_NOTIONAL  # market orders are valued at the mark


def test_states(clock):
    c = checker(clock)
    c.set_position(SPOT, D("0.01"))
    c.set_position(PERP, D("-0.015"))
    c.set_state(TradingState.REDUCING)
    assert c.check(intent("0.001"), SPOT).reason is Reason.REDUCING
    # an exit in REDUCING must shrink its market even without the reduce-only flag
    assert c.check(intent("0.001", side=Side.BUY, purpose=Purpose.EXIT), SPOT).reason is Reason.NOTHING_TO_REDUCE
    # BTC delta is -0.005: a hedge may buy back at most that much of the perp short
    v = c.check(intent("0.01", side=Side.BUY, purpose=Purpose.HEDGE, inst=PERP), PERP)
    assert (v.reason, v.intent.qty) == (Reason.DELTA, D("0.005"))
    # a hedge that would open or grow a leg is refused in REDUCING
    v = c.check(intent("0.001", side=Side.SELL, purpose=Purpose.HEDGE, inst=PERP), PERP)
    assert v.reason is Reason.NOTHING_TO_REDUCE
    c.set_state(TradingState.HALTED)
    for purpose in (Purpose.ENTRY, Purpose.EXIT, Purpose.HEDGE, Purpose.UNWIND):
        assert c.check(intent("0.001", side=Side.SELL, purpose=purpose), SPOT).reason is Reason.HALTED
    clock.advance(60_000)  # close-all needs no fresh mark
    v = c.check(intent("1", None, side=Side.SELL, purpose=Purpose.CLOSE_ALL, type=OrderType.MARKET), SPOT)
    assert (v.decision, v.intent.qty, v.intent.reduce_only) == (Decision.TRIM, D("0.01"), True)


def test_counts_by_decision_and_reason(clock):
    c = checker(clock)
    c.check(intent("0.001"), SPOT)
    c.check(intent("0.001", "1"), SPOT)
    assert c.counts[(Decision.APPROVE, Reason.OK)] == 1
    assert c.counts[(Decision.REJECT, Reason.PRICE_DEVIATION)] == 1


@pytest.mark.parametrize("mode,cap", [(Mode.CANARY, D("20")), (Mode.LIVE, D("50"))])
def test_canary_and_stage_position_caps(mode, cap):
    clock = FakeClock()
    c = checker(clock, mode)
    v = c.check(intent("1", side=Side.BUY), SPOT)
    assert v.intent.qty * MARK <= cap and v.reason is Reason.POSITION_CAP

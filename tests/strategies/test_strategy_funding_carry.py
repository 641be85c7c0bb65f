"""Delta-neutral funding carry (§8): entry rule, funding sign and accrual, exits, guards, gamma."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from ate.config.modules import GammaConfig
from ate.config.strategies import FundingCarryConfig
from ate.data.loaders import load_funding
from ate.model import Fill, Instrument, MarketKind, Order, OrderIntent, OrderStatus, Purpose, Side
from ate.signals.gamma import Gamma
from ate.strategies.base import FundingInfo, MarginInfo, SimpleContext
from ate.strategies.funding_carry import (
    FundingCarryStrategy,
    entry_check,
    funding_payment,
    settlements_between,
)

DATA = Path(__file__).resolve().parents[2] / "data"
SPOT, PERP = "binance:BTCUSDT", "binance_usdm:BTCUSDT"
H8 = 8 * 3_600_000
SPOT_I = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"), D("0.00001"),
                    D("9000"), D("0.01"), D("1000000"), D("5"))
PERP_I = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.10"), D("0.001"),
                    D("0.001"), D("1000"), D("556.80"), D("4529764"), D("100"), grid_at_min=True)


# fills below charge fees in USDT (the BNB / quote-fee account): legs are equal
QUOTE_FEES = {"spot_fee_in_base": False}


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def rates_info(*bps: float, t_last: int, interval_ms: int | None = H8, predicted: float | None = None) -> FundingInfo:
    n = len(bps)
    settled = [(t_last - (n - 1 - i) * H8, D(repr(b)) / 10_000) for i, b in enumerate(bps)]
    return FundingInfo(settled, None if predicted is None else D(repr(predicted)) / 10_000, interval_ms)


def make_ctx(price: str = "42000", now: int = 0) -> SimpleContext:
    ctx = SimpleContext(now_ms=now, equity_usd=D("100000"), instruments={SPOT: SPOT_I, PERP: PERP_I})
    ctx.set_book(SPOT, price, price)
    ctx.set_book(PERP, price, price)
    return ctx


def fill_all(s: FundingCarryStrategy, ctx: SimpleContext, intents, price: str, qty: D | None = None,
             fee: str = "0") -> None:
    for n, i in enumerate(intents):
        o = Order(f"o{ctx.now_ms}-{n}", i.venue, i.symbol, i.side, i.type, i.qty, i.price, i.tif, i.reduce_only,
                  i.strategy, meta=dict(i.meta))
        q = i.qty if qty is None else min(qty, i.qty)
        if q > 0:
            o.apply_fill(q, D(price), ctx.now_ms)
            f = Fill(i.venue, i.symbol, f"t{ctx.now_ms}-{n}", o.client_order_id, "v", i.side, q, D(price), D(fee),
                     "USDT", False, ctx.now_ms, s.name)
            s.on_order_update(o, f, ctx)
        if o.is_open:
            o.transition(OrderStatus.EXPIRED, ctx.now_ms)
            s.on_order_update(o, None, ctx)


def open_pair(s: FundingCarryStrategy, ctx: SimpleContext, t: int, price: str = "42000") -> list[OrderIntent]:
    ctx.fundings[PERP] = rates_info(3, 3, 3, t_last=t - H8)
    ctx.now_ms = t
    intents = list(s.evaluate(ctx))
    fill_all(s, ctx, intents, price)
    del ctx.fundings[PERP]
    return intents


def test_entry_rule_acceptance_a():
    cfg = FundingCarryConfig()
    yes = entry_check(0.0003, [0.0001] * 3, 8.0, cfg)
    assert yes.enter and yes.expected_bps == pytest.approx(63) and yes.cost_bps == pytest.approx(38)
    no = entry_check(0.0001, [0.0001] * 3, 8.0, cfg)
    assert not no.enter and no.expected_bps == pytest.approx(21)
    assert not entry_check(0.0003, [0.0001, -0.0001, 0.0001], 8.0, cfg).enter  # persistence
    assert not entry_check(0.0003, [0.0001] * 2, 8.0, cfg).enter  # too little history
    hourly = entry_check(0.00002, [0.00002] * 3, 1.0, cfg)  # 0.2 bp/1h ≥ 0.125 bp; E = 0.2·168 = 33.6
    assert hourly.min_rate == pytest.approx(0.0000125) and hourly.expected_bps == pytest.approx(33.6)
    assert not hourly.enter


def test_strategy_enters_with_legs_of_zero_net_delta_after_the_spot_fee():
    s = FundingCarryStrategy(FundingCarryConfig(notional=10_000))
    ctx = make_ctx("60000")
    ctx.fundings[PERP] = rates_info(1, 2, 3, t_last=ms("2025-01-01"), predicted=3)
    spot, perp = s.evaluate(ctx)
    # the spot fee (10 bp) is taken from the coins bought: 0.166 / 0.999 = 0.1661662 → 0.16617 (step, up)
    assert (spot.venue, spot.symbol, spot.side, spot.qty, spot.price, spot.purpose) == (
        "binance", "BTCUSDT", Side.BUY, D("0.16617"), D("60060"), Purpose.ENTRY)
    assert spot.group == perp.group != ""  # one unit for the risk layer
    assert (perp.symbol, perp.side, perp.qty, perp.price, perp.reduce_only) == (
        "BTCUSDT", Side.SELL, D("0.166"), D("59940"), False)
    assert s.evaluate(ctx) == ()  # legs in flight
    ctx.fundings[PERP] = rates_info(1, 2, 3, t_last=ms("2025-01-01"), predicted=1)
    assert FundingCarryStrategy().evaluate(ctx) == ()
    assert FundingCarryStrategy().last_check is None


def test_unknown_interval_no_entry_degraded():
    s = FundingCarryStrategy()
    ctx = make_ctx()
    ctx.fundings[PERP] = FundingInfo([(ms("2025-01-01"), D("0.0005"))], D("0.0005"), None)
    assert s.evaluate(ctx) == ()
    assert s.metrics()["status"] == "DEGRADED"
    # the spacing of settled times gives the interval when the venue's metadata does not
    ctx.fundings[PERP] = rates_info(5, 5, 5, t_last=ms("2025-01-01"), interval_ms=None)
    assert len(s.evaluate(ctx)) == 2 and s.metrics()["status"] == "OK"


def test_vetoes_and_state_block_entry():
    ctx = make_ctx()
    ctx.fundings[PERP] = rates_info(5, 5, 5, t_last=ms("2025-01-01"))
    ctx.vetoes.add("hedged")
    assert FundingCarryStrategy().evaluate(ctx) == ()
    ctx.vetoes = {"market:binance_usdm:BTCUSDT"}
    assert FundingCarryStrategy().evaluate(ctx) == ()
    ctx.vetoes = {"directional"}
    assert len(FundingCarryStrategy().evaluate(ctx)) == 2


def test_funding_sign_acceptance_b():
    assert funding_payment(D("-2"), D("100000"), D("0.0001")) == D("20")
    assert funding_payment(D("-2"), D("100000"), D("-0.0001")) == D("-20")
    s = FundingCarryStrategy(FundingCarryConfig(notional=200_000))
    ctx = make_ctx("100000")
    t = ms("2025-01-01")
    open_pair(s, ctx, t, "100000")
    assert s.perp_qty == D("-2")
    s.on_funding(PERP, D("0.0001"), D("100000"), t + H8, ctx)
    s.on_funding(PERP, D("-0.0001"), D("100000"), t + 2 * H8, ctx)
    s.on_funding(PERP, D("0.0001"), D("100000"), t + 3 * H8, ctx)
    assert s.funding_captured == D("20") and s.payments == 3


def test_funding_sums_on_shipped_history_acceptance_c():
    rates = load_funding(DATA / "binance_usdm_BTCUSDT_funding.csv")
    year = settlements_between(rates, ms("2024-01-01"), ms("2025-01-01"))
    assert len(year) == 1098
    assert sum(r.rate for r in year) == D("0.11929474")
    assert sum(D(10_000) * r.rate for r in year) == D("1192.9474")
    june = settlements_between(rates, ms("2025-06-01"), ms("2025-06-24"))
    assert len(june) == 69 and sum(r.rate for r in june) == D("0.00188072")

    for t_open, t_close, n, total in ((ms("2024-01-01"), ms("2025-01-01"), 1098, D("8169.8876")),
                                      (ms("2025-06-01"), ms("2025-06-24"), 69, D("199.7208"))):
        s = FundingCarryStrategy(FundingCarryConfig(notional=42_000, **QUOTE_FEES))
        ctx = make_ctx()
        open_pair(s, ctx, t_open)  # 1 BTC short, opened at a funding time: that one is not paid
        assert s.perp_qty == D("-1") and s.spot_qty == D("1")
        for r in rates:
            if r.ts_ms == t_close:  # closed at a funding time, before its settlement arrives: still paid
                ctx.now_ms = t_close
                fill_all(s, ctx, s.close("operator", ctx), "42000")
                assert s.phase == "flat"
            s.on_funding(PERP, r.rate, r.mark_price, r.ts_ms, ctx)
        assert s.payments == n
        assert s.funding_captured.quantize(D("0.0001")) == total
        assert float(s.funding_captured) == pytest.approx(float(total), rel=1e-6)


def test_exit_after_two_negative_periods():
    s = FundingCarryStrategy(FundingCarryConfig(notional=42_000, **QUOTE_FEES))
    ctx = make_ctx()
    t = ms("2025-01-01")
    open_pair(s, ctx, t)
    ctx.fundings[PERP] = rates_info(3, 3, -1, t_last=t + H8)
    assert s.on_funding(PERP, D("-0.0001"), D("42000"), t + H8, ctx) == ()
    ctx.fundings[PERP] = rates_info(3, -1, -1, t_last=t + 2 * H8)
    spot, perp = s.on_funding(PERP, D("-0.0001"), D("42000"), t + 2 * H8, ctx)
    assert (spot.side, spot.qty, spot.purpose, spot.price) == (Side.SELL, D("1"), Purpose.EXIT, D("41958"))
    assert (perp.side, perp.qty, perp.reduce_only, perp.price) == (Side.BUY, D("1"), True, D("42042"))
    # half the spot leg fills: the rest is re-sent at the next evaluation
    ctx.now_ms = t + 2 * H8
    fill_all(s, ctx, [spot], "42000", qty=D("0.5"))
    fill_all(s, ctx, [perp], "42000")
    assert s.phase == "closing"
    (again,) = s.evaluate(ctx)
    assert (again.side, again.qty) == (Side.SELL, D("0.5"))
    fill_all(s, ctx, [again], "42000")
    m = s.metrics()
    assert m["phase"] == "flat" and m["pairs_closed"] == 1
    assert m["funding_captured_usd"] == pytest.approx(-8.4)  # two payments of −0.0001 on 1 BTC at 42,000
    assert m["losses"] == 1 and m["win_rate_pct"] == 0.0
    (trade,) = s.drain_trades()
    assert trade.net_pnl == pytest.approx(-8.4) and trade.entry_notional == pytest.approx(42_000)


def test_basis_guard():
    s = FundingCarryStrategy(FundingCarryConfig(notional=42_000))
    ctx = make_ctx()
    open_pair(s, ctx, ms("2025-01-01"))
    ctx.set_book(SPOT, "41900", "41901")  # spot −100
    ctx.set_book(PERP, "42099", "42100")  # short perp −100 → −200 = −47.6 bps of 42,000
    assert s.evaluate(ctx) == ()
    ctx.set_book(PERP, "42119", "42120")  # −220 = −52.4 bps
    intents = s.evaluate(ctx)
    assert len(intents) == 2 and "basis" in s.metrics()["exit_reason"]


def test_margin_guard_alert_grace_and_hard_limit():
    s = FundingCarryStrategy(FundingCarryConfig(notional=42_000))
    ctx = make_ctx()
    t = ms("2025-01-01")
    open_pair(s, ctx, t)
    s.drain_events()
    ctx.margins[PERP] = MarginInfo(D("2500"), D("1000"), D("56000"))  # ratio 2.5 < 3: alert only
    assert s.evaluate(ctx) == ()
    assert [e.kind for e in s.drain_events()] == ["funding_carry.add_collateral"]
    ctx.now_ms = t + 14 * 60_000
    assert s.evaluate(ctx) == ()
    ctx.now_ms = t + 15 * 60_000
    assert len(s.evaluate(ctx)) == 2 and "margin" in s.metrics()["exit_reason"]

    s2 = FundingCarryStrategy(FundingCarryConfig(notional=42_000))
    ctx2 = make_ctx()
    open_pair(s2, ctx2, t)
    ctx2.margins[PERP] = MarginInfo(D("10000"), D("1000"), D("49000"))  # 16.7 % from liquidation
    assert len(s2.evaluate(ctx2)) == 2 and "liquidation" in s2.metrics()["exit_reason"]
    ctx3 = make_ctx()
    s3 = FundingCarryStrategy(FundingCarryConfig(notional=42_000))
    open_pair(s3, ctx3, t)
    ctx3.margins[PERP] = MarginInfo(D("10000"), D("1000"), D("60000"))  # 42.9 % away, ratio 10: fine
    assert s3.evaluate(ctx3) == () and s3.drain_events() == []


def test_gamma_residual_hedge_and_deltas():
    s = FundingCarryStrategy(FundingCarryConfig(notional=42_000, **QUOTE_FEES))
    ctx = make_ctx()
    t = ms("2025-01-01")
    ctx.fundings[PERP] = rates_info(3, 3, 3, t_last=t - H8)
    ctx.now_ms = t
    spot, perp = s.evaluate(ctx)
    fill_all(s, ctx, [spot], "42000")
    fill_all(s, ctx, [perp], "42000", qty=D("0.97"))  # residual: spot +1.000, perp −0.970
    assert s.phase == "open"
    m = s.metrics()
    assert m["current_delta"] == pytest.approx(0.03) and m["target_delta"] == 0.0
    gamma = Gamma(GammaConfig())
    for book_id, book in s.hedge_books(ctx).items():
        gamma.register_book(book_id, book)
    for book_id, snap in s.hedge_snapshot(ctx).items():
        gamma.update_book(book_id, snap.spot, snap.perp, snap.mark, ctx.now_ms, snap.in_flight)
    (action,) = gamma.evaluate(ctx.now_ms).actions
    assert action.qty == pytest.approx(-0.03)
    (hedge,) = s.on_hedge(s.book_id, action.qty, ctx)
    assert (hedge.symbol, hedge.side, hedge.qty, hedge.purpose, hedge.reduce_only) == (
        "BTCUSDT", Side.SELL, D("0.03"), Purpose.HEDGE, False)
    assert hedge.meta["hedge_book"] == s.book_id
    assert s.hedge_snapshot(ctx)[s.book_id].in_flight
    assert s.on_hedge(s.book_id, action.qty, ctx) == ()  # one hedge at a time
    fill_all(s, ctx, [hedge], "42000")
    assert s.perp_qty == D("-1") and s.metrics()["current_delta"] == 0.0


def test_state_roundtrip():
    s = FundingCarryStrategy(FundingCarryConfig(notional=42_000))
    ctx = make_ctx()
    t = ms("2025-01-01")
    open_pair(s, ctx, t)
    s.on_funding(PERP, D("0.0001"), D("42000"), t + H8, ctx)
    s2 = FundingCarryStrategy(FundingCarryConfig(notional=42_000))
    s2.restore(json.loads(json.dumps(s.state())))
    assert s2.state() == s.state()
    s2.on_funding(PERP, D("0.0001"), D("42000"), t + 2 * H8, ctx)
    assert s2.funding_captured == D("8.4")


def fill_leg(s: FundingCarryStrategy, ctx: SimpleContext, i: OrderIntent, price: str, fee: D, fee_asset: str,
             n: int) -> None:
    o = Order(f"o{ctx.now_ms}-{n}", i.venue, i.symbol, i.side, i.type, i.qty, i.price, i.tif, i.reduce_only,
              i.strategy, meta=dict(i.meta))
    o.apply_fill(i.qty, D(price), ctx.now_ms)
    f = Fill(i.venue, i.symbol, f"t{ctx.now_ms}-{n}", o.client_order_id, "v", i.side, i.qty, D(price), fee,
             fee_asset, False, ctx.now_ms, s.name)
    s.on_order_update(o, f, ctx)


def test_fee_dust_never_keeps_a_pair_closing():
    """Finding 10: the spot buy's fee is taken in BTC; what the close cannot sell is dust, the pair closes."""
    s = FundingCarryStrategy(FundingCarryConfig(notional=546))
    ctx = make_ctx()
    t = ms("2025-01-01")
    ctx.fundings[PERP] = rates_info(3, 3, 3, t_last=t - H8)
    ctx.now_ms = t
    spot, perp = s.evaluate(ctx)
    assert (spot.qty, perp.qty) == (D("0.01302"), D("0.013"))  # 0.013 / 0.999 = 0.0130130 → up to the step
    fill_leg(s, ctx, spot, "42000", spot.qty * D("0.001"), "BTC", 0)  # 0.00001302 BTC fee
    fill_leg(s, ctx, perp, "42000", D("0.2"), "USDT", 1)
    assert s.phase == "open" and s.spot_qty == D("0.01300698") and s.perp_qty == D("-0.013")
    assert s.spot_qty + s.perp_qty < SPOT_I.step_size, "zero net delta within one spot step"
    ctx.now_ms = t + 60_000
    sell, buy = s.close("test", ctx)
    assert sell.group == buy.group != "" and (sell.qty, buy.qty) == (D("0.013"), D("0.013"))
    fill_leg(s, ctx, sell, "42000", D("0.5"), "USDT", 2)
    fill_leg(s, ctx, buy, "42000", D("0.2"), "USDT", 3)
    assert s.phase == "flat" and s.pairs_closed == 1, s.metrics()
    assert s.dust == D("0.00000698") and s.metrics()["dust"] == pytest.approx(0.00000698)
    assert "funding_carry.dust" in [e.kind for e in s.drain_events()]
    ctx.now_ms = t + 120_000
    ctx.fundings[PERP] = rates_info(3, 3, 3, t_last=t)
    assert len(s.evaluate(ctx)) == 2, "the carry trades again"
    again = FundingCarryStrategy()
    again.restore(json.loads(json.dumps(s.state())))
    assert again.dust == D("0.00000698")


def test_carry_sized_within_the_headroom_of_both_legs():
    s = FundingCarryStrategy(FundingCarryConfig(notional=10_000, spot_fee_in_base=False))
    ctx = make_ctx("60000")
    ctx.headroom.update({f"{SPOT}:BUY": D("6000"), f"{PERP}:SELL": D("3000")})
    ctx.fundings[PERP] = rates_info(1, 2, 3, t_last=ms("2025-01-01"), predicted=3)
    spot, perp = s.evaluate(ctx)
    assert spot.qty == perp.qty == D("0.05")
    ctx2 = make_ctx("60000")
    ctx2.headroom[f"{PERP}:SELL"] = D("50")  # below the perp's 100 USD minimum: no pair, no lone leg
    ctx2.fundings[PERP] = ctx.fundings[PERP]
    s2 = FundingCarryStrategy(FundingCarryConfig(notional=10_000))
    assert s2.evaluate(ctx2) == () and s2.phase == "flat" and not s2.pending
    assert "risk headroom 50.00 USD" in s2.drain_events()[0].message


def test_no_pair_on_a_perp_whose_leverage_the_venue_did_not_confirm():
    s = FundingCarryStrategy(FundingCarryConfig(notional=10_000))
    ctx = make_ctx("60000")
    ctx.fundings[PERP] = rates_info(1, 2, 3, t_last=ms("2025-01-01"), predicted=3)
    ctx.margins[PERP] = MarginInfo(D("1000"), D("10"), None, leverage_ok=False)
    assert s.evaluate(ctx) == () and s.metrics()["status"] == "DEGRADED"
    ctx.margins[PERP] = MarginInfo(D("1000"), D("10"), None)
    assert len(s.evaluate(ctx)) == 2

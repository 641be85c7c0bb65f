"""Cross-exchange arbitrage (§7): edge, sizing, legs, one-legged unwind, episodes, replay of real data."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from ate.config.strategies import ArbitrageConfig
from ate.data.loaders import iter_candles
from ate.model import Fill, Instrument, MarketKind, Order, OrderIntent, OrderStatus, Purpose, Side
from ate.strategies.arbitrage import STUCK_AFTER, ArbitrageStrategy, edge
from ate.strategies.base import SimpleContext

DATA = Path(__file__).resolve().parents[2] / "data"
A, B, CONV = "binance:BTCUSDT", "backpack:BTC_USDC", "binance:USDCUSDT"
T0 = 1_750_000_000_000

BINANCE = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"),
                     D("0.00001"), D("9000"), D("0.01"), D("1000000"), D("5"))
BACKPACK = Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, D("0.1"), D("0.00001"),
                      D("0.00001"), min_notional=D("1"))
USDCUSDT = Instrument("binance", "USDCUSDT", "USDC", "USDT", MarketKind.SPOT, D("0.0001"), D("1"), D("1"),
                      min_notional=D("5"))


def make_ctx() -> SimpleContext:
    ctx = SimpleContext(now_ms=T0, equity_usd=D("100000"), instruments={A: BINANCE, B: BACKPACK, CONV: USDCUSDT})
    ctx.set_book(A, "59990", "60000", "1", "0.8")
    ctx.set_book(B, "60300", "60310", "0.5", "1")
    ctx.set_book(CONV, "0.9997", "0.9999")
    ctx.set_balance("binance", "USDT", "3003")
    ctx.set_balance("binance", "BTC", "0.2")
    ctx.set_balance("backpack", "BTC", "0.2")
    ctx.set_balance("backpack", "USDC", "5000")
    ctx.multipliers["lxvx"] = 0.8
    return ctx


def order_for(intent: OrderIntent, n: int) -> Order:
    return Order(f"c{n}", intent.venue, intent.symbol, intent.side, intent.type, intent.qty, intent.price,
                 intent.tif, intent.reduce_only, intent.strategy, meta=dict(intent.meta))


def fill(strategy: ArbitrageStrategy, ctx: SimpleContext, order: Order, qty: str, price: D | None = None,
         close: bool = True) -> list[OrderIntent]:
    """Fill `qty` of an IOC order (0 = nothing) and expire the rest; return what the strategy answers."""
    out: list[OrderIntent] = []
    if D(qty) > 0:
        p = price if price is not None else order.price
        order.apply_fill(D(qty), p, ctx.now_ms)
        quote = "USDT" if order.venue == "binance" else "USDC"
        f = Fill(order.venue, order.symbol, f"t-{order.client_order_id}-{qty}", order.client_order_id, "v",
                 order.side, D(qty), p, D(qty) * p * D("0.001"), quote, False, ctx.now_ms, "arbitrage")
        out += strategy.on_order_update(order, f, ctx)
    if close and order.is_open:
        order.transition(OrderStatus.EXPIRED, ctx.now_ms)
        out += strategy.on_order_update(order, None, ctx)
    return out


def test_edge_and_size_acceptance_a():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    intents = s.on_book(B, ctx)
    e = s.last_edges[0]
    assert e.buy_market == A and e.sell_market == B
    assert 60_000 * (1 + e.gross_bps / 1e4) == pytest.approx(60_287.94, abs=1e-6)  # bid'
    assert e.gross_bps == pytest.approx(47.99, abs=0.005)
    assert e.raw_bps == pytest.approx(50.00, abs=0.005)
    assert e.basis_bps == pytest.approx(2.01, abs=0.005)
    assert e.net_bps == pytest.approx(22.99, abs=0.005)
    assert s.metrics()["basis_source"] == "mid"
    buy, sell = intents
    assert (buy.venue, buy.symbol, buy.side, buy.qty, buy.price) == ("binance", "BTCUSDT", Side.BUY, D("0.04"),
                                                                       D("60000"))
    assert (sell.venue, sell.symbol, sell.side, sell.qty, sell.price) == ("backpack", "BTC_USDC", Side.SELL,
                                                                            D("0.04"), D("60300"))
    assert buy.purpose is Purpose.ENTRY and buy.tif.value == "IOC"
    assert buy.meta["attempt"] == sell.meta["attempt"]
    assert buy.meta["expected_profit"] == "5.52"
    assert s.metrics()["opportunities_detected"] == 1
    # nothing more while the attempt is in flight, and the same episode is not counted twice
    ctx.now_ms += 600
    ctx.set_book(A, "59990", "60000", "1", "0.8")
    assert s.on_book(A, ctx) == ()
    assert s.metrics()["opportunities_detected"] == 1


def test_below_threshold_no_entry_and_fixed_rate():
    ctx = make_ctx()
    ctx.set_book(B, "60150", "60310", "0.5", "1")  # gross ≈ 23 bps, net ≈ −2 bps
    s = ArbitrageStrategy(ArbitrageConfig(conversion_rate=1.0))
    assert s.on_book(B, ctx) == ()
    assert s.metrics()["opportunities_detected"] == 0


def test_stale_book_acceptance_c():
    ctx = make_ctx()
    ctx.set_book(A, "59990", "60000", "1", "0.8", ts_ms=T0 - 1100)
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    assert s.on_book(B, ctx) == ()
    assert s.metrics()["opportunities_detected"] == 0
    ctx.set_book(A, "59990", "60000", "1", "0.8", ts_ms=T0 - 900)  # 0.9 s old: fresh
    assert len(s.on_book(A, ctx)) == 2


def test_no_rate_vetoes_instead_of_converting_at_one():
    ctx = make_ctx()
    del ctx.books[CONV]
    s = ArbitrageStrategy()
    assert s.on_book(B, ctx) == ()
    assert s.metrics()["basis"]["veto"] == "no price for binance:USDCUSDT"
    assert [(e.kind, e.severity.value) for e in s.drain_events()] == [("arbitrage.basis_veto", "critical")]


def test_one_legged_unwind_acceptance_b():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy_i, sell_i = s.on_book(B, ctx)
    buy, sell = order_for(buy_i, 1), order_for(sell_i, 2)
    assert fill(s, ctx, buy, "0.04") == []
    (complete,) = fill(s, ctx, sell, "0.025")
    assert (complete.venue, complete.side, complete.qty, complete.price) == ("backpack", Side.SELL, D("0.015"),
                                                                             D("60119.1"))
    assert complete.purpose is Purpose.UNWIND and complete.meta["attempt"] == buy_i.meta["attempt"]
    (revert,) = fill(s, ctx, order_for(complete, 3), "0.005")
    assert (revert.venue, revert.side, revert.qty, revert.price) == ("binance", Side.SELL, D("0.01"), D("59820"))
    assert fill(s, ctx, order_for(revert, 4), "0.01") == []
    m = s.metrics()
    r = D("0.9998")
    cash = -D("2400") + D("0.025") * 60300 * r + D("0.005") * D("60119.1") * r + D("0.01") * 59820
    fees = D("0.001") * (D("2400") + (D("0.025") * 60300 + D("0.005") * D("60119.1")) * r + D("598.2"))
    assert m["realised_pnl_usd"] == pytest.approx(float(cash - fees), abs=1e-9)
    assert m["trades_executed"] == 1 and m["one_legged"] == 1 and m["in_flight"] is None
    assert m["average_profit_bps"] == pytest.approx(float((cash - fees) / 2400) * 1e4)
    assert m["slippage_bps"] == pytest.approx(22.99 - m["average_profit_bps"], abs=0.01)
    assert m["blocked"] is None


def test_oversold_leg_completes_by_buying_then_reverts():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy_i, sell_i = s.on_book(B, ctx)
    assert fill(s, ctx, order_for(sell_i, 2), "0.04") == []
    (complete,) = fill(s, ctx, order_for(buy_i, 1), "0")
    assert (complete.venue, complete.side, complete.qty, complete.price) == ("binance", Side.BUY, D("0.04"),
                                                                             D("60180"))
    (revert,) = fill(s, ctx, order_for(complete, 3), "0.03")
    assert (revert.venue, revert.side, revert.qty, revert.price) == ("backpack", Side.BUY, D("0.01"),
                                                                     D("60480.9"))


def _one_legged_after_revert(s: ArbitrageStrategy, ctx: SimpleContext) -> None:
    """Buy 0.04 fills, sell, completion and revert find nothing: 0.04 BTC unhedged."""
    buy_i, sell_i = s.on_book(B, ctx)
    fill(s, ctx, order_for(buy_i, 1), "0.04")
    (complete,) = fill(s, ctx, order_for(sell_i, 2), "0")
    (revert,) = fill(s, ctx, order_for(complete, 3), "0")
    assert fill(s, ctx, order_for(revert, 4), "0.01") == []


def _books(ctx: SimpleContext, dt_ms: int) -> None:
    ctx.now_ms += dt_ms
    ctx.set_book(A, "59990", "60000", "1", "0.8")
    ctx.set_book(B, "60300", "60310", "0.5", "1")
    ctx.set_book(CONV, "0.9997", "0.9999")


def test_unmatched_residual_is_retried_with_backoff_and_reported_stuck_loudly():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    _one_legged_after_revert(s, ctx)
    assert s.attempt is not None and s.attempt.retry_at_ms == ctx.now_ms + 1000
    assert [e.kind for e in s.drain_events()] == ["arbitrage.unwind_retry"]
    _books(ctx, 999)
    assert s.on_book(B, ctx) == ()  # not before the delay, and no new attempt meanwhile
    _books(ctx, 1)
    assert s.on_book(CONV, ctx) == ()  # nor on a book of neither market
    delays = []
    for n in range(1, 8):
        _books(ctx, s.attempt.retry_at_ms - ctx.now_ms)
        (retry,) = s.on_book(B, ctx)
        # the 0.03 left is sold alternately on Backpack (whose book came: completing the pair) and back on
        # Binance (where it was bought), each within the cap of that venue's entry price
        venue_price = ("backpack", D("60119.1")) if n % 2 else ("binance", D("59820"))
        assert (retry.venue, retry.side, retry.qty, retry.price) == (venue_price[0], Side.SELL, D("0.03"),
                                                                     venue_price[1])
        assert retry.purpose is Purpose.UNWIND and retry.meta["leg"] == f"retry{n}"
        assert fill(s, ctx, order_for(retry, 10 + n), "0") == []  # a thin book: nothing again
        delays.append(s.attempt.retry_at_ms - ctx.now_ms)
    assert delays == [2000, 4000, 8000, 16000, 32000, 60000, 60000]
    crit = [e for e in s.drain_events() if e.severity == "critical"]
    assert [e.kind for e in crit] == ["arbitrage.stuck"] and crit[0].data["residual"] == "0.03"
    m = s.metrics()
    assert m["blocked"] and "0.03" in m["blocked"] and m["unwind_retries"] == 7
    # the book comes back: the retry fills, the attempt closes, the arbitrage trades again
    _books(ctx, 60000)
    (retry,) = s.on_book(B, ctx)
    assert fill(s, ctx, order_for(retry, 30), "0.03") == []
    assert s.attempt is None and s.stuck is None and s.metrics()["blocked"] is None
    assert "arbitrage.unstuck" in [e.kind for e in s.drain_events()]
    _books(ctx, 1000)
    assert len(s.on_book(B, ctx)) == 2, s.metrics()


def test_a_restart_resumes_the_retries_where_they_stopped():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    _one_legged_after_revert(s, ctx)
    for n in range(1, STUCK_AFTER + 1):
        _books(ctx, s.attempt.retry_at_ms - ctx.now_ms)
        (retry,) = s.on_book(B, ctx)
        fill(s, ctx, order_for(retry, 10 + n), "0")
    s2 = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    s2.restore(json.loads(json.dumps(s.state())))  # kill -9, restart
    assert (s2.attempt.retries, s2.attempt.retry_at_ms, s2.stuck) == (STUCK_AFTER, s.attempt.retry_at_ms, s.stuck)
    _books(ctx, s2.attempt.retry_at_ms - ctx.now_ms)
    (retry,) = s2.on_book(A, ctx)
    assert retry.meta["leg"] == f"retry{STUCK_AFTER + 1}" and retry.qty == D("0.03")
    assert fill(s2, ctx, order_for(retry, 40), "0.03") == []
    assert s2.attempt is None and s2.stuck is None


def test_operator_resolve_stops_the_retries():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    _one_legged_after_revert(s, ctx)
    s.resolve()
    assert s.attempt is None and s.stuck is None
    _books(ctx, 1000)
    assert len(s.on_book(B, ctx)) == 2


def test_unwind_rejected_for_no_trusted_price_is_retried_once_prices_arrive():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy_i, sell_i = s.on_book(B, ctx)
    fill(s, ctx, order_for(buy_i, 1), "0.04")
    (complete,) = fill(s, ctx, order_for(sell_i, 2), "0")
    (revert,) = s.on_intent_rejected(complete, "no_trusted_price", ctx)
    assert s.on_intent_rejected(revert, "no_trusted_price", ctx) == ()
    assert s.attempt is not None and s.stuck is None  # not stuck: retried
    _books(ctx, 1000)
    (retry,) = s.on_book(A, ctx)
    assert (retry.venue, retry.side, retry.qty) == ("binance", Side.SELL, D("0.04"))
    assert fill(s, ctx, order_for(retry, 5), "0.04") == []
    assert s.attempt is None and s.stuck is None and s.metrics()["unwind_loss_usd"] > 0


def test_leftover_below_one_venue_minimum_is_retried_on_the_other():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy_i, sell_i = s.on_book(B, ctx)
    # 0.00005 BTC ≈ 3 USD: below Binance's 5 USDT minimum notional, above Backpack's 1 USDC
    fill(s, ctx, order_for(sell_i, 2), "0.04")
    (complete,) = fill(s, ctx, order_for(buy_i, 1), "0.03995")
    assert (complete.venue, complete.side, complete.qty) == ("backpack", Side.BUY, D("0.00005")), "Binance cannot"
    assert fill(s, ctx, order_for(complete, 3), "0") == []  # the revert would be on Binance: not executable
    _books(ctx, 1000)
    (retry,) = s.on_book(B, ctx)
    assert (retry.venue, retry.side, retry.qty) == ("backpack", Side.BUY, D("0.00005"))
    assert fill(s, ctx, order_for(retry, 4), "0.00005") == []
    assert s.attempt is None and s.stuck is None and s.dust == 0


def test_rejected_leg_is_a_zero_fill():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy_i, sell_i = s.on_book(B, ctx)
    assert s.on_intent_rejected(buy_i, "risk", ctx) == ()
    assert s.on_intent_rejected(sell_i, "risk", ctx) == ()
    m = s.metrics()
    assert m["attempts_zero_fill"] == 1 and m["trades_executed"] == 0 and m["in_flight"] is None


def test_guards_veto_state_interval_minimums():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    ctx.vetoes.add("venue:backpack")
    assert s.on_book(B, ctx) == ()
    ctx.vetoes.clear()
    ctx.busy.add("arbitrage")
    assert s.on_book(B, ctx) == ()
    ctx.busy.clear()
    ctx.set_balance("backpack", "BTC", "0.00008")  # 0.8·0.00008 → 0.00006 BTC = 3.6 USD: below Binance's 5 USDT minimum notional
    assert s.on_book(B, ctx) == ()
    assert s.metrics()["skipped"] == {"veto": 1, "in_flight": 1, "MIN_NOTIONAL": 1}
    assert s.metrics()["opportunities_detected"] == 1  # one episode, traded or not


def test_episodes_and_reverse_direction():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    ctx.busy.add("other")  # irrelevant strategy busy
    assert len(s.on_book(B, ctx)) == 2
    s.attempt = None  # as if resolved
    ctx.now_ms += 100
    ctx.set_book(B, "60010", "60020")
    ctx.set_book(A, "59990", "60000")
    s.on_book(B, ctx)  # episode ends
    ctx.now_ms += 1000
    ctx.set_book(B, "60010", "60020")
    ctx.set_book(A, "60300", "60310")  # buy Backpack, sell Binance
    ctx.set_balance("backpack", "USDC", "5000")
    buy, sell = s.on_book(A, ctx)
    assert (buy.venue, buy.price, sell.venue, sell.price) == ("backpack", D("60020"), "binance", D("60300"))
    assert s.metrics()["opportunities_detected"] == 2
    assert s.metrics()["opportunities_by_day"] == {"2025-06-15": 2}


def test_skew_report_and_alert():
    ctx = make_ctx()
    s = ArbitrageStrategy()
    ctx.set_balance("binance", "BTC", "0.9")
    ctx.set_balance("backpack", "BTC", "0.1")
    s.update_skew(ctx)
    assert s.metrics()["skew"] == pytest.approx(0.4)
    assert [e.kind for e in s.drain_events()] == ["arbitrage.skew"]


def test_state_roundtrip_mid_attempt():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy_i, sell_i = s.on_book(B, ctx)
    fill(s, ctx, order_for(buy_i, 1), "0.04")
    s2 = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    s2.restore(json.loads(json.dumps(s.state())))
    (complete,) = fill(s2, ctx, order_for(sell_i, 2), "0.025")
    assert (complete.qty, complete.price) == (D("0.015"), D("60119.1"))
    assert s2.state()["seq"] == 1


def test_replay_binance_spot_vs_bybit_linear_acceptance_d():
    """Shipped March 2026 1m closes as books with bid = ask = close: zero opportunities."""
    spot = {c.open_ms: c.close for c in iter_candles(DATA / "binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz")}
    perp = {c.open_ms: c.close for c in iter_candles(DATA / "bybit_linear_BTCUSDT_1m_2026-02-27_2026-03-29.csv.gz")}
    common = sorted(spot.keys() & perp.keys())
    assert len(common) > 9000
    bybit = Instrument("bybit", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.1"), D("0.001"), D("0.001"))
    ctx = SimpleContext(instruments={A: BINANCE, "bybit:BTCUSDT": bybit})
    ctx.set_balance("binance", "USDT", "100000")
    ctx.set_balance("bybit", "USDT", "100000")
    ctx.set_balance("binance", "BTC", "10")
    ctx.set_balance("bybit", "BTC", "10")
    s = ArbitrageStrategy(ArbitrageConfig(market_b="bybit:BTCUSDT"))
    widest = 0.0
    for t in common:
        ctx.now_ms = t + 60_000
        ctx.set_book(A, str(spot[t]), str(spot[t]))
        ctx.set_book("bybit:BTCUSDT", str(perp[t]), str(perp[t]))
        assert s.on_book(A, ctx) == ()
        widest = max(widest, abs(edge(spot[t], perp[t], 1.0, 1.0, 0, 0, 0)[0]))
    assert s.metrics()["opportunities_detected"] == 0 and s.metrics()["trades_executed"] == 0
    assert widest <= 10.3


def test_pair_sized_within_the_smaller_headroom_of_its_legs_and_sent_as_one_group():
    ctx = make_ctx()
    ctx.headroom.update({"arbitrage": D("500"), f"{A}:BUY": D("120"), f"{B}:SELL": D("300")})
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy, sell = s.on_book(B, ctx)
    assert buy.qty == sell.qty == D("0.002")  # 120 USD / 60,000: lxvx (0.8) scales the wanted size, not the cap
    assert buy.group == sell.group == buy.meta["attempt"]


def test_headroom_below_the_venue_minimum_sends_nothing_and_warns_once():
    ctx = make_ctx()
    ctx.headroom[f"{A}:BUY"] = D("4")  # below Binance's 5 USD minimum notional
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000, min_attempt_interval_ms=0))
    assert not s.on_book(B, ctx) and not s.on_book(A, ctx)
    assert s.skipped["headroom"] == 2 and s.attempt is None
    assert [e.kind for e in s.drain_events()] == ["arbitrage.headroom"]


def test_an_excess_below_both_venues_minimum_is_dust_and_never_blocks():
    ctx = make_ctx()
    s = ArbitrageStrategy(ArbitrageConfig(max_notional=5000))
    buy, sell = (order_for(i, n) for n, i in enumerate(s.on_book(B, ctx)))
    fill(s, ctx, buy, "0.04")
    assert fill(s, ctx, sell, "0.039995") == []  # 0.000005 BTC left: below the 0.00001 step of both venues
    assert s.attempt is None and s.stuck is None
    assert s.dust == D("0.000005") and s.metrics()["dust"] == pytest.approx(0.000005)
    assert "arbitrage.dust" in [e.kind for e in s.drain_events()]

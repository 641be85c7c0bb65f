"""Matching core: order types, balances, resting fills on the replayed path, perps and funding."""

from decimal import Decimal as D
from pathlib import Path

import pytest

from ate.data.loaders import load_candles, load_funding
from ate.model import OrderStatus, OrderType, Side, TimeInForce
from ate.sim.clock import ManualClock
from ate.sim.core import BALANCE, ORDER, MatchingCore, OrderRejected, RejectReason
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM, KNOWN
from ate.sim.replay import Replayer

DATA = Path(__file__).resolve().parents[2] / "data"
SPOT_1M = DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
PERP_1M = DATA / "binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"
FUNDING = DATA / "binance_usdm_BTCUSDT_funding.csv"


@pytest.fixture
def spot():
    clock = ManualClock(1_000)
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D("0.001"), D("0.002"), depth_levels=3)
    core.add_account("a")
    core.deposit("a", BINANCE_SPOT, "USDT", D(100000))
    core.deposit("a", BINANCE_SPOT, "BTC", D(1))
    # bid 100000.00 x 0.5, ask 100000.10 x 0.5 (ticks of 0.01, steps of 0.00001)
    core.update_book(m, 10_000_000, 10_000_010, 50_000, 50_000, 1_000)
    return core, m, clock


def test_market_buy_walks_levels_and_charges_taker_fee_in_base(spot):
    core, m, _ = spot
    order, fills = core.place_order("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.7"))
    assert order.status is OrderStatus.FILLED
    assert [(f.price, f.qty) for f in fills] == [(D("100000.10"), D("0.5")), (D("100000.11"), D("0.2"))]
    cost = D("100000.10") * D("0.5") + D("100000.11") * D("0.2")
    bal = core.balances("a", BINANCE_SPOT)
    assert bal["BTC"].free == D(1) + D("0.7") - D("0.7") * D("0.002")
    assert bal["USDT"].free == D(100000) - cost


def test_insufficient_balance_is_a_typed_reject_and_changes_nothing(spot):
    core, _, _ = spot
    with pytest.raises(OrderRejected) as exc:
        core.place_order("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("2"), D("99000.00"))
    assert exc.value.reason is RejectReason.INSUFFICIENT_BALANCE
    assert core.balances("a", BINANCE_SPOT)["USDT"].free == D(100000)
    assert core.open_orders("a", BINANCE_SPOT) == []


def test_filters_post_only_duplicate_and_fok(spot):
    core, _, _ = spot
    place = core.place_order
    cases = [((Side.BUY, OrderType.LIMIT, D("0.001"), D("99000.001")), RejectReason.PRICE_FILTER),
             ((Side.BUY, OrderType.LIMIT, D("0.000001"), D("99000")), RejectReason.LOT_SIZE),
             ((Side.BUY, OrderType.LIMIT, D("0.00001"), D("99000")), RejectReason.MIN_NOTIONAL)]
    for args, reason in cases:
        with pytest.raises(OrderRejected) as exc:
            place("a", BINANCE_SPOT, "BTCUSDT", *args)
        assert exc.value.reason is reason
    with pytest.raises(OrderRejected) as exc:
        place("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.01"), D("100000.10"),
              tif=TimeInForce.POST_ONLY)
    assert exc.value.reason is RejectReason.POST_ONLY_WOULD_TAKE
    place("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.01"), D("99000"), client_order_id="c1")
    with pytest.raises(OrderRejected) as exc:
        place("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.01"), D("99000"), client_order_id="c1")
    assert exc.value.reason is RejectReason.DUPLICATE_CLIENT_ID
    # FOK for more than the 0.5 BTC bid at or above its limit expires untouched
    order, fills = place("a", BINANCE_SPOT, "BTCUSDT", Side.SELL, OrderType.LIMIT, D("1"), D("100000.00"),
                         tif=TimeInForce.FOK)
    assert order.status is OrderStatus.EXPIRED and fills == []
    assert core.balances("a", BINANCE_SPOT)["BTC"].free == D(1)
    # IOC takes what crosses its limit (the top bid level) and expires the rest
    order, fills = place("a", BINANCE_SPOT, "BTCUSDT", Side.SELL, OrderType.LIMIT, D("1"), D("100000.00"),
                         tif=TimeInForce.IOC)
    assert order.status is OrderStatus.EXPIRED and order.filled_qty == D("0.5")
    assert [(f.price, f.is_maker) for f in fills] == [(D("100000.00"), False)]
    assert core.balances("a", BINANCE_SPOT)["BTC"].free == D("0.5")


def test_resting_order_locks_funds_fills_as_maker_when_path_crosses_and_events_flow(spot):
    core, m, clock = spot
    events = []
    core.listen(lambda kind, payload: events.append((kind, payload)))
    order, fills = core.place_order("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.03"),
                                    D("99990.00"), client_order_id="rest-1")
    assert fills == [] and order.status is OrderStatus.SUBMITTED
    assert core.balances("a", BINANCE_SPOT)["USDT"].locked == D("0.03") * D("99990.00")
    clock.set(2_000)
    core.update_book(m, 9_999_000, 9_999_500, 1_000, 2_000, 2_000)  # ask 99995: not crossed
    assert order.status is OrderStatus.SUBMITTED
    core.update_book(m, 9_998_000, 9_998_500, 1_000, 2_000, 2_001)  # ask 99985 x 0.02: partial
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == D("0.02")
    core.update_book(m, 9_998_000, 9_998_500, 1_000, 2_000, 2_002)
    assert order.status is OrderStatus.FILLED
    trades = core.trades_for("a", BINANCE_SPOT, "BTCUSDT")
    assert [(t.price, t.qty, t.is_maker) for t in trades] == [(D("99990.00"), D("0.02"), True),
                                                               (D("99990.00"), D("0.01"), True)]
    bal = core.balances("a", BINANCE_SPOT)
    assert bal["USDT"].locked == 0
    assert bal["USDT"].free == D(100000) - D("0.03") * D("99990.00")
    assert bal["BTC"].free == D(1) + D("0.03") - D("0.03") * D("0.001")
    kinds = [(k, p.exec_type) if k == ORDER else k for k, p in events if k in (ORDER, BALANCE)]
    assert kinds[:1] == [(ORDER, "NEW")] and kinds.count((ORDER, "TRADE")) == 2 and BALANCE in kinds
    assert core.get_order("a", BINANCE_SPOT, "BTCUSDT", client_order_id="rest-1") is order


def test_cancel_releases_lock_and_unknown_cancel_is_rejected(spot):
    core, _, _ = spot
    order, _ = core.place_order("a", BINANCE_SPOT, "BTCUSDT", Side.SELL, OrderType.LIMIT, D("0.4"), D("110000"))
    assert core.balances("a", BINANCE_SPOT)["BTC"].locked == D("0.4")
    core.cancel_order("a", BINANCE_SPOT, "BTCUSDT", order_id=order.order_id)
    assert order.status is OrderStatus.CANCELED
    assert core.balances("a", BINANCE_SPOT)["BTC"].free == D(1)
    with pytest.raises(OrderRejected) as exc:
        core.cancel_order("a", BINANCE_SPOT, "BTCUSDT", order_id=order.order_id)
    assert exc.value.reason is RejectReason.UNKNOWN_ORDER


def test_intrabar_path_goes_open_nearer_extreme_other_extreme_close():
    clock = ManualClock()
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D(0), D(0))
    candles = load_candles(SPOT_1M)[:3]
    seen = []
    core.listen_book(lambda mk: seen.append(((mk.bid_t + mk.ask_t) / 2 * mk.tick_f, mk.ts_ms)))
    rep = Replayer(core, clock)
    rep.add_candles(m, candles, spread_bps=0.0)
    rep.run_all()
    c = candles[0]
    first, second = (c.high, c.low) if c.high - c.open <= c.open - c.low else (c.low, c.high)
    expect = [c.open, first, second, c.close]
    assert [round(p, 2) for p, _ in seen[:4]] == pytest.approx([e + 0.005 for e in expect], abs=0.006)
    assert [t for _, t in seen[:4]] == [c.open_ms, c.open_ms + 15_000, c.open_ms + 30_000, c.open_ms + 45_000]
    assert len(seen) == 12 and m.candles == candles


def test_day_of_minutes_replays_and_fills_a_resting_order_at_the_low():
    clock = ManualClock()
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D("0.001"), D("0.001"))
    core.add_account("a")
    core.deposit("a", BINANCE_SPOT, "USDT", D(100000))
    day = load_candles(SPOT_1M)[:1440]
    rep = Replayer(core, clock)
    rep.add_candles(m, day, spread_bps=0.0, size_fraction=0.1, min_size=0.01)
    rep.advance_to(day[0].open_ms)
    low = min(c.low for c in day[1:])
    price = D(str(round(low + 5, 2)))
    order, _ = core.place_order("a", BINANCE_SPOT, "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.01"), price)
    assert rep.run_all() == 1440 * 5 - 1  # 4 path points and a close per candle
    assert order.status is OrderStatus.FILLED and order.avg_price == price
    assert len(m.candles) == 1440


def _perp():
    clock = ManualClock()
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_USDM, "BTCUSDT")], D("0.0002"), D("0.0005"))
    core.add_account("p")
    return core, m, clock


def test_perp_position_margin_reduce_only_and_liquidation():
    core, m, clock = _perp()
    core.deposit("p", BINANCE_USDM, "USDT", D(1000))
    core.update_book(m, 1_000_000, 1_000_001, 100_000, 100_000, 0)  # 100000.0 / 100000.1
    core.update_mark(m, 0)
    with pytest.raises(OrderRejected) as exc:  # 1 BTC at 20x needs 5000 USDT margin
        core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.BUY, OrderType.MARKET, D("1"))
    assert exc.value.reason is RejectReason.INSUFFICIENT_MARGIN
    with pytest.raises(OrderRejected) as exc:
        core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.SELL, OrderType.MARKET, D("0.1"), reduce_only=True)
    assert exc.value.reason is RejectReason.REDUCE_ONLY_REJECTED
    core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.1"))
    pos = core.positions("p", BINANCE_USDM)["BTCUSDT"]
    assert pos.qty == D("0.1") and pos.entry_price == D("100000.1")
    fee = D("0.1") * D("100000.1") * D("0.0005")
    assert core.balances("p", BINANCE_USDM)["USDT"].free == D(1000) - fee
    # a 10% drop: equity (about -5) below maintenance (36) -> liquidated at the mark
    core.update_book(m, 900_000, 900_001, 100_000, 100_000, 1)
    core.update_mark(m, 1)
    assert pos.qty == 0
    assert core.balances("p", BINANCE_USDM)["USDT"].free == D(1000) - fee + (D("90000.05") - D("100000.1")) * D("0.1")


@pytest.mark.skipif(not PERP_1M.exists(), reason="perp data absent")
def test_short_over_a_month_of_real_funding_receives_exactly_notional_times_rate():
    core, m, clock = _perp()
    core.deposit("p", BINANCE_USDM, "USDT", D(100000))
    start, end = 1746403200000, 1749081600000  # 2025-05-05 00:00 .. 2025-06-05 00:00 UTC
    candles = load_candles(PERP_1M, start_ms=start, end_ms=end)
    rates = [r for r in load_funding(FUNDING) if start < r.ts_ms < end]
    assert len(rates) == 31 * 3 - 1 and all(r.mark_price is not None for r in rates)
    rep = Replayer(core, clock)
    rep.add_candles(m, candles, size_fraction=1.0, min_size=1.0)
    rep.add_funding(m, rates)
    rep.advance_to(start)
    _, fills = core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.SELL, OrderType.MARKET, D("1"))
    wallet_after_entry = core.balances("p", BINANCE_USDM)["USDT"].free
    rep.run_all()
    received = [e.amount for e in core.funding_for("p", BINANCE_USDM, "BTCUSDT")]
    expected = [D(1) * r.mark_price * r.rate for r in rates]
    assert received == expected
    assert sum(received) == sum(expected) != 0
    assert core.balances("p", BINANCE_USDM)["USDT"].free == wallet_after_entry + sum(expected)
    assert core.positions("p", BINANCE_USDM)["BTCUSDT"].qty == D(-1)
    assert m.next_funding_ms == 0 or m.next_funding_ms >= rates[-1].ts_ms


def test_reduce_only_never_flips_a_position():
    core, m, clock = _perp()
    core.deposit("p", BINANCE_USDM, "USDT", D(100000))
    core.update_book(m, 1_000_000, 1_000_001, 100_000, 100_000, 0)
    core.update_mark(m, 0)
    core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.3"))
    with pytest.raises(OrderRejected) as exc:  # more than the position
        core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.SELL, OrderType.MARKET, D("0.4"), reduce_only=True)
    assert exc.value.reason is RejectReason.REDUCE_ONLY_REJECTED
    a, _ = core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.SELL, OrderType.LIMIT, D("0.2"), D("100100.0"),
                            reduce_only=True)
    b, _ = core.place_order("p", BINANCE_USDM, "BTCUSDT", Side.SELL, OrderType.LIMIT, D("0.2"), D("100200.0"),
                            reduce_only=True)
    core.update_book(m, 1_002_500, 1_002_501, 100_000, 100_000, 1)  # bid 100250 crosses both
    assert (a.status, a.filled_qty) == (OrderStatus.FILLED, D("0.2"))
    assert (b.status, b.filled_qty) == (OrderStatus.EXPIRED, D("0.1"))  # nothing left to reduce
    assert core.positions("p", BINANCE_USDM)["BTCUSDT"].qty == 0
    assert core.balances("p", BINANCE_USDM)["USDT"].locked == 0

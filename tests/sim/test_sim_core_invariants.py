"""Property test: any sequence of orders, cancels and book moves keeps spot accounting exact."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from ate.model import OrderType, Side, TimeInForce
from ate.sim.clock import ManualClock
from ate.sim.core import MatchingCore, OrderRejected
from ate.sim.instruments import BINANCE_SPOT, KNOWN

MID = 10_000_000  # 100000.00 in ticks

op = st.one_of(
    st.tuples(st.just("limit"), st.sampled_from(list(Side)), st.integers(-30, 30), st.integers(100, 200_000),
              st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY])),
    st.tuples(st.just("market"), st.sampled_from(list(Side)), st.integers(100, 200_000)),
    st.tuples(st.just("quote"), st.sampled_from(list(Side)), st.integers(10, 5000)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("book"), st.integers(-40, 40), st.integers(1, 5), st.integers(1, 100_000)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, min_size=1, max_size=40))
def test_spot_balances_locks_and_fills_always_reconcile(ops):
    clock = ManualClock(1)
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D("0.001"), D("0.002"), depth_levels=3, depth_step_ticks=2)
    core.add_account("a")
    core.deposit("a", BINANCE_SPOT, "USDT", D(50_000))
    core.deposit("a", BINANCE_SPOT, "BTC", D("0.5"))
    core.update_book(m, MID, MID + 1, 50_000, 50_000, 1)
    for n, o in enumerate(ops):
        clock.set(2 + n)
        try:
            if o[0] == "limit":
                _, side, offset, steps, tif = o
                core.place_order("a", BINANCE_SPOT, "BTCUSDT", side, OrderType.LIMIT, steps * m.step,
                                 (MID + offset) * m.tick, tif=tif)
            elif o[0] == "market":
                core.place_order("a", BINANCE_SPOT, "BTCUSDT", o[1], OrderType.MARKET, o[2] * m.step)
            elif o[0] == "quote":
                core.place_order("a", BINANCE_SPOT, "BTCUSDT", o[1], OrderType.MARKET, D(0), quote_qty=D(o[2]))
            elif o[0] == "cancel":
                opened = core.open_orders("a", BINANCE_SPOT)
                if opened:
                    core.cancel_order("a", BINANCE_SPOT, "BTCUSDT", opened[o[1] % len(opened)].order_id)
            else:
                _, move, spread, size = o
                core.update_book(m, MID + move, MID + move + spread, size, size, 2 + n)
        except OrderRejected:
            pass
        bal = core.balances("a", BINANCE_SPOT)
        usdt, btc = bal["USDT"], bal["BTC"]
        assert min(usdt.free, usdt.locked, btc.free, btc.locked) >= 0
        opened = core.open_orders("a", BINANCE_SPOT)
        assert usdt.locked == sum((x.locked for x in opened if x.side is Side.BUY), D(0))
        assert btc.locked == sum((x.locked for x in opened if x.side is Side.SELL), D(0))
        fills = core.trades_for("a", BINANCE_SPOT)
        bought = sum((f.qty - f.fee for f in fills if f.side is Side.BUY), D(0))
        sold = sum((f.qty for f in fills if f.side is Side.SELL), D(0))
        spent = sum((f.qty * f.price for f in fills if f.side is Side.BUY), D(0))
        got = sum((f.qty * f.price - f.fee for f in fills if f.side is Side.SELL), D(0))
        assert btc.total == D("0.5") + bought - sold
        assert usdt.total == D(50_000) - spent + got
        for x in core.all_orders("a", BINANCE_SPOT):
            assert x.filled_qty == sum((f.qty for f in fills if f.order_id == x.order_id), D(0))
            assert x.filled_qty <= x.qty


perp_op = st.one_of(
    st.tuples(st.just("limit"), st.sampled_from(list(Side)), st.integers(-30, 30), st.integers(1, 300),
              st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.POST_ONLY]), st.booleans()),
    st.tuples(st.just("market"), st.sampled_from(list(Side)), st.integers(1, 300), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("book"), st.integers(-400, 400), st.integers(1, 5), st.integers(1, 500)),
    st.tuples(st.just("funding"), st.integers(-100, 100)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(perp_op, min_size=1, max_size=40))
def test_perp_wallet_equals_deposit_plus_realized_minus_fees_plus_funding(ops):
    from ate.sim.instruments import BINANCE_USDM

    clock = ManualClock(1)
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_USDM, "BTCUSDT")], D("0.0002"), D("0.0005"), depth_levels=3)
    core.add_account("p")
    core.deposit("p", BINANCE_USDM, "USDT", D(20_000))
    mid = 1_000_000  # 100000.0 in ticks of 0.1
    core.update_book(m, mid, mid + 1, 500, 500, 1)
    core.update_mark(m, 1)
    for n, o in enumerate(ops):
        clock.set(2 + n)
        try:
            if o[0] == "limit":
                _, side, offset, steps, tif, ro = o
                core.place_order("p", BINANCE_USDM, "BTCUSDT", side, OrderType.LIMIT, steps * m.step,
                                 (mid + offset) * m.tick, tif=tif, reduce_only=ro)
            elif o[0] == "market":
                core.place_order("p", BINANCE_USDM, "BTCUSDT", o[1], OrderType.MARKET, o[2] * m.step,
                                 reduce_only=o[3])
            elif o[0] == "cancel":
                opened = core.open_orders("p", BINANCE_USDM)
                if opened:
                    core.cancel_order("p", BINANCE_USDM, "BTCUSDT", opened[o[1] % len(opened)].order_id)
            elif o[0] == "book":
                _, move, spread, size = o
                core.update_book(m, mid + move, mid + move + spread, size, size, 2 + n)
                core.update_mark(m, 2 + n)
            else:
                core.settle_funding(BINANCE_USDM, "BTCUSDT", 2 + n, D(o[1]) / D(1_000_000))
        except OrderRejected:
            pass
        usdt = core.balances("p", BINANCE_USDM)["USDT"]
        pos = core.positions("p", BINANCE_USDM).get("BTCUSDT")
        fills = core.trades_for("p", BINANCE_USDM)
        funding = sum((e.amount for e in core.funding_for("p", BINANCE_USDM)), D(0))
        # moves of at most 40 USDT cannot liquidate what 20000 USDT margins, so every change is a fill
        assert usdt.total == D(20_000) + sum((f.realized_pnl - f.fee for f in fills), D(0)) + funding
        opened = core.open_orders("p", BINANCE_USDM)
        assert usdt.locked == sum((x.locked for x in opened), D(0)) and usdt.locked >= 0
        signed = sum((f.qty * f.side.sign for f in fills), D(0))
        assert (pos.qty if pos else D(0)) == signed

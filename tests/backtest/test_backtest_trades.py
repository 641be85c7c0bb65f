"""Round trips from fills (base-coin fees, dust, funding) and the matching-core executor."""

from decimal import Decimal as D

import pytest

from ate.backtest.data import instrument_for
from ate.backtest.trades import FundingPayment, build
from ate.data.candles import Candle
from ate.model import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from ate.sim.clock import ManualClock
from ate.sim.core import MatchingCore
from ate.sim.executor import MatchingExecutor
from ate.sim.replay import Replayer

SPOT, PERP = "binance:BTCUSDT", "binance_usdm:BTCUSDT"
INSTRUMENTS = {SPOT: instrument_for(SPOT), PERP: instrument_for(PERP)}


def _fill(market, side, qty, price, fee, fee_asset, ts, strategy="s"):
    venue, _, symbol = market.partition(":")
    return Fill(venue, symbol, str(ts), f"c{ts}", f"v{ts}", side, D(qty), D(price), D(fee), fee_asset, False, ts,
                strategy)


def test_spot_round_trips_with_base_fees_and_dust():
    fills = [
        _fill(SPOT, Side.BUY, "0.00263", "45000", "0.00000263", "BTC", 1),
        _fill(SPOT, Side.SELL, "0.00262", "46000", "0.12052", "USDT", 2),  # leaves 0.00000737 BTC dust
        _fill(SPOT, Side.BUY, "0.001", "40000", "0.000001", "BTC", 3),
        _fill(SPOT, Side.SELL, "0.001", "39000", "0.039", "USDT", 4),  # dust shrinks by 0.000001
    ]
    trades, ledger, still_open = build(fills, [], INSTRUMENTS)
    assert still_open == 0
    assert len(trades) == 2
    t1, t2 = trades
    # −118.35 + 120.52 − 0.12052 + 0.00000737 × 46000
    assert t1.pnl == pytest.approx(2.38850, abs=1e-9)
    assert t1.fees == pytest.approx(0.11835 + 0.12052, abs=1e-12)
    assert (t1.entry_ms, t1.exit_ms, t1.entry_price, t1.exit_price, t1.qty) == (1, 2, 45000.0, 46000.0, 0.00263)
    # −40 + 39 − 0.039 − 0.000001 × 39000
    assert t2.pnl == pytest.approx(-1.078, abs=1e-9)
    assert [e.kind for e in ledger] == ["fee"] * 4
    assert sum(e.amount for e in ledger) == pytest.approx(0.11835 + 0.12052 + 0.04 + 0.039)


def test_perp_round_trip_collects_funding_while_open_only():
    fills = [_fill(PERP, Side.SELL, "1", "100", "0.05", "USDT", 10), _fill(PERP, Side.BUY, "1", "90", "0.045", "USDT", 30)]
    funding = [FundingPayment(PERP, 10, D("5"), D("0.05"), D(100), D(0)),  # settles before the entry at t=10
               FundingPayment(PERP, 20, D("2"), D("0.02"), D(100), D(-1)),
               FundingPayment(PERP, 30, D("1"), D("0.01"), D(100), D(-1))]  # paid before the exit at t=30
    trades, ledger, _ = build(fills, funding, INSTRUMENTS)
    (t,) = trades
    assert t.side == "SELL" and t.funding == pytest.approx(3.0)
    assert t.pnl == pytest.approx(100 - 90 - 0.095 + 3.0)
    assert [e.kind for e in ledger if e.kind == "funding"] == ["funding"] * 3
    assert build(fills[:1], funding, INSTRUMENTS)[2] == 1  # the short is still open


def _world():
    clock = ManualClock(0)
    core = MatchingCore(clock=clock.now_ms)
    m = core.add_market(INSTRUMENTS[SPOT], D("0.001"), D("0.001"), venue="binance")
    core.add_account("bt")
    core.deposit("bt", "binance", "USDT", D(10_000))
    rep = Replayer(core, clock)
    candles = [Candle(i * 60_000, 100.0 - i, 100.5 - i, 99.0 - i, 99.5 - i, 50.0) for i in range(5)]
    rep.add_candles(m, candles, spread_bps=1.0, size_fraction=1.0)
    return core, rep


def _order(cid, side, qty, price, tif=TimeInForce.GTC):
    return Order(cid, "binance", "BTCUSDT", side, OrderType.LIMIT, D(qty), D(price), tif, strategy="s",
                 meta={"purpose": "entry"})


def test_resting_limit_fills_on_a_later_book_and_is_reported_on_flush():
    core, rep = _world()
    seen = []
    ex = MatchingExecutor(core, "bt", lambda view, fill: seen.append((view.status, fill)))
    rep.advance_to(0)  # book around 100
    ex.submit(_order("b1", Side.BUY, "1", "97.00"), INSTRUMENTS[SPOT])
    assert [s for s, _ in seen] == [OrderStatus.SUBMITTED]
    rep.advance_to(4 * 60_000 - 1)  # candle 3 trades down to 96: the ask crosses 97
    assert len(seen) == 1  # nothing delivered from inside the core call
    ex.flush()
    statuses = [s for s, _ in seen]
    assert statuses[-1] is OrderStatus.FILLED
    fill = next(f for _, f in seen if f is not None)
    assert fill.price == D("97.00") and fill.is_maker and fill.strategy == "s" and fill.fee == D("0.001")
    assert ex.fills[0].purpose == "entry"
    assert core._listeners == []  # stops listening once nothing of ours is left in the core


def test_rejection_is_reported_as_rejected_view():
    core, rep = _world()
    seen = []
    ex = MatchingExecutor(core, "bt", lambda view, fill: seen.append(view))
    rep.advance_to(0)
    ex.submit(_order("big", Side.BUY, "1000", "101.00", TimeInForce.IOC), INSTRUMENTS[SPOT])
    assert [v.status for v in seen] == [OrderStatus.REJECTED]
    assert "INSUFFICIENT_BALANCE" in seen[0].reason
    assert ex.rejections == [(0, "big", "INSUFFICIENT_BALANCE")]


def _leg(strategy, venue, entry, exit_, pnl, fees=0.0, funding=0.0):
    from ate.backtest.stats import Trade

    return Trade(strategy, venue, "BTCUSDT", "BUY", entry, exit_, 100.0, 101.0, 1.0, pnl, fees, funding)


def test_overlapping_legs_of_one_strategy_are_one_round_trip():
    from ate.backtest.trades import strategy_round_trips

    legs = [_leg("carry", "binance", 10, 50, 1.25, 0.1), _leg("carry", "binance_usdm", 10, 50, -0.75, 0.05, 3.5),
            _leg("carry", "binance", 50, 90, -2.0),  # re-entry at the exit time: a new trade
            _leg("directional", "binance", 20, 40, 0.5),  # another strategy, same time: its own trade
            _leg("directional", "binance_usdm", 30, 60, 0.25)]  # a hedge opened while the entry is held
    trips = strategy_round_trips(legs)
    assert [(t.strategy, t.venue, t.entry_ms, t.exit_ms, t.legs) for t in trips] == [
        ("carry", "binance+binance_usdm", 10, 50, 2), ("directional", "binance+binance_usdm", 20, 60, 2),
        ("carry", "binance", 50, 90, 1)]
    assert (trips[0].pnl, trips[0].fees, trips[0].funding) == (0.5, 0.15, 3.5)  # summed exactly, rounded once
    assert trips[1].pnl == 0.75

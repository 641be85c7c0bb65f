"""Funding carry over the shipped funding history: a constant hedged position, reference §8 (c)."""

from decimal import Decimal
from pathlib import Path

import pytest
from backtest_st_strategy import ConstantHedge, permissive_config

from ate.backtest.data import BacktestData, MarketData, instrument_for
from ate.backtest.runner import ReplaySettings, run_backtest
from ate.data.loaders import load_candles, load_funding
from ate.strategies.base import Strategy

ROOT = Path(__file__).resolve().parents[2] / "data"
SPOT_1H = ROOT / "binance_spot_BTCUSDT_1h.csv.gz"
FUNDING = ROOT / "binance_usdm_BTCUSDT_funding.csv"
OPEN, CLOSE = 1_704_067_200_000, 1_735_689_600_000  # 2024-01-01 00:00, 2025-01-01 00:00 UTC
SPOT, PERP = "binance:BTCUSDT", "binance_usdm:BTCUSDT"


@pytest.mark.skipif(not (SPOT_1H.exists() and FUNDING.exists()), reason="shipped 1h candles or funding absent")
def test_constant_hedge_collects_the_hand_computed_funding():
    # No perp 1h history is shipped: the perp book replays the spot 1h candles. Funding payments use the
    # funding file's own mark prices, so the price source does not enter the sum.
    candles = load_candles(SPOT_1H, start_ms=OPEN - 3_600_000, end_ms=CLOSE)
    funding = [r for r in load_funding(FUNDING) if candles[0].open_ms < r.ts_ms <= candles[-1].close_ms]
    data = BacktestData(SPOT, {SPOT: MarketData(SPOT, instrument_for(SPOT), candles),
                               PERP: MarketData(PERP, instrument_for(PERP), list(candles), funding)})
    fees = {"binance": (Decimal("0.001"), Decimal("0.001")), "binance_usdm": (Decimal("0.0002"), Decimal("0.0005"))}
    res = run_backtest(permissive_config(), data, settings=ReplaySettings(size_fraction=10.0, fees=fees),
                       strategies=[ConstantHedge(OPEN, CLOSE)], capital=Decimal(200_000))

    assert not res.rejections
    paid = [p for p in res.funding if p.market == PERP]
    assert len(paid) == 1098  # the 2024-01-01 00:00 payment precedes the open; 2025-01-01 00:00 is paid
    assert paid[0].ts_ms == OPEN + 8 * 3_600_000 and paid[-1].ts_ms == CLOSE
    assert sum(p.rate for p in paid) == Decimal("0.11929474")
    total = sum(p.amount for p in paid)  # 1 BTC short: Σ mark·rate, exact (the reference prints 4 places)
    assert total == sum(p.mark * p.rate for p in paid)
    assert total.quantize(Decimal("0.0001")) == Decimal("8169.8876")
    assert all(p.position_qty == Decimal(-1) for p in paid)
    assert res.stats["funding_net"] == pytest.approx(8169.8875991, abs=1e-6)
    assert res.stats["by_strategy"]["carry_test"]["funding_net"] == pytest.approx(8169.8875991, abs=1e-6)
    perp_leg = [t for t in res.legs if t.venue == "binance_usdm"]
    assert len(perp_leg) == 1 and perp_leg[0].funding == pytest.approx(8169.8875991, abs=1e-6)
    # the spot/perp pair is one strategy round trip, with its funding, its two legs' fees and P&L
    pair = [t for t in res.trades if t.strategy == "carry_test"]
    assert len(pair) == 1 and pair[0].legs == 2 and pair[0].venue == "binance+binance_usdm"
    assert pair[0].funding == pytest.approx(8169.8875991, abs=1e-6)
    legs = [t for t in res.legs if t.strategy == "carry_test"]
    assert len(legs) == 2
    assert pair[0].pnl == pytest.approx(sum(t.pnl for t in legs), rel=1e-15)
    assert pair[0].fees == pytest.approx(sum(t.fees for t in legs), rel=1e-15)
    assert res.stats["trades"] == 1 and set(res.stats["by_venue"]) == {"binance", "binance_usdm"}


class FundingSpy(Strategy):
    name = "spy"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Decimal, Decimal | None]] = []

    def on_funding(self, market, rate, mark, ts_ms, ctx):
        self.seen.append((rate, ctx.funding(market).predicted))
        return ()


@pytest.mark.skipif(not (SPOT_1H.exists() and FUNDING.exists()), reason="shipped 1h candles or funding absent")
def test_predicted_rate_is_the_last_settled_one():
    candles = load_candles(SPOT_1H, start_ms=OPEN, end_ms=OPEN + 3 * 86_400_000)
    funding = [r for r in load_funding(FUNDING) if candles[0].open_ms < r.ts_ms <= candles[-1].close_ms]
    data = BacktestData(PERP, {PERP: MarketData(PERP, instrument_for(PERP), candles, funding)})
    spy = FundingSpy()
    run_backtest(permissive_config(), data, strategies=[spy])
    assert len(spy.seen) == 9
    assert spy.seen == [(r.rate, r.rate) for r in funding]  # never the next (future) settlement

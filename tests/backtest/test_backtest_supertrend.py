"""ate's backtest of a long/flat Supertrend vs an independent vectorised computation on the real 1h file."""

from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
from backtest_st_strategy import SupertrendLongFlat, permissive_config

from ate.backtest.data import BacktestData, MarketData, instrument_for
from ate.backtest.runner import ReplaySettings, run_backtest
from ate.data.loaders import load_candles

DATA = Path(__file__).resolve().parents[2] / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
FEE = Decimal("0.001")
SPREAD_BPS = 1.0
TICK, STEP = Decimal("0.01"), Decimal("0.00001")


def reference(df: pd.DataFrame, capital: Decimal):
    """Supertrend(10, 3) on TA-Lib's ATR, then all-in/all-out fills at the touch at each decision time."""
    h, lo, c, o = (df[k].to_numpy() for k in ("high", "low", "close", "open"))
    atr = talib.ATR(h, lo, c, timeperiod=10)
    mid = (h + lo) / 2
    bu, bl = mid + 3 * atr, mid - 3 * atr
    n = len(df)
    direction = np.zeros(n, dtype=int)
    fu, fl = bu.copy(), bl.copy()
    first = int(np.argmax(~np.isnan(atr)))
    direction[first] = 1
    for i in range(first + 1, n):
        fu[i] = bu[i] if (bu[i] < fu[i - 1] or c[i - 1] > fu[i - 1]) else fu[i - 1]
        fl[i] = bl[i] if (bl[i] > fl[i - 1] or c[i - 1] < fl[i - 1]) else fl[i - 1]
        d = direction[i - 1]
        direction[i] = -1 if (d == 1 and c[i] < fl[i - 1]) else 1 if (d == -1 and c[i] > fu[i - 1]) else d
    # The book at a bar's close time is the next bar's open (or this bar's close at the end or a gap),
    # quoted with the simulator's spread model: mid on the tick grid, spread_bps (≥ 1 tick) around it.
    opens_ms = df["open_time_ms"].to_numpy()
    contiguous = np.append(opens_ms[1:] == opens_ms[:-1] + 3_600_000, False)
    px = np.where(contiguous, np.append(o[1:], np.nan), c)
    mid_t = np.rint(px / 0.01).astype(np.int64)
    spread_t = np.maximum(1, np.rint(px * SPREAD_BPS / 1e4 / 0.01)).astype(np.int64)
    bid_t = mid_t - spread_t // 2
    ask_t = bid_t + spread_t
    cash, btc = capital, Decimal(0)
    trades, entry = [], None
    for i in np.flatnonzero(direction != 0):
        t = int(opens_ms[i]) + 3_600_000
        bid, ask = int(bid_t[i]) * TICK, int(ask_t[i]) * TICK
        if direction[i] == 1 and btc < STEP:
            qty = (cash / ask / STEP).to_integral_value(ROUND_FLOOR) * STEP
            cash -= qty * ask
            btc += qty - qty * FEE
            entry = (t, ask, qty)
        elif direction[i] == -1 and btc >= STEP:
            qty = (btc / STEP).to_integral_value(ROUND_FLOOR) * STEP
            cash += qty * bid - qty * bid * FEE
            btc -= qty
            trades.append((entry[0], t, entry[1], bid, entry[2]))
    final = cash + btc * Decimal(repr(float(c[-1])))
    return trades, final


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")
def test_supertrend_matches_independent_reference_to_the_cent():
    candles = load_candles(DATA)  # the whole file: 2018 → 2026, ~73k hours
    df = pd.read_csv(DATA)
    assert len(df) == len(candles) > 70_000
    capital = Decimal("10000")
    ref_trades, ref_final = reference(df, capital)

    cfg = permissive_config()
    data = BacktestData("binance:BTCUSDT", {"binance:BTCUSDT": MarketData("binance:BTCUSDT",
                                                                          instrument_for("binance:BTCUSDT"), candles)})
    # top of book 10x the candle's volume: every all-in order fills at the touch, as the reference assumes
    settings = ReplaySettings(spread_bps=SPREAD_BPS, size_fraction=10.0, fees={"binance": (FEE, FEE)})
    res = run_backtest(cfg, data, settings=settings, strategies=[SupertrendLongFlat()], capital=capital)

    assert not res.rejections
    # all the venue's money is in the matching core; the result reports it exactly
    got = [(t.entry_ms, t.exit_ms, Decimal(repr(t.entry_price)), Decimal(repr(t.exit_price)),
            Decimal(repr(t.qty))) for t in res.trades]
    assert len(ref_trades) > 100
    assert got == ref_trades
    assert res.final_equity.quantize(Decimal("0.01")) == ref_final.quantize(Decimal("0.01"))
    # every fill is one price level: nothing was left to the depth walk
    assert all(len({f["price"] for f in res.fills if f["client_order_id"] == cid}) == 1
               for cid in {f["client_order_id"] for f in res.fills})
    assert res.stats["trades"] == len(ref_trades)
    assert res.stats["fees_paid"] > 0

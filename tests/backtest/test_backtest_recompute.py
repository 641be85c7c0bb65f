"""Every accounting figure of a backtest recomputed independently from its raw fills, candles and funding.

Runs: the full engine (default strategies) on ETH 1h spot + perp with ETH funding from ../shared/data, and
on 1m BTC spot + perp (repo data). The recomputation shares no code with the runner or the statistics:
cash flows are replayed from the fill and funding rows; equity at every sampled step is cash + spot
coins × the last close + perp position × the last perp close (perp P&L as −Σ signed qty·price + position ·
close, no entry-price averaging); drawdown is pandas' running maximum over that series; Sharpe and Sortino
come from pandas' as-of values at UTC midnights. Agreement: 4e-14 relative (money), and the funding
paid on each settlement equals −position × mark × rate with the position replayed from the fills.
"""

import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ate.backtest.data import load_window, parse_date
from ate.backtest.runner import run_backtest
from ate.config import parse_config
from ate.model import MarketKind

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
REL = 4e-14
DAY_MS = 86_400_000

ETH = {
    "mode": "backtest", "run_id": "recompute-eth",
    "markets": {"primary": "binance:ETHUSDT", "backpack": [],
                "binance": [{"symbol": "ETHUSDT"}, {"symbol": "ETHUSDT", "kind": "perp"}]},
    "strategies": {"directional": {"market": "binance:ETHUSDT"}, "arbitrage": {"enabled": False},
                   "funding_carry": {"spot_market": "binance:ETHUSDT", "perp_market": "binance_usdm:ETHUSDT"}},
}
BTC = {"mode": "backtest", "run_id": "recompute-1m", "strategies": {"arbitrage": {"enabled": False}}}

RUNS = {
    "eth_1h": (ETH, {"binance:ETHUSDT": SHARED / "binance_spot_ETHUSDT_1h.csv.gz",
                     "binance_usdm:ETHUSDT": SHARED / "binance_usdm_ETHUSDT_perp_1h.csv.gz"},
               "2024-01-01", "2024-04-01", [SHARED], True),
    "btc_1m": (BTC, {"binance:BTCUSDT": ROOT / "data" / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz",
                     "binance_usdm:BTCUSDT": ROOT / "data" / "binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"},
               "2025-06-03", "2025-06-10", [ROOT / "data"], False),
}


@pytest.fixture(scope="module", params=sorted(RUNS))
def run(request):
    doc, files, start, end, dirs, _ = RUNS[request.param]
    if not all(p.exists() for p in files.values()):
        pytest.skip(f"data for {request.param} absent")
    cfg = parse_config(doc, env={})
    data = load_window(cfg.markets.primary, files, parse_date(start), parse_date(end), data_dirs=dirs)
    res = run_backtest(cfg, data)
    assert res.fills, "the run must trade for the recomputation to bite"
    return request.param, data, res, _replay(data, res)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(1.0, abs(a), abs(b))


def _replay(data, res):
    """Independent equity at every sampled step, and the funding check, from the raw rows."""
    kinds = {k: md.instrument.kind for k, md in data.markets.items()}
    bases = {k: md.instrument.base for k, md in data.markets.items()}
    candles = {k: md.candles for k, md in data.markets.items()}
    last = dict.fromkeys(data.markets, -1)  # index of the last candle closed by the current point
    events = sorted([(f["ts_ms"], 1, i, f) for i, f in enumerate(res.fills)]
                    + [(p.ts_ms, 0, i, p) for i, p in enumerate(res.funding)], key=lambda e: e[:3])
    cash = Decimal(repr(res.equity[0].equity))  # the starting capital, all in stablecoins
    coins = dict.fromkeys(data.markets, Decimal(0))  # spot coins or perp position, per market
    fees = Decimal(0)
    funding_checked = 0
    values = []
    ei = 0
    for point in res.equity[1:]:
        while ei < len(events) and events[ei][0] <= point.ts_ms:
            _, kind, _, ev = events[ei]
            ei += 1
            if kind == 0:  # funding: −position × mark × rate, received (+) or paid (−)
                assert ev.position_qty == coins[ev.market]
                assert ev.amount == -coins[ev.market] * ev.mark * ev.rate
                cash += ev.amount
                funding_checked += 1
                continue
            m, qty, price, fee = ev["market"], Decimal(ev["qty"]), Decimal(ev["price"]), Decimal(ev["fee"])
            sign = 1 if ev["side"] == "BUY" else -1
            cash -= sign * qty * price
            coins[m] += sign * qty
            if ev["fee_asset"] == bases[m] and kinds[m] is MarketKind.SPOT:
                coins[m] -= fee
                fees += fee * price
            else:
                cash -= fee
                fees += fee
        total = cash
        for m, q in coins.items():
            cs = candles[m]
            while last[m] + 1 < len(cs) and cs[last[m] + 1].close_ms <= point.ts_ms:
                last[m] += 1
            if q:
                total += q * Decimal(repr(cs[last[m]].close))
        values.append((point.ts_ms, total))
    return values, fees, funding_checked


def test_equity_fees_funding_and_pnl_recomputed(run):
    name, data, res, (values, fees, funding_checked) = run
    assert funding_checked == len(res.funding)
    assert funding_checked > 0 or not RUNS[name][-1]  # the ETH run holds a carry pair through settlements
    worst = max(_rel(float(v), p.equity) for (_, v), p in zip(values, res.equity[1:], strict=True))
    assert worst <= REL
    assert float(values[-1][1]) == pytest.approx(float(res.final_equity), rel=REL, abs=0)
    assert _rel(float(fees), res.stats["fees_paid"]) <= REL
    net_funding = sum((p.amount for p in res.funding), Decimal(0))
    assert _rel(float(net_funding), res.stats["funding_net"]) <= REL
    # closed round trips + what is still open = everything the account made
    assert len(res.legs) >= len(res.trades)
    assert sum(t.legs for t in res.trades) == len(res.legs)


def test_drawdown_and_ratios_recomputed(run):
    _, data, res, (values, _, _) = run
    s = pd.Series([float(res.equity[0].equity)] + [float(v) for _, v in values],
                  index=[res.equity[0].ts_ms] + [t for t, _ in values])
    dd = (1 - s / s.cummax()).max()
    assert abs(dd - res.stats["max_drawdown"]) <= REL
    # full resolution: one equity point per replay step of the run
    steps = len({c.close_ms for md in data.markets.values() for c in md.candles})
    assert len(res.equity) == steps + 1
    first = -(-int(s.index[0]) // DAY_MS) * DAY_MS
    midnights = np.arange(first, int(s.index[-1]) + 1, DAY_MS)
    at = s.reindex(s.index.union(midnights)).ffill().loc[midnights]
    daily = at.pct_change().dropna().to_numpy()
    assert len(daily) == res.stats["days"] >= 7
    sharpe = daily.mean() / daily.std(ddof=1) * math.sqrt(365)
    downside = math.sqrt(np.mean(np.minimum(daily, 0.0) ** 2))
    sortino = daily.mean() / downside * math.sqrt(365)
    assert _rel(sharpe, res.stats["sharpe"]) <= 1e-12  # a ratio of sums: rounding grows, still far below noise
    assert _rel(sortino, res.stats["sortino"]) <= 1e-12

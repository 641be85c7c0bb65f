"""The March 2023 USDC de-peg as an arbitrage replay, and the arbitrage P&L recomputed independently.

Binance.US BTC/USDT and BTC/USDC 1m stand in for the two venues (`binance:BTCUSDT`, `backpack:BTC_USDC`);
the basis (USDT per USDC) is the cross of BTC priced in USDT there and in USDC on Kraken (a reference
market: prices only), the kind of implied rate an engine without a USDCUSDT book has. Files are shipped in
`data/` (provenance in data/README.md); the replay takes the window 2023-03-09 → 2023-03-14 from them.

`independent_pnl` recomputes the strategy's realised P&L from the venue's fills alone, converting every
USDC amount at the basis rebuilt from the raw candle files (not from anything the engine computed).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ate.config import EngineConfig, parse_config
from ate.data.loaders import iter_candles

A, B, REF = "binance:BTCUSDT", "backpack:BTC_USDC", "kraken:BTCUSDC"
DATA = Path(__file__).resolve().parents[3] / "data"
FILES = {
    A: DATA / "binanceus_spot_BTCUSDT_1m_2023-03-01_2023-03-21.csv.gz",
    B: DATA / "binanceus_spot_BTCUSDC_1m_2023-03-01_2023-03-21.csv.gz",
    f"ref:{REF}": DATA / "kraken_spot_BTCUSDC_1m_2023-03-09_2023-03-14.csv.gz",
}
START = int(datetime(2023, 3, 9, tzinfo=UTC).timestamp() * 1000)
END = int(datetime(2023, 3, 14, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000


def depeg_config(*, band_bps: float | None = 30.0, fixed_rate: float | None = None,
                 **arbitrage: Any) -> EngineConfig:
    """Arbitrage alone, risk limits that never bind (the basis guard is what is under test)."""
    arb = {"conversion_cross": [A, REF], "conversion_rate": fixed_rate, "basis_band_bps": band_bps,
           # the Kraken series only has minutes with trades: a rate up to 5 min old is still the last trade
           "conversion_max_age_s": 300, "basis_resume_s": 1800, "max_notional": 1000, **arbitrage}
    return parse_config({
        "mode": "backtest", "run_id": "depeg",
        "markets": {"primary": A, "binance": [{"symbol": "BTCUSDT"}], "backpack": [{"symbol": "BTC_USDC"}]},
        "risk_limits": {"max_position_size_usd": 1e8, "max_daily_loss_pct": 0.25, "max_single_trade_pct": 0.25,
                        "emergency_stop_loss_pct": 0.5, "max_order_pct_of_capital": 0.5, "capital_usd": 20000,
                        "max_price_deviation_pct": 0.5, "trusted_price_max_age_s": 600},
        "strategies": {"arbitrage": arb, "funding_carry": {"enabled": False}, "directional": {"enabled": False}},
    }, env={})


class RawPrice:
    """The last price of a replayed 1m series at a close time, from the file: at t the book shows the open
    of the candle starting at t if there is one, else the close of the last candle before t."""

    def __init__(self, path: Path, start_ms: int = START, end_ms: int = END) -> None:
        rows = [(c.open_ms, c.open, c.close) for c in iter_candles(path, MINUTE) if start_ms <= c.open_ms < end_ms]
        self.opens = [r[0] for r in rows]
        self.rows = rows

    def at(self, t: int) -> float:
        i = bisect.bisect_right(self.opens, t) - 1
        if i < 0:
            raise ValueError(f"no price at or before {t}")
        open_ms, o, c = self.rows[i]
        return o if open_ms == t else c

    def last_close_time(self, t: int) -> int | None:
        """The close time of the last candle closed at or before t (when the engine last saw this market)."""
        i = bisect.bisect_right(self.opens, t - MINUTE) - 1
        return None if i < 0 else self.opens[i] + MINUTE


class RealBasis:
    """USDT per USDC at a close time as the replay shows it: BTCUSDT now / Kraken BTCUSDC as last seen."""

    def __init__(self, files: Mapping[str, Path] = FILES, start_ms: int = START, end_ms: int = END) -> None:
        """Only the candles the replay of [start_ms, end_ms) loads."""
        self.usdt = RawPrice(files[A], start_ms, end_ms)
        self.usdc = RawPrice(files[f"ref:{REF}"], start_ms, end_ms)

    def at(self, t: int) -> Decimal:
        seen = self.usdc.last_close_time(t)
        if seen is None:
            raise ValueError(f"no Kraken price before {t}")
        return Decimal(repr(self.usdt.at(t))) / Decimal(repr(self.usdc.at(seen)))

    def outside(self, t: int, band_bps: float) -> bool:
        return abs(float(self.at(t)) - 1) * 1e4 > band_bps


def run_depeg(cfg: EngineConfig, start_ms: int = START, end_ms: int = END, *, on_event: Any = None) -> tuple[Any, Any]:
    """(BacktestResult, the arbitrage strategy) of one replay; `on_event` receives every engine event.

    Each venue starts with 10,000 of its quote and 0.2 BTC; books are 1× the minute's volume deep, at least
    0.01 BTC (the recorded minutes are thin: a synthetic book of a tenth of them would allow dust only)."""
    from ate.backtest.data import load_window
    from ate.backtest.runner import CoreDriver, ReplaySettings, run_backtest
    from ate.strategies.arbitrage import ArbitrageStrategy

    strategy = ArbitrageStrategy(cfg.strategies.arbitrage)

    def driver(c: EngineConfig, world: Any) -> CoreDriver:
        d = CoreDriver(c, world, [strategy])
        d.core.on_event = on_event
        return d

    res = run_backtest(cfg, load_window(A, dict(FILES), start_ms, end_ms, warmup_ms=0), driver_factory=driver,
                       settings=ReplaySettings(size_fraction=1.0, min_size=0.01), holdings=HOLDINGS)
    return res, strategy


HOLDINGS = {"binance": {"BTC": Decimal("0.2")}, "backpack": {"BTC": Decimal("0.2")}}
CAPITAL = {("binance", "USDT"): Decimal(10_000), ("backpack", "USDC"): Decimal(10_000)}


def wallets_after(fills: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Decimal]:
    """The venues' wallets at the end, from the starting capital and holdings and every fill."""
    wallets = dict(CAPITAL)
    for venue, w in HOLDINGS.items():
        for asset, amount in w.items():
            wallets[(venue, asset)] = wallets.get((venue, asset), Decimal(0)) + amount
    for f in fills:
        venue = f["market"].partition(":")[0]
        quote = "USDT" if f["market"] == A else "USDC"
        sign = 1 if f["side"] == "BUY" else -1
        qty, price = Decimal(f["qty"]), Decimal(f["price"])
        wallets[(venue, "BTC")] += sign * qty
        wallets[(venue, quote)] -= sign * qty * price
        wallets[(venue, f["fee_asset"])] -= Decimal(f["fee"])
    return wallets


def usd_value(wallets: Mapping[tuple[str, str], Decimal], usdc_usd: Decimal, btc_usd: Decimal) -> Decimal:
    """Wallets in USD: USDT at 1 (the reporting unit), USDC at `usdc_usd`, BTC at `btc_usd`."""
    price = {"USDT": Decimal(1), "USDC": usdc_usd, "BTC": btc_usd}
    return sum((amount * price[asset] for (_, asset), amount in wallets.items()), Decimal(0))


def independent_pnl(fills: Iterable[Mapping[str, Any]], basis: RealBasis) -> tuple[Decimal, Decimal]:
    """(realised P&L in USDT, net BTC left over) of the arbitrage's fills, USDC converted at `basis` at each
    fill: Σ −side·qty·price − fees (a fee in BTC at the fill price), all in USDT."""
    pnl = btc = Decimal(0)
    for f in fills:
        if f["strategy"] != "arbitrage":
            continue
        qty, price, fee = Decimal(f["qty"]), Decimal(f["price"]), Decimal(f["fee"])
        sign = 1 if f["side"] == "BUY" else -1
        conv = basis.at(f["ts_ms"]) if f["market"] == B else Decimal(1)
        fee_quote = fee * price if f["fee_asset"] == "BTC" else fee
        pnl += (-sign * qty * price - fee_quote) * conv
        btc += sign * qty
    return pnl, btc

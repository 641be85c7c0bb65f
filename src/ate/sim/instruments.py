"""Real exchange filters of the markets the simulator knows without being told (values as published
by Binance's exchangeInfo; the config may override or add markets)."""

from __future__ import annotations

from decimal import Decimal as D

from ate.model import Instrument, MarketKind

BINANCE_SPOT = "binance-spot"
BINANCE_USDM = "binance-usdm"
BACKPACK = "backpack"

KNOWN: dict[tuple[str, str], Instrument] = {
    (BINANCE_SPOT, "BTCUSDT"): Instrument(BINANCE_SPOT, "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"),
                                          D("0.00001"), D("0.00001"), D("9000"), D("0.01"), D("1000000"), D("5")),
    (BINANCE_SPOT, "ETHUSDT"): Instrument(BINANCE_SPOT, "ETHUSDT", "ETH", "USDT", MarketKind.SPOT, D("0.01"),
                                          D("0.0001"), D("0.0001"), D("9000"), D("0.01"), D("1000000"), D("5")),
    (BINANCE_USDM, "BTCUSDT"): Instrument(BINANCE_USDM, "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.10"),
                                          D("0.001"), D("0.001"), D("1000"), D("556.80"), D("4529764"), D("100"),
                                          grid_at_min=True),
    (BINANCE_USDM, "ETHUSDT"): Instrument(BINANCE_USDM, "ETHUSDT", "ETH", "USDT", MarketKind.PERP, D("0.01"),
                                          D("0.001"), D("0.001"), D("10000"), D("39.86"), D("306177"), D("20"),
                                          grid_at_min=True),
    # Backpack (GET /api/v1/markets): the perp's filters as published; spot [ate choice] on the same grid
    # but a 0.01 tick. No notional filter on Backpack.
    (BACKPACK, "BTC_USDC"): Instrument(BACKPACK, "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, D("0.01"),
                                       D("0.00001"), D("0.00001"), D("0"), D("0.01"), D("1000000")),
    (BACKPACK, "BTC_USDC_PERP"): Instrument(BACKPACK, "BTC_USDC_PERP", "BTC", "USDC", MarketKind.PERP, D("0.1"),
                                            D("0.00001"), D("0.00001"), D("0"), D("0.1"), D("1000000")),
}

"""Strategy parameters; defaults from signals-and-strategies.md §6–§8.

Markets are named `"<venue>:<SYMBOL>"` with the engine's venue ids: `binance` (spot), `binance_usdm`
(USD-M perpetuals) and `backpack` (spot and perps, e.g. `BTC_USDC`, `BTC_USDC_PERP`).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ate.config.checks import Section as _Section


class ArbitrageConfig(_Section):
    enabled: bool = True
    # Both directions are traded. Prices of market_b are converted into market_a's quote (USDT per USDC)
    # when the quotes differ.
    market_a: str = Field("binance:BTCUSDT", pattern=r"^[^:]+:[^:]+$")
    market_b: str = Field("backpack:BTC_USDC", pattern=r"^[^:]+:[^:]+$")
    fee_a_bps: float = Field(10.0, ge=0, le=100)  # taker fee of the account tier
    fee_b_bps: float = Field(10.0, ge=0, le=100)
    net_threshold_bps: float = Field(15.0, ge=0)
    slippage_buffer_bps: float = Field(5.0, ge=0)
    book_max_age_ms: int = Field(1000, gt=0)
    depth_fraction: float = Field(0.5, gt=0, le=1)
    max_notional: float = Field(1000.0, gt=0, le=10_000_000, description="USD per attempt; at most 1e7")
    max_unwind_slippage_bps: float = Field(30.0, ge=0)
    min_attempt_interval_ms: int = Field(500, ge=0)
    # The basis (market_a's quote per market_b's quote, e.g. USDT per USDC) when the quotes differ: the live
    # mid of `conversion_market`, or the cross mid(conversion_cross[0]) / mid(conversion_cross[1]) (same base
    # in the two quotes, e.g. BTCUSDT / BTC_USDC, or both quotes priced in USD, e.g. USDCUSD / USDTUSD).
    # These markets are subscribed like any other. `conversion_rate` is an explicit override: a fixed rate,
    # no live market and no basis guard (the operator takes the depeg risk).
    conversion_rate: float | None = Field(None, gt=0, description="fixed market_a-quote per market_b-quote rate: an "
                                          "explicit override, no live market and no basis guard")
    conversion_market: str | None = Field("binance:USDCUSDT", pattern=r"^[^:]+:[^:]+$",
                                          description="market whose mid is the basis (USDT per USDC); subscribed")
    conversion_cross: tuple[str, str] | None = Field(None, description="two markets whose mid ratio is the basis "
                                                     "(e.g. BTCUSDT / BTCUSDC); subscribed; wins over "
                                                     "conversion_market")
    conversion_max_age_s: float = Field(60.0, gt=0, description="an older basis vetoes the arbitrage")
    # The guard: a basis further from 1 than this (or stale, or invalid) vetoes entries across the two quotes
    # with a CRITICAL event; None disables the band (staleness still vetoes).
    basis_band_bps: float | None = Field(30.0, gt=0, description="a basis further from 1 vetoes the arbitrage "
                                         "(CRITICAL alert); null disables the band")
    # Entries resume only after the basis has been valid and inside the band this long without interruption.
    basis_resume_s: float = Field(300.0, ge=0, description="time back inside the band before entries resume")
    skew_alert: float = Field(0.3, gt=0, le=0.5)

    @model_validator(mode="after")
    def _conversion_source(self) -> ArbitrageConfig:
        for m in self.conversion_cross or ():
            if m.count(":") != 1 or m.startswith(":") or m.endswith(":"):
                raise ValueError(f"conversion_cross: {m!r} is not 'venue:SYMBOL'")
        return self


MARKET = r"^[^:\s]+:[^:\s]+$"
PERP_VENUES = frozenset({"binance_usdm"})  # venues whose every market is a perp (Backpack's end in _PERP)
VENUES = frozenset({"binance", "binance_usdm", "backpack"})


def is_perp(market: str) -> bool:
    venue, _, symbol = market.partition(":")
    return venue in PERP_VENUES or symbol.endswith("_PERP")


def _venue_known(market: str) -> str:
    venue = market.partition(":")[0]
    if venue not in VENUES:
        raise ValueError(f"{market!r}: unknown venue {venue!r} (one of {', '.join(sorted(VENUES))})")
    return market


def _no_duplicates(markets: list[str], what: str) -> None:
    seen: set[str] = set()
    for m in markets:
        if m in seen:
            raise ValueError(f"{what}: {m} is listed twice")
        seen.add(m)


def _legacy(data: Any, old: dict[str, str], build: Any) -> Any:
    """The single-market form (before lists of markets) read as a list of one; both forms at once are refused."""
    if not isinstance(data, dict) or not any(k in data for k in old):
        return data
    if "markets" in data:
        raise ValueError(f"give either markets or {' and '.join(old)} (the single-market form), not both")
    data = dict(data)
    given = {k: data.pop(k) for k in old if k in data}
    data["markets"] = [build({**old, **given})]
    return data


class CarryMarket(_Section):
    """One carry pair: long `spot`, short `perp`, of the same asset."""

    spot: str = Field(pattern=MARKET, description="spot leg, e.g. binance:ETHUSDT")
    perp: str = Field(pattern=MARKET, description="perp leg, e.g. binance_usdm:ETHUSDT")

    @model_validator(mode="after")
    def _legs(self) -> CarryMarket:
        _venue_known(self.spot)
        _venue_known(self.perp)
        if is_perp(self.spot):
            raise ValueError(f"spot: {self.spot} is a perp market; the spot leg must be a spot market")
        if not is_perp(self.perp):
            raise ValueError(f"perp: {self.perp} is not a perp market (binance_usdm:SYMBOL or backpack:*_PERP)")
        return self


class FundingCarryConfig(_Section):
    enabled: bool = True
    # One carry position per pair, each with its own state; notional and thresholds apply to each.
    markets: list[CarryMarket] = Field(
        [CarryMarket(spot="binance:BTCUSDT", perp="binance_usdm:BTCUSDT")], min_length=1,
        description="carry pairs [{spot, perp}], one position each; the single-pair form "
                    "spot_market/perp_market is read as a list of one")
    notional: float = Field(1000.0, gt=0, le=10_000_000, description="USD per carry position; at most 1e7")
    min_rate_bps_8h: float = Field(1.0, ge=0)
    persistence: int = Field(3, ge=1)
    holding_days: float = Field(7.0, gt=0)
    exit_threshold_bps_8h: float = 0.0
    exit_periods: int = Field(2, ge=1)
    hedge_ratio: float = Field(1.0, ge=0, le=1)
    fee_spot_bps: float = Field(10.0, ge=0)
    # Binance takes a spot buy's fee from the coins bought (unless paid in BNB): the spot leg then buys
    # q/(1-fee) so the pair nets zero delta.
    spot_fee_in_base: bool = True
    fee_perp_bps: float = Field(5.0, ge=0)
    slippage_bps: float = Field(2.0, ge=0)
    entry_max_from_touch_bps: float = Field(10.0, ge=0)
    margin_floor: float = Field(3.0, gt=1)
    liquidation_distance: float = Field(0.30, gt=0, lt=1)
    liquidation_distance_hard: float = Field(0.20, gt=0, lt=1)
    grace_minutes: float = Field(15.0, ge=0)
    max_basis_loss_bps: float = Field(50.0, gt=0)
    # Set on every perp market at start (canary/live) and checked against the venue's answer.
    leverage: int = Field(2, ge=1, le=20)
    margin_type: Literal["CROSSED", "ISOLATED"] = "CROSSED"

    @model_validator(mode="before")
    @classmethod
    def _single_pair(cls, data: Any) -> Any:
        return _legacy(data, {"spot_market": "binance:BTCUSDT", "perp_market": "binance_usdm:BTCUSDT"},
                       lambda d: {"spot": d["spot_market"], "perp": d["perp_market"]})

    @field_validator("markets")
    @classmethod
    def _distinct(cls, markets: list[CarryMarket]) -> list[CarryMarket]:
        _no_duplicates([m for p in markets for m in (p.spot, p.perp)], "markets")
        return markets


class DirectionalConfig(_Section):
    enabled: bool = True
    # One signal engine (the eight modules, their warm-up, vetoes and kelly history) and one position per market.
    markets: list[str] = Field(["binance:BTCUSDT"], min_length=1,
                               description="markets traded, each on its own signals and position; the "
                                           "single-market form `market` is read as a list of one")
    stop_atr: float = Field(2.0, gt=0)
    target_atr: float = Field(3.0, gt=0)
    time_stop_hours: float = Field(72.0, gt=0)
    hedge_ratio: float = Field(0.0, ge=0, le=1)
    hedge_market: str | None = None  # the perp that carries the h·qty short; required when hedge_ratio > 0
    entry_cap_bps: float = Field(10.0, ge=0)  # entry IOC limit at most this far through the touch
    exit_cap_bps: float = Field(50.0, gt=0)
    taker_fee_bps: float = Field(10.0, ge=0, le=100)  # for the hypothetical trades booked while kelly is 0
    hypothetical_offset_bps: float = Field(5.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _single_market(cls, data: Any) -> Any:
        return _legacy(data, {"market": "binance:BTCUSDT"}, lambda d: d["market"])

    @field_validator("markets")
    @classmethod
    def _markets(cls, markets: list[str]) -> list[str]:
        for i, m in enumerate(markets):
            if not re.match(MARKET, m):
                raise ValueError(f"markets.{i}: {m!r} is not 'venue:SYMBOL'")
            _venue_known(m)
        _no_duplicates(markets, "markets")
        return markets

    @model_validator(mode="after")
    def _hedge_market(self) -> DirectionalConfig:
        if self.hedge_ratio > 0 and not self.hedge_market:
            raise ValueError("hedge_market is required when hedge_ratio > 0")
        if self.hedge_ratio > 0 and len(self.markets) > 1:
            raise ValueError("hedge_ratio > 0 hedges one market on hedge_market: give one market, or hedge_ratio 0")
        return self


class CustomStrategyConfig(_Section):
    """A user's strategy (docs/strategies.md), loaded and checked against its `Params` when the engine starts."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, serialize_by_alias=True)  # dumps as `class`, as written
    enabled: bool = True
    # "pkg.module:Class" (importable), "path/to/file.py:Class" (relative to the working directory), or the
    # name of an entry point in the `ate.strategies` group of an installed package.
    class_: str = Field(alias="class", min_length=1)
    # The strategy's name in orders, the ledger and its saved state; default: the class's `name`.
    name: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,39}$")
    params: dict[str, Any] = Field(default_factory=dict)


class StrategiesConfig(_Section):
    arbitrage: ArbitrageConfig = ArbitrageConfig()
    funding_carry: FundingCarryConfig = FundingCarryConfig()
    directional: DirectionalConfig = DirectionalConfig()
    custom: list[CustomStrategyConfig] = Field(default_factory=list)

    def traded_markets(self) -> dict[str, str]:
        """{config path: market} of every market an enabled built-in strategy trades (a price source such as
        arbitrage's conversion_market is only read, and a strategy copes with its absence)."""
        out = {}
        for name, section in self:
            if not getattr(section, "enabled", False) or isinstance(section, list):
                continue
            for field, value in section:
                if "market" not in field or field.startswith("conversion"):
                    continue
                items = value if isinstance(value, list) else [value]
                for i, item in enumerate(items):
                    path = f"strategies.{name}.{field}" + (f".{i}" if isinstance(value, list) else "")
                    legs = dict(item) if isinstance(item, CarryMarket) else {"": item}  # a pair: spot and perp
                    for leg, market in legs.items():
                        if isinstance(market, str) and re.match(MARKET, market):
                            out[f"{path}.{leg}" if leg else path] = market
        return out


"""Strategy parameters; defaults from signals-and-strategies.md §6–§8.

Markets are named `"<venue>:<SYMBOL>"` with the engine's venue ids: `binance` (spot), `binance_usdm`
(USD-M perpetuals) and `backpack` (spot and perps, e.g. `BTC_USDC`, `BTC_USDC_PERP`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    max_notional: float = Field(1000.0, gt=0)
    max_unwind_slippage_bps: float = Field(30.0, ge=0)
    min_attempt_interval_ms: int = Field(500, ge=0)
    # USDT per USDC; None = take the live USDC/USDT mid when configured, else 1 with a warning.
    conversion_rate: float | None = Field(None, gt=0)
    conversion_market: str | None = "binance:USDCUSDT"  # its mid is USDT per USDC
    conversion_max_age_s: float = Field(60.0, gt=0)
    skew_alert: float = Field(0.3, gt=0, le=0.5)


class FundingCarryConfig(_Section):
    enabled: bool = True
    spot_market: str = "binance:BTCUSDT"
    perp_market: str = "binance_usdm:BTCUSDT"
    notional: float = Field(1000.0, gt=0)
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


class DirectionalConfig(_Section):
    enabled: bool = True
    market: str = "binance:BTCUSDT"
    stop_atr: float = Field(2.0, gt=0)
    target_atr: float = Field(3.0, gt=0)
    time_stop_hours: float = Field(72.0, gt=0)
    hedge_ratio: float = Field(0.0, ge=0, le=1)
    hedge_market: str | None = None  # the perp that carries the h·qty short; required when hedge_ratio > 0
    entry_cap_bps: float = Field(10.0, ge=0)  # entry IOC limit at most this far through the touch
    exit_cap_bps: float = Field(50.0, gt=0)
    taker_fee_bps: float = Field(10.0, ge=0, le=100)  # for the hypothetical trades booked while kelly is 0
    hypothetical_offset_bps: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _hedge_market(self) -> DirectionalConfig:
        if self.hedge_ratio > 0 and not self.hedge_market:
            raise ValueError("hedge_market is required when hedge_ratio > 0")
        return self


class CustomStrategyConfig(_Section):
    """A user's strategy (docs/strategies.md), loaded and checked against its `Params` when the engine starts."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)  # dumps as `class`, as written
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


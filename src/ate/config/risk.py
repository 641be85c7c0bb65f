"""Risk limits, canary caps and capital stages.

The operator's plan contradicts itself; the choices (documented in the README) are:
- canary daily loss: the stricter of "$50" and "3 %" — 3 % of the $1,000 canary capital = $30;
- position sizes: 2 % is the canary position cap (of canary capital), 5 % the per-stage position cap,
  25 % the per-order sanity cap against capital. They bound different things, so all three apply.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ate.config.checks import Section as _Section


class RiskLimits(_Section):
    max_position_size_usd: float = Field(2500.0, gt=0, le=100_000_000, description=(
        "USD per position; at most 1e8: a larger cap is a typo, not a limit"))
    max_daily_loss_pct: float = Field(0.03, gt=0, le=0.25, description=(
        "fraction of capital lost in a day before HALT; at most 0.25: a limit that lets a quarter go is no limit"))
    max_single_trade_pct: float = Field(0.05, gt=0, le=0.25, description=(
        "fraction of capital one trade may risk; at most 0.25, one trade must never be able to ruin the account"))
    emergency_stop_loss_pct: float = Field(0.10, gt=0, le=0.5, description=(
        "drawdown from the day's start that closes everything; at most 0.5, by then nothing is left to save"))
    max_order_pct_of_capital: float = Field(0.25, gt=0, le=0.5, description=(
        "fraction of capital in one order (fat-finger cap); at most 0.5"))
    max_price_deviation_pct: float = Field(0.10, gt=0, le=0.5, description=(
        "how far an order price may be from the trusted price; at most 0.5: further off means the price is wrong"))
    max_orders_per_second: float = Field(10.0, gt=0, le=100, description=(
        "order rate cap; at most 100/s, above every venue's own order limit"))
    trusted_price_max_age_s: float = Field(5.0, gt=0, le=3600, description=(
        "a price older than this is not trusted for risk checks; at most an hour (sparse replayed series "
        "need minutes)"))
    capital_usd: float = Field(10000.0, ge=10, le=100_000_000, description=(
        "capital in force in backtest, paper and shadow modes; at least 10 USD (below every venue's minimum "
        "order), at most 1e8"))
    asset_prices_usd: dict[str, float] = Field(
        default_factory=dict, description="USD price of assets no configured market prices (e.g. BNB fee dust); "
        "an asset with neither is valued at 0 with a warning, and risk keeps running")
    account_poll_s: float = Field(
        30.0, gt=0, le=3600, description="canary/live: how often perp margin (for the liquidation-distance "
        "guard), balances and positions are re-read from the venues")
    unpriced_grace_s: float = Field(
        60.0, ge=0, le=3600, description="at start, how long equity waits for the first mark of a configured "
        "market before valuing its asset at 0")

    @model_validator(mode="after")
    def _consistent(self) -> RiskLimits:
        for asset, price in self.asset_prices_usd.items():
            if not price > 0 or price == float("inf"):
                raise ValueError(f"asset_prices_usd.{asset}: {price} must be a positive finite price")
        if self.max_daily_loss_pct > self.emergency_stop_loss_pct:
            raise ValueError(
                f"max_daily_loss_pct ({self.max_daily_loss_pct}) must not exceed "
                f"emergency_stop_loss_pct ({self.emergency_stop_loss_pct})"
            )
        if self.max_single_trade_pct > self.max_order_pct_of_capital:
            raise ValueError(
                f"max_single_trade_pct ({self.max_single_trade_pct}) must not exceed "
                f"max_order_pct_of_capital ({self.max_order_pct_of_capital})"
            )
        return self


CANARY_MAX_DAILY_LOSS = 0.10


class CanaryConfig(_Section):
    initial_capital: float = Field(1000.0, ge=10, le=100_000, description=(
        "USD; a canary is small by definition: at least 10 USD (a venue minimum order), at most 100,000"))
    max_position_size: float = Field(0.02, gt=0, le=1, description="fraction of initial_capital")
    daily_loss_limit: float = Field(30.0, gt=0, description=(
        "USD; at most 10 % of initial_capital: a canary tests the engine, it does not risk the account"))

    @model_validator(mode="after")
    def _consistent(self) -> CanaryConfig:
        if self.daily_loss_limit > self.initial_capital * CANARY_MAX_DAILY_LOSS:
            raise ValueError(
                f"daily_loss_limit ({self.daily_loss_limit}) must be at most {CANARY_MAX_DAILY_LOSS:.0%} of "
                f"initial_capital ({self.initial_capital})"
            )
        return self


class CapitalStage(_Section):
    name: str
    capital: float = Field(gt=0, le=100_000_000, description="USD; at most 1e8")
    max_position_pct: float = Field(0.05, gt=0, le=0.25, description="fraction of the stage's capital; at most 0.25")
    daily_loss_pct: float = Field(0.03, gt=0, le=0.25, description="fraction of the stage's capital; at most 0.25")


def _default_stages() -> list[CapitalStage]:
    return [
        CapitalStage(name="stage1", capital=1000),
        CapitalStage(name="stage2", capital=3000),
        CapitalStage(name="stage3", capital=5000),
        CapitalStage(name="stage4", capital=10000),
        CapitalStage(name="stage5", capital=25000),
        CapitalStage(name="stage6", capital=50000),
    ]


class CapitalStagesConfig(_Section):
    stages: list[CapitalStage] = Field(default_factory=_default_stages, min_length=1)
    # Promotion gates (deployment plan): canary → first stage, then per stage, then the scaling phase.
    canary_min_days: float = Field(14.0, gt=0)
    stage_min_days: float = Field(14.0, gt=0)
    scaling_from_capital: float = Field(10000.0, gt=0, description="stages above this need the scaling gates")
    scaling_min_days: float = Field(30.0, gt=0)
    scaling_min_sharpe: float = 1.0
    scaling_max_drawdown: float = Field(0.15, gt=0, le=1)
    withdraw_full_days: float = Field(60.0, ge=0, description="withdraw 100 % of weekly profit this long")
    withdraw_fraction_after: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _increasing(self) -> CapitalStagesConfig:
        caps = [s.capital for s in self.stages]
        if caps != sorted(caps) or len(set(caps)) != len(caps):
            raise ValueError("stages must have strictly increasing capital")
        return self


class KillSwitchConfig(_Section):
    file: str = "EMERGENCY_STOP"
    poll_ms: int = Field(250, gt=0, le=500)
    flatten: bool = False


class ShutdownConfig(_Section):
    cancel_orders: bool = True
    flatten: bool = False

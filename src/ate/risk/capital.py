"""The capital in force and the USD limits derived from it, which depend on the mode.

canary → ``canary.initial_capital`` with the canary position cap and daily loss limit;
live → the persisted capital stage; backtest/paper/shadow → ``risk_limits.capital_usd``.
Every cap that applies is combined with the global ``risk_limits`` by taking the stricter one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ate.config.risk import CanaryConfig, CapitalStagesConfig, RiskLimits
from ate.model import Mode, to_decimal


@dataclass(frozen=True, slots=True)
class Limits:
    capital: Decimal
    max_order_usd: Decimal
    max_single_trade_usd: Decimal
    max_position_usd: Decimal
    daily_loss_usd: Decimal
    max_price_deviation: Decimal  # fraction of the trusted mark
    trusted_max_age_ms: int
    max_orders_per_second: float
    source: str  # "canary", "stage1" … or "configured"


def limits_in_force(mode: Mode, risk: RiskLimits, canary: CanaryConfig, stages: CapitalStagesConfig,
                    stage_index: int | None) -> Limits:
    """``stage_index`` is the persisted capital stage (live only; None = not yet promoted → first stage)."""
    pos_cap = risk.max_position_size_usd
    if mode is Mode.CANARY:
        capital = canary.initial_capital
        pos_cap = min(pos_cap, canary.max_position_size * capital)
        loss = min(canary.daily_loss_limit, risk.max_daily_loss_pct * capital)
        source = "canary"
    elif mode is Mode.LIVE:
        stage = stages.stages[min(stage_index or 0, len(stages.stages) - 1)]
        capital = stage.capital
        pos_cap = min(pos_cap, stage.max_position_pct * capital)
        loss = min(stage.daily_loss_pct, risk.max_daily_loss_pct) * capital
        source = stage.name
    else:
        capital = risk.capital_usd
        loss = risk.max_daily_loss_pct * capital
        source = "configured"
    d = to_decimal
    return Limits(
        capital=d(capital),
        max_order_usd=d(risk.max_order_pct_of_capital * capital),
        max_single_trade_usd=d(risk.max_single_trade_pct * capital),
        max_position_usd=d(pos_cap),
        daily_loss_usd=d(loss),
        max_price_deviation=d(risk.max_price_deviation_pct),
        trusted_max_age_ms=int(risk.trusted_price_max_age_s * 1000),
        max_orders_per_second=risk.max_orders_per_second,
        source=source,
    )


def limits_from_config(cfg, stage_index: int | None = None) -> Limits:
    """Limits for an ``EngineConfig`` (typed loosely: risk must not import the root config's siblings)."""
    return limits_in_force(cfg.mode, cfg.risk_limits, cfg.canary, cfg.capital_stages, stage_index)

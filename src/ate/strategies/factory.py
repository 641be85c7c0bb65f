"""The enabled strategies of a config, built the one way the engine and the backtester both use."""

from __future__ import annotations

from ate.config.strategies import StrategiesConfig
from ate.strategies.arbitrage import ArbitrageStrategy
from ate.strategies.base import Strategy
from ate.strategies.directional import DirectionalStrategy
from ate.strategies.funding_carry import FundingCarryStrategy
from ate.strategies.loader import build_custom
from ate.strategies.per_market import PerMarket


def build_strategies(cfg: object) -> list[Strategy]:
    """Each enabled strategy of `cfg` (an EngineConfig, or its `strategies` section), in a fixed order: the
    built-in ones, then the users' (`strategies.custom`, each behind its guard). ConfigError if a custom
    strategy cannot be loaded."""
    section: StrategiesConfig = cfg if isinstance(cfg, StrategiesConfig) else cfg.strategies  # type: ignore[attr-defined]
    out: list[Strategy] = []
    if section.directional.enabled:
        d = section.directional
        out.append(PerMarket(DirectionalStrategy.name, {m: DirectionalStrategy(d, m) for m in d.markets}))
    if section.arbitrage.enabled:
        out.append(ArbitrageStrategy(section.arbitrage))
    if section.funding_carry.enabled:
        c = section.funding_carry
        out.append(PerMarket(FundingCarryStrategy.name,
                             {f"{p.spot}/{p.perp}": FundingCarryStrategy(c, p) for p in c.markets}))
    out += build_custom(section)
    return out

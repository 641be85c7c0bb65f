"""Each strategy can be enabled alone; the config section builds exactly the enabled ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ate.config.models import EngineConfig
from ate.config.strategies import ArbitrageConfig, DirectionalConfig, StrategiesConfig
from ate.strategies import build_strategies


@pytest.mark.parametrize("only", ["directional", "arbitrage", "funding_carry"])
def test_each_strategy_alone(only):
    section = StrategiesConfig.model_validate({n: {"enabled": n == only}
                                               for n in ("directional", "arbitrage", "funding_carry")})
    assert [s.name for s in build_strategies(section)] == [only]


def test_engine_config_builds_all_by_default():
    assert [s.name for s in build_strategies(EngineConfig())] == ["directional", "arbitrage", "funding_carry"]


def test_invalid_parameters_rejected():
    with pytest.raises(ValidationError, match="hedge_market"):
        DirectionalConfig(hedge_ratio=0.5)
    with pytest.raises(ValidationError, match="market_a"):
        ArbitrageConfig(market_a="BTCUSDT")
    with pytest.raises(ValidationError, match="depth_fraction"):
        ArbitrageConfig(depth_fraction=1.5)

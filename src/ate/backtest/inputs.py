"""What a backtest runs with besides its data: the capital (and risk limits) of the config's mode, and the
markets its strategies trade, checked against the configured markets and the data.

A canary config is backtested on the canary capital with the canary caps, a live config on its first
capital stage, anything else on ``risk_limits.capital_usd``. ``--capital`` overrides the starting capital;
the risk limits stay those of the mode. Nothing is sent to a venue, so no mode needs keys here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ate.backtest.data import BacktestData, DataError
from ate.config import EngineConfig
from ate.model import Instrument, Mode
from ate.risk.capital import limits_in_force
from ate.sim import runner as sim_runner

ENGINE_VENUE = {"binance-spot": "binance", "binance-usdm": "binance_usdm", "backpack": "backpack"}

def declared_mode(path: Path) -> Mode:
    """The mode the config file declares (backtests load every config in backtest mode)."""
    try:
        raw: Any = json.loads(path.read_text())
        return Mode(raw.get("mode", Mode.BACKTEST.value)) if isinstance(raw, dict) else Mode.BACKTEST
    except (OSError, ValueError):
        return Mode.BACKTEST  # the loader already reported a bad file


def capital_in_force(cfg: EngineConfig, mode: Mode, capital: Decimal | None) -> tuple[EngineConfig, Decimal, str]:
    """(config the trading core runs with, starting capital, where it came from)."""
    limits = limits_in_force(mode, cfg.risk_limits, cfg.canary, cfg.capital_stages, None)
    run_cfg = cfg.model_copy(update={"mode": mode})
    if capital is not None:
        return run_cfg, capital, "--capital"
    source = {"canary": "canary.initial_capital (mode canary)",
              "configured": f"risk_limits.capital_usd (mode {mode.value})"}.get(
        limits.source, f"capital_stages {limits.source} (mode live, first stage)")
    return run_cfg, limits.capital, source


def strategy_markets(cfg: EngineConfig) -> dict[str, str]:
    """{config path: market} of every market an enabled strategy trades."""
    return cfg.strategies.traded_markets()


def check_markets(cfg: EngineConfig, data: BacktestData) -> list[str]:
    """Raise DataError for a strategy market the config does not declare; return a note per market that has
    no data in this run (that strategy cannot trade it)."""
    configured = set(cfg.markets.by_key())
    wrong = [f"{path}: {market} is not a configured market (markets: {', '.join(sorted(configured))}); set it "
             f"to one of them or disable the strategy" for path, market in strategy_markets(cfg).items()
             if market not in configured]
    if wrong:
        raise DataError("; ".join(wrong))
    idle = sorted({m for m in strategy_markets(cfg).values() if m not in data.markets})
    return [f"{m}: no data in this run (give --data {m}=PATH): strategies using it do not trade it" for m in idle]


def config_filters(cfg: EngineConfig) -> dict[str, Instrument]:
    """Filters the config gives in `sim.markets` (symbols the simulator does not know, or overrides), by
    engine market key: any Binance or Backpack spot or perp symbol can be backtested once they are given."""
    out: dict[str, Instrument] = {}
    for mc in cfg.sim.markets if cfg.sim else ():
        venue = ENGINE_VENUE[mc.venue]
        try:
            inst = sim_runner.instrument_for(mc)
        except ValueError as exc:
            raise DataError(f"sim.markets {mc.venue}:{mc.symbol}: {exc}") from None
        out[f"{venue}:{mc.symbol}"] = replace(inst, venue=venue)
    return out

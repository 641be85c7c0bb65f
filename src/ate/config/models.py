"""The whole engine config: one pydantic model, loaded from JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ate.config.modules import ModulesConfig
from ate.config.risk import (
    CanaryConfig,
    CapitalStagesConfig,
    KillSwitchConfig,
    RiskLimits,
    ShutdownConfig,
)
from ate.config.sim import SimConfig
from ate.config.strategies import StrategiesConfig
from ate.config.venues import VenuesConfig
from ate.model import MarketKind, Mode


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MarketConfig(_Section):
    symbol: str = Field(min_length=1)
    kind: MarketKind = MarketKind.SPOT


class MarketsConfig(_Section):
    # "venue:SYMBOL" of the market whose closed 1m candles feed the signal modules.
    primary: str = "binance:BTCUSDT"
    binance: list[MarketConfig] = Field(
        default_factory=lambda: [MarketConfig(symbol="BTCUSDT"), MarketConfig(symbol="BTCUSDT", kind=MarketKind.PERP)]
    )
    backpack: list[MarketConfig] = Field(default_factory=lambda: [MarketConfig(symbol="BTC_USDC")])

    def by_key(self) -> dict[str, MarketConfig]:
        """Engine market keys `venue:SYMBOL`; Binance perps live on the `binance_usdm` venue."""
        out = {}
        for m in self.binance:
            out[f"{'binance_usdm' if m.kind is MarketKind.PERP else 'binance'}:{m.symbol}"] = m
        for m in self.backpack:
            out[f"backpack:{m.symbol}"] = m
        return out


class ExecutionConfig(_Section):
    # Orders found on a venue that this engine never wrote: cancel them, or adopt them into the store.
    unknown_orders: Literal["cancel", "adopt"] = "cancel"
    # Resolution of an order whose outcome is unknown (timeout, 5xx): how long to keep querying.
    resolve_timeout_s: float = Field(60.0, gt=0)


class StoreConfig(_Section):
    url: str = "sqlite:///state/ate.db"


class AlertsConfig(_Section):
    telegram_bot_token_env: str | None = None
    telegram_chat_id: str | None = None
    webhook_url: str | None = None
    min_interval_s: float = Field(60.0, ge=0)
    # Telegram Bot API base URL; tests point it at a local receiver.
    telegram_api_base: str = "https://api.telegram.org"
    max_per_minute: int = Field(20, ge=1, description="alerts of one kind per minute (CRITICAL ones are never "
                                "rate limited)")
    queue_size: int = Field(100, ge=1, description="undelivered non-critical alerts kept; newer ones are dropped "
                            "beyond it (CRITICAL ones never are)")
    timeout_s: float = Field(10.0, gt=0)
    # The alert feed tails the store's events table (every component's, the CLI's too) at this wall period.
    poll_s: float = Field(0.5, gt=0, le=60, description="how often the alert feed reads new events")
    # Per-kind overrides of min_interval_s (dedup window), e.g. {"trading_state": 0}.
    min_interval_by_kind: dict[str, float] = Field(default_factory=dict)


class TelegramControlConfig(_Section):
    """Commands from a Telegram chat (/status, /kill …). Off unless the token variable is set and chat ids listed."""

    bot_token_env: str | None = Field(None, description="environment variable holding the bot token (the token "
                                      "itself is never read from config, logged or stored)")
    chat_ids: list[str] = Field(default_factory=list, description="chats whose commands are obeyed; any other "
                                "chat gets no answer and is recorded as an audit event")
    # Telegram Bot API base URL; tests point it at a local server.
    api_base: str = "https://api.telegram.org"
    long_poll_s: int = Field(25, ge=0, le=50, description="getUpdates long-polling timeout")
    retry_s: float = Field(5.0, gt=0, le=600, description="wait after a failed getUpdates before the next one")
    max_age_s: float = Field(300.0, gt=0, description="commands older than this (e.g. sent during an outage) are "
                             "refused, not executed late")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout beyond the long poll")


class LogConfig(_Section):
    max_bytes: int = Field(50_000_000, ge=10_000, description="the engine's log file rotates at this size")
    backups: int = Field(5, ge=0, le=1000, description="rotated log files kept")


class MonitorConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token_env: str = "ATE_MONITOR_TOKEN"
    heartbeat_url: str | None = None
    heartbeat_interval_s: float = Field(60.0, gt=0)
    # Dead-man (wall clock): the engine loop silent this long, or a venue's market data this old, alerts.
    loop_stall_s: float = Field(10.0, gt=0, description="engine loop unresponsive this long: CRITICAL alert")
    market_data_stale_s: float = Field(60.0, gt=0, description="no market data from a venue this long: DEGRADED")
    alerts: AlertsConfig = AlertsConfig()
    heartbeat_timeout_s: float = Field(10.0, gt=0)
    control_per_minute: int = Field(6, ge=1, description="control requests (kill/resume/close-all) per minute")
    stream_interval_s: float = Field(2.0, gt=0, le=60, description="dashboard live update period")
    telegram: TelegramControlConfig = TelegramControlConfig()


class EngineConfig(_Section):
    mode: Mode = Mode.SHADOW
    run_id: str = Field("ate", pattern=r"^[A-Za-z0-9_-]{1,16}$")
    venues: VenuesConfig = VenuesConfig()
    markets: MarketsConfig = MarketsConfig()
    risk_limits: RiskLimits = RiskLimits()
    canary: CanaryConfig = CanaryConfig()
    capital_stages: CapitalStagesConfig = CapitalStagesConfig()
    kill_switch: KillSwitchConfig = KillSwitchConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    strategies: StrategiesConfig = StrategiesConfig()
    modules: ModulesConfig = ModulesConfig()
    execution: ExecutionConfig = ExecutionConfig()
    store: StoreConfig = StoreConfig()
    monitor: MonitorConfig = MonitorConfig()
    log: LogConfig = LogConfig()
    sim: SimConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EngineConfig:
        if self.markets.primary not in self.markets.by_key():
            raise ValueError(f"markets.primary {self.markets.primary!r} is not one of the configured markets")
        simulated = self.venues.binance.simulated or self.venues.backpack.simulated
        if simulated and self.sim is None:
            raise ValueError("a venue is simulated but the config has no 'sim' section")
        if self.mode in (Mode.CANARY, Mode.LIVE) and simulated:
            raise ValueError(f"mode {self.mode.value} trades real money and cannot use simulated venues")
        return self

"""The whole engine config: one pydantic model, loaded from JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ate.config.checks import EnvName, HttpsUrl, is_loopback
from ate.config.checks import Section as _Section
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
    # Resolution of an order whose outcome is unknown (timeout, 5xx): it is queried until the venue answers,
    # with backoff up to `resolve_backoff_max_s`; still unknown after `resolve_timeout_s` raises a CRITICAL
    # `order_unresolved` alert (the order stays open and keeps its risk headroom).
    resolve_timeout_s: float = Field(60.0, gt=0, description="unknown outcome this long: CRITICAL order_unresolved "
                                     "alert (querying goes on; headroom stays held)")
    resolve_backoff_max_s: float = Field(30.0, gt=0, description="longest wait between two resolution queries")


class DataFilterConfig(_Section):
    """Market-data filter (ate.data.price_guard): how far a book may move before it is quarantined."""

    max_jump_pct: float = Field(0.05, gt=0, le=0.5, description=(
        "largest move of a book's mid from the last confirmed one; beyond it the book is a spike or a drop "
        "and is quarantined; at most 0.5"))
    max_spread_pct: float = Field(0.02, gt=0, le=0.5, description=(
        "widest spread (ask - bid) / mid a tradable book may have; at most 0.5"))
    reference_band_pct: float = Field(0.05, gt=0, le=0.5, description=(
        "how far a market's first price may be from its independent reference (REST ticker); at most 0.5"))
    reanchor_after: int = Field(20, ge=1, le=100_000, description=(
        "quarantined books in a row after which a fresh REST reference is fetched and becomes the anchor, "
        "so a market is never locked for good"))
    reanchor_after_s: float = Field(30.0, gt=0, le=3600, description=(
        "or after this long in quarantine, whichever comes first"))


class StoreConfig(_Section):
    url: str = Field("sqlite:///state/ate.db", description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://...")

    @field_validator("url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError(f"{url!r} is not a database URL (e.g. sqlite:///state/ate.db)") from None
        return url


class AlertsConfig(_Section):
    telegram_bot_token_env: EnvName | None = None
    telegram_chat_id: str | None = None
    webhook_url: HttpsUrl | None = None
    min_interval_s: float = Field(60.0, ge=0)
    # Telegram Bot API base URL; tests point it at a local receiver.
    telegram_api_base: HttpsUrl = "https://api.telegram.org"
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

    bot_token_env: EnvName | None = Field(None, description="environment variable holding the bot token (the token "
                                      "itself is never read from config, logged or stored)")
    chat_ids: list[str] = Field(default_factory=list, description="chats whose commands are obeyed; any other "
                                "chat gets no answer and is recorded as an audit event")
    # Telegram Bot API base URL (it carries the bot token: TLS unless loopback); tests point it at a local server.
    api_base: HttpsUrl = "https://api.telegram.org"
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
    host: str = Field("127.0.0.1", description="address the operator API binds; loopback unless allow_remote")
    allow_remote: bool = Field(False, description=(
        "explicit opt-in to bind a non-loopback monitor.host (the API then also requires the token to be set)"))
    port: int = Field(8080, ge=0, le=65535)
    token_env: EnvName = "ATE_MONITOR_TOKEN"
    heartbeat_url: HttpsUrl | None = None
    heartbeat_interval_s: float = Field(60.0, gt=0)
    # Dead-man (wall clock): the engine loop silent this long, or a venue's market data this old, alerts.
    loop_stall_s: float = Field(10.0, gt=0, description="engine loop unresponsive this long: CRITICAL alert")
    market_data_stale_s: float = Field(60.0, gt=0, description="no market data from a venue this long: DEGRADED")
    alerts: AlertsConfig = AlertsConfig()
    heartbeat_timeout_s: float = Field(10.0, gt=0)
    control_per_minute: int = Field(6, ge=1, le=600, description=(
        "authenticated control requests (kill/resume/close-all) per minute; at most 600"))
    failed_auth_per_minute: int = Field(10, ge=1, le=600, description=(
        "failed authentications per minute per client address before that address is refused"))
    stream_interval_s: float = Field(2.0, gt=0, le=60, description="dashboard live update period")
    telegram: TelegramControlConfig = TelegramControlConfig()

    @model_validator(mode="after")
    def _local_unless_opted_in(self) -> MonitorConfig:
        if self.enabled and not is_loopback(self.host) and not self.allow_remote:
            raise ValueError(f"host {self.host!r} exposes the operator API beyond this machine; set "
                             "monitor.allow_remote true (and the token variable) to mean it")
        return self


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
    data_filter: DataFilterConfig = DataFilterConfig()
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
        if self.mode in (Mode.CANARY, Mode.LIVE) and not (self.venues.binance.enabled or self.venues.backpack.enabled):
            raise ValueError(f"mode {self.mode.value} needs a trading venue: enable venues.binance or venues.backpack")
        return self

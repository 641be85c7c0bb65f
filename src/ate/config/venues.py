"""Venue connection settings. Keys come from environment variables named here, never inline,
unless the config file is readable by its owner only (mode 0600) or every URL of the venue is the
local simulator (whose keys are not secrets)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ate.config.checks import EnvName, HttpsUrl, WssUrl
from ate.config.checks import Section as _Section


class BinanceConfig(_Section):
    enabled: bool = True
    # "simulator": the engine starts the built-in simulator and points every surface at it.
    simulated: bool = False
    spot_rest_url: HttpsUrl = "https://api.binance.com"
    spot_ws_url: WssUrl = "wss://stream.binance.com:9443"
    spot_ws_api_url: WssUrl = "wss://ws-api.binance.com:443/ws-api/v3"
    usdm_rest_url: HttpsUrl = "https://fapi.binance.com"
    usdm_ws_url: WssUrl = "wss://fstream.binance.com"
    api_key_env: EnvName = "ATE_BINANCE_API_KEY"
    api_secret_env: EnvName = "ATE_BINANCE_API_SECRET"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    recv_window_ms: int = Field(5000, ge=1, le=60000)
    # A market stream silent this long is reconnected (and its candles back-filled).
    stream_stale_after_s: float = Field(60.0, gt=0)
    taker_fee_bps: float = Field(10.0, ge=0, le=100)
    maker_fee_bps: float = Field(10.0, ge=0, le=100)
    allow_withdrawal_keys: bool = Field(
        False, description="`ate check` accepts an API key that may withdraw (otherwise that is a FAIL)")


class BackpackConfig(_Section):
    enabled: bool = True
    simulated: bool = False
    rest_url: HttpsUrl = "https://api.backpack.exchange"
    ws_url: WssUrl = "wss://ws.backpack.exchange"
    api_key_env: EnvName = "ATE_BACKPACK_API_KEY"
    api_secret_env: EnvName = "ATE_BACKPACK_API_SECRET"
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    window_ms: int = Field(5000, ge=1, le=60000)
    stream_stale_after_s: float = Field(60.0, gt=0)
    taker_fee_bps: float = Field(10.0, ge=0, le=100)
    maker_fee_bps: float = Field(8.0, ge=0, le=100)


class DeribitConfig(_Section):
    enabled: bool = True
    simulated: bool = False
    rest_url: HttpsUrl = "https://www.deribit.com"
    poll_interval_s: float = Field(300.0, gt=0)


class VenuesConfig(_Section):
    binance: BinanceConfig = BinanceConfig()
    backpack: BackpackConfig = BackpackConfig()
    deribit: DeribitConfig = DeribitConfig()

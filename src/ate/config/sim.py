"""The ``sim`` section: the simulated exchange that ``ate simulate`` (and the demo) runs.

Example::

    "sim": {
      "speed": 60, "seed": 7, "port_base": 0,
      "accounts": [{
        "id": "demo",
        "binance_api_key": "demo-binance-key", "binance_api_secret": "demo-binance-secret",
        "backpack_public_key": "<base64 Ed25519 public key>",
        "balances": {"binance-spot": {"USDT": "10000", "BTC": "0.1"},
                     "binance-usdm": {"USDT": "10000"}, "backpack": {"USDC": "10000"}}
      }],
      "markets": [
        {"venue": "binance-spot", "symbol": "BTCUSDT",
         "data": "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"},
        {"venue": "binance-usdm", "symbol": "BTCUSDT",
         "data": "data/binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz",
         "funding": "data/binance_usdm_BTCUSDT_funding.csv"}
      ],
      "fees": {"binance-spot": {"maker": "0.001", "taker": "0.001"}},
      "faults": "http_5xx=0.01,latency_ms=20"
    }

Simulator keys are test keys for a loopback server, not secrets of a real account; they are still
held as SecretStr so they never print.
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ate.config.checks import Section as _Section

SimVenue = Literal["binance-spot", "binance-usdm", "backpack"]
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")



class SimAccountConfig(_Section):
    id: str = Field(min_length=1, max_length=64)
    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    backpack_public_key: str | None = Field(None, description="base64 Ed25519 public key (X-API-Key)")

    @field_validator("backpack_public_key")
    @classmethod
    def _ed25519_key(cls, key: str | None) -> str | None:
        try:
            ok = key is None or len(base64.b64decode(key, validate=True)) == 32
        except binascii.Error:
            ok = False
        if not ok:
            raise ValueError("backpack_public_key must be the base64 of a 32-byte Ed25519 public key")
        return key
    balances: dict[SimVenue, dict[str, Decimal]] = Field(default_factory=dict)
    # What the account's Binance API key may do, as GET /sapi/v1/account/apiRestrictions reports it (and
    # `canWithdraw` in the account endpoints): a key a trading engine should use reads and trades only.
    key_can_withdraw: bool = Field(False, description="the API key has withdrawal permission")
    key_ip_restricted: bool = Field(True, description="the API key only works from whitelisted IPs")

    @model_validator(mode="after")
    def _binance_pair(self) -> SimAccountConfig:
        if (self.binance_api_key is None) != (self.binance_api_secret is None):
            raise ValueError("binance_api_key and binance_api_secret go together")
        if self.binance_api_key is not None and not _KEY.match(self.binance_api_key.get_secret_value()):
            raise ValueError("binance_api_key must be 1-128 characters of A-Z a-z 0-9 _ . -")
        for venue, assets in self.balances.items():
            for asset, amount in assets.items():
                if amount < 0:
                    raise ValueError(f"balance {venue}.{asset} is negative")
        return self


class SimMarketConfig(_Section):
    venue: Literal["binance-spot", "binance-usdm", "backpack"]
    symbol: str = Field(min_length=1)
    data: str = Field(min_length=1, description="candle file (gzip CSV open_time_ms,open,high,low,close,volume)")
    funding: str | None = Field(None, description="funding history CSV for a perp")
    history: str | None = Field(None, description="older candles (any interval) the klines endpoints serve "
                                                   "for times before the replay starts (warm-up history)")
    spread_bps: float = Field(0.2, ge=0, le=1000, description="spread around the intrabar path")
    size_fraction: float = Field(0.1, gt=0, le=10, description="top-of-book size as a fraction of candle volume")
    min_size: float = Field(0.0, ge=0, description="floor of the top-of-book size, base units")
    depth_levels: int = Field(20, ge=1, le=5000)
    depth_step_ticks: int = Field(1, ge=1)
    # Filters: needed for symbols the simulator does not know (see ate.sim.instruments.KNOWN).
    base: str | None = None
    quote: str | None = None
    kind: Literal["spot", "perp"] | None = None
    tick_size: Decimal | None = Field(None, gt=0)
    step_size: Decimal | None = Field(None, gt=0)
    min_qty: Decimal | None = Field(None, ge=0)
    max_qty: Decimal | None = Field(None, ge=0)
    min_price: Decimal | None = Field(None, ge=0)
    max_price: Decimal | None = Field(None, ge=0)
    min_notional: Decimal | None = Field(None, ge=0)


class FeeConfig(_Section):
    maker: Decimal = Field(Decimal("0.001"), ge=-0.001, le=0.01)
    taker: Decimal = Field(Decimal("0.001"), ge=0, le=0.01)


DEFAULT_FEES: dict[str, FeeConfig] = {
    "binance-spot": FeeConfig(maker=Decimal("0.001"), taker=Decimal("0.001")),
    "binance-usdm": FeeConfig(maker=Decimal("0.0002"), taker=Decimal("0.0005")),
    "backpack": FeeConfig(maker=Decimal("0.0008"), taker=Decimal("0.001")),
}


class FaultSpec(_Section):
    """Fault injection; every rate is a probability per event, all drawn from one seeded RNG.

    Also accepted as a string ``"http_5xx=0.01,latency_ms=20,ban_418=true"`` (the CLI's --faults).
    """

    http_5xx: float = Field(0.0, ge=0, le=1, description="REST answers 5xx (execution status unknown)")
    http_timeout: float = Field(0.0, ge=0, le=1, description="REST request hangs for timeout_ms, then 5xx")
    timeout_ms: int = Field(10_000, ge=0, le=600_000)
    latency_ms: int = Field(0, ge=0, le=60_000, description="added to every REST response and WS send")
    jitter_ms: int = Field(0, ge=0, le=60_000)
    reject: float = Field(0.0, ge=0, le=1, description="new orders rejected by the venue")
    ws_drop: float = Field(0.0, ge=0, le=1, description="a WS connection is closed, per message sent")
    ws_stall: float = Field(0.0, ge=0, le=1, description="a WS connection goes silent, per message sent")
    stale: float = Field(0.0, ge=0, le=1, description="a market-data message is withheld")
    clock_skew_ms: int = Field(0, ge=-600_000, le=600_000, description="server time offset")
    ban_418: bool = Field(False, description="every rate-limit breach escalates straight to a 418 ban")
    depth_gap: float = Field(0.0, ge=0, le=1, description="a depth diff is skipped (sequence gap)")
    cancel_202: float = Field(0.0, ge=0, le=1, description="Backpack cancel answered 202, executed just after")
    # Poisoned book data, per book update published on a stream (bookTicker and depth).
    crossed_book: float = Field(0.0, ge=0, le=1, description="bid and ask swapped: bid above ask")
    locked_book: float = Field(0.0, ge=0, le=1, description="bid equal to ask")
    zero_price: float = Field(0.0, ge=0, le=1, description="book prices 0")
    negative_price: float = Field(0.0, ge=0, le=1, description="book prices negated")
    nan_price: float = Field(0.0, ge=0, le=1, description="book prices NaN")
    # Price shocks in the replayed market itself (orders fill against them), per replayed book update.
    spike: float = Field(0.0, ge=0, le=1, description="prices multiplied by spike_factor for shock_ticks updates")
    drop: float = Field(0.0, ge=0, le=1, description="prices multiplied by drop_factor for shock_ticks updates")
    spike_factor: float = Field(3.0, gt=1, le=1000)
    drop_factor: float = Field(0.3, gt=0, lt=1)
    shock_ticks: int = Field(2, ge=1, le=10_000)
    # Stream transport, per WS message sent.
    ws_duplicate: float = Field(0.0, ge=0, le=1, description="a message is sent twice")
    ws_reorder: float = Field(0.0, ge=0, le=1, description="a message is held back and sent after the next one")
    ws_malformed: float = Field(0.0, ge=0, le=1, description="a text frame that is not JSON (truncated or garbage)")
    # REST, per request.
    http_429: float = Field(0.0, ge=0, le=1, description="answered 429 (Binance: -1003 with Retry-After)")
    retry_after_s: int = Field(1, ge=1, le=3600)
    maintenance: float = Field(0.0, ge=0, le=1, description="starts a maintenance window: every request 503")
    maintenance_ms: int = Field(60_000, ge=1, le=86_400_000, description="length of a maintenance window (sim clock)")
    # Orders and accounts.
    ioc_rest_first: float = Field(0.0, ge=0, le=1, description="IOC/market order: REST reply sent before its stream events")
    ioc_stream_first: float = Field(0.0, ge=0, le=1, description="IOC/market order: stream events sent before the reply")
    ioc_gap_ms: int = Field(50, ge=0, le=10_000, description="wall-clock gap between the two channels of an IOC order")
    partial_fill: float = Field(0.0, ge=0, le=1, description="an IOC/market order fills only partial_fraction")
    partial_fraction: float = Field(0.5, gt=0, lt=1)
    liquidate: float = Field(0.0, ge=0, le=1, description="per perp mark update: an open position is liquidated")
    halt: float = Field(0.0, ge=0, le=1, description="per replayed book update: the symbol halts for halt_ms")
    halt_ms: int = Field(60_000, ge=1, le=86_400_000)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        out: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            key, sep, val = part.partition("=")
            if not sep:
                raise ValueError(f"fault {part!r} is not key=value")
            out[key.strip()] = val.strip()
        return out

    @property
    def active(self) -> bool:
        return self != FaultSpec()


class SimConfig(_Section):
    speed: float = Field(1.0, ge=0, le=1_000_000, description="replay speed; 0 = as fast as possible")
    seed: int = 0
    host: Literal["127.0.0.1"] = "127.0.0.1"
    port_base: int = Field(0, ge=0, le=65000, description="0: pick free ports; P: use P, P+1, ...")
    start_ms: int | None = Field(None, ge=0, description="replay start (default: when every market has data)")
    accounts: list[SimAccountConfig] = Field(default_factory=list)
    markets: list[SimMarketConfig] = Field(default_factory=list)
    fees: dict[SimVenue, FeeConfig] = Field(default_factory=dict)
    faults: FaultSpec = Field(default_factory=FaultSpec)
    clock: Literal["auto", "replay", "wall"] = Field(
        "auto", description="the one clock behind every timestamp the venues emit or check (ate.sim.clock). "
        "replay: the data's own timestamps (clients share the replay clock, like the in-process engine); "
        "wall: the data re-stamped onto the present, so any client with a synced system clock works at any "
        "speed (a candle lasts interval/speed). auto: replay in process; wall in `ate simulate` unless the "
        "speed is 0")
    dvol: dict[str, str] = Field(default_factory=lambda: {"BTC": "data/deribit_BTC_DVOL_1d.csv"},
                                 description="Deribit DVOL history per currency (CSV date,day_open_time_ms,dvol_close)")

    @field_validator("accounts")
    @classmethod
    def _unique_accounts(cls, accounts: list[SimAccountConfig]) -> list[SimAccountConfig]:
        ids = [a.id for a in accounts]
        if len(set(ids)) != len(ids):
            raise ValueError("account ids must be unique")
        keys = [a.binance_api_key.get_secret_value() for a in accounts if a.binance_api_key]
        if len(set(keys)) != len(keys):
            raise ValueError("binance_api_key values must be unique")
        bp_keys = [a.backpack_public_key for a in accounts if a.backpack_public_key]
        if len(set(bp_keys)) != len(bp_keys):
            raise ValueError("backpack_public_key values must be unique")
        return accounts

    @field_validator("markets")
    @classmethod
    def _unique_markets(cls, markets: list[SimMarketConfig]) -> list[SimMarketConfig]:
        keys = [(m.venue, m.symbol) for m in markets]
        if len(set(keys)) != len(keys):
            raise ValueError("each (venue, symbol) may appear once")
        return markets

    def fee(self, venue: str) -> FeeConfig:
        return self.fees.get(venue) or DEFAULT_FEES.get(venue) or FeeConfig()  # type: ignore[arg-type]

"""Venue clients built from the ``venues`` config section. Keys come from the environment variables the
config names (or inline secrets the config loader has already vetted); they are never logged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from ate.model import MarketKind
from ate.venues.backpack.client import BackpackClient, BackpackUrls
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.clock import Clock
from ate.venues.credentials import Credentials
from ate.venues.deribit.client import DeribitClient


def credentials_for(section: Any, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Inline SecretStr keys if present, else the environment variables named by ``api_key_env``."""
    if section.api_key is not None and section.api_secret is not None:
        return Credentials(section.api_key.get_secret_value(), section.api_secret.get_secret_value())
    return Credentials.optional_from_env(section.api_key_env, section.api_secret_env, environ)


def build_clients(venues: Any, *, clock: Clock | None = None, session: aiohttp.ClientSession | None = None,
                  environ: Mapping[str, str] | None = None, pause_clock: Clock | None = None) -> dict[str, Any]:
    """Clients keyed by venue id: ``binance`` (spot), ``binance_usdm``, ``backpack``, ``deribit``.
    ``pause_clock``: the clock 429/418 pauses are measured on (a running engine: the wall clock)."""
    out: dict[str, Any] = {}
    b = venues.binance
    if b.enabled:
        creds = credentials_for(b, environ)
        out["binance"] = BinanceClient(
            MarketKind.SPOT, BinanceUrls(b.spot_rest_url, b.spot_ws_url, b.spot_ws_api_url), creds,
            clock=clock, session=session, recv_window_ms=b.recv_window_ms,
            ws_options={"stale_after_s": b.stream_stale_after_s}, pause_clock=pause_clock)
        out["binance_usdm"] = BinanceClient(
            MarketKind.PERP, BinanceUrls(b.usdm_rest_url, b.usdm_ws_url), creds,
            clock=clock, session=session, recv_window_ms=b.recv_window_ms,
            ws_options={"stale_after_s": b.stream_stale_after_s}, pause_clock=pause_clock)
    p = venues.backpack
    if p.enabled:
        out["backpack"] = BackpackClient(BackpackUrls(p.rest_url, p.ws_url), credentials_for(p, environ),
                                         clock=clock, session=session, window_ms=p.window_ms,
                                         ws_options={"stale_after_s": p.stream_stale_after_s},
                                         pause_clock=pause_clock)
    d = venues.deribit
    if d.enabled:
        out["deribit"] = DeribitClient(d.rest_url, clock=clock, session=session)
    return out

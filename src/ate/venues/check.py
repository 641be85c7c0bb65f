"""What ``ate check`` verifies of each venue client: reachable, clock skew, keys, key permissions, rate-limit
headroom. The command itself (config, simulator, table) is ``ate.commands.venues``."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ate.venues.errors import ClockSkewError, VenueError

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
MIN_HEADROOM = 0.2  # less than 20 % of a rate limit left is a failure: the engine could not trade safely


@dataclass(frozen=True, slots=True)
class CheckRow:
    venue: str
    check: str
    status: str
    detail: str


async def _check_trading_venue(name: str, client: Any, keys_required: bool,
                               allow_withdrawal: bool) -> list[CheckRow]:
    rows: list[CheckRow] = []
    try:
        offset = await client.sync_clock()
    except (VenueError, aiohttp.ClientError, OSError) as exc:
        return [CheckRow(name, "reachable", FAIL, str(exc))]
    rows.append(CheckRow(name, "reachable", OK, f"{client.rest.base_url} (rtt {client.server_clock.rtt_ms} ms)"))
    try:
        client.server_clock.stamp(client.recv_window_ms)
        rows.append(CheckRow(name, "clock skew", OK if abs(offset) < 500 else WARN,
                             f"{offset:+d} ms vs server (window {client.recv_window_ms} ms)"))
    except ClockSkewError as exc:
        rows.append(CheckRow(name, "clock skew", FAIL, str(exc)))
        return rows
    if client.creds is None:
        rows.append(CheckRow(name, "keys", FAIL if keys_required else SKIP, "no API keys in the environment"))
    else:
        try:
            perms = await client.account_permissions()
        except VenueError as exc:
            rows.append(CheckRow(name, "keys", FAIL, f"rejected: {exc.venue_message} (code {exc.code})"))
        else:
            rows.append(CheckRow(name, "keys", OK, "accepted (read-only request)"))
            rows.append(_permissions_row(name, perms))
            rows += await _key_rows(name, client, allow_withdrawal)
    headroom = client.limiter.headroom()
    low = min(headroom.values())
    rows.append(CheckRow(name, "rate-limit headroom", OK if low >= MIN_HEADROOM else FAIL,
                         ", ".join(f"{k} {v:.1%} free" for k, v in headroom.items())))
    return rows


def _permissions_row(name: str, perms: dict) -> CheckRow:
    if perms.get("canTrade") is False:
        return CheckRow(name, "permissions", WARN, "account cannot trade (fine for shadow mode only)")
    flags = ", ".join(f"{k}={v}" for k, v in perms.items() if k in ("canTrade", "permissions"))
    return CheckRow(name, "permissions", OK, flags or "account readable")


async def _key_rows(name: str, client: Any, allow_withdrawal: bool) -> list[CheckRow]:
    """Judge what the key itself may do: a trading engine's key should read and trade only, from known IPs."""
    if name == "binance_usdm":
        return []  # one key for both Binance products: judged once, on the spot host that reports it
    if not hasattr(client, "api_restrictions"):
        return [CheckRow(name, "withdrawals", WARN,
                         f"{name} publishes no API that reports a key's permissions: confirm in the exchange's API "
                         "key settings that this key cannot withdraw or transfer"),
                CheckRow(name, "ip restriction", WARN,
                         f"not readable through {name}'s API: restrict the key to this host's IP in the exchange's "
                         "API key settings if it offers that")]
    try:
        r = await client.api_restrictions()
    except VenueError as exc:
        return [CheckRow(name, "withdrawals", WARN, f"key restrictions not readable: {exc.venue_message} "
                                                    f"(code {exc.code}); check the key at the exchange")]
    rows = []
    if r.get("enableWithdrawals"):
        if allow_withdrawal:
            rows.append(CheckRow(name, "withdrawals", WARN, "key can withdraw (accepted by venues.binance."
                                                            "allow_withdrawal_keys)"))
        else:
            rows.append(CheckRow(name, "withdrawals", FAIL,
                                 "key can withdraw: a leaked key could empty the account. At Binance, API "
                                 "Management → Edit restrictions → untick 'Enable Withdrawals' (or set "
                                 "venues.binance.allow_withdrawal_keys=true to accept the risk)"))
    else:
        rows.append(CheckRow(name, "withdrawals", OK, "key cannot withdraw"))
    transfers = [k for k in ("enableInternalTransfer", "permitsUniversalTransfer") if r.get(k)]
    if transfers:
        rows.append(CheckRow(name, "transfers", WARN, f"key may move funds ({', '.join(transfers)}): untick the "
                                                      "transfer permissions in API Management"))
    if r.get("ipRestrict"):
        rows.append(CheckRow(name, "ip restriction", OK, "key restricted to trusted IPs"))
    else:
        rows.append(CheckRow(name, "ip restriction", WARN,
                             "key works from any IP (and Binance lapses trading permission of unrestricted keys): "
                             "API Management → 'Restrict access to trusted IPs only' with this host's IP"))
    return rows


async def _check_deribit(client: Any) -> list[CheckRow]:
    try:
        latest = await client.latest("BTC")
    except (VenueError, aiohttp.ClientError, OSError) as exc:
        return [CheckRow("deribit", "reachable", FAIL, str(exc))]
    detail = f"DVOL {latest.close:.2f}" if latest else "reachable, no DVOL in the last 7 days"
    return [CheckRow("deribit", "reachable", OK if latest else WARN, detail)]


async def check_clients(clients: Mapping[str, Any], *, keys_required: bool,
                        withdrawal_allowed: Container[str]) -> list[CheckRow]:
    """Every client's rows, in the clients' order; `withdrawal_allowed` names the venues whose keys may withdraw."""
    rows: list[CheckRow] = []
    for name, client in clients.items():
        if name == "deribit":
            rows += await _check_deribit(client)
        else:
            rows += await _check_trading_venue(name, client, keys_required, name in withdrawal_allowed)
    return rows

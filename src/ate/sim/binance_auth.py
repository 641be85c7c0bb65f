"""Binance request authentication for the simulator: API keys, HMAC signatures, timing (§3.1-3.4).

Signatures are verified over the query string and body exactly as received (percent-encoding
intact), with the ``signature`` pair removed from whichever part carried it, using the same
``ate.venues.binance.signing`` functions the adapters sign with.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ate.config.sim import SimConfig
from ate.venues.binance.signing import hmac_signature, signing_payload, ws_api_signature

_KEY_FORMAT = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_RECV_WINDOW = 60_000


class ApiError(Exception):
    """A Binance error answer: HTTP status plus ``{"code","msg"}``; extra headers for 429/418."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}


def bad_param(name: str) -> ApiError:
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def invalid_signature() -> ApiError:
    return ApiError(400, -1022, "Signature for this request is not valid.")


@dataclass(frozen=True, slots=True)
class Credential:
    account: str
    secret: str


class BinanceKeys:
    """API key → (account, secret) from the config's sim accounts."""

    def __init__(self, config: SimConfig) -> None:
        self._keys = {a.binance_api_key.get_secret_value(): Credential(a.id, a.binance_api_secret.get_secret_value())
                      for a in config.accounts if a.binance_api_key and a.binance_api_secret}

    def lookup(self, api_key: str | None) -> Credential:
        if not api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if not _KEY_FORMAT.match(api_key):
            raise ApiError(401, -2014, "API-key format invalid.")
        cred = self._keys.get(api_key)
        if cred is None:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        return cred


def _strip_signature(raw: str) -> tuple[str, str | None]:
    parts = raw.split("&") if raw else []
    sig = None
    kept = []
    for p in parts:
        if p.startswith("signature=") and sig is None:
            sig = p[len("signature="):]
        else:
            kept.append(p)
    return "&".join(kept), sig


def merged_params(raw_query: str, body: str) -> dict[str, str]:
    """Parameters from query and form body; the query wins on duplicates."""
    params = dict(parse_qsl(body, keep_blank_values=True)) if body else {}
    params.update(parse_qsl(raw_query, keep_blank_values=True))
    return params


def verify_signature(secret: str, raw_query: str, body: str) -> None:
    query, qsig = _strip_signature(raw_query)
    body_rest, bsig = _strip_signature(body)
    sig = qsig if qsig is not None else bsig
    if sig is None:
        raise bad_param("signature")
    # the pair is removed only from the part that carried it; the other part is signed as received
    payload = signing_payload(query, body) if qsig is not None else signing_payload(raw_query, body_rest)
    if not hmac.compare_digest(hmac_signature(secret, payload), sig.lower()):
        raise invalid_signature()


def verify_ws_signature(secret: str, params: dict) -> None:
    sig = params.get("signature")
    if not isinstance(sig, str) or not hmac.compare_digest(ws_api_signature(secret, params), sig.lower()):
        raise invalid_signature()


def check_timing(params: dict[str, str], server_ms: int) -> None:
    """§3.4: ``timestamp < server + 1000`` and ``server - timestamp <= recvWindow`` (≤ 60000)."""
    ts_raw = params.get("timestamp")
    if ts_raw is None or ts_raw == "":
        raise bad_param("timestamp")
    try:
        ts = int(ts_raw)
        if ts >= 10**15:  # spot also takes microseconds
            ts //= 1000
        window = float(params.get("recvWindow", "5000"))
    except ValueError:
        raise ApiError(400, -1100, "Illegal characters found in a parameter.") from None
    if window > MAX_RECV_WINDOW:
        raise ApiError(400, -1102, f"'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW}.")
    if ts >= server_ms + 1000:
        raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - ts > window:
        raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

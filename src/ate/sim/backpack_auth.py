"""Backpack request authentication for the simulator (reference §8.2, §8.4).

The signing string is rebuilt with ``ate.venues.backpack.signing`` — the very code the adapter signs
with — so a canonicalisation bug cannot hide by being mirrored on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping

from ate.venues.backpack.signing import instruction_for, signing_string, verify

MAX_WINDOW_MS = 60_000


class BackpackError(Exception):
    """An error answered as HTTP ``status`` with Backpack's body ``{"code","message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def invalid_request(message: str) -> BackpackError:
    return BackpackError(400, "INVALID_CLIENT_REQUEST", message)


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid_request(f"Invalid {name} header") from None


def check_window(timestamp_ms: int | None, window_ms: int | None, now_ms: int) -> int:
    """The request's timestamp; [ate choice] expired or oversized windows answer 400 "Request has expired"."""
    if timestamp_ms is None:
        raise invalid_request("Missing X-Timestamp header")
    window = 5000 if window_ms is None else window_ms
    if window > MAX_WINDOW_MS or window < 0 or now_ms > timestamp_ms + window:
        raise invalid_request("Request has expired")
    return timestamp_ms


def verify_signed(
    keys: Mapping[str, str],
    api_key: str | None,
    signature: str | None,
    message: str,
) -> str:
    """The account id owning ``api_key`` once ``signature`` checks out over ``message``."""
    account = keys.get(api_key or "")
    if account is None:
        raise BackpackError(401, "UNAUTHORIZED", "Invalid API key")
    if not signature or not verify(api_key or "", message, signature):
        raise invalid_request("Invalid signature")
    return account


def authenticate(
    method: str,
    path: str,
    query: Mapping[str, str],
    body: object,
    headers: Mapping[str, str],
    keys: Mapping[str, str],
    now_ms: int,
) -> str | None:
    """Account id of a signed request, None for a public endpoint; raises BackpackError otherwise.

    ``keys`` maps base64 public keys to account ids. Parameters signed are the JSON body's top-level
    keys (each element of a batch array) or, for GET and body-less requests, the query parameters.
    """
    instruction = instruction_for(method, path)
    if instruction is None:
        return None
    if headers.get("X-API-Key") not in keys:
        raise BackpackError(401, "UNAUTHORIZED", "Invalid API key")
    timestamp = _header_int(headers, "X-Timestamp")
    window = _header_int(headers, "X-Window")
    timestamp = check_window(timestamp, window, now_ms)
    signed_body = isinstance(body, list) or (isinstance(body, Mapping) and bool(body))
    params = body if signed_body else query
    message = signing_string(instruction, params, timestamp, window)
    return verify_signed(keys, headers.get("X-API-Key"), headers.get("X-Signature"), message)

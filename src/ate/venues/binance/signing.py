"""Binance HMAC-SHA256 request signing (reference §3.2 REST, §3.3 WebSocket API).

The simulator imports these same functions to verify signatures, so client and server share one
canonicalisation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import quote, urlencode


def hmac_signature(secret: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``payload`` keyed with ``secret`` (both as UTF-8 bytes)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signing_payload(query: str, body: str) -> str:
    """Signed bytes: the query string (without '?') immediately followed by the body, no separator."""
    return query.removeprefix("?") + body


def encode_params(params: Iterable[tuple[str, str]]) -> str:
    """Percent-encode ``key=value`` pairs in the given order; the encoded text is what gets signed."""
    return urlencode(list(params), quote_via=quote, safe="")


def sign_params(secret: str, params: Iterable[tuple[str, str]]) -> str:
    """Encoded parameters with ``signature=<hex>`` appended as the last parameter."""
    encoded = encode_params(params)
    signature = hmac_signature(secret, encoded)
    return f"{encoded}&signature={signature}" if encoded else f"signature={signature}"


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ws_api_signature(secret: str, params: dict) -> str:
    """WS API signature: every key except ``signature`` (apiKey included), sorted, values not encoded."""
    payload = "&".join(f"{k}={_ws_value(params[k])}" for k in sorted(params) if k != "signature")
    return hmac_signature(secret, payload)

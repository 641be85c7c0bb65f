"""Backpack Ed25519 request signing (reference §8.1 instructions, §8.2 signing string).

The simulator imports these same functions to verify signatures, so client and server share one
canonicalisation.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DEFAULT_WINDOW_MS = 5000

_INSTRUCTIONS: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/order"): "orderExecute",
    ("POST", "/api/v1/orders"): "orderExecute",
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/api/v1/order"): "orderQuery",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("GET", "/api/v1/capital/collateral"): "collateralQuery",
    ("GET", "/api/v1/position"): "positionQuery",
    ("GET", "/api/v1/account"): "accountQuery",
    ("PATCH", "/api/v1/account"): "accountUpdate",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "/wapi/v1/history/funding"): "fundingHistoryQueryAll",
}


def instruction_for(method: str, path: str) -> str | None:
    """Signing instruction of a signed endpoint, or None for a public one."""
    return _INSTRUCTIONS.get((method.upper(), path.split("?", 1)[0].rstrip("/")))


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sorted_pairs(params: Mapping[str, object]) -> str:
    return "&".join(f"{k}={_render(params[k])}" for k in sorted(params) if params[k] is not None)


def signing_string(
    instruction: str,
    params: Mapping[str, object] | list[Mapping[str, object]] | None,
    timestamp_ms: int,
    window_ms: int | None = None,
) -> str:
    """The exact text signed for one request; a list of params is the batch form (one prefix per item)."""
    items = params if isinstance(params, list) else [params or {}]
    parts = []
    for item in items:
        body = _sorted_pairs(item)
        parts.append(f"instruction={instruction}&{body}" if body else f"instruction={instruction}")
    window = DEFAULT_WINDOW_MS if window_ms is None else window_ms
    return "&".join(parts) + f"&timestamp={timestamp_ms}&window={window}"


def _private_key(seed_b64: str) -> Ed25519PrivateKey:
    raw = base64.b64decode(seed_b64, validate=True)
    if len(raw) not in (32, 64):
        raise ValueError("Backpack secret must be a base64 32-byte Ed25519 seed (or 64-byte seed||public)")
    return Ed25519PrivateKey.from_private_bytes(raw[:32])


def sign(secret_seed_b64: str, message: str) -> str:
    """Base64 Ed25519 signature of the UTF-8 message."""
    return base64.b64encode(_private_key(secret_seed_b64).sign(message.encode())).decode()


def verify(public_key_b64: str, message: str, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid signature of ``message`` under the base64 public key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(base64.b64decode(signature_b64, validate=True), message.encode())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def public_key_from_seed(seed_b64: str) -> str:
    """Base64 public key (the Backpack API key) for a base64 seed."""
    public = _private_key(seed_b64).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(public).decode()

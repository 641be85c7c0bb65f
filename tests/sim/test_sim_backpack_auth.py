"""Backpack request authentication: fresh Ed25519 keys verify, any tampering is rejected."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError

from ate.config.sim import SimConfig
from ate.sim.backpack_auth import BackpackError, authenticate
from ate.venues.backpack.signing import public_key_from_seed, sign, signing_string

NOW = 1_773_600_000_000


def fresh_seed() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


SEED = fresh_seed()
KEY = public_key_from_seed(SEED)
KEYS = {KEY: "acct-1"}
ORDER = {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "price": "70000.5", "quantity": "0.01",
         "clientId": 1001, "postOnly": True}


def signed_headers(instruction, params, ts=NOW - 100, window="5000", seed=SEED, key=KEY):
    message = signing_string(instruction, params, ts, int(window) if window is not None else None)
    headers = {"X-API-Key": key, "X-Timestamp": str(ts), "X-Signature": sign(seed, message), "X-Broker-Id": "1400"}
    if window is not None:
        headers["X-Window"] = window
    return headers


def auth(method, path, body=None, query=None, headers=None, now=NOW):
    return authenticate(method, path, query or {}, body, headers or {}, KEYS, now)


def reject(status, code, message, *args, **kwargs):
    with pytest.raises(BackpackError) as info:
        auth(*args, **kwargs)
    assert (info.value.status, info.value.code, info.value.message) == (status, code, message)
    assert info.value.body() == {"code": code, "message": message}


def test_fresh_key_signed_order_verifies():
    assert auth("POST", "/api/v1/order", ORDER, headers=signed_headers("orderExecute", ORDER)) == "acct-1"


def test_get_signs_query_and_missing_window_defaults_to_5000():
    query = {"symbol": "BTC_USDC", "orderId": "17"}
    headers = signed_headers("orderQuery", query, window=None)
    assert "X-Window" not in headers
    assert auth("GET", "/api/v1/order", query=query, headers=headers) == "acct-1"


def test_no_params_and_batch_forms_verify():
    assert auth("GET", "/api/v1/capital", headers=signed_headers("balanceQuery", {})) == "acct-1"
    batch = [ORDER, dict(ORDER, clientId=1002, side="Ask")]
    assert auth("POST", "/api/v1/orders", batch, headers=signed_headers("orderExecute", batch)) == "acct-1"


def test_public_endpoint_needs_no_signature():
    assert auth("GET", "/api/v1/depth", query={"symbol": "BTC_USDC"}) is None


@pytest.mark.parametrize("field", sorted(ORDER))
def test_any_changed_body_value_is_invalid_signature(field):
    headers = signed_headers("orderExecute", ORDER)
    tampered = json.loads(json.dumps(ORDER))
    value = tampered[field]
    tampered[field] = (not value) if isinstance(value, bool) else (
        value + 1 if isinstance(value, int) else value[:-1] + chr(ord(value[-1]) ^ 1))
    reject(400, "INVALID_CLIENT_REQUEST", "Invalid signature", "POST", "/api/v1/order", tampered, headers=headers)


def test_flipped_byte_in_signature_timestamp_or_path_is_rejected():
    headers = signed_headers("orderExecute", ORDER)
    raw = bytearray(base64.b64decode(headers["X-Signature"]))
    for i in (0, 31, 63):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        bad = dict(headers, **{"X-Signature": base64.b64encode(bytes(flipped)).decode()})
        reject(400, "INVALID_CLIENT_REQUEST", "Invalid signature", "POST", "/api/v1/order", ORDER, headers=bad)
    older = dict(headers, **{"X-Timestamp": str(NOW - 101)})
    reject(400, "INVALID_CLIENT_REQUEST", "Invalid signature", "POST", "/api/v1/order", ORDER, headers=older)
    # the same body replayed against another instruction (cancel) does not verify either
    reject(400, "INVALID_CLIENT_REQUEST", "Invalid signature", "DELETE", "/api/v1/order", ORDER, headers=headers)


def test_other_key_or_unknown_key():
    other = fresh_seed()
    stolen = signed_headers("orderExecute", ORDER, seed=other)  # signed by someone else, claiming KEY
    reject(400, "INVALID_CLIENT_REQUEST", "Invalid signature", "POST", "/api/v1/order", ORDER, headers=stolen)
    unknown = signed_headers("orderExecute", ORDER, seed=other, key=public_key_from_seed(other))
    reject(401, "UNAUTHORIZED", "Invalid API key", "POST", "/api/v1/order", ORDER, headers=unknown)
    reject(401, "UNAUTHORIZED", "Invalid API key", "GET", "/api/v1/capital")


def test_expired_and_oversized_windows():
    at_edge = signed_headers("orderExecute", ORDER, ts=NOW - 5000)
    assert auth("POST", "/api/v1/order", ORDER, headers=at_edge) == "acct-1"
    expired = signed_headers("orderExecute", ORDER, ts=NOW - 5001)
    reject(400, "INVALID_CLIENT_REQUEST", "Request has expired", "POST", "/api/v1/order", ORDER, headers=expired)
    wide = signed_headers("orderExecute", ORDER, ts=NOW - 100, window="60001")
    reject(400, "INVALID_CLIENT_REQUEST", "Request has expired", "POST", "/api/v1/order", ORDER, headers=wide)
    widest_ok = signed_headers("orderExecute", ORDER, ts=NOW - 59_000, window="60000")
    assert auth("POST", "/api/v1/order", ORDER, headers=widest_ok) == "acct-1"


def test_sim_config_checks_backpack_keys():
    ok = SimConfig.model_validate({"accounts": [{"id": "a", "backpack_public_key": KEY}]})
    assert ok.accounts[0].backpack_public_key == KEY
    for accounts in ([{"id": "a", "backpack_public_key": "not-a-key"}],
                     [{"id": "a", "backpack_public_key": base64.b64encode(b"x" * 31).decode()}],
                     [{"id": "a", "backpack_public_key": KEY}, {"id": "b", "backpack_public_key": KEY}]):
        with pytest.raises(ValidationError, match="backpack_public_key"):
            SimConfig.model_validate({"accounts": accounts})

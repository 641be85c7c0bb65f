import base64

from ate.venues.backpack import signing as bp
from ate.venues.binance import signing as bn

BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
    "&timestamp=1499827319559"
)
BINANCE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
    "d25bf5f0595bbe24655141438e7a100b"
)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_binance_official_example_reproduces():
    assert bn.hmac_signature(BINANCE_SECRET, BINANCE_PAYLOAD) == BINANCE_SIGNATURE


def test_binance_sign_params_in_order_with_signature_last():
    params = [("symbol", "LTCBTC"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
              ("quantity", "1"), ("price", "0.1"), ("recvWindow", "5000"), ("timestamp", "1499827319559")]
    assert bn.sign_params(BINANCE_SECRET, params) == f"{BINANCE_PAYLOAD}&signature={BINANCE_SIGNATURE}"


def test_binance_payload_is_query_then_body_without_separator():
    query, body = BINANCE_PAYLOAD.split("&quantity")
    assert bn.signing_payload("?" + query, "&quantity" + body) == BINANCE_PAYLOAD
    assert bn.signing_payload("", body) == body
    assert bn.signing_payload(query, "") == query


def test_binance_non_ascii_is_percent_encoded_before_signing():
    signed = bn.sign_params("k", [("symbol", "币安BTC"), ("timestamp", "1")])
    encoded, signature = signed.rsplit("&signature=", 1)
    assert encoded == "symbol=%E5%B8%81%E5%AE%89BTC&timestamp=1"
    assert signature == bn.hmac_signature("k", encoded)


def test_binance_ws_api_signature_sorts_all_keys_and_skips_signature():
    params = {"timestamp": 1, "apiKey": "AK", "symbol": "BTCUSDT", "signature": "old", "newOrderRespType": "ACK"}
    expected = bn.hmac_signature("s", "apiKey=AK&newOrderRespType=ACK&symbol=BTCUSDT&timestamp=1")
    assert bn.ws_api_signature("s", params) == expected


def test_backpack_worked_example_signing_string():
    body = {"symbol": "SOL_USDC", "side": "Bid", "orderType": "Limit", "timeInForce": "GTC", "price": "180.50",
            "quantity": "1.5", "clientId": 1001, "postOnly": True, "selfTradePrevention": "RejectTaker"}
    assert bp.signing_string("orderExecute", body, 1735689600000, 5000) == (
        "instruction=orderExecute&clientId=1001&orderType=Limit&postOnly=true&price=180.50&quantity=1.5"
        "&selfTradePrevention=RejectTaker&side=Bid&symbol=SOL_USDC&timeInForce=GTC"
        "&timestamp=1735689600000&window=5000"
    )


def test_backpack_signing_string_default_window_empty_params_and_batch():
    assert bp.signing_string("balanceQuery", None, 7) == "instruction=balanceQuery&timestamp=7&window=5000"
    batch = [{"symbol": "A", "side": "Bid"}, {"side": "Ask", "symbol": "B"}]
    assert bp.signing_string("orderExecute", batch, 7, 6000) == (
        "instruction=orderExecute&side=Bid&symbol=A&instruction=orderExecute&side=Ask&symbol=B"
        "&timestamp=7&window=6000"
    )


def test_backpack_instruction_map():
    assert bp.instruction_for("POST", "/api/v1/order") == "orderExecute"
    assert bp.instruction_for("post", "/api/v1/orders") == "orderExecute"
    assert bp.instruction_for("DELETE", "/api/v1/order") == "orderCancel"
    assert bp.instruction_for("DELETE", "/api/v1/orders") == "orderCancelAll"
    assert bp.instruction_for("GET", "/api/v1/order") == "orderQuery"
    assert bp.instruction_for("GET", "/api/v1/orders") == "orderQueryAll"
    assert bp.instruction_for("GET", "/api/v1/capital") == "balanceQuery"
    assert bp.instruction_for("GET", "/api/v1/capital/collateral") == "collateralQuery"
    assert bp.instruction_for("GET", "/api/v1/position") == "positionQuery"
    assert bp.instruction_for("GET", "/api/v1/account") == "accountQuery"
    assert bp.instruction_for("PATCH", "/api/v1/account") == "accountUpdate"
    assert bp.instruction_for("GET", "/wapi/v1/history/fills") == "fillHistoryQueryAll"
    assert bp.instruction_for("GET", "/wapi/v1/history/orders") == "orderHistoryQueryAll"
    assert bp.instruction_for("GET", "/wapi/v1/history/funding") == "fundingHistoryQueryAll"
    assert bp.instruction_for("GET", "/api/v1/markets") is None


def test_ed25519_rfc8032_vector_1():
    seed = b64(RFC8032_SEED)
    assert bp.public_key_from_seed(seed) == b64(RFC8032_PUBLIC)
    assert bp.sign(seed, "") == b64(RFC8032_SIGNATURE)
    assert bp.verify(b64(RFC8032_PUBLIC), "", b64(RFC8032_SIGNATURE))
    assert bp.sign(b64(RFC8032_SEED + RFC8032_PUBLIC), "") == b64(RFC8032_SIGNATURE)


def test_ed25519_verify_rejects_tampering_and_garbage():
    seed = b64(RFC8032_SEED)
    sig = bp.sign(seed, "instruction=subscribe&timestamp=1&window=5000")
    public = bp.public_key_from_seed(seed)
    assert bp.verify(public, "instruction=subscribe&timestamp=1&window=5000", sig)
    assert not bp.verify(public, "instruction=subscribe&timestamp=2&window=5000", sig)
    assert not bp.verify(public, "x", "not base64!!")
    assert not bp.verify("AAAA", "x", sig)

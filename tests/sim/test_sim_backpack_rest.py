"""Backpack REST face on the wire: auth errors, shapes, units, 404/202/429, pagination, batch."""

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
from sim_backpack_support import KEY, SEED_2, backpack_sim, fresh_seed, signed

from ate.sim.backpack_face import BackpackFace
from ate.venues.backpack.signing import instruction_for, public_key_from_seed


async def call(session, sim, method, path, params=None, *, ts=None, **sign_kw):
    """A signed request when the endpoint has an instruction, else a public one; (status, headers, body)."""
    url = sim.url("backpack") + path
    ts = sim.clock.now_ms() if ts is None else ts
    headers, body = ({}, None)
    if instruction_for(method, path):
        headers, body = signed(method, path, params, ts, **sign_kw)
    query = params if method == "GET" and params else None
    async with session.request(method, url, params=query, data=body, headers=headers) as r:
        text = await r.text()
        ctype = r.headers.get("Content-Type", "")
        return r.status, r.headers, (json.loads(text) if "json" in ctype else text)


ORDER = {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "price": "50000", "quantity": "0.01",
         "clientId": 77}


async def test_signed_request_verifies_and_any_tampering_is_rejected():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        now = sim.clock.now_ms()
        status, _, body = await call(s, sim, "GET", "/api/v1/capital")
        assert status == 200 and body["USDC"] == {"available": "100000", "locked": "0", "staked": "0"}

        url = sim.url("backpack") + "/api/v1/order"
        headers, raw = signed("POST", "/api/v1/order", ORDER, now)
        tried = 0
        for i in range(len(raw)):  # flip one bit of every byte of the signed body in turn
            if raw[i] in '{}":,':
                continue  # keep it JSON so the signature, not the parser, is what fails
            tampered = raw[:i] + chr(ord(raw[i]) ^ 1) + raw[i + 1:]
            try:
                json.loads(tampered)
            except ValueError:
                continue
            tried += 1
            async with s.post(url, data=tampered, headers=headers) as r:
                assert r.status == 400, tampered
                assert await r.json() == {"code": "INVALID_CLIENT_REQUEST", "message": "Invalid signature"}
        assert tried > 40
        sig = bytearray(base64.b64decode(headers["X-Signature"]))
        sig[10] ^= 0x80
        bad = dict(headers, **{"X-Signature": base64.b64encode(bytes(sig)).decode()})
        async with s.post(url, data=raw, headers=bad) as r:
            assert (r.status, await r.json()) == (400, {"code": "INVALID_CLIENT_REQUEST", "message": "Invalid signature"})
        assert sim.core.open_orders("alice", "backpack") == []  # nothing tampered got through
        async with s.post(url, data=raw, headers=headers) as r:
            placed = await r.json()
            assert r.status == 200 and placed["clientId"] == 77 and placed["status"] == "New"


async def test_expired_oversized_window_and_unknown_key():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        now = sim.clock.now_ms()
        expired = {"code": "INVALID_CLIENT_REQUEST", "message": "Request has expired"}
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now - 5001))[::2] == (400, expired)
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now - 1000, window=60001))[::2] == (400, expired)
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now - 59_000, window=60000))[0] == 200
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now - 4000, window=None))[0] == 200
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now - 6000, window=None))[::2] == (400, expired)
        stranger = fresh_seed()
        status, _, body = await call(s, sim, "GET", "/api/v1/capital", seed=stranger,
                                     key=public_key_from_seed(stranger))
        assert status == 401 and body["code"] == "UNAUTHORIZED"
        # another account's key with this account's signature: a bad signature, not a login as bob
        status, _, body = await call(s, sim, "GET", "/api/v1/capital", seed=SEED_2, key=KEY)
        assert (status, body["message"]) == (400, "Invalid signature")
        assert (await call(s, sim, "GET", "/api/v1/capital", seed=SEED_2,
                           key=public_key_from_seed(SEED_2)))[2]["USDC"]["available"] == "5000"


async def test_public_shapes_and_units():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        now = sim.clock.now_ms()
        status, _, markets = await call(s, sim, "GET", "/api/v1/markets")
        by = {m["symbol"]: m for m in markets}
        perp, spot = by["BTC_USDC_PERP"], by["BTC_USDC"]
        assert perp["marketType"] == "PERP" and spot["marketType"] == "SPOT"
        assert perp["filters"]["price"]["tickSize"] == "0.1" and perp["filters"]["quantity"]["stepSize"] == "0.00001"
        assert perp["fundingInterval"] == sim.core.markets[("backpack", "BTC_USDC_PERP")].funding_interval_ms
        assert (perp["fundingRateUpperBound"], perp["fundingRateLowerBound"]) == ("100", "-100")
        assert spot["fundingRateUpperBound"] is None

        status, _, depth = await call(s, sim, "GET", "/api/v1/depth", {"symbol": "BTC_USDC", "limit": "5"})
        m = sim.core.markets[("backpack", "BTC_USDC")]
        bids = [float(p) for p, _ in depth["bids"]]
        asks = [float(p) for p, _ in depth["asks"]]
        assert bids == sorted(bids) and asks == sorted(asks)  # both ascending: best bid is the last one
        assert Decimal(depth["bids"][-1][0]) == m.bid_price and Decimal(depth["asks"][0][0]) == m.ask_price
        assert depth["lastUpdateId"] == str(m.update_id) and depth["timestamp"] == now * 1000
        assert (await call(s, sim, "GET", "/api/v1/depth", {"symbol": "BTC_USDC", "limit": "7"}))[0] == 400
        assert (await call(s, sim, "GET", "/api/v1/depth", {"symbol": "DOGE_USDC"}))[2]["code"] == "INVALID_MARKET"

        status, headers, text = await call(s, sim, "GET", "/api/v1/time")
        assert (status, text) == (200, str(now)) and headers["Content-Type"].startswith("text/plain")
        assert (await call(s, sim, "GET", "/api/v1/ping"))[2] == "pong"
        assert (await call(s, sim, "GET", "/api/v1/status"))[2] == {"status": "Ok", "message": None}

        start_s = now // 1000 - 3600
        status, _, klines = await call(s, sim, "GET", "/api/v1/klines",
                                       {"symbol": "BTC_USDC", "interval": "15m", "startTime": str(start_s)})
        assert status == 200 and klines
        starts = [datetime.strptime(k["start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for k in klines]
        assert all(t.minute % 15 == 0 for t in starts)
        assert starts[0].timestamp() >= start_s - 15 * 60 and starts[-1].timestamp() * 1000 < now
        first = [c for c in m.candles if c.open_ms >= starts[0].timestamp() * 1000][:15]
        assert float(klines[0]["high"]) == max(c.high for c in first) and float(klines[0]["open"]) == first[0].open
        status, _, err = await call(s, sim, "GET", "/api/v1/klines", {"symbol": "BTC_USDC", "interval": "1m"})
        assert status == 400 and err["code"] == "INVALID_CLIENT_REQUEST"

        status, _, marks = await call(s, sim, "GET", "/api/v1/markPrices")
        assert [x["symbol"] for x in marks] == ["BTC_USDC_PERP"] and isinstance(marks[0]["nextFundingTimestamp"], int)
        assert (await call(s, sim, "GET", "/api/v1/nope"))[::2] == (404, {"code": "RESOURCE_NOT_FOUND",
                                                                           "message": "Not found"})


async def test_order_lifecycle_404_for_non_resting_and_json_body_delete():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        status, _, o = await call(s, sim, "POST", "/api/v1/order", ORDER)
        assert status == 200 and isinstance(o["id"], str) and o["createdAt"] == sim.clock.now_ms()
        assert (o["side"], o["orderType"], o["price"], o["quantity"]) == ("Bid", "Limit", "50000", "0.01")
        q = {"symbol": "BTC_USDC", "orderId": o["id"]}
        assert (await call(s, sim, "GET", "/api/v1/order", q))[2]["id"] == o["id"]
        assert (await call(s, sim, "GET", "/api/v1/order", {"symbol": "BTC_USDC", "clientId": "77"}))[2]["id"] == o["id"]
        status, _, body = await call(s, sim, "DELETE", "/api/v1/order", {"symbol": "BTC_USDC", "clientId": 77})
        assert status == 200 and body["status"] == "Cancelled"
        assert (await call(s, sim, "GET", "/api/v1/order", q))[::2] == (404, {"code": "RESOURCE_NOT_FOUND",
                                                                              "message": "Order not found"})
        status, _, mkt = await call(s, sim, "POST", "/api/v1/order",
                                    {"symbol": "BTC_USDC", "side": "Ask", "orderType": "Market", "quantity": "0.5"})
        assert status == 200 and mkt["status"] == "Filled"
        assert (await call(s, sim, "GET", "/api/v1/order", {"symbol": "BTC_USDC", "orderId": mkt["id"]}))[0] == 404
        status, _, body = await call(s, sim, "POST", "/api/v1/order",
                                     {"symbol": "BTC_USDC", "side": "Ask", "orderType": "Market", "quantity": "5"})
        assert (status, body["code"]) == (400, "INSUFFICIENT_FUNDS")
        status, _, body = await call(s, sim, "POST", "/api/v1/order", dict(ORDER, price="50000.001"))
        assert (status, body["code"]) == (400, "INVALID_PRICE")
        status, _, body = await call(s, sim, "DELETE", "/api/v1/order",
                                     {"symbol": "BTC_USDC", "orderId": "1", "clientId": 77})
        assert (status, body["code"]) == (400, "INVALID_CLIENT_REQUEST")


async def test_batch_cancel_all_and_open_orders():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        batch = [ORDER, dict(ORDER, clientId=78, price="49000"), dict(ORDER, clientId=79, quantity="1000")]
        status, _, results = await call(s, sim, "POST", "/api/v1/orders", batch)
        assert status == 200 and [next(iter(r)) for r in results] == ["Ok", "Ok", "Err"]
        assert results[2]["Err"]["code"] == "INSUFFICIENT_FUNDS"
        status, _, open_orders = await call(s, sim, "GET", "/api/v1/orders", {"symbol": "BTC_USDC"})
        assert [o["clientId"] for o in open_orders] == [77, 78]
        status, _, cancelled = await call(s, sim, "DELETE", "/api/v1/orders", {"symbol": "BTC_USDC"})
        assert sorted(o["clientId"] for o in cancelled) == [77, 78] and {o["status"] for o in cancelled} == {"Cancelled"}
        assert (await call(s, sim, "GET", "/api/v1/orders"))[2] == []


async def test_history_pagination_headers():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        for i in range(5):
            await call(s, sim, "POST", "/api/v1/order", {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Market",
                                                          "quantity": "0.001", "clientId": 100 + i})
            sim.advance(60_000)
        status, headers, fills = await call(s, sim, "GET", "/wapi/v1/history/fills", {"limit": "2", "offset": "2"})
        assert status == 200 and len(fills) == 2
        assert (headers["X-PAGE-COUNT"], headers["X-CURRENT-PAGE"], headers["X-PAGE-SIZE"], headers["X-TOTAL"]) == (
            "3", "2", "2", "5")
        assert [f["clientId"] for f in fills] == [102, 101]  # newest first by default
        assert datetime.fromisoformat(fills[0]["timestamp"]).tzinfo is None  # naive ISO, UTC
        status, headers, orders = await call(s, sim, "GET", "/wapi/v1/history/orders", {"sortDirection": "Asc"})
        assert [o["clientId"] for o in orders] == [100, 101, 102, 103, 104] and headers["X-TOTAL"] == "5"
        status, headers, funding = await call(s, sim, "GET", "/wapi/v1/history/funding")
        assert (status, funding, headers["X-TOTAL"]) == (200, [], "0")


async def test_rate_limits_answer_429():
    face = BackpackFace(requests_per_minute=5, history_requests_per_minute=2)
    async with backpack_sim(face) as sim, aiohttp.ClientSession() as s:
        statuses = [(await call(s, sim, "GET", "/api/v1/capital"))[0] for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert (await call(s, sim, "GET", "/api/v1/capital", seed=SEED_2,
                           key=public_key_from_seed(SEED_2)))[0] == 200  # per account
        klines = {"symbol": "BTC_USDC", "interval": "1m", "startTime": str(sim.clock.now_ms() // 1000 - 600)}
        statuses = [(await call(s, sim, "GET", "/api/v1/klines", klines))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        body = (await call(s, sim, "GET", "/api/v1/klines", klines))[2]
        assert body == {"code": "TOO_MANY_REQUESTS", "message": "Too many requests"}


async def test_cancel_answers_202_under_fault_injection_and_runs_after():
    async with backpack_sim(faults={"cancel_202": 1.0}) as sim, aiohttp.ClientSession() as s:
        _, _, o = await call(s, sim, "POST", "/api/v1/order", ORDER)
        status, _, body = await call(s, sim, "DELETE", "/api/v1/order", {"symbol": "BTC_USDC", "orderId": o["id"]})
        assert status == 202 and body["id"] == o["id"]
        # the next request is served after the deferred cancel ran
        status, _, _ = await call(s, sim, "GET", "/api/v1/order", {"symbol": "BTC_USDC", "orderId": o["id"]})
        assert status == 404 and sim.faults.counts["cancel_202"] == 1
        assert sim.core.open_orders("alice", "backpack") == []


async def test_http_faults_are_seeded_and_reproducible():
    async def statuses(seed):
        async with backpack_sim(faults={"http_5xx": 0.3}, seed=seed) as sim, aiohttp.ClientSession() as s:
            out = []
            for _ in range(20):
                status, _, body = await call(s, sim, "GET", "/api/v1/depth", {"symbol": "BTC_USDC"})
                out.append(status)
                if status != 200:
                    assert body["code"] == "SERVER_ERROR"
            return out

    first, again, other = await statuses(1), await statuses(1), await statuses(2)
    assert first == again and 503 in first and 200 in first and first != other


async def test_clock_skew_shifts_reported_and_checked_time():
    async with backpack_sim(faults={"clock_skew_ms": 30_000}) as sim, aiohttp.ClientSession() as s:
        now = sim.clock.now_ms()
        assert (await call(s, sim, "GET", "/api/v1/time"))[2] == str(now + 30_000)
        # a client on the true clock is 30 s behind the venue: its 5 s window has expired there
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now))[0] == 400
        assert (await call(s, sim, "GET", "/api/v1/capital", ts=now + 30_000))[0] == 200



async def test_funding_rates_marks_and_payments():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        m = sim.core.markets[("backpack", "BTC_USDC_PERP")]
        now = sim.clock.now_ms()
        status, _, rates = await call(s, sim, "GET", "/api/v1/fundingRates", {"symbol": "BTC_USDC_PERP", "limit": "3"})
        settled = sim.replayer.funding_history(m, now)
        assert status == 200 and [r["fundingRate"] for r in rates] == [str(r.rate) for r in settled[::-1][:3]]
        assert datetime.fromisoformat(rates[0]["intervalEndTimestamp"]).replace(tzinfo=UTC).timestamp() * 1000 <= now
        _, _, marks = await call(s, sim, "GET", "/api/v1/markPrices", {"symbol": "BTC_USDC_PERP"})
        next_ms = marks[0]["nextFundingTimestamp"]
        assert next_ms > now and next_ms == m.next_funding_ms
        await call(s, sim, "POST", "/api/v1/order", {"symbol": "BTC_USDC_PERP", "side": "Ask", "orderType": "Market",
                                                      "quantity": "0.1"})
        sim.advance_to(next_ms)
        _, headers, payments = await call(s, sim, "GET", "/wapi/v1/history/funding")
        assert headers["X-TOTAL"] == "1"
        event = sim.core.funding_for("alice", "backpack")[0]
        assert Decimal(payments[0]["quantity"]) == event.amount and Decimal(payments[0]["fundingRate"]) == event.rate
        assert event.amount == Decimal("0.1") * event.mark * event.rate  # a short receives a positive rate
        _, _, positions = await call(s, sim, "GET", "/api/v1/position")
        assert positions[0]["netQuantity"] == "-0.1" and Decimal(positions[0]["cumulativeFundingPayment"]) == event.amount

"""Binance face: HMAC verification, timing, keys, request weight, 429/418 (reference §3)."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from sim_core_support import DOC_KEY, DOC_SECRET, KEY, ROOT, SECRET, sim_config
from yarl import URL

from ate.sim.binance import BinanceFace
from ate.sim.clock import ManualClock, ScaledClock
from ate.sim.command import served_clock
from ate.sim.runner import run_simulator
from ate.venues.binance.signing import encode_params, hmac_signature, sign_params

OFFICIAL_PAYLOAD = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
                    "&timestamp=1499827319559")
OFFICIAL_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


async def _call(session, method, base, path, query="", body="", key=KEY):
    url = URL(f"{base}{path}" + (f"?{query}" if query else ""), encoded=True)
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    async with session.request(method, url, data=body or None, headers=headers) as r:
        return r.status, await r.json(), r.headers


async def test_official_hmac_example_verifies_and_places_the_order():
    """The docs' LTCBTC request, byte for byte, on a simulator whose clock is at its timestamp."""
    cfg = sim_config(start_ms=1499827319000, markets=[
        {"venue": "binance-spot", "symbol": "LTCBTC", "base": "LTC", "quote": "BTC", "kind": "spot",
         "tick_size": "0.000001", "step_size": "0.001", "min_notional": "0.0001",
         "data": "data/binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz"}],
        accounts=[{"id": "doc", "binance_api_key": DOC_KEY, "binance_api_secret": DOC_SECRET,
                   "balances": {"binance-spot": {"BTC": "1"}}}])
    assert hmac_signature(DOC_SECRET, OFFICIAL_PAYLOAD) == OFFICIAL_SIGNATURE
    async with run_simulator(cfg, clock=ManualClock(), faces=[BinanceFace()], base_dir=ROOT) as sim, \
            aiohttp.ClientSession() as s:
        base = sim.url("binance-spot")
        status, body, headers = await _call(s, "POST", base, "/api/v3/order",
                                            f"{OFFICIAL_PAYLOAD}&signature={OFFICIAL_SIGNATURE}", key=DOC_KEY)
        assert status == 200, body
        assert body["symbol"] == "LTCBTC" and body["status"] == "NEW" and body["orderListId"] == -1
        assert body["origQty"] == "1.00000000" and body["price"] == "0.10000000"
        assert sim.core.balances("doc", "binance-spot")["BTC"].locked == Decimal("0.1")
        assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and headers["X-MBX-ORDER-COUNT-1D"] == "1"
        assert headers["X-MBX-USED-WEIGHT-1M"] == "0"  # successful orders cost no weight
        # upper-case hex is accepted too; the signature may also travel in the body
        status, body, _ = await _call(s, "POST", base, "/api/v3/order",
                                      body=OFFICIAL_PAYLOAD.replace("quantity=1", "quantity=2")
                                      + "&signature=" + hmac_signature(DOC_SECRET, OFFICIAL_PAYLOAD.replace(
                                          "quantity=1", "quantity=2")).upper(), key=DOC_KEY)
        assert status == 200 and body["origQty"] == "2.00000000"


def _flips(text: str) -> list[str]:
    return [text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1:] for i in range(len(text))]


async def test_any_flipped_byte_of_a_signed_request_is_rejected_with_1022(binance_sim):
    base = binance_sim.url("binance-spot")
    now = binance_sim.clock.now_ms()
    params = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
              ("quantity", "0.01"), ("price", "100000"), ("recvWindow", "60000"), ("timestamp", str(now))]
    signed = sign_params(SECRET, params)
    payload, sig = signed.rsplit("&signature=", 1)
    async with aiohttp.ClientSession() as s:
        layouts = [lambda p, g: (f"{p}&signature={g}", ""),  # all in the query
                   lambda p, g: ("", f"{p}&signature={g}"),  # all in the body
                   lambda p, g: (p.split("&price")[0], "price" + p.split("&price")[1] + f"&signature={g}")]
        for layout in layouts:
            q, b = layout(payload, sig)
            codes = set()
            signed_end = (q + b).index("&signature=")  # every layout carries the signature last
            for i in range(signed_end):
                fq, fb = (_flips(q)[i], b) if i < len(q) else (q, _flips(b)[i - len(q)])
                status, body, _ = await _call(s, "POST", base, "/api/v3/order", fq, fb)
                codes.add((status, body["code"]))
            assert codes == {(400, -1022)}
        for flipped in _flips(sig):
            status, body, _ = await _call(s, "POST", base, "/api/v3/order", f"{payload}&signature={flipped}")
            assert (status, body["code"]) == (400, -1022)
        status, body, _ = await _call(s, "POST", base, "/api/v3/order", f"{payload}&signature={sig}")
        assert status == 200 and body["status"] == "NEW"


async def test_query_wins_over_body_and_timing_and_key_errors(binance_sim):
    base = binance_sim.url("binance-spot")
    now = binance_sim.clock.now_ms()
    async with aiohttp.ClientSession() as s:
        q = encode_params([("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "0.02")])
        b = encode_params([("timeInForce", "GTC"), ("quantity", "0.05"), ("price", "100000"),
                           ("timestamp", str(now))])
        sig = hmac_signature(SECRET, q + b)
        status, body, _ = await _call(s, "POST", base, "/api/v3/order", q, f"{b}&signature={sig}")
        assert status == 200 and body["origQty"] == "0.02000000"

        def signed(extra):
            return sign_params(SECRET, [("omitZeroBalances", "true"), *extra])

        cases = [([("timestamp", str(now - 5001))], 400, -1021, "outside of the recvWindow"),
                 ([("timestamp", str(now + 5000))], 400, -1021, "1000ms ahead"),
                 ([("recvWindow", "60001"), ("timestamp", str(now))], 400, -1102, "Cannot be greater than 60000"),
                 ([("recvWindow", "60000"), ("timestamp", str(now - 59000))], 200, None, None)]
        for extra, want_status, want_code, text in cases:
            status, body, _ = await _call(s, "GET", base, "/api/v3/account", signed(extra))
            assert status == want_status, (extra, body)
            if want_code is not None:
                assert body["code"] == want_code and text in body["msg"]
        for key, code in ((None, -2015), ("unknown", -2015), ("bad key!", -2014)):
            status, body, _ = await _call(s, "GET", base, "/api/v3/account", signed([("timestamp", str(now))]),
                                          key=key)
            assert (status, body["code"]) == (401, code)


async def test_weight_headers_then_429_retry_after_then_418_ban(binance_sim):
    sim = binance_sim
    base = sim.url("binance-spot")
    async with aiohttp.ClientSession() as s:
        used = []
        for path, weight in (("/api/v3/ping", 1), ("/api/v3/time", 1), ("/api/v3/exchangeInfo", 20),
                             ("/api/v3/depth?symbol=BTCUSDT&limit=100", 5),
                             ("/api/v3/depth?symbol=BTCUSDT&limit=500", 25),
                             ("/api/v3/ticker/24hr", 80), ("/api/v3/ticker/bookTicker?symbol=BTCUSDT", 2)):
            async with s.get(base + path) as r:
                assert r.status == 200
                used.append((int(r.headers["X-MBX-USED-WEIGHT-1M"]), weight))
        total = 0
        for seen, weight in used:
            total += weight
            assert seen == total
        # fill the 6000/min budget with depth limit=5000 (250 each)
        status = 200
        while status == 200:
            before = sim.clock.now_ms()
            async with s.get(base + "/api/v3/depth?symbol=BTCUSDT&limit=5000") as r:
                status, headers, body = r.status, r.headers, await r.json()
                after = sim.clock.now_ms()
                if status == 200:
                    total += 250
                    assert int(headers["X-MBX-USED-WEIGHT-1M"]) == total <= 6000
        assert status == 429 and body["code"] == -1003 and "6000 request weight per 1 MINUTE" in body["msg"]
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) == total  # the refused request is not charged
        window_end = before // 60_000 * 60_000 + 60_000
        # Retry-After: whole seconds until the 1-minute window resets
        assert -(-(window_end - after) // 1000) <= int(headers["Retry-After"]) <= -(-(window_end - before) // 1000)
        async with s.get(base + "/api/v3/ping") as r:  # kept going: banned
            assert r.status == 418
            ban = await r.json()
            assert ban["code"] == -1003 and "IP banned until" in ban["msg"]
            assert 110 <= int(r.headers["Retry-After"]) <= 120
        sim.clock.set(sim.clock.now_ms() + 121_000)
        async with s.get(base + "/api/v3/ping") as r:
            assert r.status == 200 and r.headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_usdm_weight_limit_and_forced_418_fault():
    cfg = sim_config(faults="ban_418=true")
    async with run_simulator(cfg, clock=ManualClock(), faces=[BinanceFace()], base_dir=ROOT) as sim, \
            aiohttp.ClientSession() as s:
        base = sim.url("binance-usdm")
        async with s.get(base + "/fapi/v1/exchangeInfo") as r:
            info = await r.json()
        assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400} in \
            info["rateLimits"]
        statuses = []
        for _ in range(120):  # exchangeInfo weighed 1, depth limit=1000 weighs 20: 119 more fit in 2400
            async with s.get(base + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000") as r:
                statuses.append(r.status)
                last = r.headers["X-MBX-USED-WEIGHT-1M"]
        assert statuses[:119] == [200] * 119 and statuses[119] == 418  # no 429 first: the fault forces the ban
        assert last == str(1 + 119 * 20)
        assert sim.faults.ban_418


@pytest.mark.parametrize("path", ["/api/v3/ping", "/api/v3/nonexistent-but-404"])
async def test_every_response_of_a_route_carries_the_weight_header(binance_sim, path):
    async with aiohttp.ClientSession() as s, s.get(binance_sim.url("binance-spot") + path) as r:
        if r.status == 404:
            assert "X-MBX-USED-WEIGHT-1M" not in r.headers  # not a Binance route at all
        else:
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "1"


async def test_at_60x_the_venue_keeps_wall_time_for_signed_timestamps():
    import time

    assert served_clock(sim_config(speed=60), None) == "wall"  # what `ate simulate` picks for "auto"
    assert served_clock(sim_config(speed=60), 1) == "wall"
    assert served_clock(sim_config(speed=60), 0) == "replay"
    async with run_simulator(sim_config(speed=60, clock="wall"), faces=[BinanceFace()],
                             base_dir=ROOT) as sim, \
            aiohttp.ClientSession() as s:
        base = sim.url("binance-spot")
        async with s.get(base + "/api/v3/time") as r:
            served = (await r.json())["serverTime"]
        assert abs(served - time.time() * 1000) < 1000
        assert isinstance(sim.clock, ScaledClock) and sim.clock_speed == 1
        q = sign_params(SECRET, [("timestamp", str(int(time.time() * 1000)))])
        status, body, _ = await _call(s, "GET", base, "/api/v3/account", q)
        assert status == 200 and {b["asset"] for b in body["balances"]} == {"USDT", "BTC"}

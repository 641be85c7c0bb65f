"""Fault injection: seeded and reproducible, and each kind visible on the Binance face."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import ValidationError
from sim_core_support import KEY, ROOT, SECRET, sim_config

from ate.config.sim import FaultSpec
from ate.sim.binance import BinanceFace
from ate.sim.clock import SteppingClock
from ate.sim.faults import Faults
from ate.sim.runner import run_simulator
from ate.venues.binance.signing import sign_params


def test_spec_parses_from_the_cli_string_and_rejects_bad_values():
    spec = FaultSpec.model_validate("http_5xx=0.25, latency_ms=20,ban_418=true")
    assert (spec.http_5xx, spec.latency_ms, spec.ban_418) == (0.25, 20, True)
    for bad in ("http_5xx=2", "nonsense=1", "latency_ms"):
        with pytest.raises(ValidationError):
            FaultSpec.model_validate(bad)


def test_same_seed_same_faults_different_seed_different_faults():
    spec = FaultSpec(http_5xx=0.3, ws_drop=0.2, reject=0.1)

    def run(seed):
        f = Faults(spec, seed)
        return [(f.http_fault(), f.ws_fault(), f.reject_order()) for _ in range(200)], dict(f.counts)

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert 40 <= a[1]["5xx"] <= 80  # about 30 % of 200


async def _sim(faults: str):
    return run_simulator(sim_config(faults=faults), clock=SteppingClock(), faces=[BinanceFace()], base_dir=ROOT)


async def test_5xx_means_unknown_the_order_may_have_executed():
    async with await _sim("http_5xx=1") as sim, aiohttp.ClientSession() as s:
        q = sign_params(SECRET, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.01"),
                                 ("newClientOrderId", "unknown-1"), ("timestamp", str(sim.clock.now_ms()))])
        async with s.post(sim.url("binance-spot") + "/api/v3/order?" + q, headers={"X-MBX-APIKEY": KEY}) as r:
            assert r.status == 503 and (await r.json())["code"] == -1000
        # reconciling by client order id finds it filled
        assert sim.core.get_order("alice", "binance-spot", "BTCUSDT", client_order_id="unknown-1").filled_qty > 0
        assert sim.faults.counts["5xx"] == 1


async def test_reject_fault_and_clock_skew():
    async with await _sim("reject=1,clock_skew_ms=-3000") as sim, aiohttp.ClientSession() as s:
        async with s.get(sim.url("binance-spot") + "/api/v3/time") as r:
            served = (await r.json())["serverTime"]
        assert sim.clock.now_ms() - 3000 - 50 <= served <= sim.clock.now_ms() - 3000
        q = sign_params(SECRET, [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.01"),
                                 ("timestamp", str(served))])
        async with s.post(sim.url("binance-spot") + "/api/v3/order?" + q, headers={"X-MBX-APIKEY": KEY}) as r:
            assert r.status == 400 and (await r.json())["code"] == -2010
        assert sim.core.all_orders("alice", "binance-spot") == []


async def test_ws_drop_closes_the_stream_and_stale_withholds_updates():
    stream = "/ws/btcusdt@bookTicker"
    async with await _sim("ws_drop=1") as sim, aiohttp.ClientSession() as s, \
            s.ws_connect(sim.url("binance-spot", "ws") + stream) as ws:
        await asyncio.sleep(0.05)
        sim.advance(15_000)
        msg = await ws.receive(timeout=2)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    async with await _sim("stale=1") as sim, aiohttp.ClientSession() as s, \
            s.ws_connect(sim.url("binance-spot", "ws") + stream) as ws:
        await asyncio.sleep(0.05)
        for _ in range(3):
            sim.advance(15_000)
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)
        assert sim.faults.counts["stale"] == 3


async def test_timeout_fault_answers_1007_after_the_timeout_and_stall_keeps_the_socket_silent():
    async with await _sim("http_timeout=1,timeout_ms=50") as sim, aiohttp.ClientSession() as s, \
            s.get(sim.url("binance-spot") + "/api/v3/ping") as r:
        assert r.status == 503 and (await r.json())["code"] == -1007
    async with await _sim("ws_stall=1") as sim, aiohttp.ClientSession() as s, \
            s.ws_connect(sim.url("binance-spot", "ws") + "/ws/btcusdt@bookTicker") as ws:
        await asyncio.sleep(0.05)
        for _ in range(3):
            sim.advance(15_000)
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)
        assert not ws.closed and sim.faults.counts["ws_stall"] == 1

"""Throughput of the simulated Backpack face on loopback (one process, this machine).

1. Signed REST order round trips: a limit order placed and cancelled (POST + DELETE /api/v1/order,
   Ed25519-signed and verified), sequentially over one keep-alive connection.
2. Replay with streaming: one day of real 1m candles (5,760 book updates) replayed into the core
   while one WebSocket client subscribes to depth, bookTicker and trade on the perp; frames/s
   counts what the client actually received.

    .venv/bin/python bench/bench_sim_backpack.py
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ate.config.sim import SimConfig
from ate.sim.backpack_face import BackpackFace
from ate.sim.clock import ManualClock
from ate.sim.runner import run_simulator
from ate.venues.backpack.signing import public_key_from_seed, sign, signing_string

REPO = Path(__file__).resolve().parent.parent
SEED = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
    Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()
KEY = public_key_from_seed(SEED)
ORDERS = 500
DAY_MS = 86_400_000


def config() -> SimConfig:
    return SimConfig.model_validate({
        "speed": 0,
        "accounts": [{"id": "bench", "backpack_public_key": KEY, "balances": {"backpack": {"USDC": "1000000"}}}],
        "markets": [{"venue": "backpack", "symbol": "BTC_USDC_PERP",
                     "data": "data/bybit_linear_BTCUSDT_1m_2026-02-27_2026-03-29.csv.gz"}],
    })


def headers(instruction: str, params: dict, ts: int) -> dict[str, str]:
    return {"X-API-Key": KEY, "X-Timestamp": str(ts), "X-Window": "60000", "Content-Type": "application/json",
            "X-Signature": sign(SEED, signing_string(instruction, params, ts, 60000))}


async def main() -> None:
    face = BackpackFace(requests_per_minute=10**9)
    async with run_simulator(config(), clock=ManualClock(), faces=[face], base_dir=REPO) as sim, \
            aiohttp.ClientSession() as session:
        url = sim.url("backpack") + "/api/v1/order"
        t0 = time.perf_counter()
        for i in range(ORDERS):
            order = {"symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "10000",
                     "quantity": "0.001", "clientId": i}
            ts = sim.clock.now_ms()
            async with session.post(url, data=json.dumps(order), headers=headers("orderExecute", order, ts)) as r:
                oid = (await r.json())["id"]
            cancel = {"symbol": "BTC_USDC_PERP", "orderId": oid}
            async with session.delete(url, data=json.dumps(cancel), headers=headers("orderCancel", cancel, ts)) as r:
                assert r.status == 200
        dt = time.perf_counter() - t0
        print(f"signed REST place+cancel: {ORDERS} round trips in {dt:.2f} s = {2 * ORDERS / dt:,.0f} requests/s")

        received = 0
        async with session.ws_connect(sim.url("backpack", "ws")) as ws:
            names = ["depth.BTC_USDC_PERP", "bookTicker.BTC_USDC_PERP", "trade.BTC_USDC_PERP"]
            await ws.send_json({"method": "SUBSCRIBE", "params": names})
            while not all(face.streams.wants(n) for n in names):
                await asyncio.sleep(0.001)
            t0 = time.perf_counter()
            end = sim.clock.now_ms() + DAY_MS
            while sim.clock.now_ms() < end:
                sim.advance(3_600_000)
                await asyncio.sleep(0)
            expected = 3 * 4 * 1440
            while received < expected:
                msg = await ws.receive()
                received += msg.type is aiohttp.WSMsgType.TEXT
            dt = time.perf_counter() - t0
        print(f"replay 1 day with 3 streams: {received:,} frames in {dt:.2f} s = {received / dt:,.0f} frames/s")


if __name__ == "__main__":
    asyncio.run(main())

"""The simulated Deribit DVOL endpoint over HTTP: never a value dated after the simulated clock."""

import aiohttp
from sim_backpack_support import backpack_sim

from ate.sim.deribit_dvol import DAY_MS

PATH = "/api/v2/public/get_volatility_index_data"


async def get(session, sim, **params):
    async with session.get(sim.url("deribit") + PATH, params={k: str(v) for k, v in params.items()}) as r:
        return r.status, await r.json()


async def test_dvol_endpoint_follows_the_sim_clock_without_look_ahead():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        query = {"currency": "BTC", "start_timestamp": 0, "end_timestamp": 4_000_000_000_000, "resolution": "1D"}
        status, body = await get(s, sim, **query)
        now = sim.clock.now_ms()
        assert status == 200 and body["jsonrpc"] == "2.0" and body["testnet"] is False
        assert body["usIn"] == now * 1000 and body["usDiff"] == body["usOut"] - body["usIn"]
        data = body["result"]["data"]
        assert len(data) == 1000 and body["result"]["continuation"] == data[0][0] - 1
        assert all(row[0] + DAY_MS <= now for row in data)  # only days that have closed
        newest = data[-1][0]
        assert newest > now - 2 * DAY_MS  # and nothing withheld that was known

        sim.advance(DAY_MS)  # a day later on the replay clock, exactly one more day is known
        status, later = await get(s, sim, **query)
        assert later["result"]["data"][-1][0] == newest + DAY_MS
        assert all(row[0] + DAY_MS <= sim.clock.now_ms() for row in later["result"]["data"])

        status, old = await get(s, sim, **dict(query, end_timestamp=body["result"]["continuation"]))
        assert old["result"]["data"][-1][0] < data[0][0]


async def test_dvol_endpoint_errors_are_jsonrpc():
    async with backpack_sim() as sim, aiohttp.ClientSession() as s:
        status, body = await get(s, sim, currency="BTC", start_timestamp=0, end_timestamp=1, resolution="3600")
        assert status == 400 and body["error"]["code"] == -32602 and body["error"]["data"]["param"] == "resolution"
        status, body = await get(s, sim, currency="BTC", resolution="1D")
        assert status == 400 and body["error"]["data"]["param"] == "start_timestamp"

"""Klines from 1m data with 1h warm-up history: every interval the venues serve returns rows of exactly
that interval (aligned buckets, true ranges), never a finer candle passed off as a coarser one nor a
coarse one split; prices on the symbol's precision, trade counts and taker volumes filled in."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from decimal import Decimal as D

import aiohttp
import pytest
from sim_core_support import ROOT, START_MS

from ate.config.sim import SimConfig
from ate.data.candles import Candle
from ate.sim import klines
from ate.sim.backpack_face import BackpackFace
from ate.sim.binance import BinanceFace
from ate.sim.clock import ManualClock
from ate.sim.runner import run_simulator

SPOT_1M = "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
HISTORY_1H = "data/binance_spot_BTCUSDT_1h.csv.gz"
HOUR = 3_600_000
DAY = 24 * HOUR


def config() -> SimConfig:
    market = {"data": SPOT_1M, "history": HISTORY_1H}
    return SimConfig.model_validate({
        "speed": 0, "start_ms": START_MS + DAY,  # 2025-06-03: a day of 1m data before the start
        "markets": [{"venue": "binance-spot", "symbol": "BTCUSDT", **market},
                    {"venue": "binance-usdm", "symbol": "BTCUSDT", **market},
                    {"venue": "backpack", "symbol": "BTC_USDC", **market}]})


@pytest.fixture(scope="module")
def world_candles() -> list[Candle]:
    from ate.sim.runner import build_world

    core, *_ = build_world(config(), ManualClock(), base_dir=ROOT)
    return core.market("binance-spot", "BTCUSDT").candles


def month_end(ts: int) -> int:
    d = datetime.fromtimestamp(ts / 1000, UTC)
    return int(datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def expected_end(open_ms: int, interval: str) -> int:
    return month_end(open_ms) if interval == "1M" else open_ms + klines.FIXED_MS[interval]


@pytest.mark.parametrize("interval", klines.BINANCE_SPOT)
def test_every_row_is_exactly_the_interval_and_holds_only_candles_that_fit(world_candles, interval):
    rows = klines.klines(world_candles, interval, START_MS - 40 * DAY, None)
    opens = [c.open_ms for c in world_candles]
    if interval == "1s":
        assert rows == []  # nothing finer than a minute exists: no 1m candle passes for a second
        return
    assert rows
    for r in rows:
        assert klines.bucket(r.open_ms, interval) == (r.open_ms, r.close_ms)
        assert r.close_ms == expected_end(r.open_ms, interval)
        inside = [c for c in world_candles[bisect.bisect_left(opens, r.open_ms):bisect.bisect_left(opens, r.close_ms)]
                  if c.interval_ms <= r.close_ms - r.open_ms]
        assert r.n_base == len(inside) and r.open == inside[0].open and r.close == inside[-1].close
        assert r.high == max(c.high for c in inside) and r.low == min(c.low for c in inside)
    if klines.FIXED_MS.get(interval, DAY) < HOUR:
        # finer than the history: rows only where the 1m data is, none from the 1h history
        first_1m = next(c.open_ms for c in world_candles if c.interval_ms == 60_000)
        assert rows[0].open_ms == klines.bucket(first_1m, interval)[0]


async def test_binance_and_backpack_serve_every_interval_on_the_wire():
    clock = ManualClock()
    async with run_simulator(config(), clock=clock, faces=[BinanceFace(), BackpackFace()], base_dir=ROOT) as sim, \
            aiohttp.ClientSession() as s:
        sim.advance(6 * HOUR)
        now = clock.now_ms()
        for venue, path, intervals in (("binance-spot", "/api/v3/klines", klines.BINANCE_SPOT),
                                       ("binance-usdm", "/fapi/v1/klines", klines.BINANCE_USDM)):
            for interval in intervals:
                async with s.get(sim.url(venue) + path, params={"symbol": "BTCUSDT", "interval": interval,
                                                                "limit": "1000"}) as r:
                    assert r.status == 200, await r.text()
                    rows = await r.json()
                if interval == "1s":
                    assert rows == []
                    continue
                assert rows, (venue, interval)
                for row in rows:
                    assert row[6] == expected_end(row[0], interval) - 1 and row[6] < now, (venue, interval, row)
                    assert row[8] > 0 and D(row[9]) > 0 and D(row[5]) > 0
                if venue == "binance-spot":
                    assert all(len(p.split(".")[1]) == 8 for p in rows[-1][1:6]), rows[-1]  # Spot pads 8 decimals
                else:
                    # on the 0.10 tick, with its two decimals
                    assert all(len(p.split(".")[1]) == 2 and D(p) % D("0.10") == 0 for p in rows[-1][1:5]), rows[-1]
        async with s.get(sim.url("binance-usdm") + "/fapi/v1/klines",
                         params={"symbol": "BTCUSDT", "interval": "1s"}) as r:
            assert r.status == 400 and (await r.json())["code"] == -1120  # USD-M serves no 1s klines
        async with s.get(sim.url("binance-spot") + "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m",
                                                                          "startTime": str(START_MS - DAY)}) as r:
            rows = await r.json()
        first_1m = min(c.open_ms for c in sim.core.market("binance-spot", "BTCUSDT").candles if c.interval_ms == 60_000)
        assert [x[0] for x in rows[:2]] == [first_1m, first_1m + 60_000]  # where the 1m data begins
        for name, interval in klines.BACKPACK.items():
            async with s.get(sim.url("backpack") + "/api/v1/klines",
                             params={"symbol": "BTC_USDC", "interval": name,
                                     "startTime": str((START_MS - 60 * DAY) // 1000)}) as r:
                assert r.status == 200, await r.text()
                rows = await r.json()
            assert rows, name
            for row in rows:
                start = int(datetime.strptime(row["start"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()) * 1000
                end = int(datetime.strptime(row["end"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()) * 1000
                assert end == expected_end(start, interval), (name, row)
                assert int(row["trades"]) > 0 and D(row["volume"]) > 0
            assert len(rows[0]["open"].split(".")[1]) == 2  # BTC_USDC's tick, 0.01

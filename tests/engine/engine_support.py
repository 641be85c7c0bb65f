"""Shared harness of the engine's end-to-end tests: the simulator on 127.0.0.1 driven by a manual clock,
and an Engine whose venue clients talk to it over the real wire protocols ("real orders, real protocol").

The venues in the engine's config are NOT `simulated` (canary/live refuse that by design): their URLs
point at the simulator's loopback servers and the keys come from environment variables.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ate.config import parse_config
from ate.config.sim import SimConfig
from ate.engine import Engine
from ate.model import backpack_client_id
from ate.sim.backpack_face import BackpackFace
from ate.sim.binance_rest import BinanceRest
from ate.sim.clock import ManualClock
from ate.sim.runner import Simulator, run_simulator
from ate.venues.backpack.signing import public_key_from_seed

ROOT = Path(__file__).resolve().parents[2]
SPOT_2026 = "data/binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz"
BYBIT_2026 = "data/bybit_linear_BTCUSDT_1m_2026-02-27_2026-03-29.csv.gz"
PERP_1H_2026 = "data/binance_usdm_BTCUSDT_perp_1h_2026-01-01_2026-05-17.csv.gz"
FUNDING = "data/binance_usdm_BTCUSDT_funding.csv"
SPOT_2025 = "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
PERP_2025 = "data/binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"
DATA_FILES = (SPOT_2026, BYBIT_2026, PERP_1H_2026, FUNDING, SPOT_2025, PERP_2025)
START_MS = 1773705600000  # 2026-03-17 00:00 UTC: the spot file starts on the 15th, so 2 days of history
ACCOUNT = "e2e"
BN_KEY, BN_SECRET = "engine-e2e-key", "engine-e2e-secret"
BP_SEED = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
    Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()
ENV = {"E2E_BN_KEY": BN_KEY, "E2E_BN_SECRET": BN_SECRET, "E2E_BP_KEY": public_key_from_seed(BP_SEED),
       "E2E_BP_SECRET": BP_SEED}
ENGINE_VENUE = {"binance-spot": "binance", "binance-usdm": "binance_usdm", "backpack": "backpack"}
SIM_VENUE = {v: k for k, v in ENGINE_VENUE.items()}
BALANCES = {"binance-spot": {"USDT": "10000", "BTC": "0.1"}, "binance-usdm": {"USDT": "10000"},
            "backpack": {"USDC": "10000", "BTC": "0.1"}}


# No fees or buffer assumed: the real cross-venue spread of March 2026 then triggers the arbitrage.
# The Backpack BTC_USDC stand-in replays a USDT series (Bybit): a fixed rate of 1 is the truth here, so it
# is given as the explicit override (no conversion market is simulated).
STAND_IN_RATE = {"conversion_rate": 1.0}
EAGER_ARB = {"strategies": {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0,
                                          "slippage_buffer_bps": 0, **STAND_IN_RATE}}}


def data_present() -> bool:
    return all((ROOT / f).exists() for f in DATA_FILES)


def sim_config(*, balances: dict | None = None, faults: str = "", start_ms: int = START_MS,
               spot_data: str = SPOT_2026, perp_data: str = PERP_1H_2026, backpack_data: str = BYBIT_2026,
               **market_overrides: Any) -> SimConfig:
    """Binance spot (real), Binance USD-M perp (real 1h bars and funding), and Backpack BTC_USDC replaying
    the real Bybit series: the real cross-venue spread is what the arbitrage sees. (The only March 2026
    USD-M file is hourly; sessions that need the perp streaming every 15 s use the June 2025 files.)"""
    markets = [
        {"venue": "binance-spot", "symbol": "BTCUSDT", "data": spot_data},
        {"venue": "binance-usdm", "symbol": "BTCUSDT", "data": perp_data, "funding": FUNDING},
        {"venue": "backpack", "symbol": "BTC_USDC", "data": backpack_data},
    ]
    for m in markets:
        m.update(market_overrides)
    return SimConfig.model_validate({
        "speed": 0, "start_ms": start_ms, "seed": 7, "faults": faults,
        "accounts": [{"id": ACCOUNT, "binance_api_key": BN_KEY, "binance_api_secret": BN_SECRET,
                      "backpack_public_key": ENV["E2E_BP_KEY"], "balances": balances or BALANCES}],
        "markets": markets,
    })


def engine_config_dict(sim: Simulator, store_path: Path, *, mode: str = "shadow", **sections: Any) -> dict:
    """An engine config whose (non-simulated) venues point at the running simulator."""
    cfg: dict[str, Any] = {
        "mode": mode, "run_id": "e2e",
        "store": {"url": f"sqlite:///{store_path}"},
        "kill_switch": {"file": str(store_path.parent / "EMERGENCY_STOP")},
        "monitor": {"enabled": False},
        "strategies": {"arbitrage": dict(STAND_IN_RATE)},  # a section given by a test replaces this one
        "markets": {"primary": "binance:BTCUSDT",
                    "binance": [{"symbol": "BTCUSDT", "kind": "spot"}, {"symbol": "BTCUSDT", "kind": "perp"}],
                    "backpack": [{"symbol": "BTC_USDC", "kind": "spot"}]},
        "venues": {
            "binance": {"spot_rest_url": sim.url("binance-spot"), "spot_ws_url": sim.url("binance-spot", "ws"),
                        "spot_ws_api_url": sim.url("binance-spot", "ws") + "/ws-api/v3",
                        "usdm_rest_url": sim.url("binance-usdm"), "usdm_ws_url": sim.url("binance-usdm", "ws"),
                        "api_key_env": "E2E_BN_KEY", "api_secret_env": "E2E_BN_SECRET"},
            "backpack": {"rest_url": sim.url("backpack"), "ws_url": sim.url("backpack", "ws"),
                         "api_key_env": "E2E_BP_KEY", "api_secret_env": "E2E_BP_SECRET"},
            "deribit": {"enabled": False},
        },
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


class ReplayClock:
    """The engine's venue Clock on the simulator's manual replay clock: `sleep` returns when the test has
    driven the replay past the deadline (`Driver.step`), never on wall time."""

    def __init__(self, manual: ManualClock) -> None:
        self.manual = manual
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.free_running = False

    def now_ms(self) -> int:
        return self.manual.now_ms()

    async def sleep(self, seconds: float) -> None:
        if self.free_running:  # shutting down: nobody drives the replay any more, waits must still end
            self.manual.advance(max(0, int(seconds * 1000)))
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now_ms() + max(0, int(seconds * 1000)), next(self._seq), fut))
        await fut

    def wake(self) -> None:
        now = self.now_ms()
        while self._sleepers and self._sleepers[0][0] <= now:
            fut = heapq.heappop(self._sleepers)[2]
            if not fut.done():
                fut.set_result(None)


class InFlight:
    """Counts the engine's HTTP requests in flight, so the replay clock never jumps while one is on the wire
    (a jump would show up as a round trip of minutes and the clients would rightly refuse to sign)."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._start)
        trace.on_request_end.append(self._end)
        trace.on_request_exception.append(self._end)
        original = aiohttp.ClientSession

        def session(*args, **kwargs):
            return original(*args, trace_configs=[trace], **kwargs)

        monkeypatch.setattr("ate.engine.aiohttp.ClientSession", session)

    async def _start(self, *_args) -> None:
        self.count += 1

    async def _end(self, *_args) -> None:
        self.count -= 1


class RequestCounter:
    """Counts the requests the simulator's Binance and Backpack REST faces receive, by (method, path)."""

    def __init__(self, monkeypatch) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        for cls in (BinanceRest, BackpackFace):
            original = cls._dispatch

            async def counted(face, request, *args, _original=original):
                self.seen[(request.method, request.path)] += 1
                return await _original(face, request, *args)

            monkeypatch.setattr(cls, "_dispatch", counted)

    def order_posts(self) -> int:
        return sum(n for (method, path), n in self.seen.items() if method == "POST" and "order" in path.lower())


async def settle(until: Callable[[], bool] | None = None, *, rounds: int = 2000) -> bool:
    """Let loopback I/O and the engine's tasks run until `until()` holds (bounded by rounds, not time)."""
    for _ in range(rounds):
        if until is not None and until():
            return True
        await asyncio.sleep(0.001 if until is not None else 0)
    return until is None or until()


class Driver:
    """Moves the replay forward in steps and lets the engine consume every update before the next step."""

    def __init__(self, sim: Simulator, clock: ReplayClock, engine: Engine | None = None,
                 in_flight: InFlight | None = None) -> None:
        self.sim = sim
        self.clock = clock
        self.engine = engine
        self.in_flight = in_flight

    async def quiet(self) -> bool:
        """Wait (bounded) until no engine HTTP request is in flight."""
        return self.in_flight is None or await settle(lambda: self.in_flight.count == 0, rounds=2000)

    async def step(self, ms: int) -> None:
        await self.quiet()
        before = {k: m.update_id for k, m in self.sim.core.markets.items()}
        self.sim.advance_to(self.sim.clock.now_ms() + ms)
        self.clock.wake()
        moved = [k for k, m in self.sim.core.markets.items() if m.update_id != before[k]]
        await settle((lambda: self.caught_up(moved)) if self.engine is not None else None, rounds=500)
        await self.quiet()

    def caught_up(self, markets) -> bool:
        """The engine has seen the simulator's latest top of book on every market that moved."""
        assert self.engine is not None
        books = self.engine.core.books
        for venue, symbol in markets:
            key = f"{ENGINE_VENUE[venue]}:{symbol}"
            book = books.get(key)
            if key in self.engine.instruments and (book is None or
                                                   book.update_id < self.sim.core.markets[venue, symbol].update_id):
                return False
        return True

    async def run(self, total_ms: int, step_ms: int) -> None:
        for _ in range(total_ms // step_ms):
            await self.step(step_ms)


@contextlib.asynccontextmanager
async def world(tmp_path: Path, monkeypatch, *, mode: str = "shadow", sim_cfg: SimConfig | None = None,
                engine_sections: dict | None = None, warm_ms: int = 120_000,
                start_engine: bool = True) -> AsyncIterator[tuple[Simulator, Engine | None, Driver, dict]]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(ROOT)  # the engine reads data/deribit_BTC_DVOL_1d.csv relative to the working dir
    manual = ManualClock()
    async with run_simulator(sim_cfg or sim_config(), clock=manual, base_dir=ROOT) as sim:
        sim.advance(warm_ms)
        clock = ReplayClock(manual)
        raw = engine_config_dict(sim, tmp_path / "ate.db", mode=mode, **(engine_sections or {}))
        (tmp_path / "engine.json").write_text(json.dumps(raw))
        engine = None
        in_flight = InFlight(monkeypatch)
        if start_engine:
            engine = Engine(parse_config(raw), clock=clock)
            await engine.start()
        driver = Driver(sim, clock, engine, in_flight)
        await driver.quiet()
        await settle(rounds=50)  # user-stream subscriptions (signed, over WebSocket) before time moves
        try:
            yield sim, engine, driver, raw
        finally:
            if engine is not None:
                release_sleepers(clock)
                await engine.stop()


def release_sleepers(clock: ReplayClock) -> None:
    """Let a hand-driven replay clock run free, so an engine whose tasks sleep on simulated time can stop."""
    clock.free_running = True
    clock.wake()
    for *_, fut in clock._sleepers:
        if not fut.done():
            fut.set_result(None)
    clock._sleepers.clear()


async def stop_engine(engine: Engine, drive: Driver) -> None:
    """Stop an engine a test started on the world's clock; the clock is hand-driven again afterwards."""
    release_sleepers(drive.clock)
    await engine.stop()
    drive.engine = None
    drive.clock.free_running = False


def sim_orders(sim: Simulator) -> list:
    """Every order the simulator's venues received from the test account."""
    return [o for (venue, symbol) in sim.core.markets for o in sim.core.all_orders(ACCOUNT, venue, symbol)]


def venue_client_id(order) -> str:
    """An engine order's client id as the venue knows it (Backpack takes a uint32 derived from it)."""
    return str(backpack_client_id(order.client_order_id)) if order.venue == "backpack" else order.client_order_id


def assert_venue_orders_known(sim: Simulator, store) -> None:
    """No order sent twice (client ids unique on every venue) and none unknown to the store."""
    sent = [(o.venue, o.client_order_id) for o in sim_orders(sim)]
    assert len(sent) == len(set(sent)), f"duplicate client order ids on the venue: {len(sent) - len(set(sent))}"
    known = {(SIM_VENUE[o.venue], venue_client_id(o)) for o in store.orders()}
    unknown = set(sent) - known
    assert not unknown, f"orders on the venue the store does not know: {sorted(unknown)[:5]}"

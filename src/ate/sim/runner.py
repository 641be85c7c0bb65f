"""Runs a whole simulated world: core + replay + protocol faces, as an async context manager.

    async with run_simulator(config) as sim:       # config: ate.config.sim.SimConfig
        sim.endpoints                               # [Endpoint(venue, kind, url), ...]
        sim.url("binance-spot", "rest")             # "http://127.0.0.1:PORT"
        sim.core, sim.clock, sim.replayer, sim.faults
        sim.inject("withdraw", account="alice", venue="binance-spot", asset="BTC", amount="0.05")
        sim.play(scenario)                          # ate.sim.scenario.Scenario: timed injections

Pass ``clock=ManualClock()`` (frozen) or ``clock=SteppingClock()`` (real time, jumpable: use it when
clients sign with wall-clock timestamps) to drive the replay yourself (tests): it then does not run on
its own; call ``sim.advance_to(ts_ms)`` / ``sim.advance(ms)``. Otherwise the replay follows a ScaledClock at
``speed`` (0 = as fast as possible) in a background task.

Faces (registration)
--------------------
A face is any object with::

    async def start(self, ctx: SimContext) -> list[Endpoint]   # bind servers, subscribe to ctx.core
    async def stop(self) -> None

``SimContext`` gives ``core``, ``clock`` (``now_ms()``), ``faults`` (:class:`ate.sim.faults.Faults`),
``config`` (SimConfig: accounts with keys), ``server_time_ms()`` (for /time and signed-timestamp
checks), ``host`` and ``port()`` (the next port to bind: 0 when
``port_base`` is 0, else port_base, port_base+1, ...). Endpoint venues are ``binance-spot``,
``binance-usdm``, ``backpack``, ``deribit``; kinds ``rest`` or ``ws``; URLs are base URLs without a
path (``http://127.0.0.1:P``, ``ws://127.0.0.1:P``).

The default faces are loaded from ``FACES`` ("module:Class", constructed without arguments); a face
module that does not exist yet is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal, Protocol

from ate.config.sim import FaultSpec, SimConfig, SimMarketConfig
from ate.data.candles import Candle
from ate.data.loaders import FundingRate, load_candles, load_funding
from ate.model import Instrument, MarketKind
from ate.sim.clock import ManualClock, ScaledClock, SteppingClock, WallStamp, same_time, wall_clock
from ate.sim.core import MatchingCore
from ate.sim.faults import Faults
from ate.sim.inject import Injector
from ate.sim.instruments import KNOWN
from ate.sim.replay import STEP_MS, Replayer
from ate.sim.scenario import Scenario

Clock = ManualClock | SteppingClock | ScaledClock
FACES = ("ate.sim.binance:BinanceFace", "ate.sim.backpack_face:BackpackFace", "ate.sim.deribit_face:DeribitFace")


@dataclass(frozen=True, slots=True)
class Endpoint:
    venue: str
    kind: Literal["rest", "ws"]
    url: str

    def line(self) -> str:
        return f"{self.venue} {self.kind} {self.url}"


@dataclass
class SimContext:
    core: MatchingCore
    clock: Clock
    faults: Faults
    config: SimConfig
    replayer: Replayer
    injector: Injector
    host: str = "127.0.0.1"
    port_base: int = 0
    _next: int = 0
    stamp: Callable[[int], int] = same_time  # data time -> world time (ate.sim.clock.WallStamp in wall mode)

    def server_time_ms(self) -> int:
        """What the venues report as server time and check signed timestamps against: the world's one
        clock (wall time in the ``wall`` mode, data time in ``replay``) plus the fault plan's skew."""
        return self.clock.now_ms() + self.faults.skew_ms

    def port(self) -> int:
        if not self.port_base:
            return 0
        p = self.port_base + self._next
        self._next += 1
        return p


class Face(Protocol):
    async def start(self, ctx: SimContext) -> list[Endpoint]: ...

    async def stop(self) -> None: ...


@dataclass
class Simulator:
    ctx: SimContext
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def core(self) -> MatchingCore:
        return self.ctx.core

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def clock_speed(self) -> float:
        """World ms per wall ms: the replay speed, 1 in the wall mode, 0 for a clock driven by hand."""
        return self.ctx.clock.speed if isinstance(self.ctx.clock, ScaledClock) else 0.0

    def replay_position_ms(self) -> int:
        """The data time the replay has reached (to resume from it: ``SimConfig.start_ms``)."""
        now = self.ctx.clock.now_ms()
        return self.ctx.stamp.data_ms(now) if isinstance(self.ctx.stamp, WallStamp) else now

    @property
    def replayer(self) -> Replayer:
        return self.ctx.replayer

    @property
    def faults(self) -> Faults:
        return self.ctx.faults

    def url(self, venue: str, kind: str = "rest") -> str:
        for e in self.endpoints:
            if e.venue == venue and e.kind == kind:
                return e.url
        raise KeyError(f"no {kind} endpoint for {venue}")

    def inject(self, kind: str, **params: object) -> object:
        """Inject one fault now (see ate.sim.inject and docs/simulator-faults.md)."""
        return self.ctx.injector.inject(kind, **params)

    def play(self, scenario: Scenario) -> None:
        """Schedule a scenario's events in replayed (data) time, counted from now: ``t+1m`` is one minute
        of data later, 1/speed of a minute of wall time in the wall mode."""
        scenario.schedule(self.ctx.replayer, self.ctx.injector, self.replay_position_ms(), self.ctx.stamp)

    def advance_to(self, ts_ms: int) -> int:
        return self.ctx.replayer.advance_to(ts_ms)

    def advance(self, ms: int) -> int:
        return self.advance_to(self.ctx.clock.now_ms() + ms)


def instrument_for(mc: SimMarketConfig) -> Instrument:
    """The known real filters of (venue, symbol), with any field the config gives overriding them."""
    known = KNOWN.get((mc.venue, mc.symbol))
    fields = {"tick_size": mc.tick_size, "step_size": mc.step_size, "min_qty": mc.min_qty, "max_qty": mc.max_qty,
              "min_price": mc.min_price, "max_price": mc.max_price, "min_notional": mc.min_notional,
              "base": mc.base, "quote": mc.quote, "kind": MarketKind(mc.kind) if mc.kind else None}
    given = {k: v for k, v in fields.items() if v is not None}
    if known is not None:
        return dataclasses.replace(known, **given)
    missing = {"base", "quote", "kind", "tick_size", "step_size"} - set(given)
    if missing:
        raise ValueError(f"sim market {mc.venue}:{mc.symbol} is not known; give {sorted(missing)}")
    return Instrument(venue=mc.venue, symbol=mc.symbol, grid_at_min=mc.venue == "binance-usdm", **given)


@functools.lru_cache(maxsize=16)
def _candles(path: Path, mtime_ns: int) -> tuple[Candle, ...]:
    return tuple(load_candles(path))


@functools.lru_cache(maxsize=16)
def _funding(path: Path, mtime_ns: int) -> tuple[FundingRate, ...]:
    return tuple(load_funding(path))


def _cached(loader, path: Path):
    """Parsed data files are immutable; a process that starts many simulators (tests) parses each once."""
    return loader(path.resolve(), path.stat().st_mtime_ns)


def clock_mode(config: SimConfig) -> Literal["wall", "replay"]:
    """``auto`` is replay: in process the engine's clients share the replay clock (``ate simulate``
    resolves auto itself, see ate.sim.command)."""
    return "wall" if config.clock == "wall" else "replay"


def _restamp(candles: Sequence[Candle], stamp: Callable[[int], int]) -> list[Candle]:
    return [dataclasses.replace(c, open_ms=stamp(c.open_ms), interval_ms=stamp(c.close_ms) - stamp(c.open_ms))
            for c in candles]


def build_world(config: SimConfig, clock: Clock | None = None, *,
                base_dir: Path | str = ".") -> tuple[MatchingCore, Replayer, Clock, Callable[[int], int]]:
    """Core with the config's markets and accounts, a replayer positioned at the start time, the
    world clock, and the stamp that maps data time onto it (``sim.clock``: see ate.sim.clock)."""
    base = Path(base_dir)
    loaded = []
    for mc in config.markets:
        candles = _cached(_candles, base / mc.data)
        if not candles:
            raise ValueError(f"{mc.data}: no candles")
        loaded.append((mc, candles))
    start = config.start_ms or max(c[0].open_ms for _, c in loaded)
    stamp: Callable[[int], int] = same_time
    if clock_mode(config) == "wall":
        if clock is not None:
            raise ValueError("the wall clock mode follows the wall clock; drive a test's clock in replay mode")
        now = int(time.time() * 1000)
        # the replay start on a whole second: at speed 60 a 1m candle is then exactly one 1s kline
        stamp = WallStamp(start, now - now % 1000, config.speed)
        clock = wall_clock(now)
    elif clock is None:
        clock = ScaledClock(start, config.speed) if config.speed > 0 else ManualClock(start)
    elif not isinstance(clock, ScaledClock) and clock.now_ms() < start:
        clock.set(start)
    core = MatchingCore(clock.now_ms)
    replayer = Replayer(core, clock)
    # a funding period and a candle shrink together with the speed in the wall mode
    funding_interval_ms = stamp(start + 8 * 3_600_000) - stamp(start)
    for mc, candles in loaded:
        inst = instrument_for(mc)
        fee = config.fee(mc.venue)
        m = core.add_market(inst, fee.maker, fee.taker, venue=mc.venue, depth_levels=mc.depth_levels,
                            depth_step_ticks=mc.depth_step_ticks, funding_interval_ms=funding_interval_ms)
        past: list[Candle] = []
        if mc.history:
            first = min(candles[0].open_ms, start)
            past.extend(c for c in _cached(_candles, base / mc.history) if c.close_ms <= first)
        past.extend(c for c in candles if c.close_ms <= start)
        ahead = [c for c in candles if c.close_ms > start]
        if stamp is not same_time:
            past, ahead = _restamp(past, stamp), _restamp(ahead, stamp)
        m.candles.extend(past)
        replayer.add_candles(m, ahead, spread_bps=mc.spread_bps, size_fraction=mc.size_fraction,
                             min_size=mc.min_size, step_ms=max(1, stamp(start + STEP_MS) - stamp(start)))
        if mc.funding:
            rates = _cached(_funding, base / mc.funding)
            if stamp is not same_time:
                rates = tuple(dataclasses.replace(r, ts_ms=stamp(r.ts_ms)) for r in rates)
            replayer.add_funding(m, rates, start_ms=stamp(start))
    for ac in config.accounts:
        core.add_account(ac.id)
        for venue, assets in ac.balances.items():
            for asset, amount in assets.items():
                core.deposit(ac.id, venue, asset, Decimal(amount))
    replayer.advance_to(stamp(start))
    return core, replayer, clock, stamp


def default_faces() -> list[Face]:
    faces = []
    for spec in FACES:
        module_name, _, cls = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        faces.append(getattr(module, cls)())
    return faces


@contextlib.asynccontextmanager
async def run_simulator(config: SimConfig, *, clock: Clock | None = None,
                        speed: float | None = None, faults: FaultSpec | str | None = None,
                        seed: int | None = None, port_base: int | None = None, clock_mode: str | None = None,
                        faces: Sequence[Face] | None = None,
                        base_dir: Path | str = ".") -> AsyncIterator[Simulator]:
    """Start every face on loopback and (unless the clock is manual) the replay; stop all on exit."""
    updates: dict[str, object] = {}
    if speed is not None:
        updates["speed"] = speed
    if faults is not None:
        updates["faults"] = FaultSpec.model_validate(faults) if isinstance(faults, str) else faults
    if seed is not None:
        updates["seed"] = seed
    if port_base is not None:
        updates["port_base"] = port_base
    if clock_mode is not None:
        updates["clock"] = clock_mode
    if updates:
        config = SimConfig.model_validate({**config.model_dump(), **updates})
    manual = clock is not None and not isinstance(clock, ScaledClock)
    core, replayer, clock, stamp = build_world(config, clock, base_dir=base_dir)
    faults = Faults(config.faults, config.seed, clock.now_ms)
    ctx = SimContext(core, clock, faults, config, replayer, Injector(core, replayer, faults, clock.now_ms),
                     config.host, config.port_base, stamp=stamp)
    sim = Simulator(ctx)
    started: list[Face] = []
    task = None
    try:
        for face in (default_faces() if faces is None else faces):
            sim.endpoints.extend(await face.start(ctx))
            started.append(face)
        if not manual:
            task = asyncio.create_task(replayer.run(), name="sim-replay")
        yield sim
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for face in reversed(started):
            await face.stop()
        ctx.injector.close()

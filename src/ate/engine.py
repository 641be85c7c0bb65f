"""One running engine, wired from a config: the only place that knows every part (DESIGN.md).

Market data arrives from the venue clients' streams, is validated by the market data manager and
drives the TradingCore; orders leave through the executor of the mode (shadow: none; paper: the
in-process matching core; canary/live: the venues). When the config's venues are `simulated`, the
built-in simulator runs in this process and every venue client talks to it over its real wire
protocol on 127.0.0.1, on the simulator's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from ate.config import EngineConfig
from ate.data.candles import INTERVAL_MS, Candle
from ate.data.loaders import load_dvol
from ate.data.manager import MarketDataManager
from ate.data.price_guard import QUARANTINED, REANCHORED, RECOVERED, GuardBounds, PriceGuard
from ate.data.validate import check_book
from ate.execution.executors import ShadowExecutor, VenueExecutor
from ate.model import Balance, EngineEvent, Instrument, MarketKind, Mode, Order, Severity, TradingState
from ate.model.market import BookTicker, MarkPrice
from ate.risk.events import CLOSE_ALL
from ate.risk.killswitch import KillSwitch
from ate.store import Store
from ate.strategies.factory import build_strategies
from ate.trading.core import TradingCore
from ate.venues.clock import Clock, SystemClock
from ate.venues.factory import build_clients

log = logging.getLogger(__name__)
DVOL_FILE = Path("data/deribit_BTC_DVOL_1d.csv")


REPLAY_POSITION = "sim.replay_position_ms"  # engine state: where an in-process simulator's replay stopped


class SimTime:
    """The simulator's replay clock as a venue Clock: sleeps are in simulated seconds."""

    def __init__(self, scaled: Any, speed: float) -> None:
        self.scaled = scaled
        self.speed = speed

    def now_ms(self) -> int:
        return self.scaled.now_ms()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed if self.speed > 0 else 0)


def simulated_venues(cfg: EngineConfig, sim: Any) -> EngineConfig:
    """The config with every simulated venue's URLs pointed at the running simulator."""
    v = cfg.venues
    b, p, d = v.binance, v.backpack, v.deribit
    if b.simulated:
        b = b.model_copy(update={
            "spot_rest_url": sim.url("binance-spot", "rest"), "spot_ws_url": sim.url("binance-spot", "ws"),
            "spot_ws_api_url": sim.url("binance-spot", "ws"), "usdm_rest_url": sim.url("binance-usdm", "rest"),
            "usdm_ws_url": sim.url("binance-usdm", "ws")})
    if p.simulated:
        p = p.model_copy(update={"rest_url": sim.url("backpack", "rest"), "ws_url": sim.url("backpack", "ws")})
    if d.simulated:
        d = d.model_copy(update={"rest_url": sim.url("deribit", "rest")})
    return cfg.model_copy(update={"venues": v.model_copy(update={"binance": b, "backpack": p, "deribit": d})})


@dataclass
class EngineStats:
    started_ms: int = 0
    books: int = 0
    candles: int = 0


class CoreFeed:
    """Accepted market data (from the data manager) and private account events, into the trading core.

    Funding settlements are detected from the mark-price stream: when a market's next funding time
    moves forward, the rate that was announced for the time just passed has settled.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._next_funding: dict[str, tuple[int, Decimal]] = {}
        self._seen_streams: set[str] = set()

    def on_book(self, book: BookTicker) -> None:
        engine = self.engine
        if engine.paper is not None:  # paper fills happen on the live book before strategies react to it
            engine.paper.on_book(book)
            engine.paper_executor.flush()
        self.engine.stats.books += 1
        stream = f"{book.venue}:{book.symbol}@bookTicker"
        if stream not in self._seen_streams:  # a message proves the connection; age tracks staleness after
            self._seen_streams.add(stream)
            self.engine.recorder.stream_status(stream, True)
        self.engine.recorder.stream_message(stream)
        self.engine.core.on_book(book)

    def on_candle(self, venue: str, symbol: str, timeframe: str, candle: Candle) -> None:
        if timeframe == "1m":
            self.engine.stats.candles += 1
            self.engine.core.on_candle(f"{venue}:{symbol}", candle)
            self.engine.recorder.candle(f"{venue}:{symbol}", candle.open_ms, candle.open, candle.high, candle.low,
                                        candle.close)

    def on_mark(self, mark: MarkPrice) -> None:
        market = f"{mark.venue}:{mark.symbol}"
        core = self.engine.core
        inst = core.portfolio.instruments.get(market)
        # A perp's book can stay quiet for longer than the trusted-price age while its mark keeps coming: the
        # mark is a trusted price too, once the price guard (the same anchor as the books) accepts it.
        if (inst is not None and inst.kind is MarketKind.PERP
                and self.engine.guard.check((mark.venue, mark.symbol), mark.mark, mark.mark, mark.ts_ms) is None):
            core.on_mark(market, mark.mark)
        if mark.funding_rate is None:
            return
        core.set_predicted_funding(market, mark.funding_rate)
        prev = self._next_funding.get(market)
        if mark.next_funding_ms is not None:
            if prev is not None and mark.next_funding_ms > prev[0]:
                engine = self.engine
                if engine.paper is not None:
                    engine.paper.core.settle_funding(mark.venue, mark.symbol, prev[0], prev[1], mark.mark)
                    engine.paper_executor.flush()
                core.on_funding(market, prev[1], mark.mark, prev[0])
            self._next_funding[market] = (mark.next_funding_ms, mark.funding_rate)

    def on_dvol(self, currency: str, candle: Candle) -> None:
        self.engine.core.on_dvol(candle.close, candle.close_ms, currency)

    # user streams

    def on_order(self, order: Order, fill: Any) -> None:
        self.engine.core.on_order_update(order, fill)

    def on_gap(self, venue: str) -> None:
        """A user stream reconnected: events may have been missed, so reconcile that venue."""
        self.engine.reconcile_soon(venue)


class Engine:
    def __init__(self, cfg: EngineConfig, *, mode: Mode | None = None, clock: Clock | None = None,
                 monitor: bool | None = None, wall: Clock | None = None) -> None:
        """`clock`: the engine's (replayed or wall) clock; `wall`: the wall clock venue bans and pauses are
        counted on (a test drives both by hand)."""
        self.cfg = cfg if mode is None else cfg.model_copy(update={"mode": mode})
        self.mode = self.cfg.mode
        self.clock: Clock = clock or SystemClock()
        self.wall: Clock = wall or SystemClock()
        self.monitor_enabled = self.cfg.monitor.enabled if monitor is None else monitor
        self.store = Store(self.cfg.store.url)
        self.stats = EngineStats()
        self.sim: Any = None
        self.clients: dict[str, Any] = {}
        self.instruments: dict[str, Instrument] = {}
        self.core: TradingCore
        self.feed = CoreFeed(self)
        f = self.cfg.data_filter
        self.guard = PriceGuard(GuardBounds(f.max_jump_pct, f.max_spread_pct, f.reference_band_pct, f.reanchor_after,
                                            int(f.reanchor_after_s * 1000)),
                                ask_reference=self._ask_reference, on_event=self._data_event)
        self.data = MarketDataManager(guard=self.guard)
        for kind in ("book", "candle", "mark", "dvol"):
            self.data.subscribe(kind, getattr(self.feed, f"on_{kind}"))
        self.tasks: list[asyncio.Task] = []
        self.streams: list[Any] = []
        self.stopping = asyncio.Event()
        self.ready = False
        self.monitor: Any = None
        self.view: Any = None  # what the operator API and Telegram read (monitor.view.StoreView)
        self.controls: Any = None  # what they may ask for (monitor.startup.StartupControls)
        self._mtm_prev: dict[str, tuple] = {}  # per carry pair
        self._mtm_cum = (0.0, 0.0)
        self.executor: Any = None  # where the core's orders go (see _executor)
        self.paper: Any = None  # paper mode: the in-process matching core on live books
        self.paper_executor: Any = None
        self.killswitch: KillSwitch | None = None
        self.observer: Any = None  # alerts, venue pauses, dead-man (monitor.observer.EngineObserver)
        self.telegram: Any = None  # operator commands from Telegram (monitor.telegram.TelegramControl)
        self._exit_stack = contextlib.AsyncExitStack()
        self._beat_wall_ms = 0

    # ---- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Alerts, heartbeat and the operator API first, then the venues: a start-up that waits out a persisted
        ban or reconciles for minutes shows its phase (`/api/status`, dashboard, heartbeat) instead of going
        silent; controls act on flags only until the engine runs (monitor.startup)."""
        from ate.monitor.observer import EngineObserver
        from ate.monitor.recorder import MetricsRecorder
        from ate.monitor.startup import CONNECTING, LOADING, RECONCILING, RUNNING, WARMING_UP

        cfg = self.cfg
        self.store.claim_engine()
        self.observer = EngineObserver(cfg, self.store, event_ms=lambda: self.clock.now_ms(),
                                       wall_ms=self.wall.now_ms)
        await self.observer.start_alerts()
        self._spawn(self._startup_beats())
        for kind in ("book", "mark"):
            self.data.subscribe(kind, lambda value: self.observer.market_data(value.venue))
        self.data.subscribe("candle", lambda venue, *_: self.observer.market_data(venue))
        if cfg.sim is not None and (cfg.venues.binance.simulated or cfg.venues.backpack.simulated):
            from ate.sim.runner import run_simulator

            # a second run resumes the replay where the first stopped (its store remembers the position)
            resume = self.store.get_state(REPLAY_POSITION)
            sim_cfg = cfg.sim if resume is None else cfg.sim.model_copy(update={"start_ms": int(resume)})
            self.sim = await self._exit_stack.enter_async_context(run_simulator(sim_cfg))
            self.clock = SimTime(self.sim.clock, self.sim.clock_speed)
            cfg = self.cfg = simulated_venues(cfg, self.sim)
        self.recorder = MetricsRecorder(clock=self.clock.now_ms)
        self.recorder.operations = self.observer.figures
        self._build_operator_view()
        if self.monitor_enabled:
            await self._start_monitor()
        session = await self._exit_stack.enter_async_context(aiohttp.ClientSession())
        # Bans and pauses are counted by the venue in wall seconds, whatever clock this engine replays on.
        self.clients = build_clients(cfg.venues, clock=self.clock, session=session, pause_clock=self.wall)
        self.observer.attach_venues(self.clients)  # persisted pauses and bans hold before the first request
        for client in self.clients.values():
            client.rest.on_result = self._request_result
        self._phase(CONNECTING)
        for name, client in self.clients.items():
            if name != "deribit":
                await client.start()
        self.stats.started_ms = self.clock.now_ms()
        await self._load_instruments()
        self.view.know_instruments(self.instruments)
        self._phase(LOADING)
        self.core = TradingCore(cfg, instruments=self.instruments.values(), strategies=build_strategies(cfg),
                                clock=self.clock.now_ms, state=self.store, store=self.store,
                                shadow=self.mode.hypothetical,
                                more_dvol={"BTC": list(load_dvol(DVOL_FILE))} if DVOL_FILE.exists() else None)
        self.executor = self._executor()
        self.core.attach(self.executor)
        self._phase(RECONCILING)
        await self._seed_books()
        await self._read_accounts()
        if self.mode in (Mode.CANARY, Mode.LIVE):
            await self._watch_margin()
        self._phase(WARMING_UP)
        await self._seed_funding()
        await self._warm_up()
        await asyncio.gather(*(self._reference(key) for key in self.instruments))
        self.killswitch = KillSwitch(cfg.kill_switch, self.core.keeper, self._cancel_all,
                                     self._flatten if cfg.kill_switch.flatten else None)
        # A kill during start-up (a flag) is adopted, and its orders cancelled, before any stream message.
        await self.killswitch.poll_once()
        self._start_streams()
        self.observer.start_deadman(sorted({key.partition(":")[0] for key in self.instruments}))
        self._spawn(self.killswitch.run())
        self._spawn(self._timer())
        if self.clients.get("deribit") is not None:
            from ate.venues.deribit.client import DvolPoller

            poller = DvolPoller(self.clients["deribit"], self.data, interval_s=cfg.venues.deribit.poll_interval_s)
            self._spawn(poller.run())
        self.controls.running = self._risk_controls()
        self._start_telegram()
        self.observer.startup.enter(RUNNING)
        self.ready = True
        self._heartbeat(True)
        self._event("engine_started", f"engine started in {self.mode.value} mode")

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        if self.killswitch is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.killswitch.install_signal_handler(loop)
        await self.stopping.wait()

    async def stop(self) -> None:
        """Graceful shutdown: stop strategies, keep positions, cancel resting orders per config, flush."""
        from ate.monitor.startup import STOPPING

        self.ready = False
        if self.observer is not None:
            self.observer.startup.enter(STOPPING)
        if self.telegram is not None:
            await self.telegram.stop()
        if self.observer is not None:
            await self.observer.stop_watching()
        for t in self.tasks:
            t.cancel()
        for s in self.streams:
            with contextlib.suppress(Exception):
                await s.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if hasattr(self, "core") and self.cfg.shutdown.cancel_orders and self.mode in (Mode.CANARY, Mode.LIVE):
            await self._cancel_all()
        if hasattr(self, "core"):
            self.core.on_timer()
            self._event("engine_stopped", "engine stopped; positions left as they are")
        if self._beat_wall_ms:
            self._heartbeat(False)
        if self.monitor is not None:
            await self.monitor.stop()
        if isinstance(self.executor, VenueExecutor):
            await self.executor.close()
        if self.observer is not None:
            await self.observer.stop()
        if self.sim is not None:
            self.store.set_state(REPLAY_POSITION, self.sim.replay_position_ms(), self.clock.now_ms())
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        await self._exit_stack.aclose()
        self.store.close()

    # ---- wiring ------------------------------------------------------------------------------------

    def _executor(self):
        if self.mode is Mode.SHADOW:
            return ShadowExecutor(self.core.books.get, self._taker_fee_bps, self.core.on_order_update,
                                  self.clock.now_ms)
        if self.mode is Mode.PAPER:
            from ate.sim.executor import MatchingExecutor
            from ate.sim.paper import ACCOUNT, PaperVenue

            self.paper = PaperVenue(self.instruments.values(), self._fees_bps, self.clock.now_ms)
            self.paper_executor = MatchingExecutor(self.paper.core, ACCOUNT, self.core.on_order_update)
            return self.paper_executor
        ex = self.cfg.execution
        return VenueExecutor(self.clients, self.core.on_order_update, self.clock.now_ms,
                             on_latency=self.recorder.latency, on_event=self.core.record, sleep=self.clock.sleep,
                             resolve_timeout_s=ex.resolve_timeout_s, backoff_s=(0.2, ex.resolve_backoff_max_s))

    def _fees_bps(self, venue: str) -> tuple[Decimal, Decimal]:
        """(maker, taker) fees of a venue in bps, as configured for the account's tier."""
        section = self.cfg.venues.backpack if venue == "backpack" else self.cfg.venues.binance
        return Decimal(repr(section.maker_fee_bps)), Decimal(repr(section.taker_fee_bps))

    def _taker_fee_bps(self, venue: str) -> Decimal:
        return self._fees_bps(venue)[1]

    def _request_result(self, venue: str, ok: bool) -> None:
        """Every REST outcome feeds the operator's error rates and the emergency module's venue health."""
        self.recorder.request(venue, ok)
        if hasattr(self, "core"):
            self.core.signals.record_request(venue, ok, self.clock.now_ms())

    async def _load_instruments(self) -> None:
        wanted = self.cfg.markets.by_key()
        # Markets strategies read besides the configured ones (a conversion market): subscribed the same way.
        extra = {m for s in build_strategies(self.cfg) for m in s.subscriptions()} - set(wanted)
        for venue in {k.partition(":")[0] for k in (*wanted, *extra)}:
            client = self.clients.get(venue)
            if client is None:
                continue
            for inst in await client.instruments():
                if inst.key in wanted or inst.key in extra:
                    self.instruments[inst.key] = inst
        missing = sorted(set(wanted) - set(self.instruments))
        if missing:
            raise RuntimeError(f"markets not listed by their venues: {', '.join(missing)}")
        for m in sorted(extra - set(self.instruments)):  # the strategy that needs it vetoes itself, visibly
            self._event("subscription_missing", f"{m}: not listed by its venue; strategies that read it stay "
                        "vetoed", Severity.CRITICAL)

    async def _seed_books(self) -> None:
        """Every market's top of book over REST, before reconciliation may decide an unwind that needs marks."""
        for key, inst in self.instruments.items():
            try:
                book = await self.clients[inst.venue].book_ticker(inst.symbol)
            except Exception as exc:  # the stream brings the first book instead
                self._event("book_seed_failed", f"{key}: {type(exc).__name__}: {exc}", Severity.WARNING)
                continue
            self.core.seed_book(book)

    async def _read_accounts(self) -> None:
        """Resume from the ledger, then book the venues' difference: in canary/live the missing order updates
        and fills first (each once), then balances and perp positions (deposits, withdrawals, liquidations,
        manual trades) as external events. Shadow and paper compare the venues' balances with transfers only."""
        from ate.execution.reconcile import reconcile, reconcile_accounts

        trading = self.mode in (Mode.CANARY, Mode.LIVE)
        for venue, client in self.clients.items():
            if venue == "deribit":
                continue
            try:
                if trading:
                    await reconcile(self.core, client, self.store, self.clock.now_ms(),
                                    unknown_orders=self.cfg.execution.unknown_orders)
                booked = await reconcile_accounts(self.core, client, self.clock.now_ms(), hypothetical=not trading)
                if booked:  # each one is also an event (an alert unless it is the opening balance)
                    log.info("%s: booked differences with the ledger %s", venue, booked)
                if self.paper is not None:  # the paper venue holds what the paper ledger holds
                    self.paper.fund(venue, {a: Balance(a, amt) for a, amt in
                                            self.core.portfolio.balances[venue].items() if amt})
            except Exception as exc:  # a venue error never crashes the engine
                self._event("account_read_failed", f"{venue}: {type(exc).__name__}: {exc}", Severity.WARNING)
        self.core.rebuild_risk()

    async def _watch_margin(self) -> None:
        """Leverage and margin type set and checked now; margin, balances and positions re-read periodically."""
        from ate.trading.margin import MarginWatch

        carry = self.cfg.strategies.funding_carry
        watch = MarginWatch(self.core, {v: c for v, c in self.clients.items() if v != "deribit"},
                            leverage=carry.leverage, margin_type=carry.margin_type, clock=self.clock.now_ms,
                            on_event=self.core._record, on_drift=self.reconcile_soon, sleep=self.clock.sleep,
                            poll_s=self.cfg.risk_limits.account_poll_s)
        await watch.setup()
        await watch.poll()
        self._spawn(watch.run())

    async def _seed_funding(self) -> None:
        """Perp funding intervals and the recent settled rates, so the carry can decide from the start."""
        for key, inst in self.instruments.items():
            if inst.kind is not MarketKind.PERP:
                continue
            client = self.clients[inst.venue]
            try:
                interval = (await client.funding_intervals()).get(inst.symbol, 8 * 3_600_000)
                history = await client.funding_history(inst.symbol)
            except Exception as exc:  # the carry stays DEGRADED (interval unknown) until it learns more
                self._event("funding_seed_failed", f"{key}: {type(exc).__name__}: {exc}", Severity.WARNING)
                continue
            self.core.seed_funding(key, history, interval)

    async def _warm_up(self) -> None:
        """Back-fill each signal engine's history (the primary market's and each directional market's):
        native 1h candles, then the recent 1m ones."""
        now = self.clock.now_ms()
        hour = INTERVAL_MS["1h"]
        start_1m = now - now % hour
        for market, engine in self.core.engines.items():
            venue, _, symbol = market.partition(":")
            try:
                client = self.clients[venue]
                for c in await client.klines(symbol, "1h", start_1m - 1100 * hour, start_1m):
                    engine.on_candle(c)
                for c in await client.klines(symbol, "1m", start_1m, now - now % 60_000):
                    self.core.on_candle(market, c)
            except Exception as exc:
                self._event("warmup_failed", f"{market}: {type(exc).__name__}: {exc}", Severity.WARNING)

    def _start_streams(self) -> None:
        by_venue: dict[str, list[str]] = {}
        for key in self.instruments:
            venue, _, symbol = key.partition(":")
            by_venue.setdefault(venue, []).append(symbol)
        for venue, symbols in by_venue.items():
            perp = self.instruments[f"{venue}:{symbols[0]}"].kind is MarketKind.PERP
            stream = self.clients[venue].market_stream(symbols, self.data, book=True, candles=True, marks=perp)
            self.streams.append(stream)
            self._spawn(stream.run())
            if self.mode in (Mode.CANARY, Mode.LIVE):
                user = self.clients[venue].user_stream(self.feed)
                self.streams.append(user)
                self._spawn(user.run())

    def _ask_reference(self, key: tuple[str, str]) -> None:
        """The data filter wants an independent price for a market (its first, or after a long quarantine)."""
        if key[0] not in self.clients:  # not started (a harness feeding the data manager directly)
            self.guard.reference_failed(key)
            return
        self._spawn(self._reference(f"{key[0]}:{key[1]}"))

    async def _reference(self, market: str) -> None:
        venue, _, symbol = market.partition(":")
        key = (venue, symbol)
        try:
            book = await self.clients[venue].book_ticker(symbol)
        except Exception as exc:  # the venue is down or refusing: the next quarantined book asks again
            log.warning("reference_failed", extra={"market": market, "error": f"{type(exc).__name__}: {exc}"})
            self.guard.reference_failed(key)
            return
        if check_book(book, None) is not None:
            self.guard.reference_failed(key)
            return
        self.guard.set_reference(key, (book.bid + book.ask) / 2, self.clock.now_ms(), "rest ticker")

    def _data_event(self, kind: str, key: tuple[str, str], data: dict) -> None:
        venue, symbol = key
        what = {QUARANTINED: f"quarantined ({data.get('reason')}) at {data.get('price')}",
                RECOVERED: f"recovered at {data.get('price')} after {data.get('quarantined')} quarantined books",
                REANCHORED: f"re-anchored on the {data.get('source')} at {data.get('to')}"}[kind]
        self.store.add_event(EngineEvent(self.clock.now_ms(), kind, f"{venue}:{symbol} market data {what}",
                                         Severity.INFO if kind == RECOVERED else Severity.WARNING,
                                         {"venue": venue, "symbol": symbol, **data}))

    def _spawn(self, coro) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    def _heartbeat(self, running: bool) -> None:
        """`ate status` tells a running engine from a dead one by this row (wall time, not replay time)."""
        from ate.monitor.status import HEARTBEAT_KEY, heartbeat

        phase = self.observer.startup.detail() if self.observer is not None else None
        beat = heartbeat(os.getpid(), self.mode.value, running, phase)
        with self.store.unit():
            self.store.set_state(HEARTBEAT_KEY, beat, beat["wall_ms"])
            if self.sim is not None:  # a kill -9 resumes the replay from here
                self.store.set_state(REPLAY_POSITION, self.sim.replay_position_ms(), beat["wall_ms"])
        self._beat_wall_ms = beat["wall_ms"]

    def _phase(self, phase: str) -> None:
        """A start-up phase begins: shown by the API and heartbeat at once, and by `ate status` (its row now)."""
        self.observer.startup.enter(phase)
        self._heartbeat(True)

    async def _startup_beats(self) -> None:
        """`ate status` sees a starting engine, and the ban it waits out, from the first moment (wall time;
        once running, the timer beats)."""
        from ate.monitor.status import HEARTBEAT_EVERY_MS

        while not self.ready:
            self._heartbeat(True)
            await asyncio.sleep(HEARTBEAT_EVERY_MS / 1000)

    async def _timer(self) -> None:
        from ate.monitor.status import HEARTBEAT_EVERY_MS

        ticks = 0
        while True:
            await self.clock.sleep(1.0)
            try:
                if time.time() * 1000 - self._beat_wall_ms >= HEARTBEAT_EVERY_MS:
                    self._heartbeat(True)
                if ticks % 60 == 0:
                    self.core.refresh_modules()
                if ticks % 3600 == 0:
                    self._carry_mtm()
                ticks += 1
                self.core.on_timer()
                self._feed_recorder()
            except Exception:  # the timer must survive anything a tick throws
                log.exception("timer tick failed")

    def reconcile_soon(self, venue: str) -> None:
        if self.mode in (Mode.CANARY, Mode.LIVE) and venue in self.clients:
            self._spawn(self._reconcile(venue))

    async def _reconcile(self, venue: str) -> None:
        from ate.execution.reconcile import reconcile

        try:
            await reconcile(self.core, self.clients[venue], self.store, self.clock.now_ms(),
                            unknown_orders=self.cfg.execution.unknown_orders)
        except Exception as exc:  # retried at the next reconnect; a venue error never crashes the engine
            log.exception("reconciliation of %s failed", venue)
            self._event("reconcile_failed", f"{venue}: {type(exc).__name__}: {exc}", Severity.WARNING)

    async def _cancel_all(self) -> int:
        """Cancel every open order: ours through the executor, then anything still listed by a venue."""
        count = 0
        for o in list(self.core.orders.open_orders()):
            self.core.orders.cancel(o)
            count += 1
        if self.mode in (Mode.CANARY, Mode.LIVE):
            for venue, client in self.clients.items():
                if venue == "deribit":
                    continue
                try:
                    for o in await client.open_orders():
                        await client.cancel_order(o.symbol, o.client_order_id)
                        count += 1
                except Exception as exc:  # retried at the kill switch's next poll
                    self._event("cancel_failed", f"{venue}: {type(exc).__name__}: {exc}", Severity.WARNING)
        return count

    async def _flatten(self) -> int:
        """Close every strategy position and pair reduce-only through the risk layer (arbitrage inventory is
        kept): the kill switch with `flatten`, and the operator's close-all."""
        from ate.risk.ladder import flatten_intents

        intents = flatten_intents(self.core.holdings(), reason="operator flatten")
        with self.core.unit():
            return sum(1 for i in intents if self.core.orders.submit(i) is not None)

    def _build_operator_view(self) -> None:
        """The view and controls every operator transport (HTTP API, Telegram) goes through, from the start of
        start-up: the controls act on flags only until the engine runs (monitor.startup.StartupControls)."""
        from ate.monitor.startup import StartupControls
        from ate.monitor.view import StoreView
        from ate.risk.killswitch import kill_file

        self.controls = StartupControls(self.store, self.observer.startup, kill_file=kill_file(self.cfg.kill_switch),
                                        keeper=lambda: self.core.keeper if hasattr(self, "core") else None,
                                        clock=lambda: self.clock.now_ms())
        self.view = StoreView(self.store, recorder=self.recorder, controls=self.controls, mode=self.mode,
                              clock=self.clock.now_ms,
                              clock_kind="wall" if isinstance(self.clock, SystemClock) else "simulated",
                              startup=self.observer.startup.to_dict, health=lambda: self.observer.health().line())

    def _risk_controls(self):
        from ate.monitor.controls import RiskControls

        assert self.killswitch is not None
        return RiskControls(self.killswitch, close_all=self._close_all_cmd, readiness=self.readiness)

    async def _start_monitor(self) -> None:
        from ate.monitor.server import start_monitor

        self.monitor = await start_monitor(self.view, self.cfg.monitor, notifier=self.observer.notifier)

    def _start_telegram(self) -> None:
        from ate.monitor.telegram import TelegramControl

        self.telegram = TelegramControl.from_config(self.cfg.monitor.telegram, os.environ, view=self.view,
                                                    controls=self.controls.running, status=self.status,
                                                    store=self.store)
        if self.telegram is not None:
            self.telegram.start()

    async def _close_all_cmd(self, who: str) -> None:
        """Operator close-all: halt, cancel every order, close every strategy position reduce-only."""
        await self.kill(f"close-all by {who}", who)
        sent = await self._flatten()
        self._event(CLOSE_ALL, f"close-all by {who}: halted, orders canceled, {sent} reduce-only close orders sent",
                    Severity.CRITICAL, {"who": who, "closed": sent})

    async def readiness(self) -> tuple[bool, list[str]]:
        reasons = []
        if not self.ready:
            reasons.append("engine starting or stopping")
        now = self.clock.now_ms()
        for market in self.instruments:
            book = self.core.books.get(market) if hasattr(self, "core") else None
            venue = self.cfg.venues.backpack if market.startswith("backpack:") else self.cfg.venues.binance
            if book is None or now - book.ts_ms > venue.stream_stale_after_s * 1000:
                reasons.append(f"no fresh book for {market}")
        return not reasons, reasons

    def _carry_mtm(self) -> None:
        """Hourly MTM increments of the carry book, spot alone and spot + perp, at the positions held over
        the hour (fills, funding and fees excluded): what the monitor's hedge effectiveness is made of."""
        carry = self.core.by_name.get("funding_carry")
        if carry is None:
            return
        moved = False
        for key, pair in carry.slots.items():  # every carry pair's increments, summed
            spot = self.core.portfolio.position(pair.spot).mark_price
            perp = self.core.portfolio.position(pair.perp).mark_price
            prev = self._mtm_prev.get(key)
            self._mtm_prev[key] = (pair.spot_qty, pair.perp_qty, spot, perp)
            if prev is None or not (prev[0] or prev[1]) or not (spot and perp and prev[2] and prev[3]):
                continue
            qs, qp, s0, p0 = prev
            d_spot = qs * (spot - s0)
            self._mtm_cum = (self._mtm_cum[0] + float(d_spot),
                             self._mtm_cum[1] + float(d_spot + qp * (perp - p0)))
            moved = True
        if moved:
            self.recorder.carry_mtm(*self._mtm_cum)

    def _feed_recorder(self) -> None:
        for name, out in self.core.module_outputs.items():
            self.recorder.module(name, out.status.value, out.to_dict())
        self.observer.modules({name: out.status.value for name, out in self.core.module_outputs.items()})
        self.recorder.strategy_metrics({name: s.metrics() for name, s in self.core.by_name.items()})

    def _event(self, kind: str, message: str, severity: Severity = Severity.INFO, data: dict | None = None) -> None:
        self.store.add_event(EngineEvent(self.clock.now_ms(), kind, message, severity, data or {}))

    # ---- views -------------------------------------------------------------------------------------

    def status(self) -> dict:
        snap = self.core.snapshot()
        snap.update(mode=self.mode.value, now_ms=self.clock.now_ms(), books=self.stats.books,
                    candles=self.stats.candles, ready=self.ready, quarantined=self.data.quarantine_counts())
        if isinstance(self.executor, VenueExecutor):
            snap["unresolved_orders"] = [u.to_dict() for u in self.executor.unresolved.values()]
        return snap

    async def kill(self, reason: str, who: str) -> None:
        if self.killswitch is not None:
            await self.killswitch.activate(reason, who)
        else:
            self.core.set_trading_state(TradingState.HALTED, who, reason)


async def run_engine(cfg: EngineConfig, *, console: Any = None, refresh_s: float = 0.5) -> int:
    """`ate run`: start, show a live summary until Ctrl-C/SIGTERM, stop gracefully. Returns the exit code."""
    from ate.logs import configure_logging, state_dir

    log_file = state_dir(cfg.store.url) / f"{cfg.run_id}.log"
    configure_logging(file=log_file, stderr_level=logging.ERROR if console is not None else logging.WARNING,
                      max_bytes=cfg.log.max_bytes, backups=cfg.log.backups)
    engine = Engine(cfg)
    try:
        await engine.start()
    except Exception as exc:
        # INFO: the traceback goes to the log file only; the terminal gets the CLI boundary's one error line
        log.info("engine failed to start: %s", exc, exc_info=True)
        await engine.stop()
        raise  # the CLI's error boundary says what failed and where to look (e.g. a port in use: monitor.port)
    if console is not None and engine.monitor is not None:
        console.print(f"dashboard: http://{cfg.monitor.host}:{engine.monitor.port}")
    try:
        if console is None:
            await engine.run_until_stopped()
        else:
            from rich.live import Live

            from ate.monitor.console import run_summary

            with Live(run_summary(engine.status()), console=console, refresh_per_second=4) as live:
                waiter = asyncio.ensure_future(engine.run_until_stopped())
                while not waiter.done():
                    await asyncio.wait([waiter], timeout=refresh_s)
                    live.update(run_summary(engine.status()))
    finally:
        await engine.stop()
    if console is not None:
        console.print(f"stopped cleanly; state is in {cfg.store.url}, logs in {log_file}")
    return 0

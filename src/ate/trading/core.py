"""TradingCore: the mode-independent heart of ate (DESIGN.md principle 1, "one engine, many clocks").

Events go in — closed candles, top-of-book updates, funding settlements, DVOL values, order updates,
timer ticks — and orders come out through an executor. The core runs the signal engine, the
strategies, the risk layer and the order manager exactly the same way in backtest, paper, shadow,
canary and live; only the clock, the event source and the executor differ. It does no I/O of its own
except through the store it is given, and it never raises into its caller on bad market data.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from ate.config import EngineConfig
from ate.data.candles import INTERVAL_MS, Candle
from ate.data.loaders import DvolPoint
from ate.data.validate import check_book
from ate.execution.ledger import replay
from ate.execution.order_manager import Executor, OrderManager
from ate.execution.portfolio import Portfolio
from ate.model import (
    EngineEvent,
    Fill,
    Instrument,
    MarketKind,
    Order,
    OrderIntent,
    Severity,
    TradingState,
)
from ate.model.market import BookTicker
from ate.risk.capital import limits_from_config
from ate.risk.daily import DAY_MS, DailyLossTracker
from ate.risk.ladder import Book, EmergencyLadder, Holding, gross_exposure
from ate.risk.pretrade import PreTradeChecker
from ate.risk.state import TradingStateKeeper
from ate.risk.store import StateStore
from ate.risk.verdict import Decision as RiskDecision
from ate.risk.verdict import Reason, Verdict
from ate.signals.base import ModuleOutput
from ate.signals.engine import Decision, SignalEngine, signal_markets
from ate.store.db import MARKS_KEY, SPOT_BASES_KEY
from ate.store.rows import JsonText
from ate.strategies.base import FundingInfo, MarginInfo, Strategy, fresh_state
from ate.trading.context import CoreContext
from ate.trading.scoped_state import ScopedState
from ate.trading.valuation import Valuation

log = logging.getLogger(__name__)
TWO = Decimal(2)
ZERO = Decimal(0)
EQUITY_EVERY_MS = 60_000


_STATE_JSON = msgspec.json.Encoder(order="sorted", enc_hook=str)


def _encode(state: Any) -> str:
    """A strategy state as stored and compared: canonical JSON (keys sorted; Decimals and anything else JSON has
    no type for as their `str`). msgspec, not `json`: this runs in every decision's unit, and `json` spent
    ~12 µs on an arbitrage attempt's state. A non-finite float becomes null (a state holding one is a bug that
    PostgreSQL's JSON would refuse anyway). A dict keyed by ints, which the sorted encoder refuses, is written by
    `json` as before (keys as text), so such a state neither fails its unit nor reads back differently."""
    try:
        return _STATE_JSON.encode(state).decode()
    except TypeError:
        return json.dumps(state, sort_keys=True, default=str, separators=(",", ":"), ensure_ascii=False)


class TradingCore:
    def __init__(self, cfg: EngineConfig, *, instruments: Iterable[Instrument], strategies: Sequence[Strategy],
                 clock: Callable[[], int], state: StateStore, store=None, shadow: bool = False,
                 dvol_history: Iterable[DvolPoint] = (), stage_index: int | None = None,
                 record_decisions: bool = True, more_dvol: Mapping[str, Sequence[DvolPoint]] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.state = state
        self.store = store
        self.shadow = shadow
        self.record_decisions = record_decisions
        self.portfolio = Portfolio()
        for inst in instruments:
            self.portfolio.add_instrument(inst)
        self.primary = cfg.markets.primary
        # One signal engine per directional market, each with its own warm-up, vetoes and kelly history; the
        # primary market's also gives the account's emergency and gamma overrides (and exists without
        # directional). Every engine sees the account's equity and every market's candles, so the emergency
        # figures inside each decision are the account's. Each reads the implied volatility of its own asset:
        # `more_dvol` by asset, else `dvol_history` for the primary market's asset.
        self._assets = {i.key: i.base for i in self.portfolio.instruments.values()}
        primary_dvol, dvols = list(dvol_history), dict(more_dvol or {})

        def dvol_of(market: str) -> Sequence[DvolPoint]:
            asset = self._assets.get(market)
            if asset in dvols:
                return dvols[asset]
            return primary_dvol if asset == self._assets.get(self.primary) else ()

        self.engines: dict[str, SignalEngine] = {
            m: SignalEngine(cfg.modules, market=m, dvol_history=dvol_of(m)) for m in signal_markets(cfg)}
        self.signals = self.engines[self.primary]
        self._decision_ms = INTERVAL_MS[cfg.modules.decision_timeframe]
        limits = limits_from_config(cfg, stage_index)
        self.risk = PreTradeChecker(limits, clock)
        self.keeper = TradingStateKeeper(state, clock)
        self.keeper.subscribe(self.risk.set_state)
        self._state_seen = self.keeper.state
        self.keeper.subscribe(self._on_state)
        self.risk.set_state(self.keeper.state)
        # the book's own state (a shadow book is hypothetical: never a later canary's anchor or phases)
        self.book_state = ScopedState(state, "shadow.") if shadow else state
        self.daily = DailyLossTracker(self.book_state, limits.daily_loss_usd, clock)
        self.valuation = Valuation(self.portfolio, cfg.risk_limits.asset_prices_usd,
                                   int(cfg.risk_limits.unpriced_grace_s * 1000), clock, self._record)
        self.ladder = EmergencyLadder(self.book_state, clock)
        self.strategies = list(strategies)
        self.by_name = {s.name: s for s in self.strategies}
        # strategies that report hedge books (the base class reports none): snapshotted for gamma every minute
        self._hedgers = [s.answering("hedge_snapshot") for s in self.by_name.values()
                         if s.implements("hedge_snapshot")]
        # (strategy, its exposures) of the strategies that can hold anything, for the ladder's holdings
        self._exposers = [(s.name, s.answering("exposures")) for s in self.strategies if s.implements("exposures")]
        self.ctx = CoreContext(self)
        # per market, the strategies whose on_book / on_candle can act on it, with what to call (`handler`)
        self._reacting: dict[str, dict[str, tuple[tuple[Strategy, Callable[..., Sequence[OrderIntent]]], ...]]] = {
            "on_book": {}, "on_candle": {}}
        self.books: dict[str, BookTicker] = {}
        self.funding: dict[str, FundingInfo] = {}
        self.margins: dict[str, MarginInfo] = {}
        self.module_outputs: dict[str, ModuleOutput] = {}  # the primary engine's, with the account overrides
        self.market_outputs: dict[str, dict[str, ModuleOutput]] = {}  # each other engine's, at its last decision
        self.last_decision: Decision | None = None
        self.decisions = 0
        self.quarantined = 0
        self.on_event: Callable[[EngineEvent], object] | None = None  # e.g. the monitor's alert notifier
        self._last_equity_ms = 0
        self._equity_seen: tuple[Decimal, float, int] | None = None  # (equity, gross exposure, UTC day) last passed on
        self._quoters = [s for s in self.strategies if s.implements("quote_rates")]
        self._ledger_written = 0
        self._touched: set[str] = set()  # strategies whose state may have changed in the current unit
        self._saved: dict[str, str] = {}  # each strategy's state as last written (JSON)
        self._fresh: dict[str, dict[str, Any]] = {}  # each strategy's state as built, before any restore
        self._pending_flows: list[tuple[str, Decimal]] = []  # transfers not yet in the daily-loss baseline
        self._snapshot_flows = ZERO  # transfers (USD) since the last equity snapshot
        self._group_approved: dict[int, OrderIntent] = {}  # legs approved with their group, until submitted
        self.orders: OrderManager  # set by attach()

    def attach(self, executor: Executor) -> None:
        """Connect the executor and resume: the order manager restores open orders; balances and positions
        are replayed from the ledger; strategies and signals restore the state saved with their orders."""
        self.orders = OrderManager(run_id=self.cfg.run_id, store=self.store, portfolio=self.portfolio,
                                   executor=executor, risk=self._risk_check, clock=self.clock, shadow=self.shadow,
                                   on_fill=self._on_fill, on_event=self._record)
        if self.store is not None:
            replay(self.portfolio, self.store, shadow=self.shadow)
            self.rebuild_risk()
            # for readers of the store (close-all, status, monitor) deriving positions without the instruments
            bases = dict(self.state.get_state(SPOT_BASES_KEY) or {})  # markets no longer configured stay known
            bases.update({m: i.base for m, i in self.portfolio.instruments.items() if i.kind is MarketKind.SPOT})
            self.state.set_state(SPOT_BASES_KEY, bases, self.clock())
        for name, strategy in self.by_name.items():
            self._fresh[name] = fresh_state(strategy)
            saved = self._load_saved(name)
            if saved:
                strategy.restore(saved)
            for book_id, book in strategy.hedge_books(self.ctx).items():
                self.signals.register_hedge_book(book_id, book)
        for market, engine in self.engines.items():
            saved = self.book_state.get_state(self._signals_key(market))
            if saved:
                engine.import_state(saved)
        self._warn_unreachable()

    def _warn_unreachable(self) -> None:
        """Say at start which markets the limits in force (canary caps, capital stage) leave untradeable."""
        for why in self.risk.unreachable(list(self.portfolio.instruments.values())):
            self._record(EngineEvent(self.clock(), "risk_limit_below_minimum", why, Severity.WARNING))

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        """One store transaction for a venue event or a decision and everything it implies: order rows,
        fills, ledger entries, events and the state of every strategy it touched. Orders written ahead in
        it leave for the venue only after it committed. Nested units join the outer one."""
        if self.store is None:
            yield
            return
        outermost = False
        try:
            with self.store.unit() as outermost:
                if outermost:
                    self.store.before_commit(self._save_touched)
                yield
        except BaseException:
            self._touched.clear()
            if outermost:
                self._reload_from_store()
            raise

    def _reload_from_store(self) -> None:
        """A unit that raised was rolled back while the process lives on (a busy database, a bug in a hook):
        what it changed in memory (trade ids seen, order fills, positions, risk, strategy state) is rebuilt
        from the store, so the venue's repeat of the same event is booked instead of skipped as known."""
        marks = {m: p.mark_price for m, p in self.portfolio.positions.items() if p.mark_price}
        self.portfolio.balances.clear()
        self.portfolio.positions.clear()
        replay(self.portfolio, self.store, shadow=self.shadow)
        for market, price in marks.items():
            self.portfolio.mark(market, price)
        self.rebuild_risk()
        self.orders.reload()
        for name, strategy in self.by_name.items():
            strategy.restore(self._load_saved(name) or self._fresh[name])  # never saved: the unit may have moved it from fresh

    def _load_saved(self, name: str) -> Any:
        """A strategy's saved state, remembered encoded as `_save_touched` compares it."""
        saved = self.book_state.get_state(f"strategy.{name}")
        self._saved[name] = _encode(saved)
        return saved

    def _signals_key(self, market: str) -> str:
        return "signals" if market == self.primary else f"signals.{market}"

    def _touch(self, strategy: Strategy) -> None:
        if self.store is not None:
            self._touched.add(strategy.name)

    def _save_touched(self) -> None:
        now = self.clock()
        for name in sorted(self._touched):
            state = self.by_name[name].state()
            text = _encode(state)  # a copy: strategies may return live lists
            if text != self._saved.get(name):  # most fills change a strategy's state; acks often do not
                self.book_state.set_state(f"strategy.{name}", JsonText(text), now)  # stored as encoded here
                self._saved[name] = text
        self._touched.clear()

    def rebuild_risk(self) -> None:
        """Risk's spot and perp positions from the ledger-derived portfolio (after a replay or reconciliation)."""
        for market, inst in self.portfolio.instruments.items():
            self.risk.set_position(inst, self.portfolio.position(market).qty)

    def book_transfer(self, venue: str, asset: str, amount: Decimal, ts_ms: int, ref: str, why: str, *,
                      opening: bool = False) -> bool:
        """An external movement of funds found by reconciliation (deposit > 0, withdrawal < 0, or a trade or
        liquidation the venue made without us): booked once by `ref`, with an alert; it is a flow, never
        strategy P&L, and it moves the daily-loss baseline with it."""
        event = "opening_balance" if opening else "external_transfer"
        with self.unit():
            if not self._book_external("transfer", event, Severity.INFO if opening else Severity.CRITICAL,
                                       venue, asset, amount, ts_ms, ref, why):
                return False
            self._pending_flows.append((asset, amount))
        return True

    def book_liquidation_cost(self, venue: str, asset: str, amount: Decimal, ts_ms: int, ref: str, why: str) -> bool:
        """What a venue's liquidation took from a wallet beside its close-out trade (a clearance fee, or the
        rest of a close-out whose trade was never seen), found by reconciliation: booked once by `ref` with a
        critical `liquidation` alert. A loss, never a flow: the daily-loss baseline does not move with it."""
        with self.unit():
            return self._book_external("liquidation", "liquidation", Severity.CRITICAL, venue, asset, amount, ts_ms,
                                       ref, why)

    def _book_external(self, kind: str, event: str, severity: Severity, venue: str, asset: str, amount: Decimal,
                       ts_ms: int, ref: str, why: str) -> bool:
        """One ledger entry of an external wallet movement, booked once by `ref`, into the wallet and alerted;
        False when `ref` was booked before. Runs inside the caller's unit."""
        price = self.portfolio.prices.get(asset)
        booked = self.store is None or self.store.add_ledger(
            ts_ms=ts_ms, kind=kind, amount=amount, asset=asset, venue=venue, ref=ref, shadow=self.shadow,
            value_usd=None if price is None else amount * price, price_source="" if price is None else "mark")
        if not booked:
            return False
        self.portfolio.balances[venue][asset] += amount
        self._record(EngineEvent(ts_ms, event, f"{venue} {asset} {amount:+f}: {why}", severity,
                                 {"venue": venue, "asset": asset, "amount": str(amount), "ref": ref}))
        return True

    def book_missed_funding(self, market: str, amount: Decimal, ts_ms: int) -> bool:
        """A settlement from the venue's history, at the venue's amount: booked once under the ref the live
        path uses, so a settlement seen both ways is booked by whichever comes first. When the live path
        booked it, the difference between the venue's payment and the one it computed from the mark stream
        is booked as a funding correction (once), so it never reaches the account comparison as a transfer.
        Both are the carry's P&L, not flows."""
        venue, _, symbol = market.partition(":")
        ref = f"funding:{symbol}:{ts_ms}"
        if self.store is None:
            booked = None
        else:
            booked = next((e["amount"] for e in self.store.ledger(since_ms=ts_ms, kind="funding", shadow=self.shadow)
                           if e["venue"] == venue and e["ref"] == ref), None)
        if booked is not None:
            ref, amount = f"{ref}:correction", amount - booked
            if not amount or self.store.has_ledger("funding", venue, ref, shadow=self.shadow):
                return False
        with self.unit():
            self.portfolio.receive_funding(market, amount, ts_ms, strategy=self._owner(market), ref=ref)
            self._flush_ledger()
        return True

    def book_external_fill(self, fill: Fill, why: str) -> bool:
        with self.unit():
            return self.orders.book_external(fill, why)

    # ---- state the context reads ------------------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        return self.keeper.state

    def active_vetoes(self) -> set[str]:
        scopes = {v.scope for out in self.module_outputs.values() for v in out.vetoes}
        return scopes

    def signal_vetoes(self, market: str) -> set[str]:
        """The vetoes of `market`'s own signal engine (its kelly, lxvx …) with the account's emergency and
        gamma; the primary market's are `active_vetoes()`."""
        own = self.market_outputs.get(market)
        if market == self.primary or own is None:
            return self.active_vetoes()
        outs = [o for name, o in own.items() if name not in ("emergency", "gamma")]
        outs += [o for name in ("emergency", "gamma") if (o := self.module_outputs.get(name)) is not None]
        return {v.scope for out in outs for v in out.vetoes}

    def locked(self, venue: str, asset: str) -> Decimal:
        """Balance held by our open orders (buy: quote, sell: base) on a venue."""
        total = Decimal(0)
        for o in self.orders.open_orders():
            if o.venue != venue:
                continue
            inst = self.portfolio.instruments.get(f"{o.venue}:{o.symbol}")
            if inst is None or inst.kind is MarketKind.PERP:
                continue
            if o.side.sign > 0 and inst.quote == asset and o.price is not None:
                total += o.remaining * o.price
            elif o.side.sign < 0 and inst.base == asset:
                total += o.remaining
        return total

    # ---- inputs -------------------------------------------------------------------------------------

    def set_balances(self, venue: str, balances: dict) -> None:
        self.portfolio.set_balances(venue, balances)

    def seed_book(self, book: BookTicker) -> None:
        """A top of book read over REST before the streams start: marks for valuation and risk (so an unwind
        decided during start-up reconciliation can pass the trusted-price check); no strategy sees it."""
        if check_book(book, None) is not None:
            return
        market = f"{book.venue}:{book.symbol}"
        mid = (book.bid + book.ask) / TWO
        self.portfolio.mark(market, mid)  # not a book strategies trade on: the streams bring those
        self.risk.update_mark(market, mid, self.clock())

    def on_mark(self, market: str, price: Decimal) -> None:
        """A perp's mark from the venue's mark stream, already accepted by the price guard: a trusted price
        for valuation and risk (no strategy reacts to it; they trade on books)."""
        self.portfolio.mark(market, price)
        self.risk.update_mark(market, price, self.clock())

    def on_book(self, book: BookTicker) -> None:
        market = self._store_book(book, self.clock())
        if market is not None:
            self._to_strategies("on_book", market, (market, self.ctx))

    def on_books(self, books: Sequence[BookTicker]) -> None:
        """Books of one instant (a replay step): every one is in place before any strategy reacts, so a
        strategy reading several markets (a basis cross) never mixes this instant with the last."""
        now = self.clock()
        markets = [m for b in books if (m := self._store_book(b, now)) is not None]
        for market in markets:
            self._to_strategies("on_book", market, (market, self.ctx))

    def _to_strategies(self, hook: str, market: str, args: tuple[Any, ...]) -> None:
        """`hook(*args)` of every strategy reading `market`, each answer handled on its own."""
        table = self._reacting[hook]
        calls = table.get(market)
        if calls is None:
            calls = table[market] = tuple((s, h) for s in self.strategies if (h := s.handler(hook, market)))
        for s, call in calls:
            intents = call(*args)
            if intents or s.has_reports:  # `_handle` has nothing to do otherwise: the common case
                self._handle(s, intents)

    def _store_book(self, book: BookTicker, now: int) -> str | None:
        market = f"{book.venue}:{book.symbol}"
        # Live books were validated by the data manager; replays reach the core directly, so the same rule
        # guards here too (stateless part only: no second ordering check on the hot path).
        if check_book(book, None) is not None:
            self.quarantined += 1  # poisoned or crossed: never traded on
            return None
        self.books[market] = book
        mid = (book.bid + book.ask) / TWO
        self.portfolio.mark(market, mid)
        self.risk.update_mark(market, mid, now)
        for engine in self.engines.values():
            engine.on_market_update(market, now)
        return market

    def on_candle(self, market: str, candle: Candle) -> Decision | None:
        """A closed 1m candle of any market in use (the primary one also feeds the signal engine)."""
        decision = None
        primary = market == self.primary
        for engine in self.engines.values():
            if engine.market != market:
                engine.observe_candle(market, candle)
                continue
            if primary and candle.close_ms % self._decision_ms == 0:
                self._snapshot_hedge_books(self.clock())  # gamma at a decision sees the books as of now
            decision = engine.on_candle(candle)
            if decision is not None:
                self._on_decision(decision)
            if primary:
                self._overrides()
        if market not in self.books:  # candle-only replays (backtests) still need marks for valuation
            close = Decimal(repr(candle.close))
            self.portfolio.mark(market, close)
            self.risk.update_mark(market, close, self.clock())
        self._to_strategies("on_candle", market, (market, candle, self.ctx))
        return decision

    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int) -> None:
        info = self.funding.get(market) or FundingInfo()
        settled = (*info.settled[-9:], (ts_ms, rate))
        # Until the venue announces the next rate (live: the mark stream), the last settled one is the best
        # prediction (backtests never see a future rate).
        self.funding[market] = FundingInfo(settled, rate, info.interval_ms)
        pos = self.portfolio.positions.get(market)
        venue, _, symbol = market.partition(":")
        if self.store is not None and self.store.has_ledger("funding", venue, f"funding:{symbol}:{ts_ms}",
                                                            shadow=self.shadow):
            return  # a settlement seen again (replayed stream, restart): booked and acted on once
        with self.unit():
            if mark is not None and pos is not None and pos.qty:
                payment = self.portfolio.apply_funding(market, rate, mark, ts_ms, strategy=self._owner(market))
                self._flush_ledger()
                log.debug("funding %s %s -> %s", market, rate, payment)
            for s in self.strategies:
                self._handle(s, s.on_funding(market, rate, mark, ts_ms, self.ctx))

    def seed_funding(self, market: str, settled: Sequence[tuple[int, Decimal]], interval_ms: int | None) -> None:
        """Recent settled rates and the interval from the venue, before any settlement is seen live."""
        last = settled[-1][1] if settled else None
        self.funding[market] = FundingInfo(tuple(settled)[-10:], last, interval_ms)

    def set_predicted_funding(self, market: str, rate: Decimal, interval_ms: int | None = None) -> None:
        info = self.funding.get(market) or FundingInfo()
        self.funding[market] = FundingInfo(info.settled, rate, interval_ms or info.interval_ms)

    def on_dvol(self, value: float, ts_ms: int, asset: str | None = None) -> None:
        """A DVOL value of `asset` (default: the primary market's): for every engine trading that asset."""
        asset = asset or self._assets.get(self.primary)
        for market, engine in self.engines.items():
            if self._assets.get(market) == asset:
                engine.push_dvol(value, ts_ms)

    def on_order_update(self, view: Order, fill: Fill | None) -> None:
        """One venue event about one order (ack, reject, fill, cancel, expiry): one unit of work."""
        before = self.orders.orders.get(view.client_order_id)
        filled_before = before.filled_qty if before is not None else None
        if fill is not None and self.orders.knows_fill(fill):
            fill = None  # a repeat: strategies count each fill once
        with self.unit():
            order = self.orders.on_update(view, fill)
            if order is None:
                return
            if not order.is_open and filled_before is not None:
                self.risk.on_order_closed(f"{order.venue}:{order.symbol}", order.side, max(order.remaining, ZERO))
            strategy = self.by_name.get(order.strategy)
            if strategy is not None:
                self._touch(strategy)
                self._handle(strategy, strategy.on_order_update(order, fill, self.ctx))

    def on_timer(self) -> None:
        """Periodic work (every second live; every candle in backtests): equity, daily loss, state."""
        now = self.clock()
        self._value_quotes()
        # assets valued at zero before this valuation: their value enters as the valuation's flow
        zeroed = set(self.valuation.zeroed) if self._pending_flows else None
        valued = self.valuation.equity(now)
        if valued is not None:
            equity, flow = valued
            if zeroed is not None:
                flow += self._take_flows(zeroed)
            if flow:
                self._snapshot_flows += flow
            self._update_equity(now, equity, flow)
        if now - self._last_equity_ms >= EQUITY_EVERY_MS:
            self._persist(now, valued[0] if valued is not None else None)

    def _update_equity(self, now: int, equity: Decimal, flow: Decimal) -> None:
        """Daily loss, its limit for the risk layer, and the emergency module's equity."""
        held = self.holdings()
        gross = float(gross_exposure(held)) if held else 0.0
        seen = (equity, gross, now - now % DAY_MS)
        last = self._equity_seen
        if seen == last and not flow and equity >= 0 and not equity.compare_total(last[0]):
            # What the daily tracker, the risk layer's daily loss and the emergency ladder hold is a function
            # of equity (to the digit: the tracker keeps it as text), exposure, flows and the UTC day: none
            # moved, so updating them again changes nothing but the tracker's periodic save, done here. A
            # negative equity is an error the emergency module reports (failing closed) on every update.
            self.daily.unchanged(now)
            return
        self._equity_seen = seen
        daily = self.daily
        loss = daily.update(equity, flow, now)
        # Once the day's limit is reached, entries stay blocked for the rest of that day even if the
        # equity recovers (canary/live: "trading stops at the daily loss limit").
        breached = daily.breached_day is not None and daily.breached_day == daily.day_ms
        self.risk.set_daily_loss(max(loss, daily.limit) if breached else loss)
        value, moved = float(equity), float(flow)
        for engine in self.engines.values():
            engine.update_equity(value, now, gross, moved)

    def _persist(self, now: int, equity: Decimal | None) -> None:
        """Equity once it is valued (with the flows since the last snapshot), marks, signal state, and every
        strategy's state not yet saved with its orders (cooldowns), in one unit."""
        self._last_equity_ms = now
        if self.store is None:
            return
        with self.unit():
            if equity is not None:
                self.store.add_equity(now, equity, self._snapshot_flows, shadow=self.shadow)
                self._snapshot_flows = ZERO
            self.state.set_state(MARKS_KEY, {m: str(p.mark_price) for m, p in self.portfolio.positions.items()
                                             if p.mark_price}, now)
            for market, engine in self.engines.items():
                self.book_state.set_state(self._signals_key(market), engine.export_state(), now)
            for s in self.strategies:
                self._touch(s)

    def _take_flows(self, zeroed: set[str]) -> Decimal:
        """The USD value of transfers booked since the last call. Transfers of an asset the valuation held at
        zero are its flow when the asset is priced; others still without a price wait for one."""
        total, waiting = ZERO, []
        for asset, amount in self._pending_flows:
            price = self.portfolio.prices.get(asset)
            if asset in zeroed:
                continue
            if price is None:
                waiting.append((asset, amount))
            else:
                total += amount * price
        self._pending_flows = waiting
        return total

    def _value_quotes(self) -> None:
        """Quote assets at the live basis the strategies read (USDC at the USDT/USDC rate), so equity across
        quotes is in one unit; a quote whose reference has no price yet keeps its configured value."""
        prices = self.portfolio.prices
        for s in self._quoters:
            for asset, (ref, rate) in s.quote_rates().items():
                if ref in prices:
                    prices[asset] = rate * prices[ref]

    def refresh_modules(self) -> None:
        """Evaluate every module now (live engines call it periodically so statuses are current between
        decision bars; backtests do not need it)."""
        self.module_outputs.update(self.signals.evaluate_all(self.clock()))

    def set_trading_state(self, state: TradingState, who: str, why: str) -> None:
        self.keeper.set(state, who, why)

    def _on_state(self, state: TradingState) -> None:
        """A resume after a halt re-bases the day's anchor, the peak and the emergency episode (§5.1)."""
        if self._state_seen is TradingState.HALTED and state is TradingState.ACTIVE:
            equity = self.portfolio.equity()
            self.daily.update(equity)
            self.daily.rebase()
            self.ladder.reset()
            for engine in self.engines.values():
                engine.resume(float(equity), self.clock())
            self._equity_seen = None  # the daily tracker and the emergency module were re-based
        self._state_seen = state

    # ---- internals ---------------------------------------------------------------------------------

    def _owner(self, market: str) -> str:
        for s in self.strategies:
            if any(market in (b.instrument, f"{b.venue}:{b.instrument}") for b in s.hedge_books(self.ctx).values()):
                return s.name
        return ""

    def holdings(self) -> list[Holding]:
        """What the emergency ladder may cut: strategy positions and pairs; arbitrage inventory is kept."""
        out = []
        for name, exposures in self._exposers:
            for e in exposures():
                inst = self.portfolio.instruments.get(e.market)
                if inst is None:
                    continue
                mark = self.portfolio.position(e.market).mark_price
                out.append(Holding(inst, e.qty, mark, Book.PAIR if e.pair else Book.DIRECTIONAL, e.pair, name))
        return out

    def _on_decision(self, decision: Decision) -> None:
        self.decisions += 1
        if decision.market == self.primary:
            self.last_decision = decision
            self.module_outputs.update(decision.outputs)
        else:
            self.market_outputs.setdefault(decision.market, {}).update(decision.outputs)
        if self.record_decisions and self.store is not None:
            self._record(EngineEvent(decision.ts, "signal_decision", decision.intent.kind, Severity.INFO,
                                     self.decision_dict(decision)))
        for s in self.strategies:
            self._handle(s, s.on_decision(decision, self.ctx))

    def decision_dict(self, decision: Decision) -> dict[str, Any]:
        """A decision as stored and reported; it names its market when there are several signal engines."""
        out = decision.to_dict()
        if len(self.engines) > 1:
            out["market"] = decision.market
        return out

    def _snapshot_hedge_books(self, now: int) -> None:
        update = self.signals.update_hedge_book
        for snapshot in self._hedgers:
            for book_id, snap in snapshot(self.ctx).items():
                update(book_id, snap.spot, snap.perp, snap.mark, now, snap.in_flight)

    def _overrides(self) -> None:
        now = self.clock()
        self._snapshot_hedge_books(now)
        emergency, gamma = self.signals.overrides(now)
        self.module_outputs["emergency"] = emergency
        self.module_outputs["gamma"] = gamma
        level = int(emergency.values.get("level", 0) or 0)
        if level >= 2 or self.ladder.x_ref is not None:
            plan = self.ladder.plan(level, self.holdings())
            if plan.halt and self.trading_state is not TradingState.HALTED:
                for o in self.orders.open_orders():
                    self.orders.cancel(o)
                self.set_trading_state(TradingState.HALTED, "emergency", emergency.reason or f"level {level}")
            with self.unit():
                for intent in plan.intents:
                    self.orders.submit(intent)
        for action in gamma.actions:
            if action.kind == "HEDGE" and action.qty:
                for s in self.strategies:
                    for book_id, book in s.hedge_books(self.ctx).items():
                        if book.instrument == action.instrument and book.venue == action.venue:
                            self._handle(s, s.on_hedge(book_id, action.qty, self.ctx))

    def _handle(self, strategy: Strategy, intents: Sequence[OrderIntent]) -> None:
        """A strategy's decision: its orders are written ahead with its state, in one unit (all legs of a
        pair in one transaction), and sent once that committed."""
        if not intents and not strategy.has_reports:  # the common case on every book and candle
            return
        with self.unit():
            if intents:
                self._touch(strategy)
            self._submit(strategy, intents)
            for ev in strategy.drain_events():
                self._record(ev)
        for trade in strategy.drain_trades():
            if strategy.name == "directional":  # kelly learns from directional round trips only (§4.3)
                engine = self.engines.get(trade.market, self.signals)  # the kelly of the market that traded
                engine.record_trade(trade.net_pnl, trade.entry_notional, trade.ts_ms, trade.hypothetical)

    def _submit(self, strategy: Strategy, intents: Sequence[OrderIntent]) -> None:
        """Single intents one by one; the legs of a group (``OrderIntent.group``) as one unit: risk approves
        every leg at one size or none, and a refused group is reported leg by leg to its strategy."""
        groups: dict[str, list[OrderIntent]] = {}
        for intent in intents:
            if intent.group:
                groups.setdefault(intent.group, []).append(intent)
            elif self.orders.submit(intent) is None:
                self._handle(strategy, strategy.on_intent_rejected(intent, "risk", self.ctx))
        for legs in groups.values():
            verdict = self.risk.check_group(legs, [self.portfolio.instruments[i.market] for i in legs])
            refused = legs
            if not verdict.approved:
                stats = self.orders.stats.rejected_by_risk
                stats[str(verdict.reason)] = stats.get(str(verdict.reason), 0) + len(legs)
            else:
                self._group_approved.update((id(i), i) for i in verdict.intents)
                refused = [asked for asked, leg in zip(legs, verdict.intents, strict=True)
                           if self.orders.submit(leg) is None]
            for intent in refused:
                self._handle(strategy, strategy.on_intent_rejected(intent, str(verdict.reason), self.ctx))

    def _risk_check(self, intent: OrderIntent, inst: Instrument) -> Verdict:
        """The order manager's risk check: a leg of an approved group was checked (and reserved) with its
        group, so it passes as approved; anything else is checked on its own."""
        if self._group_approved.pop(id(intent), None) is intent:
            return Verdict(RiskDecision.APPROVE, Reason.OK, intent)
        return self.risk.check(intent, inst)

    def _on_fill(self, order: Order | None, fill: Fill) -> None:
        """Inside the fill's unit: risk follows the position, the ledger gets the fill's entries."""
        market = f"{fill.venue}:{fill.symbol}"
        inst = self.portfolio.instruments.get(market)
        if inst is not None:
            self.risk.on_fill(inst, fill.side, fill.qty)  # releases what the fill took from the pending exposure
            self.risk.set_position(inst, self.portfolio.position(market).qty)  # net of a fee held in the coin
        self._flush_ledger()
        if order is None:  # an external fill: no strategy, no signal bookkeeping
            return
        if market in self.engines and order.strategy == "directional":
            self.engines[market].set_position(float(self.portfolio.position(market).qty))
        book_id = order.meta.get("hedge_book")
        if book_id and order.meta.get("purpose") == "hedge":
            self.signals.on_hedge(book_id, fill.ts_ms, float(fill.price))

    def _flush_ledger(self) -> None:
        """Persist the portfolio's ledger entries not yet written (idempotent on their refs)."""
        entries = self.portfolio.entries
        new, self._ledger_written = entries[self._ledger_written:], len(entries)
        if self.store is None:
            return
        for e in new:
            self.store.add_ledger(ts_ms=e.ts_ms, kind=e.kind, amount=e.amount, asset=e.asset, venue=e.venue,
                                  ref=e.ref, symbol=e.symbol, strategy=e.strategy, shadow=self.shadow,
                                  value_usd=e.value_usd, price_source=e.price_source)

    def record(self, ev: EngineEvent) -> None:
        """An event from outside the core (the executor's resolution alerts): stored and alerted like its own."""
        self._record(ev)

    def _record(self, ev: EngineEvent) -> None:
        if self.on_event is not None:
            self.on_event(ev)
        if self.store is not None:
            self.store.add_event(ev)

    def snapshot(self) -> dict[str, Any]:
        """Plain values for status displays and the monitor."""
        out: dict[str, Any] = {
            "trading_state": self.trading_state.value,
            "equity_usd": float(self.portfolio.equity()),
            "daily_loss_usd": float(self.daily.loss),
            "decisions": self.decisions,
            "quarantined": self.quarantined,
            "modules": {k: v.status.value for k, v in self.module_outputs.items()},
            "positions": {k: {"qty": str(p.qty), "entry": str(p.entry_price), "mark": str(p.mark_price)}
                          for k, p in self.portfolio.positions.items() if p.qty},
            "open_orders": len(self.orders.open_orders()),
            "strategies": {name: s.metrics() for name, s in self.by_name.items()},
        }
        balances = defaultdict(dict)
        for venue, wallet in self.portfolio.balances.items():
            for asset, amount in wallet.items():
                if amount:
                    balances[venue][asset] = str(amount)
        out["balances"] = dict(balances)
        return out

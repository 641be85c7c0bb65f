"""The backtest runner: recorded data → the trading core (signals, strategies, risk, orders) → matching core.

One simulated clock drives everything. For every candle close time t (all markets merged, in time
order) the replayer applies every book update, candle close and funding settlement up to and
including t to the matching core (so at t the book shows the price at t — the next candle's open —
and a funding payment due at t is paid to positions held before t); then the trading core receives,
in this order: the order updates of that step, the book of each market whose candle closed, every
funding settlement of the step (whether or not a position is held: strategies watch the rates; the
predicted rate shown is the last settled one), the closed candles (the primary one drives the signal
engine), and a timer tick. Orders the core sends during that step are matched at once against the book at t (taker: walk the synthetic
depth; limit: rest and fill on later book updates), with the venue's fees. Equity is valued from the
matching core's wallets and positions (the venue's truth), not from the engine's own books, at every step
(so drawdown is measured at the data's resolution). Round trips are counted per strategy trade (legs of
one strategy held at the same time are one trade); veto and warm-up periods are read from the decisions.

Before the window, up to `data.warmup` primary candles feed the signal engine only (warm-up; no strategy
sees them, nothing trades). The DVOL history is handed whole to the signal engine, whose bitvol module
reads only days that closed before its evaluation time (no look-ahead).

Nothing is random (no seed is needed): the same config and data give the same run, byte for byte.
"""

from __future__ import annotations

import heapq
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ate.backtest.data import BacktestData, DataError, instrument_for
from ate.backtest.inputs import capital_in_force, check_markets, config_filters
from ate.backtest.series import PairSeries, RecordLog
from ate.backtest.stats import EquityCurve, EquityPoint, LedgerEntry, Trade, compute, trade_stats
from ate.backtest.trades import FundingPayment, build, strategy_round_trips
from ate.backtest.vetoes import periods, start_date_dependence
from ate.config import EngineConfig
from ate.data.candles import Candle
from ate.model import Instrument, MarketKind, Mode
from ate.model.market import BookTicker
from ate.sim.clock import ManualClock
from ate.sim.core import Market, MatchingCore
from ate.sim.executor import MatchingExecutor, order_row
from ate.sim.replay import Replayer
from ate.strategies.base import Strategy

ACCOUNT = "backtest"
STABLES = frozenset({"USDT", "USDC", "USD"})


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """How recorded candles become a book (see ate.sim.replay) and what the venues charge."""

    spread_bps: float = 1.0
    size_fraction: float = 0.1
    min_size: float = 0.0
    depth_levels: int = 20
    depth_step_ticks: int = 1
    fees: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # venue -> (maker, taker)
    equity_every_ms: int = 0  # equity sample period (plus the final point); 0: every replay step


@dataclass(slots=True)
class BacktestResult:
    config_run_id: str
    start_ms: int
    end_ms: int
    bars: int  # candles replayed (all markets)
    equity: EquityCurve  # one point per replay step (or per `equity_every_ms`), as typed columns
    final_equity: Decimal  # exact, from the matching core
    trades: list[Trade]  # strategy round trips (a carry pair or a hedged entry is one)
    ledger: list[LedgerEntry]
    fills: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    decisions: RecordLog  # Decision.to_dict of every decision bar, held compactly
    prices: dict[str, PairSeries]  # market -> (close ms, close) per candle, for the report
    rejections: list[tuple[int, str, str]]
    funding: list[FundingPayment]  # exact payments as the matching core settled them
    note: str = ""
    warmup_bars: int = 0
    elapsed_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    legs: list[Trade] = field(default_factory=list)  # per-market trips the round trips are made of
    capital_source: str = ""  # where the starting capital came from (--capital, canary.initial_capital …)

    def to_json(self) -> dict[str, Any]:
        """Everything computed from the run, without timing (so two runs compare byte for byte)."""
        return {
            "run_id": self.config_run_id,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "bars": self.bars,
            "warmup_bars": self.warmup_bars,
            "capital_source": self.capital_source or None,
            "final_equity": str(self.final_equity),
            "note": self.note or None,
            "stats": self.stats,
            "trades": [_trade_dict(t) for t in self.trades],
            "orders_rejected": len(self.rejections),
        }


def _trade_dict(t: Trade) -> dict[str, Any]:
    return {k: getattr(t, k) for k in Trade.__dataclass_fields__}


def default_fees(cfg: EngineConfig) -> dict[str, tuple[Decimal, Decimal]]:
    """Venue fees from the config: spot venues from `venues`, Binance USD-M from the sim's default tier."""
    from ate.config.sim import DEFAULT_FEES

    bps = Decimal("0.0001")
    b, p = cfg.venues.binance, cfg.venues.backpack
    usdm = (cfg.sim.fees.get("binance-usdm") if cfg.sim else None) or DEFAULT_FEES["binance-usdm"]
    return {
        "binance": (Decimal(repr(b.maker_fee_bps)) * bps, Decimal(repr(b.taker_fee_bps)) * bps),
        "binance_usdm": (usdm.maker, usdm.taker),
        "backpack": (Decimal(repr(p.maker_fee_bps)) * bps, Decimal(repr(p.taker_fee_bps)) * bps),
    }


class World:
    """The simulated exchange of a backtest: clock, matching core, replayer, account, valuation."""

    def __init__(self, data: BacktestData, settings: ReplaySettings, capital: Decimal,
                 holdings: Mapping[str, Mapping[str, Decimal]] | None = None) -> None:
        self.data = data
        self.settings = settings
        self.clock = ManualClock(data.start_ms)
        self.core = MatchingCore(clock=self.clock.now_ms)
        self.replayer = Replayer(self.core, self.clock)
        self.markets: dict[str, Market] = {}
        self.last_close: dict[str, float] = {}  # as recorded; made Decimal (via repr) only when valuing
        for key, md in data.markets.items():
            venue = key.partition(":")[0]
            maker, taker = settings.fees.get(venue, (Decimal("0.001"), Decimal("0.001")))
            m = self.core.add_market(md.instrument, maker, taker, venue=venue, depth_levels=settings.depth_levels,
                                     depth_step_ticks=settings.depth_step_ticks)
            self.markets[key] = m
            self.replayer.add_candles(m, md.candles, spread_bps=settings.spread_bps,
                                      size_fraction=settings.size_fraction, min_size=settings.min_size)
            if md.funding:
                self.replayer.add_funding(m, md.funding)
        self.core.add_account(ACCOUNT)
        wallets = sorted({(m.venue, m.instrument.quote) for k, m in self.markets.items()
                          if not data.markets[k].reference})
        self.initial: dict[str, dict[str, Decimal]] = {}
        for venue, asset in wallets:  # capital split evenly over the wallets the markets use
            amount = (capital / len(wallets)).quantize(Decimal("0.01"))
            self.core.deposit(ACCOUNT, venue, asset, amount)
            self.initial.setdefault(venue, {})[asset] = amount
        self.holdings = {v: dict(w) for v, w in (holdings or {}).items()}
        for venue, wallet in self.holdings.items():  # coins held besides the capital (an arbitrage's inventory)
            for asset, amount in wallet.items():
                self.core.deposit(ACCOUNT, venue, asset, amount)
                self.initial.setdefault(venue, {})[asset] = self.initial.get(venue, {}).get(asset, 0) + amount
        self.acct = self.core.account(ACCOUNT)

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {k: m.instrument for k, m in self.markets.items()}

    def book(self, key: str) -> BookTicker | None:
        m = self.markets[key]
        if not m.has_book:
            return None
        tick, step = m.tick, m.step
        bid_qty = m.bid_sz * step
        ask_qty = bid_qty if m.ask_sz == m.bid_sz else m.ask_sz * step  # replayed books show one size
        return BookTicker(m.venue, m.symbol, m.bid_t * tick, bid_qty, m.ask_t * tick, ask_qty, m.update_id, m.ts_ms)

    def equity(self, stables: dict[str, Decimal] | None = None) -> Decimal:
        """Wallets valued at the last candle closes plus perp unrealized P&L at the mark, in USD: stablecoins
        at `stables` (the live basis the engine reads, e.g. USDC in a de-peg), else at 1. A coin takes its
        price from a traded market, converted through that market's quote."""
        stable = {a: Decimal(1) for a in STABLES} | (stables or {})
        prices: dict[str, Decimal] = {}
        for key, m in self.markets.items():
            quote = m.instrument.quote
            if (m.instrument.kind is MarketKind.SPOT and quote in stable and key in self.last_close
                    and not self.data.markets[key].reference):
                prices[m.instrument.base] = Decimal(repr(self.last_close[key])) * stable[quote]
        total = Decimal(0)
        for wallet in self.acct.wallets.values():
            for asset, bal in wallet.items():
                amount = bal.free + bal.locked
                if amount:
                    total += amount * (stable[asset] if asset in stable else prices.get(asset, Decimal(0)))
        for (venue, symbol), pos in self.acct.positions.items():
            if pos.qty:
                key = f"{venue}:{symbol}"
                close = self.last_close.get(key)
                mark = Decimal(repr(close)) if close is not None else self.markets[key].mark
                total += (mark - pos.entry_price) * pos.qty
        return total

    def equity_sampler(self, stables: Callable[[], dict[str, Decimal]] = dict) -> Callable[[], float]:
        """`equity()` as a float for every replay step, cheaply: between two account changes (a fill or a
        funding payment; a backtest has no transfers) equity is a constant plus Σ quantity × last close, so
        only that sum is recomputed per step. Falls back to the exact valuation while a held market has no
        close yet, and while a stablecoin is off 1 (`stables()`: the live basis the engine reads)."""
        acct, last = self.acct, self.last_close
        fills, funding = acct.fills, acct.funding
        cache: list[Any] = [-1, -1, 0.0, ()]  # (fills, funding payments, constant, ((market, qty), ...))

        def sample() -> float:
            basis = stables()
            if basis:
                off_peg = {a: p for a, p in basis.items() if p != 1}
                if off_peg:
                    return float(self.equity(off_peg))
            if cache[0] != len(fills) or cache[1] != len(funding):
                split = self._linear()
                if split is None:
                    return float(self.equity())
                cache[0], cache[1], cache[2], cache[3] = len(fills), len(funding), split[0], split[1]
            total = cache[2]
            for key, qty in cache[3]:
                close = last.get(key)
                if close is None:
                    cache[0] = -1
                    return float(self.equity())
                total += qty * close
            return total

        return sample

    def _linear(self) -> tuple[float, tuple[tuple[str, float], ...]] | None:
        """Equity as (constant, ((market, qty), ...)) in the last closes, or None if an asset has no market."""
        spot_for: dict[str, str] = {}
        for key, m in self.markets.items():
            if (m.instrument.kind is MarketKind.SPOT and m.instrument.quote in STABLES
                    and not self.data.markets[key].reference):
                spot_for[m.instrument.base] = key  # the last one, as equity() prices it
        const = Decimal(0)
        terms: list[tuple[str, float]] = []
        for wallet in self.acct.wallets.values():
            for asset, bal in wallet.items():
                amount = bal.free + bal.locked
                if not amount:
                    continue
                if asset in STABLES:
                    const += amount
                elif asset in spot_for:
                    terms.append((spot_for[asset], float(amount)))
                else:
                    return None
        for (venue, symbol), pos in self.acct.positions.items():
            if pos.qty:
                const -= pos.entry_price * pos.qty
                terms.append((f"{venue}:{symbol}", float(pos.qty)))
        return float(const), tuple(terms)

    def funding_since(self, n: int) -> list[FundingPayment]:
        return [FundingPayment(f"{e.venue}:{e.symbol}", e.ts_ms, e.amount, e.rate, e.mark, e.position_qty)
                for e in self.acct.funding[n:]]


class Driver:
    """What the runner drives: the engine side of a backtest (the trading core, or a test's own glue)."""

    def on_order_update(self, view: Any, fill: Any) -> None: ...

    def on_book(self, book: BookTicker) -> None: ...

    def on_books(self, books: Sequence[BookTicker]) -> None:
        """The books of one step, all at the same instant."""
        for b in books:
            self.on_book(b)

    def on_candle(self, market: str, candle: Candle) -> dict[str, Any] | None: ...

    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int) -> None: ...

    def on_timer(self) -> None: ...

    def warm_up(self, market: str, candles: Sequence[Candle]) -> None:
        """History before the window: signal modules only, no strategy sees it, nothing trades."""

    def stable_prices(self) -> dict[str, Decimal]:
        """USD values of stablecoins at the live basis the engine reads (empty: all at 1)."""
        return {}


class CoreDriver(Driver):
    """Drives ``ate.trading.TradingCore``: the same object the live engine runs.

    By default orders go to the matching core. ``executor_factory(core)`` substitutes another executor
    (e.g. ``ShadowExecutor`` to record a shadow session over replayed data) and ``store`` persists what the
    core persists live (orders, fills, ledger, signal decisions)."""

    def __init__(self, cfg: EngineConfig, world: World, strategies: Sequence[Strategy], *, store: Any = None,
                 shadow: bool = False, executor_factory: Callable[[Any], Any] | None = None) -> None:
        from ate.trading.core import TradingCore
        from ate.trading.memory_state import MemoryState

        instruments = {**configured_instruments(cfg), **world.instruments}
        self.core = TradingCore(cfg, instruments=instruments.values(), strategies=strategies,
                                clock=world.clock.now_ms, state=MemoryState(), store=store, shadow=shadow,
                                dvol_history=world.data.dvol, record_decisions=store is not None,
                                more_dvol=world.data.more_dvol)
        self.executor = (MatchingExecutor(world.core, ACCOUNT, self.core.on_order_update)
                         if executor_factory is None else executor_factory(self.core))
        self.core.attach(self.executor)
        for venue, wallet in world.initial.items():
            self.core.set_balances(venue, dict(wallet))
        self.on_order_update = self.core.on_order_update  # type: ignore[method-assign]
        self.on_book = self.core.on_book  # type: ignore[method-assign]
        self.on_books = self.core.on_books  # type: ignore[method-assign]
        self.on_timer = self.core.on_timer  # type: ignore[method-assign]

    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int) -> None:
        # Backtest rule (signals-and-strategies.md §8): the predicted rate is the last settled one. The
        # replayed market's own next rate is the future settlement, so it is never shown to the engine.
        self.core.set_predicted_funding(market, rate)
        self.core.on_funding(market, rate, mark, ts_ms)

    def on_candle(self, market: str, candle: Candle) -> dict[str, Any] | None:
        decision = self.core.on_candle(market, candle)
        return None if decision is None else self.core.decision_dict(decision)

    def stable_prices(self) -> dict[str, Decimal]:
        return {a: p for a, p in self.core.portfolio.prices.items() if a in STABLES}

    def warm_up(self, market: str, candles: Sequence[Candle]) -> None:
        engine = self.core.engines.get(market)
        if engine is not None:
            for c in candles:
                engine.on_candle(c)


def configured_instruments(cfg: EngineConfig) -> dict[str, Instrument]:
    """Filters of every configured market the config or the simulator knows (strategies look them up even
    without data)."""
    given = config_filters(cfg)
    out = {}
    for key in cfg.markets.by_key():
        try:
            out[key] = instrument_for(key, given)
        except DataError:
            continue
    return out


def strategies_from_config(cfg: EngineConfig) -> list[Strategy]:
    """The enabled strategies of the config, as the engine builds them."""
    from ate.strategies import build_strategies  # the strategies package owns their construction

    return list(build_strategies(cfg))


def run_backtest(cfg: EngineConfig, data: BacktestData, *, settings: ReplaySettings | None = None,
                 strategies: Sequence[Strategy] | None = None,
                 driver_factory: Callable[[EngineConfig, World], Driver] | None = None,
                 capital: Decimal | None = None, progress: Callable[[int, int], None] | None = None,
                 mode: Mode | None = None,
                 holdings: Mapping[str, Mapping[str, Decimal]] | None = None) -> BacktestResult:
    """Replay `data` through the engine; `strategies` default to the config's, `driver_factory` to the
    trading core. The capital and risk limits are those of `mode` (default the config's; see
    ``ate.backtest.inputs``) unless `capital` is given. `progress(done, total)` is called every few thousand
    candles. `holdings` are coins held at the start besides the capital ({venue: {asset: amount}}), valued
    at the first prices."""
    settings = settings or ReplaySettings(fees=default_fees(cfg))
    if not settings.fees:
        settings = replace(settings, fees=default_fees(cfg))
    cfg, capital, capital_source = capital_in_force(cfg, mode or cfg.mode, capital)
    notes = [data.note] if data.note else []
    if strategies is None and driver_factory is None:
        notes += check_markets(cfg, data)
    t0 = time.perf_counter()
    world = World(data, settings, capital, holdings)
    chosen: list[Strategy] = []
    if driver_factory is None:
        chosen = list(strategies) if strategies is not None else strategies_from_config(cfg)
        driver: Driver = CoreDriver(cfg, world, chosen)
    else:
        driver = driver_factory(cfg, world)
    executor = getattr(driver, "executor", None)
    if not isinstance(executor, MatchingExecutor):
        executor = None

    total = _count_closes(data) if progress is not None else 0
    driver.warm_up(data.primary, data.warmup)
    for market, candles in data.more_warmup.items():
        driver.warm_up(market, candles)
    equity = EquityCurve()
    decisions = RecordLog()
    prices = {k: _closes(md.candles) for k, md in data.markets.items()}  # every candle closes at one step
    settlements = sorted(((r.ts_ms, key, r) for key, md in data.markets.items() for r in md.funding),
                         key=lambda x: (x[0], x[1]))
    fi = 0
    next_sample = data.start_ms
    every = settings.equity_every_ms
    sample_equity = world.equity_sampler(driver.stable_prices)
    end = data.start_ms
    # the per-step calls, looked up once: a year of 1m steps is half a million iterations
    advance, book, last_close = world.replayer.advance_to, world.book, world.last_close
    add_ts, add_equity, add_flow = equity.ts.append, equity.equity.append, equity.flow.append
    on_books, on_candle, on_timer = driver.on_books, driver.on_candle, driver.on_timer
    next_settlement = settlements[0][0] if settlements else None
    for i, (t, group) in enumerate(_close_schedule(data)):
        end = t
        advance(t)
        if executor is not None:
            executor.flush()
        books = []
        for key, _ in group:
            b = book(key)
            if b is not None:
                books.append(b)
        on_books(books)
        # every settlement, whether or not the account holds a position (strategies watch the rates)
        while next_settlement is not None and next_settlement <= t:
            ts, key, r = settlements[fi]
            driver.on_funding(key, r.rate, r.mark_price or world.markets[key].mark or None, ts)
            fi += 1
            next_settlement = settlements[fi][0] if fi < len(settlements) else None
        for key, c in group:
            last_close[key] = c.close
            d = on_candle(key, c)
            if d is not None:
                decisions.append(d)
        on_timer()
        if executor is not None:
            executor.flush()
        if t >= next_sample:
            add_ts(t)
            add_equity(sample_equity())
            add_flow(0.0)
            if every:
                next_sample = t - t % every + every
        if progress is not None and (i % 5000 == 0 or i == total - 1):
            progress(i + 1, total)
    final = world.equity(driver.stable_prices())
    if not equity or equity[-1].ts_ms != end:
        equity.append(EquityPoint(end, float(final)))
    equity.insert(0, EquityPoint(data.start_ms, float(_capital_of(world))))
    fills = executor.fills if executor is not None else []
    legs, ledger, still_open = build([f.fill for f in fills], world.funding_since(0), world.instruments)
    slots = market_slots(chosen)
    trades = strategy_round_trips(legs, slots)
    result = BacktestResult(cfg.run_id, data.start_ms, end, sum(len(m.candles) for m in data.markets.values()),
                            equity, final, trades, ledger, [_fill_dict(f.fill, f.purpose) for f in fills],
                            [order_row(o) for o in executor.submitted] if executor is not None else [],
                            decisions, prices, list(executor.rejections) if executor is not None else [],
                            world.funding_since(0), "; ".join(notes), len(data.warmup), time.perf_counter() - t0,
                            legs=legs, capital_source=capital_source)
    result.stats = compute(equity, trades, ledger, legs)
    result.stats["open_at_end"] = still_open  # per-market trips not closed by the end: in equity, not in trade stats
    several = len({(st, k) for (st, _), k in slots.items()}) > len({st for st, _ in slots})  # a list of markets
    if several or any("market" in d for d in decisions[:1]):
        found = _per_market_stats(result, slots, end)
    else:
        found = periods(decisions, end)
    result.stats["veto_periods"] = found["vetoes"]
    result.stats["warmup_periods"] = found["warmup"]
    result.stats["warmup_bars"] = len(data.warmup)
    result.stats["start_date_dependence"] = start_date_dependence(found)
    return result


def market_slots(strategies: Sequence[Strategy]) -> dict[tuple[str, str], str]:
    """(strategy, market) → the slot trading it, for strategies given a list of markets (a directional
    market with its hedge, a carry pair): their round trips are counted per slot."""
    from ate.strategies.per_market import PerMarket

    return {(s.name, m): key for s in strategies if isinstance(s, PerMarket)
            for key, slot in s.slots.items() for m in slot.traded}  # type: ignore[attr-defined]


def _per_market_stats(result: BacktestResult, slots: Mapping[tuple[str, str], str],
                      end: int) -> dict[str, list[dict[str, Any]]]:
    """`stats["per_market"]`: each strategy's results per market (or pair), with each signal market's veto and
    warm-up periods read from that market's own decisions; returns every period, each naming its market."""
    per: dict[str, dict[str, dict[str, Any]]] = {}
    by_slot: dict[tuple[str, str], list[Trade]] = {}
    for t in result.trades:
        first = f"{t.venue.split('+')[0]}:{t.symbol.split('+')[0]}"
        by_slot.setdefault((t.strategy, slots.get((t.strategy, first), first)), []).append(t)
    for (strategy, slot) in sorted({(st, k) for (st, _), k in slots.items()} | set(by_slot)):
        per.setdefault(strategy, {})[slot] = trade_stats(by_slot.get((strategy, slot), []))
    found: dict[str, list[dict[str, Any]]] = {"vetoes": [], "warmup": []}
    for market in dict.fromkeys(d.get("market", "") for d in result.decisions):
        mine = periods([d for d in result.decisions if d.get("market", "") == market], end)
        for kind in found:
            found[kind] += [{"market": market, **p} for p in mine[kind]]
        own = per.get("directional", {}).get(market)
        if own is not None:
            own["veto_periods"], own["warmup_periods"] = mine["vetoes"], mine["warmup"]
    for kind in found:
        found[kind].sort(key=lambda p: (p["from_ms"], p["market"], p["module"], p.get("scope", "")))
    result.stats["per_market"] = per
    return found


def _capital_of(world: World) -> Decimal:
    """The starting equity: the capital plus the holdings at the first open of a market quoting them in a
    stablecoin (at 1, as the engine has no basis before its first book)."""
    first = {md.instrument.base: Decimal(repr(md.candles[0].open)) for md in world.data.markets.values()
             if md.candles and md.instrument.quote in STABLES and not md.reference}
    total = Decimal(0)
    for wallet in world.initial.values():
        for asset, amount in wallet.items():
            total += amount * (Decimal(1) if asset in STABLES else first.get(asset, Decimal(0)))
    return total


def _fill_dict(f: Any, purpose: str) -> dict[str, Any]:
    return {"ts_ms": f.ts_ms, "market": f"{f.venue}:{f.symbol}", "strategy": f.strategy, "side": f.side.value,
            "qty": str(f.qty), "price": str(f.price), "fee": str(f.fee), "fee_asset": f.fee_asset,
            "maker": f.is_maker, "purpose": purpose, "client_order_id": f.client_order_id}


def _closes(candles: Sequence[Candle]) -> PairSeries:
    out = PairSeries()
    out.ts = array("q", [c.close_ms for c in candles])
    out.values = array("d", [c.close for c in candles])
    return out


def _close_schedule(data: BacktestData) -> Iterator[tuple[int, list[tuple[str, Candle]]]]:
    """Candle close times of all markets, merged: (t, [(market, candle), ...]) in time order. A generator:
    a year of 1m steps held as a list would cost ~90 MB."""
    streams = [_stream(key, md.candles) for key, md in sorted(data.markets.items())]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda x: (x[0], x[1]))
    t_group: tuple[int, list[tuple[str, Candle]]] | None = None
    for t, key, c in merged:
        if t_group is not None and t_group[0] == t:
            t_group[1].append((key, c))
        else:
            if t_group is not None:
                yield t_group
            t_group = (t, [(key, c)])
    if t_group is not None:
        yield t_group


def _stream(key: str, candles: Sequence[Candle]) -> Iterator[tuple[int, str, Candle]]:
    return ((c.open_ms + c.interval_ms, key, c) for c in candles)  # close_ms, without the property call


def _count_closes(data: BacktestData) -> int:
    """How many steps `_close_schedule` yields (distinct close times over all markets)."""
    n, last = 0, None
    for t in heapq.merge(*((c.close_ms for c in md.candles) for md in data.markets.values())):
        if t != last:
            n, last = n + 1, t
    return n

"""What a strategy may read (StrategyContext), what it must answer (Strategy), and an in-memory context.

A strategy turns market data and signal decisions into order intents. It never talks to a venue, the
store or the risk layer: the trading core calls the hooks below identically in backtest, paper,
shadow, canary and live, then hands the intents to risk and execution. Every hook returns a sequence
of intents (usually empty) and must not raise on ordinary market conditions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from ate.data.candles import Candle
from ate.model import (
    Balance,
    EngineEvent,
    Fill,
    FilterError,
    Instrument,
    Order,
    OrderIntent,
    Position,
    Severity,
    Side,
    TradingState,
)
from ate.model.market import BookTicker
from ate.signals.gamma import HedgeBook

ZERO = Decimal(0)
NO_INTENTS: tuple[OrderIntent, ...] = ()
BP = Decimal("0.0001")


def split_market(market: str) -> tuple[str, str]:
    """`"venue:SYMBOL"` → (venue, symbol)."""
    venue, sep, symbol = market.partition(":")
    if not sep or not venue or not symbol:
        raise ValueError(f"market {market!r} is not 'venue:SYMBOL'")
    return venue, symbol


@dataclass(frozen=True, slots=True)
class FundingInfo:
    """Funding of one perp market: settled rates (oldest first), the predicted next rate, the interval."""

    settled: Sequence[tuple[int, Decimal]] = ()  # (funding time ms, rate per interval)
    predicted: Decimal | None = None  # live: the venue's predicted rate; backtest: last settled
    interval_ms: int | None = None  # from venue metadata; None = infer from the settled times

    def interval(self) -> int | None:
        """The funding interval: the venue's, else the spacing of the last two settlements."""
        if self.interval_ms:
            return self.interval_ms
        if len(self.settled) >= 2:
            gap = self.settled[-1][0] - self.settled[-2][0]
            return gap if gap > 0 else None
        return None


@dataclass(frozen=True, slots=True)
class MarginInfo:
    """Margin of the account holding a perp position (USD): for the carry's margin guard."""

    equity: Decimal  # margin balance
    maintenance: Decimal  # maintenance margin requirement
    liquidation_price: Decimal | None = None
    leverage_ok: bool = True  # False: the venue did not confirm the configured leverage / margin type

    def ratio(self) -> float | None:
        return float(self.equity / self.maintenance) if self.maintenance > 0 else None


@runtime_checkable
class StrategyContext(Protocol):
    """The read-only view of the engine a strategy sees at one instant (all values at `now_ms`)."""

    @property
    def now_ms(self) -> int: ...

    @property
    def equity_usd(self) -> Decimal: ...

    @property
    def trading_state(self) -> TradingState: ...

    @property
    def vetoes(self) -> Collection[str]:
        """Scopes of the active vetoes: `directional`, `all`, `hedged`, `venue:<id>`, `market:<venue:SYM>`,
        or a strategy name (e.g. `arbitrage`)."""
        ...

    def book(self, market: str) -> BookTicker | None: ...

    def instrument(self, market: str) -> Instrument: ...

    def balance(self, venue: str, asset: str) -> Balance: ...

    def position(self, market: str) -> Position | None: ...

    def funding(self, market: str) -> FundingInfo | None: ...

    def margin(self, market: str) -> MarginInfo | None: ...

    def size_multiplier(self, module: str) -> float | None:
        """The latest `size_multiplier` of a signal module (lxvx for arbitrage), None if unknown."""
        ...

    def headroom_usd(self, strategy: str, market: str | None = None, side: Side | None = None) -> Decimal | None:
        """Notional (USD) the risk layer would still accept for a new entry of `strategy`; with `market` and
        `side` also within that market's position cap. None = no cap. Size every leg of a pair within the
        smallest headroom of its legs: risk approves a pair's legs at one size or not at all."""
        ...

    def signal_vetoes(self, market: str) -> Collection[str]:
        """The vetoes in force for trading `market` on its own signals (its signal engine's and the account's)."""
        ...

    def in_flight(self, strategy: str, markets: Collection[str] = ()) -> bool:
        """True while `strategy` has an order that is not terminal (or an intent not yet decided); with
        `markets`, only orders on those markets count (a strategy trading several markets)."""
        ...


@dataclass(slots=True)
class SimpleContext:
    """An in-memory StrategyContext that tests and the backtester fill directly."""

    now_ms: int = 0
    equity_usd: Decimal = ZERO
    trading_state: TradingState = TradingState.ACTIVE
    vetoes: set[str] = field(default_factory=set)
    books: dict[str, BookTicker] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    balances: dict[tuple[str, str], Balance] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    fundings: dict[str, FundingInfo] = field(default_factory=dict)
    margins: dict[str, MarginInfo] = field(default_factory=dict)
    multipliers: dict[str, float] = field(default_factory=dict)
    headroom: dict[str, Decimal] = field(default_factory=dict)  # by strategy, and by "market:SIDE"
    busy: set[str] = field(default_factory=set)  # strategies with orders in flight ("name" or "name@market")

    def book(self, market: str) -> BookTicker | None:
        return self.books.get(market)

    def instrument(self, market: str) -> Instrument:
        return self.instruments[market]

    def balance(self, venue: str, asset: str) -> Balance:
        return self.balances.get((venue, asset)) or Balance(asset)

    def position(self, market: str) -> Position | None:
        return self.positions.get(market)

    def funding(self, market: str) -> FundingInfo | None:
        return self.fundings.get(market)

    def margin(self, market: str) -> MarginInfo | None:
        return self.margins.get(market)

    def size_multiplier(self, module: str) -> float | None:
        return self.multipliers.get(module)

    def headroom_usd(self, strategy: str, market: str | None = None, side: Side | None = None) -> Decimal | None:
        caps = [self.headroom.get(strategy)]
        if market is not None and side is not None:
            caps.append(self.headroom.get(f"{market}:{side.value}"))
        known = [c for c in caps if c is not None]
        return min(known) if known else None

    def signal_vetoes(self, market: str) -> Collection[str]:
        return self.vetoes

    def in_flight(self, strategy: str, markets: Collection[str] = ()) -> bool:
        return strategy in self.busy or any(f"{strategy}@{m}" in self.busy for m in markets)

    def set_book(self, market: str, bid: Decimal | str, ask: Decimal | str, bid_qty: Decimal | str = "1",
                 ask_qty: Decimal | str = "1", ts_ms: int | None = None) -> BookTicker:
        venue, symbol = split_market(market)
        b = BookTicker(venue, symbol, Decimal(bid), Decimal(bid_qty), Decimal(ask), Decimal(ask_qty), 0,
                       self.now_ms if ts_ms is None else ts_ms)
        self.books[market] = b
        return b

    def set_balance(self, venue: str, asset: str, free: Decimal | str) -> None:
        self.balances[(venue, asset)] = Balance(asset, Decimal(free))


def blocked(ctx: StrategyContext, scopes: Iterable[str], active: Collection[str] | None = None) -> str | None:
    """The first active veto among `scopes` (or `all`), None if entries are allowed; `active` defaults to
    `ctx.vetoes`."""
    active = ctx.vetoes if active is None else active
    if not active:
        return None
    if "all" in active:
        return "all"
    for s in scopes:
        if s in active:
            return s
    return None


def market_scopes(*markets: str) -> list[str]:
    """The veto scopes that cover trading on these markets: each venue and each market."""
    out = []
    for m in markets:
        out += [f"venue:{split_market(m)[0]}", f"market:{m}"]
    return out


def touch_limit(ctx: StrategyContext, market: str, side: Side, qty: Decimal, cap_bps: float, *,
                reduce_only: bool = False) -> tuple[Decimal, Decimal] | None:
    """(qty, price) of a limit at most `cap_bps` through the touch, rounded by the venue's rules and
    checked against its filters; None without a book or when the venue would reject it."""
    book = ctx.book(market)
    if book is None:
        return None
    cap = to_dec(cap_bps) * BP
    price = book.ask * (1 + cap) if side is Side.BUY else book.bid * (1 - cap)
    try:
        q, p = ctx.instrument(market).prepare(side, qty, price, reduce_only=reduce_only)
    except FilterError:
        return None
    assert p is not None
    return q, p


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """What gamma's `update_hedge_book` needs for one hedged book (coins, signed; mark in quote)."""

    spot: float
    perp: float
    mark: float
    in_flight: bool = False


@dataclass(frozen=True, slots=True)
class Exposure:
    """Signed coins a strategy holds on one market; `pair` groups the legs of a delta-neutral pair."""

    market: str
    qty: Decimal
    pair: str = ""


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A closed round trip for kelly (`SignalEngine.record_trade`) and the win rate."""

    strategy: str
    net_pnl: float  # quote, after fees and funding
    entry_notional: float
    ts_ms: int
    hypothetical: bool = False
    market: str = ""  # the market whose signals decided it (directional: that market's kelly learns from it)


class Strategy:
    """Base of the three strategies: every hook defaults to "nothing to do".

    The engine must copy `OrderIntent.meta` into `Order.meta` so a strategy recognises its own legs
    in `on_order_update`, and report an intent that risk or execution refused via `on_intent_rejected`.
    """

    name = "strategy"

    def __init__(self) -> None:
        self._events: list[EngineEvent] = []
        self._trades: list[ClosedTrade] = []

    # ---- hooks -------------------------------------------------------------------------------------
    def on_book(self, market: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return NO_INTENTS

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """A closed 1m candle of `market`."""
        return NO_INTENTS

    def on_decision(self, decision: Any, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """A combiner decision (`ate.signals.engine.Decision`)."""
        return NO_INTENTS

    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int,
                   ctx: StrategyContext) -> Sequence[OrderIntent]:
        """A funding settlement of perp `market` at `ts_ms` (rate per interval, mark at that time)."""
        return NO_INTENTS

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """One of this strategy's orders changed: a fill (`fill` set) and/or a status change."""
        return NO_INTENTS

    def on_intent_rejected(self, intent: OrderIntent, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """Risk or execution refused an intent of this strategy: no order exists for it."""
        return NO_INTENTS

    def on_hedge(self, book_id: str, qty: float, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """gamma's HEDGE{qty} for one of this strategy's books (see `hedge_books`)."""
        return NO_INTENTS

    # ---- market data -------------------------------------------------------------------------------
    def reads(self) -> Collection[str] | None:
        """The markets whose books and candles `on_book` and `on_candle` act on: for any other market they
        return no intents and change nothing, so the core does not call them (it asks once per market).
        None: every market (the default, for a strategy that does not say)."""
        return None

    def implements(self, hook: str) -> bool:
        """Whether `hook` is this strategy's own: the base class's hooks return no intents and change
        nothing, so the core does not call a strategy that keeps them."""
        return getattr(type(self), hook) is not getattr(Strategy, hook)

    def handler(self, hook: str, market: str) -> Callable[..., Sequence[OrderIntent]] | None:
        """What to call with `market`'s data for `hook` (`on_book` or `on_candle`); None when it could not act
        on it (see `reads` and `implements`). The core looks it up once per hook and market."""
        markets = self.reads()
        if not self.implements(hook) or (markets is not None and market not in markets):
            return None
        return getattr(self, hook)

    def answering(self, hook: str) -> Callable[..., Any]:
        """What answers `hook` (a reporting hook such as `exposures` or `hedge_snapshot`) for this strategy."""
        return getattr(self, hook)

    def subscriptions(self) -> tuple[str, ...]:
        """Markets (`venue:SYMBOL`) the strategy reads besides the configured ones (e.g. a conversion
        market): the engine subscribes to them like any other market."""
        return ()

    def quote_rates(self) -> dict[str, tuple[str, Decimal]]:
        """Live values of quote assets in another quote ({asset: (reference quote, value in it)}), so equity
        across quotes is valued in one unit at the live basis; empty when the strategy has none."""
        return {}

    # ---- gamma -------------------------------------------------------------------------------------
    def hedge_books(self, ctx: StrategyContext) -> dict[str, HedgeBook]:
        """Books to register with gamma (`SignalEngine.register_hedge_book`)."""
        return {}

    def hedge_snapshot(self, ctx: StrategyContext) -> dict[str, BookSnapshot]:
        """Current coins of each book, for `SignalEngine.update_hedge_book`."""
        return {}

    def exposures(self) -> list[Exposure]:
        """The strategy's own holdings, for the emergency ladder (arbitrage inventory reports none)."""
        return []

    # ---- reporting and persistence -----------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        return None

    @property
    def has_reports(self) -> bool:
        """Events or closed trades are waiting to be drained."""
        return bool(self._events or self._trades)

    def drain_events(self) -> list[EngineEvent]:
        """Alerts and notable decisions since the last call (for the operator and the store)."""
        out = self._events[:]
        self._events.clear()  # emptied in place: a `PerMarket`'s slots report into their parent's list
        return out

    def drain_trades(self) -> list[ClosedTrade]:
        """Round trips closed since the last call (feed kelly with the directional ones)."""
        out = self._trades[:]
        self._trades.clear()
        return out

    def _event(self, ts_ms: int, kind: str, message: str, severity: Severity = Severity.INFO,
               **data: Any) -> None:
        self._events.append(EngineEvent(ts_ms, f"{self.name}.{kind}", message, severity, data))


class WinLoss:
    """Wins and losses of closed trades; |P&L| < 0.01 USD is neither (§9 win_rate_pct)."""

    __slots__ = ("wins", "losses")

    def __init__(self, wins: int = 0, losses: int = 0) -> None:
        self.wins = wins
        self.losses = losses

    def add(self, pnl: float) -> None:
        if pnl >= 0.01:
            self.wins += 1
        elif pnl <= -0.01:
            self.losses += 1

    @property
    def rate_pct(self) -> float | None:
        n = self.wins + self.losses
        return 100.0 * self.wins / n if n else None


def to_dec(x: float | Decimal) -> Decimal:
    """Decimal from a config float (through repr, so 0.1 stays 0.1)."""
    return x if isinstance(x, Decimal) else Decimal(repr(x))


def dec(x: Any) -> Decimal:
    """Decimal from persisted state (strings) or numbers."""
    return x if isinstance(x, Decimal) else Decimal(str(x))


def fresh_state(strategy: Strategy) -> dict[str, Any]:
    """A just-built strategy's state as the store would return it (a JSON copy: `state()` may return live
    lists): restoring it resets the strategy to a fresh one, for a rollback's reload when nothing was saved."""
    return json.loads(json.dumps(strategy.state(), default=str))

"""Matching core of the simulated exchange: pure, in-process, no I/O.

The backtester calls it directly; the protocol faces (``binance_*.py`` here, ``backpack*.py`` and
``deribit*.py`` by the sim-backpack work) put it behind the venues' wire protocols.

Public API (everything a face needs)
------------------------------------
Setup::

    core = MatchingCore()
    m = core.add_market(instrument, maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"),
                        venue="binance-spot")            # venue defaults to instrument.venue
    core.add_account("alice")
    core.deposit("alice", "binance-spot", "USDT", Decimal(10000))

Markets are keyed by ``(venue, symbol)``; ``core.market(venue, symbol)`` returns the live
:class:`Market` (book in integer ticks/steps, ``bid_price``/``ask_price`` as Decimal, ``mark``,
``funding_rate``, ``next_funding_ms``, ``update_id``, ``candles`` history, ``instrument``).
Balances are per account *and venue wallet* (Binance spot and USD-M wallets are separate; Backpack
spot and perp share the "backpack" wallet).

Trading (all money is Decimal; quantities and prices must already be on the venue grid, the core
checks them with ``Instrument.check`` and rejects off-grid values rather than rounding)::

    order, fills = core.place_order("alice", "binance-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT,
                                    qty, price, tif=TimeInForce.GTC, client_order_id="x-1",
                                    reduce_only=False)
    core.cancel_order(account, venue, symbol, order_id=None, client_order_id=None) -> SimOrder
    core.cancel_all(account, venue, symbol) -> list[SimOrder]
    core.get_order(account, venue, symbol, order_id=None, client_order_id=None) -> SimOrder
    core.open_orders(account, venue, symbol=None) -> list[SimOrder]
    core.all_orders(account, venue, symbol=None) -> list[SimOrder]
    core.trades_for(account, venue, symbol=None, order_id=None) -> list[SimFill]
    core.balances(account, venue) -> dict[str, Balance]
    core.positions(account, venue) -> dict[str, Position]      # perp markets only
    core.funding_for(account, venue, symbol=None) -> list[FundingEvent]
    core.transfers_for(account, venue) -> list[TransferEvent]  # deposits and withdrawals, oldest first
    core.set_leverage(account, venue, symbol, leverage) / core.leverage(account, venue, symbol)
    core.available_margin(account, venue, asset) -> Decimal   # perp wallet: equity - initial - order margin
    core.settle_funding(venue, symbol, ts_ms, rate, mark=None) -> list[FundingEvent]

Perps: one-way positions (``ate.model.Position``), cross margin per venue wallet in the quote asset,
default leverage 20, initial margin = notional / leverage, maintenance = notional × 0.004
(``maint_margin_rate``); a mark update that leaves equity below maintenance cancels the account's
orders on that venue and closes the position at the mark with the venue's own order (client id
``autoclose-…``, ``origin`` LIQUIDATION: ORDER events NEW and TRADE, then a LIQUIDATION event);
``core.liquidate(account, venue, symbol)`` forces it. ``core.transfer(account, venue, asset, amount)``
deposits (amount > 0) or withdraws; ``core.halt(venue, symbol)`` / ``core.resume`` stop and restart
trading (new orders rejected MARKET_CLOSED, the book frozen). Every balance change, whatever its
cause, goes out through one notification (``_balances_changed`` → a BALANCE event). Realized P&L is booked
to the wallet at 8 decimals; fees are in the quote asset. Spot fees are taken from the asset received
(base on buys, quote on sells), as on Binance without BNB.

``place_order`` raises :class:`OrderRejected` with a :class:`RejectReason` (each face maps reasons to
its own error codes) when nothing happened. FOK orders that cannot fill completely and IOC/market
remainders are *not* rejections: they return an order in status EXPIRED (as Binance does).
``SimOrder`` is ``ate.model.Order`` plus ``account``, ``order_id`` (int, unique per venue) and
``post_only``; an accepted order with no fill yet has status ``SUBMITTED`` (Binance "NEW").

Market data (driven by :mod:`ate.sim.replay`, or by tests directly)::

    core.update_book(m, bid_ticks, ask_ticks, bid_steps, ask_steps, ts_ms)   # hot path, ints only
    core.quiet(m) / core.jump_book(m, ..., updates, last_price_t)         # a run of them nothing observes
    core.record_trade(m, price_ticks, qty_steps, buyer_is_maker, ts_ms)      # public tape
    core.close_candle(m, candle)                                             # a closed kline
    core.update_mark(m, ts_ms, mark=None)                                    # perps: mark, liquidation

Resting limit orders fill (as maker, at their limit price) when an update crosses them, against the
size shown on the opposite side. Taker orders walk ``depth_levels`` synthetic levels
``depth_step_ticks`` apart, each with the top-of-book size; liquidity taken is remembered until the
next book update.

Fault hook: ``core.taker_cap = fn(market, qty) -> Decimal | None`` caps what one IOC/market order may
fill (the partial-fill fault of :mod:`ate.sim.inject`); None leaves it to the book.

Listeners (faces stream from these)::

    core.listen(callback)        # callback(kind: str, payload) for every event below
    core.listen_book(callback)   # callback(market) on every book update (kept separate: hot path)

kinds and payloads: ``ORDER`` → :class:`OrderEvent` (exec type NEW/TRADE/CANCELED/EXPIRED with the
fill if any), ``BALANCE`` → :class:`BalanceEvent`, ``POSITION`` → :class:`PositionEvent`, ``TRADE``
→ :class:`PublicTrade`, ``KLINE`` → :class:`KlineClosed`, ``MARK`` → :class:`MarkUpdate`,
``FUNDING`` → :class:`FundingEvent`, ``LIQUIDATION`` → :class:`PositionEvent`. Callbacks run
synchronously inside the core call; a face that needs asyncio should only enqueue.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from ate.data.candles import Candle
from ate.model import (
    Balance,
    FilterError,
    Instrument,
    MarketKind,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from ate.model.fill import Fill

ZERO = Decimal(0)
MARGIN_QUANTUM = Decimal("0.00000001")
NO_BUY = -1
NO_SELL = 1 << 62

ORDER, BALANCE, POSITION, TRADE, KLINE, MARK, FUNDING, LIQUIDATION = (
    "ORDER", "BALANCE", "POSITION", "TRADE", "KLINE", "MARK", "FUNDING", "LIQUIDATION")


class RejectReason(StrEnum):
    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    PRICE_FILTER = "PRICE_FILTER"
    LOT_SIZE = "LOT_SIZE"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    MARKET_CLOSED = "MARKET_CLOSED"  # the symbol is halted: no new orders (cancels still work)
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"  # spot
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"  # perp
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    DUPLICATE_CLIENT_ID = "DUPLICATE_CLIENT_ID"
    REDUCE_ONLY_REJECTED = "REDUCE_ONLY_REJECTED"
    NO_LIQUIDITY = "NO_LIQUIDITY"  # market order on an empty book
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  # cancel/query of an order that does not exist or is closed
    INVALID_PARAMETER = "INVALID_PARAMETER"


class OrderRejected(Exception):
    """Nothing happened; ``reason`` says why, ``detail`` is a human-readable message."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class SimOrder(Order):
    account: str = ""
    order_id: int = 0
    post_only: bool = False
    price_ticks: int = 0
    lock_asset: str = ""
    lock_unit: Decimal = ZERO  # locked per unit of quantity: exact releases on partial fills
    locked: Decimal = ZERO  # amount still locked in ``lock_asset`` for the unfilled part
    origin: str = "USER"  # LIQUIDATION: the venue's own close-out order of a liquidated position

    @property
    def is_buy(self) -> bool:
        return self.side is Side.BUY


@dataclass(frozen=True, slots=True)
class SimFill(Fill):
    account: str = ""
    order_id: int = 0
    trade_no: int = 0
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class OrderEvent:
    account: str
    order: SimOrder
    exec_type: str  # NEW, TRADE, CANCELED, EXPIRED
    fill: SimFill | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class BalanceEvent:
    account: str
    venue: str
    assets: tuple[Balance, ...]  # snapshots of the changed assets
    reason: str  # ORDER, FUNDING_FEE, DEPOSIT, WITHDRAW
    ts_ms: int
    delta: Decimal = ZERO  # signed amount a DEPOSIT, WITHDRAW or FUNDING_FEE moved (0 for ORDER)


@dataclass(frozen=True, slots=True)
class PositionEvent:
    account: str
    venue: str
    position: Position  # snapshot
    reason: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class PublicTrade:
    market: Market
    trade_no: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    ts_ms: int


@dataclass(frozen=True, slots=True)
class KlineClosed:
    market: Market
    candle: Candle


@dataclass(frozen=True, slots=True)
class MarkUpdate:
    market: Market
    mark: Decimal
    funding_rate: Decimal
    next_funding_ms: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class FundingEvent:
    account: str
    venue: str
    symbol: str
    amount: Decimal  # received (negative when paid)
    rate: Decimal
    mark: Decimal
    position_qty: Decimal
    ts_ms: int
    event_no: int


@dataclass(frozen=True, slots=True)
class TransferEvent:
    account: str
    venue: str
    asset: str
    amount: Decimal  # deposited (negative when withdrawn)
    ts_ms: int
    event_no: int  # shares the funding events' numbering: one income history, one id space


class Market:
    """One (venue, symbol): its instrument, fees and the replayed top of book in integer ticks/steps."""

    __slots__ = ("venue", "symbol", "instrument", "maker_fee", "taker_fee", "is_perp", "tick", "step",
                 "tick_f", "step_f", "bid_t", "ask_t", "bid_sz", "ask_sz", "ts_ms", "update_id",
                 "taken", "best_buy", "best_sell", "resting", "trade_seq", "candles", "tape",
                 "depth_levels", "depth_step_ticks", "mark", "funding_rate", "next_funding_ms",
                 "funding_interval_ms", "position_holders", "maint_margin_rate", "last_price_t", "bar",
                 "halted")

    def __init__(self, instrument: Instrument, maker_fee: Decimal, taker_fee: Decimal, venue: str,
                 depth_levels: int, depth_step_ticks: int, maint_margin_rate: Decimal,
                 funding_interval_ms: int) -> None:
        self.venue = venue
        self.symbol = instrument.symbol
        self.instrument = instrument
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.is_perp = instrument.kind is MarketKind.PERP
        self.tick = instrument.tick_size
        self.step = instrument.step_size
        self.tick_f = float(instrument.tick_size)
        self.step_f = float(instrument.step_size)
        self.bid_t = 0
        self.ask_t = 0
        self.bid_sz = 0
        self.ask_sz = 0
        self.ts_ms = 0
        self.update_id = 0
        self.taken: dict[int, int] = {}  # signed level ticks (+ask, -bid) -> steps taken since update
        self.best_buy = NO_BUY
        self.best_sell = NO_SELL
        self.resting: list[SimOrder] = []
        self.trade_seq = itertools.count(1)
        self.candles: list[Candle] = []
        self.tape: deque[PublicTrade] = deque(maxlen=1000)
        self.depth_levels = depth_levels
        self.depth_step_ticks = depth_step_ticks
        self.mark = ZERO
        self.funding_rate = ZERO
        self.next_funding_ms = 0
        self.funding_interval_ms = funding_interval_ms
        self.position_holders: set[str] = set()
        self.maint_margin_rate = maint_margin_rate
        self.last_price_t = 0
        self.bar = [0, 0, 0, 0]  # candle being replayed: [open_ms, open, high, low] mid ticks so far
        self.halted = False  # trading halted (Binance BREAK): no new orders, the book stands still

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)

    def price(self, ticks: int) -> Decimal:
        return ticks * self.tick

    def qty(self, steps: int) -> Decimal:
        return steps * self.step

    @property
    def bid_price(self) -> Decimal:
        return self.bid_t * self.tick

    @property
    def ask_price(self) -> Decimal:
        return self.ask_t * self.tick

    @property
    def last_price(self) -> Decimal:
        return (self.last_price_t or (self.bid_t + self.ask_t) // 2) * self.tick

    @property
    def has_book(self) -> bool:
        return self.ask_t > 0 and self.bid_t > 0

    def levels(self, side: Side, n: int) -> list[tuple[int, int]]:
        """Visible (ticks, steps) levels, best first, net of liquidity taken since the last update;
        ``side`` is the side of the book (BUY = bids)."""
        out = []
        if not self.has_book:
            return out
        sign = 1 if side is Side.SELL else -1
        top, size = (self.ask_t, self.ask_sz) if side is Side.SELL else (self.bid_t, self.bid_sz)
        for i in range(min(n, self.depth_levels)):
            t = top + sign * i * self.depth_step_ticks
            if t <= 0:
                break
            left = size - self.taken.get(sign * t, 0)
            if left > 0:
                out.append((t, left))
        return out

    def mid_price(self) -> Decimal:
        return (self.bid_t + self.ask_t) * self.tick / 2


@dataclass(slots=True)
class Account:
    id: str
    wallets: dict[str, dict[str, Balance]] = field(default_factory=dict)  # venue -> asset -> Balance
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    leverage: dict[tuple[str, str], int] = field(default_factory=dict)
    # CROSSED or ISOLATED as set by the client; margin and liquidation are modelled cross either way
    margin_type: dict[tuple[str, str], str] = field(default_factory=dict)
    orders: dict[tuple[str, int], SimOrder] = field(default_factory=dict)  # (venue, order_id)
    open_by_client: dict[tuple[str, str], SimOrder] = field(default_factory=dict)
    fills: list[SimFill] = field(default_factory=list)
    funding: list[FundingEvent] = field(default_factory=list)
    transfers: list[TransferEvent] = field(default_factory=list)

    def wallet(self, venue: str) -> dict[str, Balance]:
        return self.wallets.setdefault(venue, {})

    def balance(self, venue: str, asset: str) -> Balance:
        w = self.wallet(venue)
        b = w.get(asset)
        if b is None:
            b = w[asset] = Balance(asset)
        return b


Listener = Callable[[str, object], None]
BookListener = Callable[[Market], None]


def _snap_balance(b: Balance) -> Balance:
    return Balance(b.asset, b.free, b.locked)


def _capped(plan: list[tuple[int, Decimal]], cap: Decimal) -> list[tuple[int, Decimal]]:
    out = []
    for t, q in plan:
        if cap <= 0:
            break
        out.append((t, min(q, cap)))
        cap -= q
    return out


def _snap_position(p: Position) -> Position:
    return Position(p.venue, p.symbol, p.qty, p.entry_price, p.realized_pnl, p.fees, p.funding, p.mark_price)


class MatchingCore:
    """All markets and accounts of one simulated world. Not thread-safe; call from one thread."""

    DEFAULT_LEVERAGE = 20

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.markets: dict[tuple[str, str], Market] = {}
        self.accounts: dict[str, Account] = {}
        self._order_ids: dict[str, itertools.count] = {}
        self._funding_no = itertools.count(1)
        self._listeners: list[Listener] = []
        self._book_listeners: list[BookListener] = []
        self._clock = clock
        # Fault hook: the most an IOC/market order on the market may fill (None: what the book gives)
        self.taker_cap: Callable[[Market, Decimal], Decimal | None] | None = None

    # ----------------------------------------------------------------- setup
    def add_market(self, instrument: Instrument, maker_fee: Decimal, taker_fee: Decimal, *,
                   venue: str | None = None, depth_levels: int = 10, depth_step_ticks: int = 1,
                   maint_margin_rate: Decimal = Decimal("0.004"),
                   funding_interval_ms: int = 8 * 3_600_000) -> Market:
        venue = venue or instrument.venue
        m = Market(instrument, maker_fee, taker_fee, venue, depth_levels, max(1, depth_step_ticks),
                   maint_margin_rate, funding_interval_ms)
        self.markets[(venue, instrument.symbol)] = m
        self._order_ids.setdefault(venue, itertools.count(1))
        return m

    def halt(self, venue: str, symbol: str) -> Market:
        """Halt trading (Binance status BREAK): new orders are rejected MARKET_CLOSED, resting orders
        stay and can be cancelled, and the book stands still (replayed updates are ignored)."""
        m = self.market(venue, symbol)
        m.halted = True
        return m

    def resume(self, venue: str, symbol: str) -> Market:
        m = self.market(venue, symbol)
        m.halted = False
        return m

    def market(self, venue: str, symbol: str) -> Market:
        m = self.markets.get((venue, symbol))
        if m is None:
            raise OrderRejected(RejectReason.UNKNOWN_MARKET, f"{venue}:{symbol}")
        return m

    def markets_of(self, venue: str) -> list[Market]:
        return [m for (v, _), m in self.markets.items() if v == venue]

    def add_account(self, account_id: str) -> Account:
        return self.accounts.setdefault(account_id, Account(account_id))

    def account(self, account_id: str) -> Account:
        a = self.accounts.get(account_id)
        if a is None:
            raise OrderRejected(RejectReason.UNKNOWN_ACCOUNT, account_id)
        return a

    def deposit(self, account_id: str, venue: str, asset: str, amount: Decimal) -> None:
        self.transfer(account_id, venue, asset, amount)

    def transfer(self, account_id: str, venue: str, asset: str, amount: Decimal) -> Balance:
        """An external deposit (amount > 0) or withdrawal (< 0) of a venue wallet; returns the balance.

        A withdrawal takes only free funds: more than is free raises INSUFFICIENT_BALANCE. Zero moves
        nothing and tells no one."""
        b = self.account(account_id).balance(venue, asset)
        if not amount:
            return b
        if -amount > b.free:
            raise OrderRejected(RejectReason.INSUFFICIENT_BALANCE, f"withdrawal of {-amount} {asset} exceeds "
                                                                   f"the free {b.free}")
        b.free += amount
        now = self.now()
        self.account(account_id).transfers.append(TransferEvent(account_id, venue, asset, amount, now,
                                                                next(self._funding_no)))
        self._balances_changed(account_id, venue, (b,), "DEPOSIT" if amount > 0 else "WITHDRAW", now, amount)
        return b

    def _balances_changed(self, account_id: str, venue: str, balances: tuple[Balance, ...] | list[Balance],
                          reason: str, ts: int, delta: Decimal = ZERO) -> None:
        """The one notification of a balance change, whatever caused it (faces report from it)."""
        if self._listeners:
            self._emit(BALANCE, BalanceEvent(account_id, venue, tuple(_snap_balance(b) for b in balances), reason,
                                             ts, delta))

    def listen(self, callback: Listener) -> Callable[[], None]:
        """Register an event callback; returns a function that unregisters it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def listen_book(self, callback: BookListener) -> Callable[[], None]:
        self._book_listeners.append(callback)
        return lambda: self._book_listeners.remove(callback) if callback in self._book_listeners else None

    def now(self) -> int:
        return self._clock() if self._clock else 0

    def _emit(self, kind: str, payload: object) -> None:
        for cb in self._listeners:
            cb(kind, payload)

    # ----------------------------------------------------------------- queries
    def balances(self, account_id: str, venue: str) -> dict[str, Balance]:
        return self.account(account_id).wallet(venue)

    def positions(self, account_id: str, venue: str) -> dict[str, Position]:
        return {s: p for (v, s), p in self.account(account_id).positions.items() if v == venue}

    def leverage(self, account_id: str, venue: str, symbol: str) -> int:
        return self.account(account_id).leverage.get((venue, symbol), self.DEFAULT_LEVERAGE)

    def set_leverage(self, account_id: str, venue: str, symbol: str, leverage: int) -> None:
        self.market(venue, symbol)
        if not 1 <= leverage <= 125:
            raise OrderRejected(RejectReason.INVALID_PARAMETER, f"leverage {leverage}")
        self.account(account_id).leverage[(venue, symbol)] = leverage

    def get_order(self, account_id: str, venue: str, symbol: str, order_id: int | None = None,
                  client_order_id: str | None = None) -> SimOrder:
        acct = self.account(account_id)
        o = None
        if order_id is not None:
            o = acct.orders.get((venue, order_id))
        elif client_order_id is not None:
            o = acct.open_by_client.get((venue, client_order_id))
            if o is None:  # the latest closed order with that id
                for cand in reversed(acct.orders.values()):
                    if cand.venue == venue and cand.client_order_id == client_order_id:
                        o = cand
                        break
        if o is None or o.symbol != symbol:
            raise OrderRejected(RejectReason.UNKNOWN_ORDER, "order does not exist")
        return o

    def open_orders(self, account_id: str, venue: str, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self.account(account_id).open_by_client.values()
                if o.venue == venue and (symbol is None or o.symbol == symbol)]

    def all_orders(self, account_id: str, venue: str, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self.account(account_id).orders.values()
                if o.venue == venue and (symbol is None or o.symbol == symbol)]

    def trades_for(self, account_id: str, venue: str, symbol: str | None = None,
                   order_id: int | None = None) -> list[SimFill]:
        return [f for f in self.account(account_id).fills
                if f.venue == venue and (symbol is None or f.symbol == symbol)
                and (order_id is None or f.order_id == order_id)]

    def funding_for(self, account_id: str, venue: str, symbol: str | None = None) -> list[FundingEvent]:
        return [e for e in self.account(account_id).funding
                if e.venue == venue and (symbol is None or e.symbol == symbol)]

    def transfers_for(self, account_id: str, venue: str) -> list[TransferEvent]:
        return [e for e in self.account(account_id).transfers if e.venue == venue]

    # ----------------------------------------------------------------- market data (hot path)
    def update_book(self, m: Market, bid_t: int, ask_t: int, bid_sz: int, ask_sz: int, ts_ms: int) -> None:
        """New top of book in ticks/steps. Fills resting orders the update crosses."""
        if m.halted:
            return
        m.bid_t = bid_t
        m.ask_t = ask_t
        m.bid_sz = bid_sz
        m.ask_sz = ask_sz
        m.ts_ms = ts_ms
        m.update_id += 1
        if m.taken:
            m.taken.clear()
        if ask_t <= m.best_buy or bid_t >= m.best_sell:
            self._fill_resting(m, ts_ms)
        for cb in self._book_listeners:
            cb(m)

    def quiet(self, m: Market) -> bool:
        """True when replayed data can move nothing but m's own quote: no listener, no resting order, no
        position marked to m, not halted. A run of book updates and prints then has the effect of its last
        update alone (``jump_book``)."""
        return not (self._listeners or self._book_listeners or m.halted or m.position_holders
                    or m.best_buy != NO_BUY or m.best_sell != NO_SELL)

    def jump_book(self, m: Market, bid_t: int, ask_t: int, bid_sz: int, ask_sz: int, ts_ms: int, updates: int,
                  last_price_t: int) -> None:
        """What ``updates`` book updates, each with its print, ending with this one (the last print at
        ``last_price_t``) do to a market that stays ``quiet`` throughout."""
        m.bid_t = bid_t
        m.ask_t = ask_t
        m.bid_sz = bid_sz
        m.ask_sz = ask_sz
        m.ts_ms = ts_ms
        m.update_id += updates
        if m.taken:
            m.taken.clear()
        m.last_price_t = last_price_t

    def record_trade(self, m: Market, price_t: int, qty_steps: int, buyer_is_maker: bool, ts_ms: int) -> None:
        if m.halted:
            return
        m.last_price_t = price_t
        if not self._listeners:
            return
        t = PublicTrade(m, next(m.trade_seq), price_t * m.tick, qty_steps * m.step, buyer_is_maker, ts_ms)
        m.tape.append(t)
        self._emit(TRADE, t)

    def close_candle(self, m: Market, candle: Candle) -> None:
        m.candles.append(candle)
        if self._listeners:
            self._emit(KLINE, KlineClosed(m, candle))

    def update_mark(self, m: Market, ts_ms: int, mark: Decimal | None = None) -> None:
        """Set the perp mark (default: book mid), revalue positions and liquidate the insolvent."""
        m.mark = mark if mark is not None else m.mid_price()
        if m.position_holders:
            for acct_id in list(m.position_holders):
                self._check_liquidation(self.accounts[acct_id], m, ts_ms)
        if self._listeners:
            self._emit(MARK, MarkUpdate(m, m.mark, m.funding_rate, m.next_funding_ms, ts_ms))

    def set_funding(self, m: Market, rate: Decimal, next_funding_ms: int) -> None:
        """Predicted rate and next settlement time shown in premiumIndex / markPrice streams."""
        m.funding_rate = rate
        m.next_funding_ms = next_funding_ms

    # ----------------------------------------------------------------- orders
    def place_order(self, account_id: str, venue: str, symbol: str, side: Side, type: OrderType,
                    qty: Decimal, price: Decimal | None = None, *, tif: TimeInForce = TimeInForce.GTC,
                    client_order_id: str | None = None, reduce_only: bool = False,
                    quote_qty: Decimal | None = None) -> tuple[SimOrder, list[SimFill]]:
        """Place an order. ``quote_qty`` (spot MARKET only, qty=0) spends that much quote instead.

        Returns the order (SUBMITTED, PARTIALLY_FILLED, FILLED or EXPIRED) and the fills it made.
        Raises OrderRejected when the order was not accepted at all.
        """
        m = self.market(venue, symbol)
        acct = self.account(account_id)
        ts = self.now()
        inst = m.instrument
        post_only = tif is TimeInForce.POST_ONLY
        if m.halted:
            raise OrderRejected(RejectReason.MARKET_CLOSED, "Market is closed.")
        if client_order_id and (venue, client_order_id) in acct.open_by_client:
            raise OrderRejected(RejectReason.DUPLICATE_CLIENT_ID, "Duplicate order sent.")
        if type is OrderType.LIMIT and price is None:
            raise OrderRejected(RejectReason.INVALID_PARAMETER, "limit order without price")
        if reduce_only and not m.is_perp:
            raise OrderRejected(RejectReason.INVALID_PARAMETER, "reduce-only on a spot market")
        if quote_qty is not None and (type is not OrderType.MARKET or m.is_perp):
            raise OrderRejected(RejectReason.INVALID_PARAMETER, "quote quantity only for spot market orders")
        if type is OrderType.MARKET and not m.has_book:
            raise OrderRejected(RejectReason.NO_LIQUIDITY, "no book")
        if quote_qty is not None:
            if quote_qty <= 0:
                raise OrderRejected(RejectReason.INVALID_PARAMETER, "quote quantity must be positive")
            qty = self._qty_for_quote(m, side, quote_qty)
        try:
            inst.check(qty, price if type is OrderType.LIMIT else None, reduce_only=reduce_only)
            if type is OrderType.MARKET and inst.min_notional > 0 and not (reduce_only and m.is_perp):
                ref = m.mark if (m.is_perp and m.mark) else m.mid_price()
                if qty * ref < inst.min_notional:
                    raise FilterError("MIN_NOTIONAL", f"notional below {inst.min_notional}")
        except FilterError as exc:
            raise OrderRejected(RejectReason(exc.reason), str(exc)) from None
        limit_t = int(price / m.tick) if price is not None and type is OrderType.LIMIT else None
        if reduce_only:
            pos = acct.positions.get((venue, symbol))
            if pos is None or pos.qty == 0 or (pos.qty > 0) == (side is Side.BUY) or qty > abs(pos.qty):
                raise OrderRejected(RejectReason.REDUCE_ONLY_REJECTED, "ReduceOnly Order is rejected.")
        crosses = limit_t is None or (0 < m.ask_t <= limit_t if side is Side.BUY else m.bid_t >= limit_t > 0)
        if post_only and crosses:
            raise OrderRejected(RejectReason.POST_ONLY_WOULD_TAKE, "Order would immediately match and take.")
        rests = type is OrderType.LIMIT and tif in (TimeInForce.GTC, TimeInForce.POST_ONLY)
        plan = self._taker_plan(m, side, qty, limit_t) if crosses else []
        if plan and self.taker_cap is not None and not rests and tif is not TimeInForce.FOK:
            cap = self.taker_cap(m, qty)
            if cap is not None:
                plan = _capped(plan, cap)
        plan_qty = sum((q for _, q in plan), ZERO)
        if type is OrderType.MARKET and plan_qty == 0:
            raise OrderRejected(RejectReason.NO_LIQUIDITY, "no liquidity")
        fok_fails = tif is TimeInForce.FOK and plan_qty < qty
        if not fok_fails:
            self._check_funds(acct, m, side, qty, price, plan, rests, reduce_only)

        o = SimOrder(client_order_id=client_order_id or "", venue=venue, symbol=symbol, side=side, type=type,
                     qty=qty, price=price if type is OrderType.LIMIT else None, tif=tif, reduce_only=reduce_only,
                     created_ms=ts, updated_ms=ts, account=account_id,
                     order_id=next(self._order_ids[venue]), post_only=post_only, price_ticks=limit_t or 0)
        if not o.client_order_id:
            o.client_order_id = f"sim-{o.order_id}"
        o.transition(OrderStatus.SUBMITTED, ts)
        acct.orders[(venue, o.order_id)] = o
        if fok_fails:
            o.transition(OrderStatus.EXPIRED, ts, "FOK could not fill completely")
            self._emit(ORDER, OrderEvent(account_id, o, "EXPIRED", None, ts))
            return o, []
        self._lock(acct, m, o)
        acct.open_by_client[(venue, o.client_order_id)] = o
        self._emit(ORDER, OrderEvent(account_id, o, "NEW", None, ts))
        if o.locked:  # funds moved from free to locked: a balance change like any other
            self._balances_changed(account_id, venue, (acct.balance(venue, o.lock_asset),), "ORDER", ts)
        fills = [self._execute(acct, m, o, t, q, False, ts) for t, q in plan]
        if o.is_open and not rests:
            self._close(acct, m, o, OrderStatus.EXPIRED, "EXPIRED", ts)
        elif o.is_open:
            m.resting.append(o)
            self._reindex(m)
        if fills and m.is_perp:
            self._expire_reduce_only(m, ts)
        return o, fills

    def cancel_order(self, account_id: str, venue: str, symbol: str, order_id: int | None = None,
                     client_order_id: str | None = None) -> SimOrder:
        acct = self.account(account_id)
        self.market(venue, symbol)
        try:
            o = self.get_order(account_id, venue, symbol, order_id, client_order_id)
        except OrderRejected:
            raise OrderRejected(RejectReason.UNKNOWN_ORDER, "Unknown order sent.") from None
        if not o.is_open:
            raise OrderRejected(RejectReason.UNKNOWN_ORDER, "Unknown order sent.")
        m = self.markets[(venue, symbol)]
        self._close(acct, m, o, OrderStatus.CANCELED, "CANCELED", self.now())
        return o

    def cancel_all(self, account_id: str, venue: str, symbol: str) -> list[SimOrder]:
        return [self.cancel_order(account_id, venue, symbol, o.order_id)
                for o in self.open_orders(account_id, venue, symbol)]

    # ----------------------------------------------------------------- funding
    def settle_funding(self, venue: str, symbol: str, ts_ms: int, rate: Decimal,
                       mark: Decimal | None = None) -> list[FundingEvent]:
        """Pay funding on every open position of the market: positive rate, longs pay shorts.

        Amount received = -qty × mark × rate, exact Decimal (mark defaults to the market's mark)."""
        m = self.market(venue, symbol)
        mark = mark if mark is not None else (m.mark or m.mid_price())
        out = []
        for acct_id in sorted(m.position_holders):
            acct = self.accounts[acct_id]
            pos = acct.positions[(venue, symbol)]
            if pos.qty == 0:
                continue
            qty = pos.qty
            amount = pos.apply_funding(rate, mark)
            b = acct.balance(venue, m.instrument.quote)
            b.free += amount
            ev = FundingEvent(acct_id, venue, symbol, amount, rate, mark, qty, ts_ms, next(self._funding_no))
            acct.funding.append(ev)
            out.append(ev)
            self._emit(FUNDING, ev)
            self._balances_changed(acct_id, venue, (b,), "FUNDING_FEE", ts_ms, amount)
        return out

    # ----------------------------------------------------------------- internals
    def _qty_for_quote(self, m: Market, side: Side, quote: Decimal) -> Decimal:
        """Base quantity that spends (BUY) or receives (SELL) about ``quote`` walking the book."""
        book_side = Side.SELL if side is Side.BUY else Side.BUY
        qty = ZERO
        left = quote
        for t, sz in m.levels(book_side, m.depth_levels):
            p = t * m.tick
            level_qty = sz * m.step
            if level_qty * p >= left:
                qty += left / p
                left = ZERO
                break
            qty += level_qty
            left -= level_qty * p
        return m.instrument.round_qty(qty)

    def _taker_plan(self, m: Market, side: Side, qty: Decimal, limit_t: int | None) -> list[tuple[int, Decimal]]:
        want = int(qty / m.step)
        plan = []
        book_side = Side.SELL if side is Side.BUY else Side.BUY
        for t, sz in m.levels(book_side, m.depth_levels):
            if limit_t is not None and (t > limit_t if side is Side.BUY else t < limit_t):
                break
            take = min(want, sz)
            plan.append((t, take * m.step))
            want -= take
            if want == 0:
                break
        return plan

    def _position(self, acct: Account, m: Market) -> Position:
        key = (m.venue, m.symbol)
        pos = acct.positions.get(key)
        if pos is None:
            pos = acct.positions[key] = Position(m.venue, m.symbol)
        return pos

    def _margin_state(self, acct: Account, m: Market) -> tuple[Decimal, Decimal, Decimal]:
        """(equity, initial, maintenance) of the account's wallet on m's venue, marked to market.

        equity = wallet (free + locked order margin) + unrealized P&L; available = equity - initial
        - locked order margin."""
        b = acct.balance(m.venue, m.instrument.quote)
        upnl = initial = maint = ZERO
        for (v, s), p in acct.positions.items():
            if v != m.venue or p.qty == 0:
                continue
            pm = self.markets[(v, s)]
            p.mark_price = pm.mark or pm.mid_price()
            upnl += p.unrealized_pnl
            notional = abs(p.qty) * p.mark_price
            initial += notional / self.leverage(acct.id, v, s)
            maint += notional * pm.maint_margin_rate
        return b.free + b.locked + upnl, initial, maint

    def liquidation_price(self, account_id: str, venue: str, symbol: str) -> Decimal | None:
        """The mark of this perp at which the wallet's equity meets its maintenance margin (every other
        position at its current mark); None without a position or when no positive price does.

        equity(P) = W + U_other + q·(P − E) and maint(P) = M_other + |q|·P·mmr, so
        P = (M_other + q·E − W − U_other) / (q − |q|·mmr)."""
        acct = self.account(account_id)
        m = self.market(venue, symbol)
        pos = acct.positions.get((venue, symbol))
        if not m.is_perp or pos is None or pos.qty == 0:
            return None
        equity, _, maint = self._margin_state(acct, m)
        mark = pos.mark_price
        q = pos.qty
        own_equity = q * (mark - pos.entry_price)
        own_maint = abs(q) * mark * m.maint_margin_rate
        rest = (maint - own_maint) + q * pos.entry_price - (equity - own_equity)
        price = rest / (q - abs(q) * m.maint_margin_rate)
        return price.quantize(m.instrument.tick_size) if price > 0 else None

    def available_margin(self, account_id: str, venue: str, asset: str) -> Decimal:
        """Margin free for new orders on a perp wallet (Binance ``availableBalance``)."""
        acct = self.account(account_id)
        perps = [m for m in self.markets_of(venue) if m.is_perp and m.instrument.quote == asset]
        if not perps:
            return acct.balance(venue, asset).free
        equity, initial, _ = self._margin_state(acct, perps[0])
        return equity - initial - acct.balance(venue, asset).locked

    def _check_funds(self, acct: Account, m: Market, side: Side, qty: Decimal, price: Decimal | None,
                     plan: list[tuple[int, Decimal]], rests: bool, reduce_only: bool) -> None:
        filled = sum((q for _, q in plan), ZERO)
        cost = sum((t * m.tick * q for t, q in plan), ZERO)
        rest_qty = qty - filled if rests else ZERO
        if m.is_perp:
            if reduce_only:
                return
            pos = acct.positions.get((m.venue, m.symbol))
            opposing = abs(pos.qty) if pos is not None and pos.qty != 0 and (pos.qty > 0) != (side is Side.BUY) else ZERO
            increase = max(ZERO, filled + rest_qty - opposing)
            if increase == 0:
                return
            ref = cost / filled if filled else (price or m.mid_price())
            need = increase * ref / self.leverage(acct.id, m.venue, m.symbol) + cost * m.taker_fee
            equity, initial, _ = self._margin_state(acct, m)
            if need > equity - initial - acct.balance(m.venue, m.instrument.quote).locked:
                raise OrderRejected(RejectReason.INSUFFICIENT_MARGIN, "Margin is insufficient.")
            return
        inst = m.instrument
        if side is Side.BUY:
            need = cost + (rest_qty * price if rest_qty and price is not None else ZERO)
            if need > acct.balance(m.venue, inst.quote).free:
                raise OrderRejected(RejectReason.INSUFFICIENT_BALANCE,
                                    "Account has insufficient balance for requested action.")
        elif filled + rest_qty > acct.balance(m.venue, inst.base).free:
            raise OrderRejected(RejectReason.INSUFFICIENT_BALANCE,
                                "Account has insufficient balance for requested action.")

    def _lock(self, acct: Account, m: Market, o: SimOrder) -> None:
        """Lock what the whole order may spend; fills and closing release it."""
        inst = m.instrument
        if m.is_perp:
            if o.reduce_only or o.type is OrderType.MARKET:
                return
            o.lock_asset = inst.quote
            lev = self.leverage(acct.id, m.venue, m.symbol)
            o.lock_unit = (o.price / lev).quantize(MARGIN_QUANTUM, rounding=ROUND_CEILING)
        elif o.side is Side.BUY:
            o.lock_asset = inst.quote
            o.lock_unit = o.price if o.price is not None else ZERO
        else:
            o.lock_asset = inst.base
            o.lock_unit = Decimal(1)
        o.locked = o.qty * o.lock_unit
        if o.locked:
            b = acct.balance(m.venue, o.lock_asset)
            lock = min(o.locked, b.free)  # perp margin may be partly covered by unrealized profit
            o.locked = lock
            b.free -= lock
            b.locked += lock

    def _release(self, acct: Account, m: Market, o: SimOrder, amount: Decimal) -> Balance | None:
        if not o.lock_asset or amount <= 0:
            return None
        amount = min(amount, o.locked)
        b = acct.balance(m.venue, o.lock_asset)
        b.locked -= amount
        b.free += amount
        o.locked -= amount
        return b

    def _execute(self, acct: Account, m: Market, o: SimOrder, price_t: int, q: Decimal, maker: bool,
                 ts: int) -> SimFill:
        price = price_t * m.tick
        inst = m.instrument
        fee_rate = m.maker_fee if maker else m.taker_fee
        notional = q * price
        changed: dict[str, Balance] = {}
        realized = ZERO
        if not maker:  # liquidity consumed until the next book update
            key = price_t if o.side is Side.BUY else -price_t
            m.taken[key] = m.taken.get(key, 0) + int(q / m.step)
        # release this fill's share of the lock before settling it
        rb = self._release(acct, m, o, q * o.lock_unit)
        if rb is not None:
            changed[rb.asset] = rb
        if m.is_perp:
            fee = notional * fee_rate
            fee_asset = inst.quote
            pos = self._position(acct, m)
            # an averaged entry can be a repeating decimal: book P&L at the wallet's 8 decimals
            realized = pos.apply_fill(o.side, q, price, fee).quantize(MARGIN_QUANTUM)
            qb = acct.balance(m.venue, inst.quote)
            qb.free += realized - fee
            changed[inst.quote] = qb
            if pos.qty:
                m.position_holders.add(acct.id)
            pos.mark_price = m.mark or price
        else:
            base = acct.balance(m.venue, inst.base)
            quote = acct.balance(m.venue, inst.quote)
            if o.side is Side.BUY:
                fee, fee_asset = q * fee_rate, inst.base
                quote.free -= notional
                base.free += q - fee
            else:
                fee, fee_asset = notional * fee_rate, inst.quote
                base.free -= q
                quote.free += notional - fee
            changed[inst.base] = base
            changed[inst.quote] = quote
        o.apply_fill(q, price, ts)
        trade_no = next(m.trade_seq)
        f = SimFill(venue=m.venue, symbol=m.symbol, trade_id=str(trade_no), client_order_id=o.client_order_id,
                    venue_order_id=str(o.order_id), side=o.side, qty=q, price=price, fee=fee, fee_asset=fee_asset,
                    is_maker=maker, ts_ms=ts, account=acct.id, order_id=o.order_id, trade_no=trade_no,
                    realized_pnl=realized)
        acct.fills.append(f)
        m.last_price_t = price_t
        if not o.is_open:
            rest = self._release(acct, m, o, o.locked)
            if rest is not None:
                changed[rest.asset] = rest
            acct.open_by_client.pop((m.venue, o.client_order_id), None)
        if self._listeners:
            self._emit(ORDER, OrderEvent(acct.id, o, "TRADE", f, ts))
            self._balances_changed(acct.id, m.venue, tuple(changed.values()), "ORDER", ts)
            if m.is_perp:
                self._emit(POSITION, PositionEvent(acct.id, m.venue, _snap_position(self._position(acct, m)),
                                                   "ORDER", ts))
            t = PublicTrade(m, trade_no, price, q, maker == (o.side is Side.BUY), ts)
            m.tape.append(t)
            self._emit(TRADE, t)
        return f

    def _close(self, acct: Account, m: Market, o: SimOrder, status: OrderStatus, exec_type: str, ts: int) -> None:
        b = self._release(acct, m, o, o.locked)
        o.transition(status, ts)
        acct.open_by_client.pop((m.venue, o.client_order_id), None)
        if o in m.resting:
            m.resting.remove(o)
            self._reindex(m)
        self._emit(ORDER, OrderEvent(acct.id, o, exec_type, None, ts))
        if b is not None:
            self._balances_changed(acct.id, m.venue, (b,), "ORDER", ts)

    def _reindex(self, m: Market) -> None:
        buys = [o.price_ticks for o in m.resting if o.side is Side.BUY]
        sells = [o.price_ticks for o in m.resting if o.side is Side.SELL]
        m.best_buy = max(buys) if buys else NO_BUY
        m.best_sell = min(sells) if sells else NO_SELL

    def _fill_resting(self, m: Market, ts: int) -> None:
        """Fill resting orders the new top of book crosses, best price first, then time priority."""
        buys = sorted((o for o in m.resting if o.side is Side.BUY and o.price_ticks >= m.ask_t),
                      key=lambda o: (-o.price_ticks, o.order_id))
        sells = sorted((o for o in m.resting if o.side is Side.SELL and o.price_ticks <= m.bid_t),
                       key=lambda o: (o.price_ticks, o.order_id))
        for orders, avail_attr in ((buys, "ask_sz"), (sells, "bid_sz")):
            avail = getattr(m, avail_attr)
            for o in orders:
                if avail <= 0:
                    break
                steps = min(int(o.remaining / m.step), avail)
                if o.reduce_only:  # never more than the position left to reduce
                    steps = min(steps, self._reducible_steps(o, m))
                    if steps <= 0:
                        self._close(self.accounts[o.account], m, o, OrderStatus.EXPIRED, "EXPIRED", ts)
                        continue
                if steps <= 0:
                    continue
                avail -= steps
                acct = self.accounts[o.account]
                self._execute(acct, m, o, o.price_ticks, steps * m.step, True, ts)
                if not o.is_open:
                    m.resting.remove(o)
        self._reindex(m)
        if m.is_perp:
            self._expire_reduce_only(m, ts)

    def _expire_reduce_only(self, m: Market, ts: int) -> None:
        """Reduce-only orders with no position left to reduce expire (as Binance cancels them)."""
        for o in [o for o in m.resting if o.reduce_only and self._reducible_steps(o, m) == 0]:
            self._close(self.accounts[o.account], m, o, OrderStatus.EXPIRED, "EXPIRED", ts)

    def _reducible_steps(self, o: SimOrder, m: Market) -> int:
        pos = self.accounts[o.account].positions.get((m.venue, m.symbol))
        if pos is None or pos.qty == 0 or (pos.qty > 0) == (o.side is Side.BUY):
            return 0
        return int(abs(pos.qty) / m.step)

    def _check_liquidation(self, acct: Account, m: Market, ts: int) -> None:
        pos = acct.positions.get((m.venue, m.symbol))
        if pos is None or pos.qty == 0:
            m.position_holders.discard(acct.id)
            return
        equity, _, maint = self._margin_state(acct, m)
        if equity < maint:
            self._liquidate(acct, m, pos, ts)

    def liquidate(self, account_id: str, venue: str, symbol: str, clearance_fee: Decimal = ZERO) -> SimOrder:
        """Liquidate the account's position on a perp now, whatever its margin (fault injection).
        ``clearance_fee``: the fraction of the closed notional the venue keeps as its liquidation clearance
        fee (Binance: income ``INSURANCE_CLEAR``), taken from the wallet and not part of the trade.
        Returns the close-out order; raises INVALID_PARAMETER when there is no position."""
        m = self.market(venue, symbol)
        acct = self.account(account_id)
        pos = acct.positions.get((venue, symbol))
        if not m.is_perp or pos is None or pos.qty == 0:
            raise OrderRejected(RejectReason.INVALID_PARAMETER, f"{account_id} has no position on {venue}:{symbol}")
        return self._liquidate(acct, m, pos, self.now(), clearance_fee)

    def _liquidate(self, acct: Account, m: Market, pos: Position, ts: int,
                   clearance_fee: Decimal = ZERO) -> SimOrder:
        """As the venue does: cancel the wallet's open orders, then close the position with its own
        order (client id ``autoclose-…``, origin LIQUIDATION) filled at the mark. The fill is a fill
        like any other (trade id, order events, position and balance updates) without a trading fee; a
        clearance fee is charged to the wallet beside it."""
        for o in [o for o in self.open_orders(acct.id, m.venue)]:
            self._close(acct, self.markets[(o.venue, o.symbol)], o, OrderStatus.CANCELED, "CANCELED", ts)
        side = Side.SELL if pos.qty > 0 else Side.BUY
        qty = abs(pos.qty)
        price = m.mark or m.mid_price()
        o = SimOrder(client_order_id="", venue=m.venue, symbol=m.symbol, side=side, type=OrderType.MARKET, qty=qty,
                     tif=TimeInForce.IOC, reduce_only=True, created_ms=ts, updated_ms=ts, account=acct.id,
                     order_id=next(self._order_ids[m.venue]), origin="LIQUIDATION")
        o.client_order_id = f"autoclose-{ts}{o.order_id}"
        o.transition(OrderStatus.SUBMITTED, ts)
        acct.orders[(m.venue, o.order_id)] = o
        self._emit(ORDER, OrderEvent(acct.id, o, "NEW", None, ts))
        realized = pos.apply_fill(side, qty, price).quantize(MARGIN_QUANTUM)
        b = acct.balance(m.venue, m.instrument.quote)
        b.free += realized - (qty * price * clearance_fee).quantize(MARGIN_QUANTUM)
        o.apply_fill(qty, price, ts)
        trade_no = next(m.trade_seq)
        f = SimFill(venue=m.venue, symbol=m.symbol, trade_id=str(trade_no), client_order_id=o.client_order_id,
                    venue_order_id=str(o.order_id), side=side, qty=qty, price=price, fee=ZERO,
                    fee_asset=m.instrument.quote, is_maker=False, ts_ms=ts, account=acct.id, order_id=o.order_id,
                    trade_no=trade_no, realized_pnl=realized)
        acct.fills.append(f)
        m.position_holders.discard(acct.id)
        self._emit(ORDER, OrderEvent(acct.id, o, "TRADE", f, ts))
        self._emit(LIQUIDATION, PositionEvent(acct.id, m.venue, _snap_position(pos), "LIQUIDATION", ts))
        self._balances_changed(acct.id, m.venue, (b,), "ORDER", ts)
        self._emit(POSITION, PositionEvent(acct.id, m.venue, _snap_position(pos), "ORDER", ts))
        return o

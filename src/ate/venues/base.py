"""The contract every venue client satisfies, and the explicit outcome of a venue command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ate.data.candles import Candle
from ate.model import Balance, Fill, Instrument, Order, Position
from ate.model.market import BookTicker, DepthUpdate, MarkPrice, Trade


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the venue has the command; ``order`` is its view
    REJECTED = "rejected"  # a venue error code proves nothing happened
    UNKNOWN = "unknown"  # timeout, 5xx, dropped connection, 429 on an order: query, never resend


@dataclass(frozen=True, slots=True)
class CommandResult:
    outcome: Outcome
    order: Order | None = None  # the venue's view of the order (a new object; the caller's is untouched)
    code: str | int | None = None
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement of a perp position as the venue booked it (received > 0, paid < 0)."""
    symbol: str
    amount: Decimal
    ts_ms: int  # the settlement time: the same instant the live path books it at


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A deposit (> 0) or withdrawal (< 0) of a wallet as the venue's history lists it."""
    asset: str
    amount: Decimal
    ts_ms: int
    ref: str  # the venue's transaction id


@dataclass(frozen=True, slots=True)
class MarginReport:
    """The venue's margin view of the account holding one perp (USD of the margin asset)."""

    symbol: str
    equity: Decimal  # margin balance: wallet + unrealized P&L
    maintenance: Decimal  # maintenance margin required now
    liquidation_price: Decimal | None  # None: no position, or no price liquidates it
    position: Decimal  # signed, as the venue holds it


class MarketSink(Protocol):
    """Receives parsed market data; ``ate.data.manager.MarketDataManager`` implements it."""

    def on_book(self, book: BookTicker) -> None: ...

    def on_candle(self, venue: str, symbol: str, candle: Candle) -> None: ...  # closed candles only

    def on_mark(self, mark: MarkPrice) -> None: ...

    def on_trade(self, trade: Trade) -> None: ...

    def on_depth(self, depth: DepthUpdate) -> None: ...


class UserSink(Protocol):
    """Receives private account events as the venue's view of an order, plus the fill if any."""

    def on_order(self, order: Order, fill: Fill | None) -> None: ...

    # Optional (called when present): the stream reconnected, events may be missing, reconcile now.
    def on_gap(self, venue: str) -> None: ...


class Stream(Protocol):
    async def run(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class VenueClient(Protocol):
    """What the engine needs from a venue. Money is Decimal, rounded by ``Instrument.prepare``."""

    venue: str

    async def start(self) -> None: ...  # measure clock skew; start periodic re-measurement

    async def close(self) -> None: ...

    async def server_time_ms(self) -> int: ...

    async def sync_clock(self) -> int: ...  # returns server - local offset in ms

    async def instruments(self) -> list[Instrument]: ...

    async def book_ticker(self, symbol: str) -> BookTicker: ...

    async def depth(self, symbol: str, limit: int = 100) -> DepthUpdate: ...

    async def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int | None = None) -> list[Candle]: ...

    async def mark_price(self, symbol: str) -> MarkPrice: ...

    async def place_order(self, order: Order, instrument: Instrument) -> CommandResult: ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> CommandResult: ...

    # `like`: the order as sent, for venues whose client ids can collide (Backpack's 32-bit clientId): only an
    # order matching it is returned; several matching raise VenueUnknown (ambiguous, never guessed).
    async def query_order(self, symbol: str, client_order_id: str, like: Order | None = None) -> Order | None: ...

    async def resolve(self, order: Order) -> CommandResult: ...  # settle an UNKNOWN outcome

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def fills_since(self, symbol: str, cursor: str | None) -> tuple[list[Fill], str | None]: ...

    # Funding the account received or paid after ``cursor`` (a settlement time in ms), oldest first, with
    # the new cursor; spot-only clients return nothing.
    async def funding_since(self, cursor: int) -> tuple[list[FundingPayment], int]: ...

    # Deposits and withdrawals after ``since_ms``, oldest first; None when this client cannot read the venue's
    # transfer history (reconciliation then cannot tell a transfer from a liquidation in the same window).
    async def transfers_since(self, since_ms: int) -> list[TransferRecord] | None: ...

    async def balances(self) -> dict[str, Balance]: ...

    async def positions(self) -> list[Position]: ...

    # Perp margin (spot-only clients raise VenueRejected): set and checked at start, read while running.
    async def set_leverage(self, symbol: str, leverage: int) -> int: ...  # the leverage the venue confirms

    async def set_margin_type(self, symbol: str, margin_type: str) -> None: ...  # CROSSED | ISOLATED

    async def margin(self, symbol: str) -> MarginReport: ...

    def market_stream(self, symbols: Sequence[str], sink: MarketSink, *, book: bool = True,
                      candles: bool = True, trades: bool = False, marks: bool = False,
                      depth: bool = False) -> Stream: ...

    def user_stream(self, sink: UserSink) -> Stream: ...

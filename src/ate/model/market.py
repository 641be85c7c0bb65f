"""Normalised market-data values shared by the venue parsers and the market data manager.

msgspec structs: cheap to build on the hot path. Prices and sizes are Decimal, exact as sent.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class BookTicker(msgspec.Struct, frozen=True, gc=False):
    venue: str
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int
    ts_ms: int  # venue event time, or local receive time where the venue sends none (Binance spot)


class Trade(msgspec.Struct, frozen=True, gc=False):
    venue: str
    symbol: str
    trade_id: str
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    ts_ms: int


class MarkPrice(msgspec.Struct, frozen=True, gc=False):
    venue: str
    symbol: str
    mark: Decimal
    index: Decimal | None
    funding_rate: Decimal | None
    next_funding_ms: int | None
    ts_ms: int


class DepthUpdate(msgspec.Struct, frozen=True, gc=False):
    """A depth snapshot (``snapshot=True``) or diff: absolute quantities, 0 deletes the level."""

    venue: str
    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    first_id: int
    last_id: int
    prev_id: int | None  # Binance USD-M ``pu``; None where the venue chains by first_id = last + 1
    ts_ms: int
    snapshot: bool = False

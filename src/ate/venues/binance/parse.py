"""Binance payloads → ate values. Stream frames decode with msgspec typed structs (hot path)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from ate.data.candles import Candle
from ate.model import (
    Fill,
    Instrument,
    MarketKind,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)
from ate.model.market import BookTicker, DepthUpdate, MarkPrice, Trade

ZERO = Decimal(0)


class _BookTicker(msgspec.Struct, gc=False):
    u: int
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    E: int = 0  # USD-M only; spot bookTicker has no event time


class _Kline(msgspec.Struct, gc=False):
    t: int
    o: str
    h: str
    l: str  # noqa: E741 - venue field name
    c: str
    v: str
    x: bool
    i: str = "1m"


class _KlineEvent(msgspec.Struct, gc=False):
    s: str
    k: _Kline


class _MarkPrice(msgspec.Struct, gc=False):
    E: int
    s: str
    p: Decimal
    i: Decimal | None = None
    r: Decimal | None = None
    T: int | None = None


class _Trade(msgspec.Struct, gc=False):
    s: str
    p: Decimal
    q: Decimal
    T: int
    m: bool
    t: int | None = None  # trade
    a: int | None = None  # aggTrade


class _Depth(msgspec.Struct, gc=False):
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[Decimal, Decimal]]
    a: list[tuple[Decimal, Decimal]]
    pu: int | None = None


class _Envelope(msgspec.Struct, gc=False):
    stream: str
    data: msgspec.Raw


class _BookEnvelope(msgspec.Struct, gc=False):
    stream: str
    data: _BookTicker


def kline_candle(k: Any, interval_ms: int = 60_000) -> Candle:
    return Candle(k.t, float(k.o), float(k.h), float(k.l), float(k.c), float(k.v), interval_ms)


SERVER_SHUTDOWN = object()  # the venue announced maintenance: reconnect now (reference §6.1)


class StreamDecoder:
    """Decodes combined-stream frames ``{"stream","data"}`` into BookTicker/Trade/MarkPrice/DepthUpdate,
    or ``(symbol, Candle)`` for a closed kline; open klines and control replies give None."""

    def __init__(self, venue: str, now_ms: Callable[[], int]) -> None:
        self.venue = venue
        self.now_ms = now_ms
        self._env = msgspec.json.Decoder(_Envelope)
        self._book_env = msgspec.json.Decoder(_BookEnvelope)
        self._book = msgspec.json.Decoder(_BookTicker)
        self._kline = msgspec.json.Decoder(_KlineEvent)
        self._mark = msgspec.json.Decoder(_MarkPrice)
        self._trade = msgspec.json.Decoder(_Trade)
        self._depth = msgspec.json.Decoder(_Depth)

    def decode(self, frame: str | bytes) -> object | None:
        if isinstance(frame, str):
            frame = frame.encode()
        if frame.find(b"@bookTicker", 0, 64) > 0:  # hot path: one typed decode, no envelope pass
            b = self._book_env.decode(frame).data
            return BookTicker(self.venue, b.s, b.b, b.B, b.a, b.A, b.u, b.E or self.now_ms())
        try:
            env = self._env.decode(frame)
        except msgspec.ValidationError:
            return SERVER_SHUTDOWN if b'"serverShutdown"' in frame else None  # or a control reply
        if env.stream == "!serverShutdown":
            return SERVER_SHUTDOWN
        kind = env.stream.partition("@")[2]
        data = env.data
        if kind == "bookTicker":
            b = self._book.decode(data)
            return BookTicker(self.venue, b.s, b.b, b.B, b.a, b.A, b.u, b.E or self.now_ms())
        if kind.startswith("kline"):
            e = self._kline.decode(data)
            return (e.s, kline_candle(e.k)) if e.k.x else None
        if kind.startswith("markPrice"):
            m = self._mark.decode(data)
            return MarkPrice(self.venue, m.s, m.p, m.i, m.r, m.T, m.E)
        if kind in ("aggTrade", "trade"):
            t = self._trade.decode(data)
            return Trade(self.venue, t.s, str(t.a if t.a is not None else t.t), t.p, t.q, t.m, t.T)
        if kind.startswith("depth"):
            d = self._depth.decode(data)
            return DepthUpdate(self.venue, d.s, d.b, d.a, d.U, d.u, d.pu, d.E)
        return None


# ---- REST ------------------------------------------------------------------------------------------

_STATUS = {
    "NEW": OrderStatus.SUBMITTED, "PENDING_NEW": OrderStatus.SUBMITTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED, "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED, "PENDING_CANCEL": OrderStatus.SUBMITTED,
    "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}


def order_status(s: str) -> OrderStatus:
    return _STATUS[s]


def parse_order(venue: str, d: dict) -> Order:
    """An order as Binance reports it (REST RESULT/FULL response, query, openOrders)."""
    typ = d.get("type", "LIMIT")
    tif_raw = d.get("timeInForce", "GTC")
    if typ == "LIMIT_MAKER" or tif_raw == "GTX":
        tif = TimeInForce.POST_ONLY
    else:
        tif = TimeInForce(tif_raw) if tif_raw in TimeInForce.__members__ else TimeInForce.GTC
    price = to_decimal(d.get("price", "0"))
    executed = to_decimal(d.get("executedQty", "0"))
    quote = to_decimal(d.get("cummulativeQuoteQty") or d.get("cumQuote") or "0")
    return Order(
        client_order_id=d.get("clientOrderId", ""), venue=venue, symbol=d["symbol"], side=Side(d["side"]),
        type=OrderType.MARKET if typ == "MARKET" else OrderType.LIMIT, qty=to_decimal(d.get("origQty", "0")),
        price=price if price > 0 else None, tif=tif, reduce_only=bool(d.get("reduceOnly", False)),
        status=order_status(d.get("status", "NEW")), venue_order_id=str(d["orderId"]),
        filled_qty=executed, filled_quote=quote,
        created_ms=int(d.get("time") or d.get("transactTime") or d.get("updateTime") or 0),
        updated_ms=int(d.get("updateTime") or d.get("transactTime") or 0),
    )


def parse_fill(venue: str, d: dict, client_order_id: str = "") -> Fill:
    """A row of spot ``myTrades`` or USD-M ``userTrades``."""
    buyer = d["isBuyer"] if "isBuyer" in d else d.get("side") == "BUY" or d.get("buyer", False)
    return Fill(
        venue=venue, symbol=d["symbol"], trade_id=str(d["id"]), client_order_id=client_order_id,
        venue_order_id=str(d["orderId"]), side=Side.BUY if buyer else Side.SELL, qty=to_decimal(d["qty"]),
        price=to_decimal(d["price"]), fee=to_decimal(d.get("commission", "0")),
        fee_asset=d.get("commissionAsset", ""), is_maker=bool(d.get("isMaker", d.get("maker", False))),
        ts_ms=int(d["time"]),
    )


def parse_instrument(venue: str, kind: MarketKind, s: dict) -> Instrument:
    f = {x["filterType"]: x for x in s.get("filters", [])}
    price = f.get("PRICE_FILTER", {})
    lot = f.get("LOT_SIZE", {})
    notional = f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}
    min_notional = notional.get("minNotional") or notional.get("notional") or "0"
    return Instrument(
        venue=venue, symbol=s["symbol"], base=s["baseAsset"], quote=s["quoteAsset"], kind=kind,
        tick_size=to_decimal(price.get("tickSize", "0")), step_size=to_decimal(lot.get("stepSize", "0")),
        min_qty=to_decimal(lot.get("minQty", "0")), max_qty=to_decimal(lot.get("maxQty", "0")),
        min_price=to_decimal(price.get("minPrice", "0")), max_price=to_decimal(price.get("maxPrice", "0")),
        min_notional=to_decimal(min_notional), grid_at_min=kind is MarketKind.PERP,
    )


def parse_kline_row(row: list, interval_ms: int) -> Candle:
    return Candle(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5]),
                  interval_ms)


_FILL_EXECUTIONS = ("TRADE", "CALCULATED")


def parse_execution_report(venue: str, e: dict) -> tuple[Order, Fill | None]:
    """Spot ``executionReport`` or the ``o`` object of USD-M ``ORDER_TRADE_UPDATE``."""
    coid = e["C"] if e.get("x") == "CANCELED" and e.get("C") else e["c"]
    typ = e.get("o", "LIMIT")
    tif = TimeInForce.POST_ONLY if typ == "LIMIT_MAKER" or e.get("f") == "GTX" else (
        TimeInForce(e["f"]) if e.get("f") in TimeInForce.__members__ else TimeInForce.GTC)
    price = to_decimal(e.get("p", "0"))
    filled = to_decimal(e.get("z", "0"))
    quote = to_decimal(e["Z"]) if "Z" in e else filled * to_decimal(e.get("ap", "0"))
    ts = int(e.get("T") or e.get("E") or 0)
    order = Order(
        client_order_id=coid, venue=venue, symbol=e["s"], side=Side(e["S"]),
        type=OrderType.MARKET if typ == "MARKET" else OrderType.LIMIT, qty=to_decimal(e["q"]),
        price=price if price > 0 else None, tif=tif, reduce_only=bool(e.get("R", False)),
        status=order_status(e["X"]), venue_order_id=str(e["i"]), filled_qty=filled, filled_quote=quote,
        updated_ms=ts,
    )
    fill = None
    # TRADE: our order traded; CALCULATED: a liquidation (USD-M), whose order the venue made (autoclose-…):
    # either is a fill to book.
    if e.get("x") in _FILL_EXECUTIONS and to_decimal(e.get("l") or "0") > 0:
        fill = Fill(venue=venue, symbol=e["s"], trade_id=str(e["t"]), client_order_id=coid,
                    venue_order_id=str(e["i"]), side=Side(e["S"]), qty=to_decimal(e["l"]),
                    price=to_decimal(e["L"]), fee=to_decimal(e.get("n") or "0"), fee_asset=e.get("N") or "",
                    is_maker=bool(e.get("m", False)), ts_ms=ts)
    return order, fill

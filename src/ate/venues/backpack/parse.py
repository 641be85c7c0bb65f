"""Backpack payloads → ate values. Stream frames decode with msgspec typed structs (hot path)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

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

KINDS = {"SPOT": MarketKind.SPOT, "PERP": MarketKind.PERP}


def iso_ms(value: str) -> int:
    """Backpack's naive ISO date-times ('2025-07-19 13:09:00', '...T...') are UTC."""
    dt = datetime.fromisoformat(value.replace("Z", ""))
    return int(dt.replace(tzinfo=UTC).timestamp() * 1000) if dt.tzinfo is None else int(dt.timestamp() * 1000)


class _BookTicker(msgspec.Struct, gc=False):
    s: str
    b: Decimal
    B: Decimal
    a: Decimal
    A: Decimal
    u: str
    E: int


class _Kline(msgspec.Struct, gc=False):
    s: str
    t: str | int
    o: str
    h: str
    l: str  # noqa: E741 - venue field name
    c: str
    v: str
    X: bool


class _MarkPrice(msgspec.Struct, gc=False):
    E: int
    s: str
    p: Decimal
    i: Decimal | None = None
    f: Decimal | None = None
    n: int | None = None


class _Trade(msgspec.Struct, gc=False):
    s: str
    p: Decimal
    q: Decimal
    t: int
    T: int
    m: bool


class _Depth(msgspec.Struct, gc=False):
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[Decimal, Decimal]]
    a: list[tuple[Decimal, Decimal]]


class _Envelope(msgspec.Struct, gc=False):
    stream: str
    data: msgspec.Raw


class _BookEnvelope(msgspec.Struct, gc=False):
    stream: str
    data: _BookTicker


def _time_ms(t: str | int) -> int:
    return iso_ms(t) if isinstance(t, str) else (t // 1000 if t > 10**14 else t)


class StreamDecoder:
    """Decodes ``{"stream","data"}`` frames into BookTicker/Trade/MarkPrice/DepthUpdate, or
    ``(symbol, Candle)`` for a closed 1m kline. Backpack stream times are µs; ate uses ms."""

    def __init__(self, venue: str, now_ms: Callable[[], int] | None = None) -> None:
        self.venue = venue
        self._env = msgspec.json.Decoder(_Envelope)
        self._book_env = msgspec.json.Decoder(_BookEnvelope)
        self._book = msgspec.json.Decoder(_BookTicker)
        self._kline = msgspec.json.Decoder(_Kline)
        self._mark = msgspec.json.Decoder(_MarkPrice)
        self._trade = msgspec.json.Decoder(_Trade)
        self._depth = msgspec.json.Decoder(_Depth)

    def decode(self, frame: str | bytes) -> object | None:
        if isinstance(frame, str):
            frame = frame.encode()
        if frame.find(b'"bookTicker.', 0, 64) > 0:  # hot path: one typed decode, no envelope pass
            b = self._book_env.decode(frame).data
            return BookTicker(self.venue, b.s, b.b, b.B, b.a, b.A, int(b.u), b.E // 1000)
        try:
            env = self._env.decode(frame)
        except msgspec.ValidationError:
            return None  # errors and replies without a stream
        kind = env.stream.split(".", 1)[0]
        data = env.data
        if kind == "bookTicker":
            b = self._book.decode(data)
            return BookTicker(self.venue, b.s, b.b, b.B, b.a, b.A, int(b.u), b.E // 1000)
        if kind == "kline":
            k = self._kline.decode(data)
            if not k.X:
                return None
            return k.s, Candle(_time_ms(k.t), float(k.o), float(k.h), float(k.l), float(k.c), float(k.v))
        if kind == "markPrice":
            m = self._mark.decode(data)
            return MarkPrice(self.venue, m.s, m.p, m.i, m.f, m.n, m.E // 1000)
        if kind == "trade":
            t = self._trade.decode(data)
            return Trade(self.venue, t.s, str(t.t), t.p, t.q, t.m, t.T // 1000)
        if kind == "depth":
            d = self._depth.decode(data)
            return DepthUpdate(self.venue, d.s, d.b, d.a, d.U, d.u, None, d.E // 1000)
        return None


# ---- REST ------------------------------------------------------------------------------------------

_STATUS = {
    "new": OrderStatus.SUBMITTED, "partiallyfilled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELED, "canceled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
    "triggerpending": OrderStatus.SUBMITTED, "triggerfailed": OrderStatus.REJECTED,
}


def side_of(value: str) -> Side:
    return Side.BUY if value.lower() == "bid" else Side.SELL


def parse_instrument(venue: str, m: dict) -> Instrument | None:
    kind = KINDS.get(m.get("marketType", "SPOT"))
    if kind is None:
        return None
    price = m.get("filters", {}).get("price", {})
    qty = m.get("filters", {}).get("quantity", {})
    return Instrument(
        venue=venue, symbol=m["symbol"], base=m["baseSymbol"], quote=m["quoteSymbol"], kind=kind,
        tick_size=to_decimal(price.get("tickSize") or "0"), step_size=to_decimal(qty.get("stepSize") or "0"),
        min_qty=to_decimal(qty.get("minQuantity") or "0"), max_qty=to_decimal(qty.get("maxQuantity") or "0"),
        min_price=to_decimal(price.get("minPrice") or "0"), max_price=to_decimal(price.get("maxPrice") or "0"),
    )


def parse_order(venue: str, d: dict, coid_for: Callable[[int], str]) -> Order:
    """A REST order (place response, query, open orders, history). ``coid_for`` maps the uint32 clientId."""
    tif_raw = (d.get("timeInForce") or "GTC").upper()
    tif = TimeInForce.POST_ONLY if d.get("postOnly") else (
        TimeInForce(tif_raw) if tif_raw in TimeInForce.__members__ else TimeInForce.GTC)
    price = to_decimal(d.get("price") or "0")
    client_id = d.get("clientId")
    return Order(
        client_order_id=coid_for(int(client_id)) if client_id is not None else "", venue=venue,
        symbol=d["symbol"], side=side_of(d["side"]),
        type=OrderType.MARKET if str(d.get("orderType", "")).lower() == "market" else OrderType.LIMIT,
        qty=to_decimal(d.get("quantity") or "0"), price=price if price > 0 else None, tif=tif,
        reduce_only=bool(d.get("reduceOnly", False)), status=_STATUS[str(d.get("status", "New")).lower()],
        venue_order_id=str(d["id"]), filled_qty=to_decimal(d.get("executedQuantity") or "0"),
        filled_quote=to_decimal(d.get("executedQuoteQuantity") or "0"), created_ms=_created_ms(d.get("createdAt")),
    )


def _created_ms(value: object) -> int:
    """``createdAt`` is ms on live orders but an ISO string on history rows."""
    if value is None:
        return 0
    return iso_ms(value) if isinstance(value, str) and not value.isdigit() else int(value)


def parse_fill(venue: str, d: dict, coid_for: Callable[[int], str]) -> Fill:
    client_id = d.get("clientId")
    return Fill(
        venue=venue, symbol=d["symbol"], trade_id=str(d.get("tradeId")),
        client_order_id=coid_for(int(client_id)) if client_id not in (None, "") else "",
        venue_order_id=str(d["orderId"]), side=side_of(d["side"]), qty=to_decimal(d["quantity"]),
        price=to_decimal(d["price"]), fee=to_decimal(d.get("fee") or "0"), fee_asset=d.get("feeSymbol") or "",
        is_maker=bool(d.get("isMaker", False)), ts_ms=iso_ms(d["timestamp"]),
    )


def parse_kline(d: dict, interval_ms: int) -> Candle:
    return Candle(iso_ms(d["start"]), float(d["open"]), float(d["high"]), float(d["low"]), float(d["close"]),
                  float(d["volume"]), interval_ms)


def parse_order_update(venue: str, e: dict, coid_for: Callable[[int], str]) -> tuple[Order, Fill | None]:
    """``account.orderUpdate`` event (reference §8.3); order type is parsed case-insensitively."""
    price = to_decimal(e.get("p") or "0")
    ts = int(e.get("T") or e.get("E") or 0) // 1000
    client_id = e.get("c")
    coid = coid_for(int(client_id)) if client_id not in (None, "") else ""
    tif_raw = str(e.get("f") or "GTC").upper()
    order = Order(
        client_order_id=coid, venue=venue, symbol=e["s"], side=side_of(e["S"]),
        type=OrderType.MARKET if str(e.get("o", "")).lower() == "market" else OrderType.LIMIT,
        qty=to_decimal(e.get("q") or "0"), price=price if price > 0 else None,
        tif=TimeInForce(tif_raw) if tif_raw in TimeInForce.__members__ else TimeInForce.GTC,
        reduce_only=bool(e.get("r", False)), status=_STATUS[str(e.get("X", "New")).lower()],
        venue_order_id=str(e["i"]), filled_qty=to_decimal(e.get("z") or "0"),
        filled_quote=to_decimal(e.get("Z") or "0"), updated_ms=ts,
    )
    fill = None
    if e.get("e") == "orderFill":
        fill = Fill(venue=venue, symbol=e["s"], trade_id=str(e["t"]), client_order_id=coid,
                    venue_order_id=str(e["i"]), side=side_of(e["S"]), qty=to_decimal(e["l"]),
                    price=to_decimal(e["L"]), fee=to_decimal(e.get("n") or "0"), fee_asset=e.get("N") or "",
                    is_maker=bool(e.get("m", False)), ts_ms=ts)
    return order, fill

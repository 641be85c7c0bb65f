"""Binance Spot and USD-M futures client (REST + WebSocket), one class parametrised by market kind."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from ate.data.candles import INTERVAL_MS, Candle
from ate.model import Balance, Fill, Instrument, MarketKind, Order, OrderType, Position, TimeInForce, fmt
from ate.model import to_decimal as D
from ate.model.market import BookTicker, DepthUpdate, MarkPrice
from ate.venues.base import (
    CommandResult,
    FundingPayment,
    MarginReport,
    MarketSink,
    Outcome,
    TransferRecord,
    UserSink,
)
from ate.venues.binance import parse
from ate.venues.binance.signing import encode_params, sign_params, ws_api_signature
from ate.venues.binance.streams import BinanceMarketStream, BinanceUserStream
from ate.venues.clock import Clock, ServerClock, SystemClock
from ate.venues.credentials import Credentials
from ate.venues.errors import NotFound, VenueError, VenueRejected, VenueUnknown
from ate.venues.lifecycle import ClockSyncedClient
from ate.venues.ratelimit import RateLimiter, binance_spot_limiter, binance_usdm_limiter
from ate.venues.rest import Prepared, Request, RestTransport

log = logging.getLogger("ate.venues.binance")

TRADES_PAGE = 1000  # the most a trade history request returns
UNKNOWN_CODES = {-1007, -1006}  # "execution status unknown" / unexpected response


@dataclass(frozen=True, slots=True)
class BinanceUrls:
    rest: str
    stream: str  # spot: host serving /stream; USD-M: host serving /public, /market, /private
    ws_api: str | None = None  # spot WebSocket API (user data subscription)


@dataclass(frozen=True, slots=True)
class _Api:
    """Paths and weights of one Binance market (reference §4.1, §4.2)."""

    prefix: str
    time: str
    exchange_info: str
    exchange_info_weight: int
    book_ticker: str
    depth: str
    klines: str
    order: str
    open_orders: str
    open_orders_all_weight: int
    my_trades: str
    my_trades_weight: int
    account: str
    kline_limit: int


SPOT_API = _Api("/api/v3", "/api/v3/time", "/api/v3/exchangeInfo", 20, "/api/v3/ticker/bookTicker",
                "/api/v3/depth", "/api/v3/klines", "/api/v3/order", "/api/v3/openOrders", 80,
                "/api/v3/myTrades", 20, "/api/v3/account", 1000)
USDM_API = _Api("/fapi/v1", "/fapi/v1/time", "/fapi/v1/exchangeInfo", 1, "/fapi/v1/ticker/bookTicker",
                "/fapi/v1/depth", "/fapi/v1/klines", "/fapi/v1/order", "/fapi/v1/openOrders", 40,
                "/fapi/v1/userTrades", 5, "/fapi/v3/balance", 1000)


def depth_weight(kind: MarketKind, limit: int) -> int:
    if kind is MarketKind.SPOT:
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def kline_weight(kind: MarketKind, limit: int) -> int:
    if kind is MarketKind.SPOT:
        return 2
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


class BinanceDialect:
    def __init__(self, venue: str, creds: Credentials | None, server_clock: ServerClock, recv_window_ms: int):
        self.venue = venue
        self.creds = creds
        self.server_clock = server_clock
        self.recv_window_ms = recv_window_ms

    def _need_creds(self) -> Credentials:
        if self.creds is None:
            raise VenueRejected(self.venue, "API credentials are required for this request")
        return self.creds

    def prepare(self, req: Request) -> Prepared:
        params = [(k, str(v)) for k, v in (req.params or [])]
        headers: dict[str, str] = {}
        if req.signed:
            creds = self._need_creds()
            ts = self.server_clock.stamp(self.recv_window_ms)
            params += [("recvWindow", str(self.recv_window_ms)), ("timestamp", str(ts))]
            query = sign_params(creds.secret, params)
        else:
            query = encode_params(params)
        if req.signed or req.keyed:
            headers["X-MBX-APIKEY"] = self._need_creds().api_key
        return Prepared(f"{req.path}?{query}" if query else req.path, None, headers)

    def error(self, status: int, data: Any) -> VenueError:
        code = data.get("code") if isinstance(data, dict) else None
        msg = data.get("msg", "") if isinstance(data, dict) else str(data)[:200]
        if status >= 500 or status == 408 or code in UNKNOWN_CODES:
            return VenueUnknown(self.venue, msg or "server error", status=status, code=code)
        if code in (-2013, -2011):
            return NotFound(self.venue, msg, status=status, code=code)
        return VenueRejected(self.venue, msg, status=status, code=code)

    def retry_after_s(self, status: int, headers: Mapping[str, str], strikes: int) -> float:
        value = headers.get("Retry-After", "")
        return float(value) if value.isdigit() else min(60.0, 2.0 ** (strikes - 1))


class BinanceClient(ClockSyncedClient):
    """``kind=SPOT`` talks to ``/api/v3``; ``kind=PERP`` to USD-M ``/fapi``."""

    def __init__(self, kind: MarketKind, urls: BinanceUrls, creds: Credentials | None = None, *,
                 clock: Clock | None = None, session: aiohttp.ClientSession | None = None,
                 recv_window_ms: int = 5000, limiter: RateLimiter | None = None, timeout_s: float = 10.0,
                 clock_sync_every_s: float = 600.0, venue: str | None = None, ws_options: dict | None = None,
                 pause_clock: Clock | None = None) -> None:
        """`pause_clock`: what 429/418 pauses are measured on (the venue's wall time; default `clock`)."""
        self.ws_options = ws_options or {}  # e.g. stale_after_s for the streams
        self.kind = kind
        self.venue = venue or ("binance" if kind is MarketKind.SPOT else "binance_usdm")
        self.urls = urls
        self.creds = creds
        self.clock = clock or SystemClock()
        self.api = SPOT_API if kind is MarketKind.SPOT else USDM_API
        self.server_clock = ServerClock(self.clock, self.venue)
        self.recv_window_ms = recv_window_ms
        self.limiter = limiter or (binance_spot_limiter if kind is MarketKind.SPOT else binance_usdm_limiter)(
            self.clock, pause_clock=pause_clock)
        self.dialect = BinanceDialect(self.venue, creds, self.server_clock, recv_window_ms)
        self.rest = RestTransport(self.dialect, urls.rest, self.limiter, self.clock, session=session,
                                  timeout_s=timeout_s)
        self.session = session
        self.clock_sync_every_s = clock_sync_every_s
        self._instruments: dict[str, Instrument] = {}

    # ---- lifecycle and time ------------------------------------------------------------------------

    async def _get(self, path: str, params: list[tuple[str, Any]] | None = None, *, weight: int = 1,
                   signed: bool = False) -> Any:
        return (await self.rest.request(Request("GET", path, params, weight=weight, signed=signed))).data

    async def server_time_ms(self) -> int:
        return int((await self._get(self.api.time))["serverTime"])

    async def sync_clock(self) -> int:
        resp = await self.rest.request(Request("GET", self.api.time))
        return self.server_clock.record(int(resp.data["serverTime"]), resp.sent_ms, self.clock.now_ms())

    # ---- market data -------------------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        info = await self._get(self.api.exchange_info, weight=self.api.exchange_info_weight)
        self.limiter.configure(info.get("rateLimits", []))
        out = []
        for s in info.get("symbols", []):
            if s.get("status", "TRADING") != "TRADING":
                continue
            if self.kind is MarketKind.PERP and s.get("contractType", "PERPETUAL") != "PERPETUAL":
                continue
            out.append(parse.parse_instrument(self.venue, self.kind, s))
        self._instruments = {i.symbol: i for i in out}
        return out

    async def book_ticker(self, symbol: str) -> BookTicker:
        d = await self._get(self.api.book_ticker, [("symbol", symbol)], weight=2)
        return BookTicker(self.venue, d["symbol"], D(d["bidPrice"]), D(d["bidQty"]), D(d["askPrice"]),
                          D(d["askQty"]), 0, int(d.get("time") or self.clock.now_ms()))

    async def depth(self, symbol: str, limit: int = 100) -> DepthUpdate:
        d = await self._get(self.api.depth, [("symbol", symbol), ("limit", limit)],
                            weight=depth_weight(self.kind, limit))
        bids = [(D(p), D(q)) for p, q in d["bids"]]
        asks = [(D(p), D(q)) for p, q in d["asks"]]
        uid = int(d["lastUpdateId"])
        return DepthUpdate(self.venue, symbol, bids, asks, uid, uid, None, int(d.get("E") or self.clock.now_ms()),
                           snapshot=True)

    async def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int | None = None) -> list[Candle]:
        """Candles with open time in [start_ms, end_ms), paging as needed."""
        step = INTERVAL_MS[interval]
        end = end_ms if end_ms is not None else self.clock.now_ms()
        limit = self.api.kline_limit
        out: list[Candle] = []
        cursor = start_ms
        while cursor < end:
            rows = await self._get(self.api.klines, [("symbol", symbol), ("interval", interval),
                                                     ("startTime", cursor), ("endTime", end - 1), ("limit", limit)],
                                   weight=kline_weight(self.kind, limit))
            batch = [parse.parse_kline_row(r, step) for r in rows if start_ms <= int(r[0]) < end]
            out.extend(batch)
            if len(rows) < limit or not batch:
                break
            cursor = batch[-1].open_ms + step
        return out

    async def mark_price(self, symbol: str) -> MarkPrice:
        if self.kind is MarketKind.SPOT:
            raise VenueRejected(self.venue, "spot markets have no mark price or funding")
        d = await self._get("/fapi/v1/premiumIndex", [("symbol", symbol)], weight=1)
        return MarkPrice(self.venue, d["symbol"], D(d["markPrice"]), D(d["indexPrice"]), D(d["lastFundingRate"]),
                         int(d["nextFundingTime"]), int(d.get("time") or self.clock.now_ms()))

    async def funding_intervals(self) -> dict[str, int]:
        """Funding interval in ms of the symbols whose interval differs from the 8 h default (reference §4.3);
        a symbol not listed settles every 8 h."""
        if self.kind is MarketKind.SPOT:
            return {}
        rows = await self._get("/fapi/v1/fundingInfo", weight=1)
        return {r["symbol"]: int(r["fundingIntervalHours"]) * 3_600_000 for r in rows}

    async def funding_history(self, symbol: str, limit: int = 10) -> list[tuple[int, Decimal]]:
        """The last `limit` settled funding rates (time ms, rate per interval), oldest first."""
        if self.kind is MarketKind.SPOT:
            return []
        end = self.clock.now_ms()
        rows = await self._get("/fapi/v1/fundingRate", [("symbol", symbol), ("startTime", end - 30 * 86_400_000),
                                                        ("endTime", end), ("limit", 1000)], weight=1)
        return [(int(r["fundingTime"]), D(r["fundingRate"])) for r in rows][-limit:]

    async def funding_rates(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, Decimal, Decimal | None]]:
        """Settled funding (time ms, rate per interval, mark price if known) in [start_ms, end_ms), paging by
        time (for `ate data download --funding`)."""
        if self.kind is MarketKind.SPOT:
            raise VenueRejected(self.venue, "spot markets have no funding")
        out: list[tuple[int, Decimal, Decimal | None]] = []
        cursor = start_ms
        while cursor < end_ms:
            rows = await self._get("/fapi/v1/fundingRate", [("symbol", symbol), ("startTime", cursor),
                                                            ("endTime", end_ms - 1), ("limit", 1000)], weight=1)
            batch = [(int(r["fundingTime"]), D(r["fundingRate"]), D(r["markPrice"]) if r.get("markPrice") else None)
                     for r in rows if cursor <= int(r["fundingTime"]) < end_ms]
            out.extend(batch)
            if len(rows) < 1000 or not batch:
                break
            cursor = batch[-1][0] + 1
        return out

    # ---- orders ------------------------------------------------------------------------------------

    def _order_params(self, order: Order, instrument: Instrument) -> list[tuple[str, str]]:
        qty, price = instrument.prepare(order.side, order.qty, order.price, reduce_only=order.reduce_only)
        params = [("symbol", order.symbol), ("side", order.side.value)]
        if order.type is OrderType.MARKET:
            params += [("type", "MARKET"), ("quantity", fmt(qty))]
        elif order.tif is TimeInForce.POST_ONLY and self.kind is MarketKind.SPOT:
            params += [("type", "LIMIT_MAKER"), ("quantity", fmt(qty)), ("price", fmt(price))]
        else:
            tif = "GTX" if order.tif is TimeInForce.POST_ONLY else order.tif.value
            params += [("type", "LIMIT"), ("timeInForce", tif), ("quantity", fmt(qty)), ("price", fmt(price))]
        if order.reduce_only and self.kind is MarketKind.PERP:
            params.append(("reduceOnly", "true"))
        params += [("newClientOrderId", order.client_order_id), ("newOrderRespType", "RESULT")]
        return params

    async def place_order(self, order: Order, instrument: Instrument) -> CommandResult:
        """Raises FilterError before sending if the rounded order breaks a filter."""
        req = Request("POST", self.api.order, self._order_params(order, instrument), weight=1, orders=1,
                      signed=True, idempotent=False)
        return await self._command(req)

    async def cancel_order(self, symbol: str, client_order_id: str) -> CommandResult:
        req = Request("DELETE", self.api.order, [("symbol", symbol), ("origClientOrderId", client_order_id)],
                      weight=1, signed=True, idempotent=False)
        return await self._command(req)

    async def _command(self, req: Request) -> CommandResult:
        try:
            resp = await self.rest.request(req)
        except VenueUnknown as exc:
            return CommandResult(Outcome.UNKNOWN, None, exc.code, exc.venue_message)
        except VenueRejected as exc:
            return CommandResult(Outcome.REJECTED, None, exc.code, exc.venue_message)
        return CommandResult(Outcome.ACCEPTED, parse.parse_order(self.venue, resp.data))

    async def query_order(self, symbol: str, client_order_id: str, like: Order | None = None) -> Order | None:
        """`like` is unused: Binance keys orders by the full client order id, which cannot collide."""
        try:
            d = await self._get(self.api.order, [("symbol", symbol), ("origClientOrderId", client_order_id)],
                                weight=4 if self.kind is MarketKind.SPOT else 1, signed=True)
        except NotFound:
            return None
        return parse.parse_order(self.venue, d)

    async def resolve(self, order: Order) -> CommandResult:
        """Settle an UNKNOWN placement: wait out the recvWindow (a delayed copy can no longer be accepted),
        then ask for the client order id. Found → ACCEPTED; not found → REJECTED (nothing happened)."""
        sent = order.updated_ms or order.created_ms
        wait_ms = sent + self.recv_window_ms + ServerClock.AHEAD_LIMIT_MS - self.clock.now_ms()
        if wait_ms > 0:
            await self.clock.sleep(wait_ms / 1000)
        found = await self.query_order(order.symbol, order.client_order_id)
        if found is None:
            return CommandResult(Outcome.REJECTED, None, -2013, "order does not exist at the venue")
        return CommandResult(Outcome.ACCEPTED, found)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        params = [("symbol", symbol)] if symbol else []
        rows = await self._get(self.api.open_orders, params,
                               weight=(6 if self.kind is MarketKind.SPOT else 1) if symbol
                               else self.api.open_orders_all_weight, signed=True)
        return [parse.parse_order(self.venue, r) for r in rows]

    async def fills_since(self, symbol: str, cursor: str | None) -> tuple[list[Fill], str | None]:
        """Fills with trade id above ``cursor`` (a trade id), oldest first; returns the new cursor.

        Paged by trade id: a long downtime can leave more than a page of trades, and a fill left unread while
        the balances are compared would be booked twice (as a transfer, then as the fill). Without a cursor
        only the newest page is read. Client order ids are filled in from the venue's order records (one
        query per order seen)."""
        rows: list[dict] = []
        while True:
            params: list[tuple[str, Any]] = [("symbol", symbol), ("limit", TRADES_PAGE)]
            if cursor is not None:
                params.append(("fromId", int(cursor) + 1))
            page = await self._get(self.api.my_trades, params, weight=self.api.my_trades_weight, signed=True)
            rows += page
            if cursor is None or len(page) < TRADES_PAGE:
                break
            cursor = str(max(int(r["id"]) for r in page))
        coids: dict[str, str] = {}
        fills = []
        for r in sorted(rows, key=lambda r: int(r["id"])):
            oid = str(r["orderId"])
            if oid not in coids:
                coids[oid] = await self._coid(symbol, oid)
            fills.append(parse.parse_fill(self.venue, r, coids[oid]))
        return fills, (fills[-1].trade_id if fills else cursor)

    async def _coid(self, symbol: str, order_id: str) -> str:
        try:
            d = await self._get(self.api.order, [("symbol", symbol), ("orderId", order_id)],
                                weight=4 if self.kind is MarketKind.SPOT else 1, signed=True)
        except NotFound:
            return ""
        return d.get("clientOrderId", "")

    async def funding_since(self, cursor: int) -> tuple[list[FundingPayment], int]:
        """FUNDING_FEE income after ``cursor`` (ms), oldest first, with the new cursor."""
        if self.kind is MarketKind.SPOT:
            return [], cursor
        payments = [FundingPayment(r["symbol"], D(r["income"]), int(r["time"]))
                    for r in await self._income("FUNDING_FEE", cursor)]
        payments.sort(key=lambda p: (p.ts_ms, p.symbol))
        return payments, (payments[-1].ts_ms if payments else cursor)

    async def transfers_since(self, since_ms: int) -> list[TransferRecord] | None:
        """USD-M wallet transfers (income TRANSFER) after ``since_ms``; the spot wallet's deposit history is
        not read (None)."""
        if self.kind is MarketKind.SPOT:
            return None
        return [TransferRecord(r["asset"], D(r["income"]), int(r["time"]), str(r["tranId"]))
                for r in await self._income("TRANSFER", since_ms)]

    async def _income(self, kind: str, after_ms: int) -> list[dict]:
        """Income rows of ``kind`` after ``after_ms``, oldest first, paged by time; rows sharing the last
        page's time are read again on the next page and kept once by their transaction id."""
        seen: dict[str, dict] = {}
        start = after_ms + 1
        while True:
            rows = await self._get(f"{self.api.prefix}/income", [("incomeType", kind), ("startTime", start),
                                                                 ("limit", 1000)], weight=30, signed=True)
            fresh = [r for r in rows if str(r["tranId"]) not in seen]
            for r in fresh:
                seen[str(r["tranId"])] = r
            if len(rows) < 1000 or not fresh:
                break
            start = max(int(r["time"]) for r in rows)
        return sorted(seen.values(), key=lambda r: int(r["time"]))

    async def balances(self) -> dict[str, Balance]:
        if self.kind is MarketKind.SPOT:
            d = await self._get("/api/v3/account", [("omitZeroBalances", "true")], weight=20, signed=True)
            return {b["asset"]: Balance(b["asset"], D(b["free"]), D(b["locked"])) for b in d["balances"]}
        rows = await self._get("/fapi/v3/balance", weight=5, signed=True)
        return {r["asset"]: Balance(r["asset"], D(r["availableBalance"]), D(r["balance"]) - D(r["availableBalance"]))
                for r in rows}

    async def positions(self) -> list[Position]:
        if self.kind is MarketKind.SPOT:
            return []
        rows = await self._get("/fapi/v3/positionRisk", weight=5, signed=True)
        return [Position(self.venue, r["symbol"], D(r["positionAmt"]), D(r["entryPrice"]),
                         mark_price=D(r.get("markPrice", "0")))
                for r in rows if D(r["positionAmt"]) != 0]

    # ---- perp margin (USD-M) -----------------------------------------------------------------------

    def _need_perp(self, what: str) -> None:
        if self.kind is MarketKind.SPOT:
            raise VenueRejected(self.venue, f"spot markets have no {what}")

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        self._need_perp("leverage")
        resp = await self.rest.request(Request("POST", "/fapi/v1/leverage", [("symbol", symbol), ("leverage", leverage)],
                                               weight=1, signed=True))
        return int(resp.data["leverage"])

    async def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """-4046 "No need to change margin type" means it is already in force: success."""
        self._need_perp("margin type")
        try:
            await self.rest.request(Request("POST", "/fapi/v1/marginType",
                                            [("symbol", symbol), ("marginType", margin_type)], weight=1, signed=True))
        except VenueRejected as exc:
            if exc.code != -4046:
                raise

    async def margin(self, symbol: str) -> MarginReport:
        """Cross margin: the account's margin balance and maintenance (``/fapi/v3/account``), the position's
        liquidation price (``positionRisk``; "0" = none)."""
        self._need_perp("margin")
        acct = await self._get("/fapi/v3/account", weight=5, signed=True)
        rows = await self._get("/fapi/v3/positionRisk", [("symbol", symbol)], weight=5, signed=True)
        row = next((r for r in rows if r.get("symbol") == symbol), None)
        liq = D(row["liquidationPrice"]) if row is not None else Decimal(0)
        return MarginReport(symbol, D(acct["totalMarginBalance"]), D(acct["totalMaintMargin"]),
                            liq if liq > 0 else None, D(row["positionAmt"]) if row is not None else Decimal(0))

    async def account_permissions(self) -> dict[str, Any]:
        """Read-only key check for ``ate check``: what the key may do (spot) or can trade (USD-M)."""
        if self.kind is MarketKind.SPOT:
            d = await self._get("/api/v3/account", [("omitZeroBalances", "true")], weight=20, signed=True)
            return {"canTrade": d.get("canTrade"), "canWithdraw": d.get("canWithdraw"),
                    "permissions": d.get("permissions", [])}
        d = await self._get("/fapi/v3/account", weight=5, signed=True)
        return {"canTrade": d.get("canTrade", True), "canWithdraw": d.get("canWithdraw")}

    async def api_restrictions(self) -> dict[str, Any]:
        """What the API key itself may do (``GET /sapi/v1/account/apiRestrictions``, on the spot host):
        ``enableWithdrawals``, ``ipRestrict``, the transfer flags (reference §4.1)."""
        return await self._get("/sapi/v1/account/apiRestrictions", weight=1, signed=True)

    # ---- user data stream helpers ------------------------------------------------------------------

    async def listen_key(self) -> str:
        resp = await self.rest.request(Request("POST", "/fapi/v1/listenKey", weight=1, keyed=True))
        return resp.data["listenKey"]

    async def keepalive_listen_key(self) -> None:
        await self.rest.request(Request("PUT", "/fapi/v1/listenKey", weight=1, keyed=True))

    def user_subscribe_frame(self, request_id: int) -> dict:
        """``userDataStream.subscribe.signature`` request for the spot WS API (reference §5.1)."""
        creds = self.dialect._need_creds()
        params: dict[str, Any] = {"apiKey": creds.api_key,
                                  "timestamp": self.server_clock.stamp(self.recv_window_ms)}
        params["signature"] = ws_api_signature(creds.secret, params)
        return {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}

    # ---- streams -----------------------------------------------------------------------------------

    def market_stream(self, symbols: Sequence[str], sink: MarketSink, *, book: bool = True, candles: bool = True,
                      trades: bool = False, marks: bool = False, depth: bool = False) -> BinanceMarketStream:
        return BinanceMarketStream(self, symbols, sink, book=book, candles=candles, trades=trades, marks=marks,
                                   depth=depth, **self.ws_options)

    def user_stream(self, sink: UserSink) -> BinanceUserStream:
        return BinanceUserStream(self, sink, **self.ws_options)


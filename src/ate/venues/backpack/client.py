"""Backpack spot and perpetuals client (REST + WebSocket). One class serves both market types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import msgspec

from ate.data.candles import INTERVAL_MS, Candle
from ate.model import (
    Balance,
    Fill,
    Instrument,
    Order,
    OrderType,
    Position,
    Side,
    TimeInForce,
    backpack_client_id,
    fmt,
)
from ate.model import to_decimal as D
from ate.model.market import BookTicker, DepthUpdate, MarkPrice
from ate.venues.backpack import parse
from ate.venues.backpack.signing import instruction_for, public_key_from_seed, sign, signing_string
from ate.venues.backpack.streams import BackpackMarketStream, BackpackUserStream
from ate.venues.base import (
    CommandResult,
    FundingPayment,
    MarginReport,
    MarketSink,
    Outcome,
    TransferRecord,
    UserSink,
)
from ate.venues.clock import Clock, ServerClock, SystemClock
from ate.venues.credentials import Credentials
from ate.venues.errors import NotFound, VenueError, VenueRejected, VenueUnknown
from ate.venues.lifecycle import ClockSyncedClient
from ate.venues.ratelimit import RateLimiter, backpack_history_limiter, backpack_limiter
from ate.venues.rest import Prepared, Request, RestTransport

UNKNOWN_CODES = {"TIMEOUT", "SERVER_ERROR"}
HISTORY_PAGE = 1000
MATCH_SLACK_MS = 1000  # clock offset and latency allowed around the signing window when matching an order


class AmbiguousOrder(VenueUnknown):
    """More than one venue order matches what was sent: taking either could book another order's outcome."""


def pick_order(candidates: Sequence[Order], like: Order | None, lo_ms: int | None = None,
               hi_ms: int | None = None) -> Order | None:
    """The venue order among `candidates` (all carrying the same 32-bit clientId) that is `like`: the same
    symbol, side, quantity (and limit price), created in [lo_ms, hi_ms]. None when nothing matches; raises
    AmbiguousOrder when several do, because a hash collision must never hand one order another's outcome.
    Without `like`, the only candidate (or AmbiguousOrder when there are several)."""
    if like is not None:
        candidates = [o for o in candidates if o.symbol == like.symbol and o.side is like.side and o.qty == like.qty
                      and (like.price is None or o.price is None or o.price == like.price)
                      and (lo_ms is None or not o.created_ms or lo_ms <= o.created_ms <= hi_ms)]
    if len(candidates) > 1:
        raise AmbiguousOrder("backpack", f"{len(candidates)} venue orders {[o.venue_order_id for o in candidates]} "
                             f"match clientId of {candidates[0].client_order_id}", code="AMBIGUOUS")
    return candidates[0] if candidates else None


@dataclass(frozen=True, slots=True)
class BackpackUrls:
    rest: str
    ws: str


class BackpackDialect:
    venue = "backpack"

    def __init__(self, creds: Credentials | None, server_clock: ServerClock, window_ms: int) -> None:
        self.creds = creds
        self.server_clock = server_clock
        self.window_ms = window_ms
        self.public_key = public_key_from_seed(creds.secret) if creds else None

    def signature_headers(self, instruction: str, params: Any) -> dict[str, str]:
        if self.creds is None:
            raise VenueRejected(self.venue, "API credentials are required for this request")
        ts = self.server_clock.stamp(self.window_ms)
        message = signing_string(instruction, params, ts, self.window_ms)
        return {"X-API-Key": self.creds.api_key, "X-Signature": sign(self.creds.secret, message),
                "X-Timestamp": str(ts), "X-Window": str(self.window_ms)}

    def prepare(self, req: Request) -> Prepared:
        params = req.params
        headers: dict[str, str] = {}
        if req.signed:
            instruction = instruction_for(req.method, req.path)
            if instruction is None:
                raise ValueError(f"no signing instruction for {req.method} {req.path}")
            headers.update(self.signature_headers(instruction, params))
        if req.method == "GET":
            # Booleans as true/false, exactly as they were signed.
            query = urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in (params or {}).items()})
            return Prepared(f"{req.path}?{query}" if query else req.path, None, headers)
        headers["Content-Type"] = "application/json; charset=utf-8"
        body = msgspec.json.encode(params).decode() if params is not None else None
        return Prepared(req.path, body, headers)

    def error(self, status: int, data: Any) -> VenueError:
        code = data.get("code") if isinstance(data, dict) else None
        msg = data.get("message", "") if isinstance(data, dict) else str(data or "")[:200]
        if status >= 500 or code in UNKNOWN_CODES:
            return VenueUnknown(self.venue, msg or "server error", status=status, code=code)
        if status == 404 or code == "RESOURCE_NOT_FOUND":
            return NotFound(self.venue, msg or "not found", status=status, code=code)
        return VenueRejected(self.venue, msg, status=status, code=code)

    def retry_after_s(self, status: int, headers: Mapping[str, str], strikes: int) -> float:
        value = headers.get("Retry-After", "")
        # No Retry-After is documented: back off exponentially from 1 s (reference §8.4).
        return float(value) if value.isdigit() else min(60.0, 2.0 ** (strikes - 1))


class BackpackClient(ClockSyncedClient):
    def __init__(self, urls: BackpackUrls, creds: Credentials | None = None, *, clock: Clock | None = None,
                 session: aiohttp.ClientSession | None = None, window_ms: int = 5000,
                 limiter: RateLimiter | None = None, timeout_s: float = 10.0,
                 clock_sync_every_s: float = 600.0, ws_options: dict | None = None,
                 pause_clock: Clock | None = None) -> None:
        """`pause_clock`: what 429 pauses are measured on (the venue's wall time; default `clock`)."""
        self.ws_options = ws_options or {}  # e.g. stale_after_s for the streams
        self.venue = "backpack"
        self.urls = urls
        self.creds = creds
        self.clock = clock or SystemClock()
        self.session = session
        self.server_clock = ServerClock(self.clock, self.venue)
        self.window_ms = window_ms
        self.recv_window_ms = window_ms
        self.limiter = limiter or backpack_limiter(self.clock, pause_clock=pause_clock)
        self.history_limiter = backpack_history_limiter(self.clock, pause_clock=pause_clock)
        self.dialect = BackpackDialect(creds, self.server_clock, window_ms)
        self.rest = RestTransport(self.dialect, urls.rest, self.limiter, self.clock, session=session,
                                  timeout_s=timeout_s)
        self.clock_sync_every_s = clock_sync_every_s
        self._coids: dict[int, str] = {}
        self._sent: dict[str, tuple[Decimal, Decimal | None]] = {}  # coid -> (qty, price) as rounded and sent

    # ---- lifecycle and time ------------------------------------------------------------------------

    async def _call(self, method: str, path: str, params: Any = None, *, signed: bool = False,
                    history: bool = False, idempotent: bool = True) -> Any:
        req = Request(method, path, params, signed=signed, idempotent=idempotent,
                      orders=1 if method == "POST" and path.endswith("/order") else 0,
                      extra_limiter=self.history_limiter if history else None)
        return (await self.rest.request(req)).data

    async def server_time_ms(self) -> int:
        return int(await self._call("GET", "/api/v1/time"))

    async def sync_clock(self) -> int:
        resp = await self.rest.request(Request("GET", "/api/v1/time"))
        return self.server_clock.record(int(resp.data), resp.sent_ms, self.clock.now_ms())

    # ---- client ids --------------------------------------------------------------------------------

    def client_id(self, client_order_id: str) -> int:
        """The uint32 Backpack clientId for an ate client order id (remembered for the way back).

        An order this client did not place (another process, the operator) comes back from the venue with
        its raw clientId as its id (`coid_for`); that id maps back to itself, so it can be cancelled."""
        if client_order_id.isdigit() and int(client_order_id) < 2**32:
            return int(client_order_id)
        cid = backpack_client_id(client_order_id)
        self._coids[cid] = client_order_id
        return cid

    def coid_for(self, client_id: int) -> str:
        return self._coids.get(client_id, str(client_id))

    # ---- market data -------------------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        rows = await self._call("GET", "/api/v1/markets")
        out = [i for i in (parse.parse_instrument(self.venue, m) for m in rows
                           if m.get("orderBookState", "Open") != "Closed") if i is not None]
        return out

    async def funding_intervals(self) -> dict[str, int]:
        """Funding interval in ms of every perp market, as each market states it (reference §8.1)."""
        rows = await self._call("GET", "/api/v1/markets")
        return {m["symbol"]: int(m["fundingInterval"]) for m in rows if m.get("fundingInterval")}

    async def funding_history(self, symbol: str, limit: int = 10) -> list[tuple[int, Decimal]]:
        """The last `limit` settled funding rates (interval end ms, rate), oldest first."""
        rows = await self._call("GET", "/api/v1/fundingRates", {"symbol": symbol, "limit": limit})
        return sorted((parse.iso_ms(r["intervalEndTimestamp"]), D(r["fundingRate"])) for r in rows)

    async def depth(self, symbol: str, limit: int = 100) -> DepthUpdate:
        d = await self._call("GET", "/api/v1/depth", {"symbol": symbol, "limit": limit})
        bids = [(D(p), D(q)) for p, q in reversed(d["bids"])]  # venue lists bids ascending
        asks = [(D(p), D(q)) for p, q in d["asks"]]
        uid = int(d["lastUpdateId"])
        return DepthUpdate(self.venue, symbol, bids, asks, uid, uid, None, int(d.get("timestamp", 0)) // 1000,
                           snapshot=True)

    async def book_ticker(self, symbol: str) -> BookTicker:
        d = await self.depth(symbol, 5)
        if not d.bids or not d.asks:
            raise VenueRejected(self.venue, f"{symbol}: empty book")
        (bid, bq), (ask, aq) = d.bids[0], d.asks[0]
        return BookTicker(self.venue, symbol, bid, bq, ask, aq, d.last_id, d.ts_ms or self.clock.now_ms())

    async def klines(self, symbol: str, interval: str, start_ms: int, end_ms: int | None = None) -> list[Candle]:
        """Candles with open time in [start_ms, end_ms); the venue takes seconds."""
        step = INTERVAL_MS[interval]
        end = end_ms if end_ms is not None else self.clock.now_ms()
        out: list[Candle] = []
        cursor = start_ms
        while cursor < end:
            rows = await self._call("GET", "/api/v1/klines", {"symbol": symbol, "interval": interval,
                                                              "startTime": cursor // 1000,
                                                              "endTime": -(-end // 1000)}, history=True)
            batch = [c for c in (parse.parse_kline(r, step) for r in rows) if cursor <= c.open_ms < end]
            out.extend(batch)
            if not batch:
                break
            cursor = batch[-1].open_ms + step
        return out

    async def mark_price(self, symbol: str) -> MarkPrice:
        rows = await self._call("GET", "/api/v1/markPrices", {"symbol": symbol})
        d = rows[0] if isinstance(rows, list) else rows
        return MarkPrice(self.venue, d["symbol"], D(d["markPrice"]), D(d["indexPrice"]), D(d["fundingRate"]),
                         int(d["nextFundingTimestamp"]), self.clock.now_ms())

    # ---- orders ------------------------------------------------------------------------------------

    def order_body(self, order: Order, instrument: Instrument) -> dict[str, Any]:
        qty, price = instrument.prepare(order.side, order.qty, order.price, reduce_only=order.reduce_only)
        if len(self._sent) > 10_000:  # only orders still being resolved need it; the oldest go first
            del self._sent[next(iter(self._sent))]
        self._sent[order.client_order_id] = (qty, price)
        body: dict[str, Any] = {"symbol": order.symbol, "side": "Bid" if order.side is Side.BUY else "Ask",
                                "orderType": "Market" if order.type is OrderType.MARKET else "Limit",
                                "quantity": fmt(qty), "clientId": self.client_id(order.client_order_id)}
        if order.type is OrderType.LIMIT:
            body["price"] = fmt(price)
            if order.tif is TimeInForce.POST_ONLY:
                body["postOnly"] = True
            else:
                body["timeInForce"] = order.tif.value
        if order.reduce_only:
            body["reduceOnly"] = True
        return body

    async def place_order(self, order: Order, instrument: Instrument) -> CommandResult:
        """Raises FilterError before sending if the rounded order breaks a filter."""
        return await self._command("POST", "/api/v1/order", self.order_body(order, instrument))

    async def cancel_order(self, symbol: str, client_order_id: str) -> CommandResult:
        return await self._command("DELETE", "/api/v1/order",
                                   {"symbol": symbol, "clientId": self.client_id(client_order_id)})

    async def _command(self, method: str, path: str, body: dict) -> CommandResult:
        try:
            resp = await self.rest.request(Request(method, path, body, signed=True, idempotent=False,
                                                   orders=1 if method == "POST" else 0))
        except VenueUnknown as exc:
            return CommandResult(Outcome.UNKNOWN, None, exc.code, exc.venue_message)
        except VenueRejected as exc:
            return CommandResult(Outcome.REJECTED, None, exc.code, exc.venue_message)
        if resp.status == 202 or not isinstance(resp.data, dict):
            return CommandResult(Outcome.ACCEPTED, None, None, "accepted, not yet executed")
        return CommandResult(Outcome.ACCEPTED, parse.parse_order(self.venue, resp.data, self.coid_for))

    async def query_order(self, symbol: str, client_order_id: str, like: Order | None = None) -> Order | None:
        """Resting orders come from ``/api/v1/order`` (404 otherwise); finished ones from order history.

        The clientId is a 32-bit hash, so after enough orders an older one can carry the same number. Every
        order with it is collected and `pick_order` keeps the one that is `like` (the order as written
        ahead: side, quantity, price, sent within the signing window); several → AmbiguousOrder."""
        cid = self.client_id(client_order_id)
        lo = hi = None
        if like is not None:
            qty, price = self._sent.get(client_order_id, (like.qty, like.price))
            like = replace(like, qty=qty, price=price)  # the venue echoes what was sent, on its grid
            sent = like.created_ms or like.updated_ms  # written ahead just before it was sent
            offset_ms = self.server_clock.offset_ms or 0
            lo, hi = sent + offset_ms - MATCH_SLACK_MS, sent + offset_ms + self.window_ms + MATCH_SLACK_MS
        try:
            d = await self._call("GET", "/api/v1/order", {"symbol": symbol, "clientId": cid}, signed=True)
            found = pick_order([parse.parse_order(self.venue, d, self.coid_for)], like, lo, hi)
            if found is not None:
                return found
        except NotFound:
            pass
        candidates: list[Order] = []
        offset = 0
        while True:
            rows = await self._call("GET", "/wapi/v1/history/orders",
                                    {"symbol": symbol, "limit": HISTORY_PAGE, "offset": offset}, signed=True)
            candidates += [parse.parse_order(self.venue, r, self.coid_for) for r in rows if r.get("clientId") == cid]
            if len(rows) < HISTORY_PAGE:
                return pick_order(candidates, like, lo, hi)
            offset += HISTORY_PAGE

    async def resolve(self, order: Order) -> CommandResult:
        """Settle an UNKNOWN placement: wait out the signing window (a delayed copy is then refused),
        then look the client id up. Found → ACCEPTED; not found → REJECTED (nothing happened)."""
        sent = order.updated_ms or order.created_ms
        wait_ms = sent + self.window_ms - self.clock.now_ms()
        if wait_ms > 0:
            await self.clock.sleep(wait_ms / 1000)
        try:
            found = await self.query_order(order.symbol, order.client_order_id, like=order)
        except AmbiguousOrder as exc:
            return CommandResult(Outcome.UNKNOWN, None, exc.code, exc.venue_message)
        if found is None:
            return CommandResult(Outcome.REJECTED, None, "RESOURCE_NOT_FOUND", "order does not exist at the venue")
        return CommandResult(Outcome.ACCEPTED, found)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        rows = await self._call("GET", "/api/v1/orders", {"symbol": symbol} if symbol else None, signed=True)
        return [parse.parse_order(self.venue, r, self.coid_for) for r in rows]

    async def fills_since(self, symbol: str, cursor: str | None) -> tuple[list[Fill], str | None]:
        """Fills after ``cursor`` ("<ts_ms>:<tradeId>"), oldest first, with the new cursor."""
        after = (0, -1)
        params: dict[str, Any] = {"symbol": symbol, "limit": HISTORY_PAGE}
        if cursor:
            ts, tid = cursor.split(":")
            after = (int(ts), int(tid))
            params["from"] = int(ts)
        rows: list[dict] = []
        offset = 0
        while True:
            page = await self._call("GET", "/wapi/v1/history/fills", {**params, "offset": offset}, signed=True)
            rows += page
            if len(page) < HISTORY_PAGE:
                break
            offset += HISTORY_PAGE
        fills = sorted((parse.parse_fill(self.venue, r, self.coid_for) for r in rows),
                       key=lambda f: (f.ts_ms, int(f.trade_id)))
        fills = [f for f in fills if (f.ts_ms, int(f.trade_id)) > after]
        return fills, (f"{fills[-1].ts_ms}:{fills[-1].trade_id}" if fills else cursor)

    async def funding_since(self, cursor: int) -> tuple[list[FundingPayment], int]:
        """Funding payments settled after ``cursor`` (ms); the history has no time filter, so it is paged
        through whole."""
        rows: list[dict] = []
        offset = 0
        while True:
            page = await self._call("GET", "/wapi/v1/history/funding", {"limit": HISTORY_PAGE, "offset": offset},
                                    signed=True)
            rows += page
            if len(page) < HISTORY_PAGE:
                break
            offset += HISTORY_PAGE
        payments = sorted((FundingPayment(r["symbol"], D(r["quantity"]), parse.iso_ms(r["intervalEndTimestamp"]))
                           for r in rows), key=lambda p: (p.ts_ms, p.symbol))
        payments = [p for p in payments if p.ts_ms > cursor]
        return payments, (payments[-1].ts_ms if payments else cursor)

    async def transfers_since(self, since_ms: int) -> list[TransferRecord] | None:
        return None  # the deposit and withdrawal histories are not read yet

    async def balances(self) -> dict[str, Balance]:
        d = await self._call("GET", "/api/v1/capital", signed=True)
        return {a: Balance(a, D(v["available"]), D(v["locked"])) for a, v in d.items()}

    async def positions(self) -> list[Position]:
        rows = await self._call("GET", "/api/v1/position", signed=True)
        return [Position(self.venue, r["symbol"], D(r["netQuantity"]), D(r["entryPrice"]),
                         mark_price=D(r.get("markPrice") or "0"))
                for r in rows if D(r["netQuantity"]) != 0]

    # ---- perp margin ---------------------------------------------------------------------------------

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        """Backpack sets leverage per account (``leverageLimit``), for every perp market at once."""
        await self._call("PATCH", "/api/v1/account", {"leverageLimit": str(leverage)}, signed=True,
                         idempotent=False)
        d = await self._call("GET", "/api/v1/account", signed=True)
        return int(D(d["leverageLimit"]))

    async def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """Backpack margins every perp position cross, against the whole account: only CROSSED exists."""
        if margin_type != "CROSSED":
            raise VenueRejected(self.venue, f"margin type {margin_type} does not exist on Backpack (cross only)")

    async def margin(self, symbol: str) -> MarginReport:
        """Net equity of the account against Σ|notional|·mmf of its positions; the position's estimated
        liquidation price."""
        coll = await self._call("GET", "/api/v1/capital/collateral", signed=True)
        rows = await self._call("GET", "/api/v1/position", signed=True)
        maint = sum((D(r["netExposureNotional"]) * D(r["mmf"]) for r in rows), Decimal(0))
        row = next((r for r in rows if r["symbol"] == symbol), None)
        liq = D(row.get("estLiquidationPrice") or "0") if row is not None else Decimal(0)
        return MarginReport(symbol, D(coll["netEquity"]), maint, liq if liq > 0 else None,
                            D(row["netQuantity"]) if row is not None else Decimal(0))

    async def account_permissions(self) -> dict[str, Any]:
        """Read-only key check for ``ate check``."""
        return await self._call("GET", "/api/v1/account", signed=True)

    # ---- streams -----------------------------------------------------------------------------------

    def subscribe_signature(self) -> list[str]:
        """The 4-element ``signature`` array of a private SUBSCRIBE (reference §8.3)."""
        headers = self.dialect.signature_headers("subscribe", None)
        return [headers["X-API-Key"], headers["X-Signature"], headers["X-Timestamp"], headers["X-Window"]]

    def market_stream(self, symbols: Sequence[str], sink: MarketSink, *, book: bool = True, candles: bool = True,
                      trades: bool = False, marks: bool = False, depth: bool = False) -> BackpackMarketStream:
        return BackpackMarketStream(self, symbols, sink, book=book, candles=candles, trades=trades, marks=marks,
                                    depth=depth, **self.ws_options)

    def user_stream(self, sink: UserSink) -> BackpackUserStream:
        return BackpackUserStream(self, sink, **self.ws_options)

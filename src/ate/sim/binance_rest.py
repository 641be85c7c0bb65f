"""Binance Spot (``/api/v3``) and USD-M (``/fapi/v1|v2|v3``) REST on top of the matching core.

Every request goes through one pipeline: rate-limit admission (418/429), API key, HMAC signature and
timing for SIGNED routes, the handler, then weight accounting and ``X-MBX-USED-WEIGHT-1M`` on every
response (errors included). Weights follow exchange-protocols.md §4; successful orders and cancels
cost 0 weight and count 1 on the order limits (``X-MBX-ORDER-COUNT-*`` on accepted orders).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from aiohttp import web

from ate.model import OrderType, Side, TimeInForce
from ate.sim import binance_wire as wire
from ate.sim import klines
from ate.sim.binance_auth import (
    ApiError,
    BinanceKeys,
    bad_param,
    check_timing,
    merged_params,
    verify_signature,
)
from ate.sim.binance_limits import RateLimiter
from ate.sim.core import Market, OrderRejected, SimOrder, TransferEvent
from ate.sim.faults import StreamGate, ordered_reply
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM
from ate.sim.runner import SimContext

_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
LISTEN_KEY_TTL_MS = 3_600_000


@dataclass
class Req:
    params: dict[str, str]
    account: str | None
    now: int
    ip: str
    api_key: str | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[Req], object]
    weight: int | Callable[[dict[str, str]], int]
    security: str = "NONE"  # NONE, KEY (USER_STREAM), SIGNED
    order: bool = False  # a new order: 0 weight on success, counts on the order limits
    free_on_success: bool = False  # cancels: 0 weight on success (spot)


class ListenKeys:
    """USD-M listenKeys: one per account, 60 min from creation or the last keep-alive (sim time)."""

    def __init__(self) -> None:
        self.by_key: dict[str, tuple[str, int]] = {}

    def create(self, account: str, now: int) -> str:
        for key, (acct, _) in self.by_key.items():
            if acct == account:
                self.by_key[key] = (acct, now + LISTEN_KEY_TTL_MS)
                return key
        key = secrets.token_urlsafe(48)[:64]
        self.by_key[key] = (account, now + LISTEN_KEY_TTL_MS)
        return key

    def keepalive(self, account: str, now: int) -> None:
        for key, (acct, _) in list(self.by_key.items()):
            if acct == account:
                self.by_key[key] = (acct, now + LISTEN_KEY_TTL_MS)
                return
        raise ApiError(400, -1125, "This listenKey does not exist.")

    def delete(self, account: str) -> None:
        for key, (acct, _) in list(self.by_key.items()):
            if acct == account:
                del self.by_key[key]

    def account(self, key: str, now: int) -> str | None:
        entry = self.by_key.get(key)
        return entry[0] if entry and entry[1] > now else None

    def expire(self, now: int) -> list[str]:
        gone = [k for k, (_, exp) in self.by_key.items() if exp <= now]
        for k in gone:
            del self.by_key[k]
        return gone


# --------------------------------------------------------------------------------------- parsing
def _req(p: dict[str, str], name: str) -> str:
    v = p.get(name)
    if v is None or v == "":
        raise bad_param(name)
    return v


def _dec(p: dict[str, str], name: str, required: bool = True) -> Decimal | None:
    v = p.get(name)
    if v is None or v == "":
        if required:
            raise bad_param(name)
        return None
    if not _DECIMAL.match(v):
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                   "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    try:
        return Decimal(v)
    except InvalidOperation:
        raise bad_param(name) from None


def _int(p: dict[str, str], name: str, default: int | None = None) -> int | None:
    v = p.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]+$'.") \
            from None


def _window(rows: list, time_of: Callable[[object], int], p: dict[str, str], default_limit: int,
            max_limit: int) -> list:
    """History rule: no range → newest up to limit; startTime → oldest from it; endTime only → newest."""
    limit = min(_int(p, "limit", default_limit) or default_limit, max_limit)
    start, end = _int(p, "startTime"), _int(p, "endTime")
    rows = [r for r in rows if (start is None or time_of(r) >= start) and (end is None or time_of(r) <= end)]
    return rows[:limit] if start is not None else rows[-limit:]


def _immediate(p: dict[str, str]) -> bool:
    """A new order that executes at once or never (market, IOC, FOK): its fills race its reply."""
    return p.get("type", "").upper() == "MARKET" or p.get("timeInForce", "").upper() in ("IOC", "FOK")


def depth_weight(spot: bool, p: dict[str, str]) -> int:
    limit = _int(p, "limit", 100 if spot else 500) or 100
    if spot:
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


class BinanceRest:
    """One product's REST surface; ``spot`` selects Spot or USD-M behaviour."""

    def __init__(self, ctx: SimContext, spot: bool, limiter: RateLimiter, keys: BinanceKeys,
                 listen_keys: ListenKeys, user_streams: StreamGate | None = None) -> None:
        self.ctx = ctx
        self.user_streams = user_streams  # the product's user-data streams: ordered IOC replies
        self.core = ctx.core
        self.spot = spot
        self.venue = BINANCE_SPOT if spot else BINANCE_USDM
        self.limiter = limiter
        self.keys = keys
        self.listen_keys = listen_keys

    def now(self) -> int:
        return self.ctx.server_time_ms()

    # ------------------------------------------------------------------ pipeline
    def routes(self) -> list[web.RouteDef]:
        return [web.route(r.method, r.path, self._bind(r)) for r in self._table()]

    def _bind(self, route: Route):
        async def handler(request: web.Request) -> web.Response:
            return await self._dispatch(request, route)
        return handler

    async def _dispatch(self, request: web.Request, route: Route) -> web.Response:
        held: list[str] = []  # accounts whose user-data frames this request holds back (IOC ordering)
        try:
            return await self._answer(request, route, held)
        finally:
            for account in held:
                self.user_streams.release(account)  # type: ignore[union-attr]

    async def _answer(self, request: web.Request, route: Route, held: list[str]) -> web.Response:
        now = self.now()
        ip = request.remote or "?"
        headers: dict[str, str] = {}
        charged = 0
        status = 200
        fault = ordering = None
        faults = self.ctx.faults
        account = None
        try:
            body = await request.text() if request.method != "GET" else ""
            raw_query = request.rel_url.raw_query_string
            params = merged_params(raw_query, body)
            if faults.maintenance(self.venue):
                raise ApiError(503, -1016, "Service Unavailable.")
            retry_after = faults.rate_limited(self.venue)
            if retry_after is not None:
                lim = self.limiter.weight_limit
                raise ApiError(429, -1003, f"Too much request weight used; current limit is {lim.limit} request "
                                           f"weight per {lim.num} MINUTE. Please use WebSocket Streams for live "
                                           "updates to avoid polling the API.", {"Retry-After": str(retry_after)})
            charged = route.weight(params) if callable(route.weight) else route.weight
            self.limiter.admit(ip, charged, now)
            fault = faults.http_fault(self.venue)
            account = api_key = None
            if route.security != "NONE":
                api_key = request.headers.get("X-MBX-APIKEY")
                cred = self.keys.lookup(api_key)
                account = cred.account
                if route.security == "SIGNED":
                    verify_signature(cred.secret, raw_query, body)
                    check_timing(params, now)
            if route.order:
                assert account is not None
                headers.update(self.limiter.count_order(account, now))
                if faults.reject_order(self.venue):
                    raise ApiError(400, -2010, "New order rejected.")
                if self.user_streams is not None and _immediate(params):
                    ordering = faults.ioc_order(self.venue)
                    if ordering == "rest_first":
                        self.user_streams.hold(account)
                        held.append(account)
            result = route.handler(Req(params, account, now, ip, api_key))
            if route.order or route.free_on_success:
                charged = 0
        except ApiError as exc:
            status, result = exc.status, {"code": exc.code, "msg": exc.msg}
            headers = {k: v for k, v in headers.items() if not k.startswith("X-MBX-ORDER-COUNT")}
            headers.update(exc.headers)
            if exc.status in (418, 429, 503):
                charged = 0
        except OrderRejected as exc:
            err = wire.reject_error(exc, self.core.markets.get((self.venue, params.get("symbol", ""))), self.spot)
            status, result = err.status, {"code": err.code, "msg": err.msg}
            headers = {k: v for k, v in headers.items() if not k.startswith("X-MBX-ORDER-COUNT")}
        used = self.limiter.charge(ip, charged, now)
        headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        headers["X-MBX-USED-WEIGHT"] = str(used)
        await faults.delay()
        if fault == "timeout":
            await asyncio.sleep(faults.spec.timeout_ms / 1000)
            status, result = 503, {"code": -1007, "msg": "Timeout waiting for response from backend server. "
                                                        "Send status unknown; execution status unknown."}
        elif fault == "5xx":
            status, result = 503, {"code": -1000, "msg": "Unknown error, please check your request or try again "
                                                        "later."}
        response = web.json_response(result, status=status, headers=headers,
                                     dumps=lambda o: json.dumps(o, separators=(",", ":")))
        if ordering is not None and account is not None and self.user_streams is not None:
            await ordered_reply(ordering, self.user_streams, account, request, response, faults.ioc_gap_s)
        return response

    # ------------------------------------------------------------------ helpers
    def _market(self, p: dict[str, str], required: bool = True) -> Market | None:
        sym = p.get("symbol")
        if not sym:
            if required:
                raise bad_param("symbol")
            return None
        m = self.core.markets.get((self.venue, sym.upper()))
        if m is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return m

    def _markets(self, p: dict[str, str]) -> list[Market]:
        if p.get("symbols"):
            try:
                names = json.loads(p["symbols"])
            except ValueError:
                raise bad_param("symbols") from None
            out = []
            for n in names:
                m = self.core.markets.get((self.venue, str(n)))
                if m is None:
                    raise ApiError(400, -1121, "Invalid symbol.")
                out.append(m)
            return out
        m = self._market(p, required=False)
        return [m] if m else self.core.markets_of(self.venue)

    def _order(self, o: SimOrder) -> dict:
        return wire.spot_order(o) if self.spot else wire.usdm_order(o)

    def _find(self, r: Req, cancel: bool) -> SimOrder:
        m = self._market(r.params)
        oid, coid = _int(r.params, "orderId"), r.params.get("origClientOrderId") or None
        if oid is None and coid is None:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were "
                                       "empty/null!")
        try:
            if cancel:
                return self.core.cancel_order(r.account, self.venue, m.symbol, oid, coid)
            return self.core.get_order(r.account, self.venue, m.symbol, oid, coid)
        except OrderRejected as exc:
            raise wire.reject_error(exc, m, self.spot, cancel=cancel) from None

    # ------------------------------------------------------------------ public handlers
    def ping(self, r: Req) -> dict:
        return {}

    def time(self, r: Req) -> dict:
        return {"serverTime": r.now}

    def exchange_info(self, r: Req) -> dict:
        markets = self._markets(r.params)
        out = {"timezone": "UTC", "serverTime": r.now, "rateLimits": [x.as_json() for x in self.limiter.limits],
               "exchangeFilters": [], "symbols": [wire.exchange_symbol(m, self.spot) for m in markets]}
        if not self.spot:
            quotes = sorted({m.instrument.quote for m in markets})
            out["futuresType"] = "U_MARGINED"
            out["assets"] = [{"asset": q, "marginAvailable": True, "autoAssetExchange": "-10000"} for q in quotes]
        return out

    def depth(self, r: Req) -> dict:
        m = self._market(r.params)
        limit = min(_int(r.params, "limit", 100 if self.spot else 500) or 100, 5000 if self.spot else 1000)
        bids, asks = wire.depth_levels(m, limit, self.spot)
        out: dict = {"lastUpdateId": m.update_id}
        if not self.spot:
            out.update({"E": r.now, "T": m.ts_ms})
        out.update({"bids": bids, "asks": asks})
        return out

    def book_ticker(self, r: Req) -> object:
        rows = [wire.book_ticker(m, self.spot, False, r.now) for m in self._markets(r.params)]
        return rows[0] if r.params.get("symbol") else rows

    def ticker_price(self, r: Req) -> object:
        rows = [{"symbol": m.symbol, "price": wire.fnum(m.last_price, self.spot)} | ({} if self.spot else
                {"time": r.now}) for m in self._markets(r.params)]
        return rows[0] if r.params.get("symbol") else rows

    def ticker_24h(self, r: Req) -> object:
        rows = [wire.ticker_24h(m, self.spot, self.ctx.clock.now_ms()) for m in self._markets(r.params)]
        return rows[0] if r.params.get("symbol") else rows

    def klines(self, r: Req) -> list:
        m = self._market(r.params)
        interval = _req(r.params, "interval")
        if interval not in (klines.BINANCE_SPOT if self.spot else klines.BINANCE_USDM):
            raise ApiError(400, -1120, "Invalid interval.")
        # [ate choice] closed rows only: the venue also returns the forming one, which the engine's
        # warm-up would take for a closed candle
        rows = klines.klines(m.candles, interval, _int(r.params, "startTime"), _int(r.params, "endTime"),
                             closed_by=self.ctx.clock.now_ms())
        rows = _window(rows, lambda c: c.open_ms, r.params, 500, 1000 if self.spot else 1500)
        return [wire.kline_row(m, c, self.spot) for c in rows]

    def trades(self, r: Req) -> list:
        m = self._market(r.params)
        limit = min(_int(r.params, "limit", 500) or 500, 1000)
        spot = self.spot
        return [{"id": t.trade_no, "price": wire.fnum(t.price, spot), "qty": wire.fnum(t.qty, spot),
                 "quoteQty": wire.fnum(t.price * t.qty, spot), "time": t.ts_ms, "isBuyerMaker": t.buyer_is_maker,
                 "isBestMatch": True} for t in list(m.tape)[-limit:]]

    def premium_index(self, r: Req) -> object:
        rows = [wire.premium_index(m, self.ctx.clock.now_ms()) for m in self._markets(r.params) if m.is_perp]
        return rows[0] if r.params.get("symbol") else rows

    def funding_rate(self, r: Req) -> list:
        markets = self._markets(r.params)
        rows = [(m, x) for m in markets for x in self.ctx.replayer.funding_history(m, self.ctx.clock.now_ms())]
        rows.sort(key=lambda mx: mx[1].ts_ms)
        p = dict(r.params)
        rows = _window(rows, lambda mx: mx[1].ts_ms, p, 100, 1000)
        return [{"symbol": m.symbol, "fundingRate": wire.fmt(x.rate), "fundingTime": x.ts_ms,
                 "markPrice": wire.fmt(x.mark_price) if x.mark_price is not None else ""} for m, x in rows]

    def funding_info(self, r: Req) -> list:
        return []  # only symbols with adjusted caps/intervals are listed; the simulated ones use 8 h

    # ------------------------------------------------------------------ trading
    def new_order(self, r: Req) -> dict:
        p = r.params
        m = self._market(p)
        side_s = _req(p, "side")
        if side_s not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        side = Side(side_s)
        type_s = _req(p, "type")
        coid = p.get("newClientOrderId") or None
        if coid is not None and not _CLIENT_ID.match(coid):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                       "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
        allowed = ("LIMIT", "MARKET", "LIMIT_MAKER") if self.spot else ("LIMIT", "MARKET")
        if type_s not in allowed:
            raise ApiError(400, -1116, "Invalid orderType.")
        price = None
        quote_qty = None
        qty = Decimal(0)
        tif = TimeInForce.GTC
        if type_s == "MARKET":
            otype = OrderType.MARKET
            if self.spot and p.get("quoteOrderQty"):
                quote_qty = _dec(p, "quoteOrderQty")
            else:
                qty = _dec(p, "quantity")
        else:
            otype = OrderType.LIMIT
            qty, price = _dec(p, "quantity"), _dec(p, "price")
            if type_s == "LIMIT_MAKER":
                tif = TimeInForce.POST_ONLY
            else:
                tif_s = _req(p, "timeInForce")
                names = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
                if not self.spot:
                    names["GTX"] = TimeInForce.POST_ONLY
                if tif_s not in names:
                    raise ApiError(400, -1115, "Invalid timeInForce.")
                tif = names[tif_s]
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        if reduce_only and self.spot:
            raise ApiError(400, -1104, "Not all sent parameters were read; read 1 parameter(s) but was sent more.")
        if not self.spot and p.get("positionSide", "BOTH") != "BOTH":
            raise ApiError(400, -4061, "Order's position side does not match user's setting.")
        order, fills = self.core.place_order(r.account, self.venue, m.symbol, side, otype, qty, price, tif=tif,
                                             client_order_id=coid, reduce_only=reduce_only, quote_qty=quote_qty)
        if self.spot:
            default = "FULL" if otype in (OrderType.MARKET, OrderType.LIMIT) else "ACK"
            resp = p.get("newOrderRespType") or default
            if resp not in ("ACK", "RESULT", "FULL"):
                raise ApiError(400, -1102, "Invalid newOrderRespType.")
            return wire.spot_order_result(order, fills, resp)
        return wire.usdm_order(order)

    def cancel(self, r: Req) -> dict:
        o = self._find(r, cancel=True)
        out = self._order(o)
        if self.spot:
            out["origClientOrderId"] = o.client_order_id
            out["transactTime"] = r.now
        return out

    def get_order(self, r: Req) -> dict:
        return self._order(self._find(r, cancel=False))

    def open_orders(self, r: Req) -> list:
        m = self._market(r.params, required=False)
        return [self._order(o) for o in self.core.open_orders(r.account, self.venue, m.symbol if m else None)]

    def cancel_all(self, r: Req) -> object:
        m = self._market(r.params)
        done = self.core.cancel_all(r.account, self.venue, m.symbol)
        if self.spot:
            return [self._order(o) | {"origClientOrderId": o.client_order_id} for o in done]
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def all_orders(self, r: Req) -> list:
        m = self._market(r.params)
        orders = self.core.all_orders(r.account, self.venue, m.symbol)
        oid = _int(r.params, "orderId")
        if oid is not None:
            orders = [o for o in orders if o.order_id >= oid]
        return [self._order(o) for o in _window(orders, lambda o: o.created_ms, r.params, 500, 1000)]

    def my_trades(self, r: Req) -> list:
        m = self._market(r.params)
        trades = self.core.trades_for(r.account, self.venue, m.symbol, _int(r.params, "orderId"))
        from_id = _int(r.params, "fromId")
        rows = _window(trades, lambda t: t.ts_ms, r.params, 500, 1000)
        if from_id is not None:  # the oldest trades from that id on, as a time range would give
            limit = min(_int(r.params, "limit", 500) or 500, 1000)
            rows = [t for t in trades if t.trade_no >= from_id][:limit]
        return [wire.spot_trade(t) if self.spot else wire.usdm_trade(t) for t in rows]

    # ------------------------------------------------------------------ accounts
    def _account_config(self, account: str | None):
        return next((a for a in self.ctx.config.accounts if a.id == account), None)

    def _can_withdraw(self, r: Req) -> bool:
        acct = self._account_config(r.account)
        return bool(acct and acct.key_can_withdraw)

    def api_restrictions(self, r: Req) -> dict:
        """GET /sapi/v1/account/apiRestrictions: what the calling key may do (reference §4.1)."""
        acct = self._account_config(r.account)
        withdraw = bool(acct and acct.key_can_withdraw)
        return {"ipRestrict": bool(acct and acct.key_ip_restricted), "createTime": r.now - 86_400_000,
                "enableReading": True, "enableSpotAndMarginTrading": True, "enableFutures": True,
                "enableMargin": False, "enableWithdrawals": withdraw, "enableInternalTransfer": False,
                "permitsUniversalTransfer": False, "enableVanillaOptions": False,
                "enablePortfolioMarginTrading": False, "enableFixApiTrade": False, "enableFixReadOnly": True}

    def spot_account(self, r: Req) -> dict:
        bals = self.core.balances(r.account, self.venue)
        rows = wire.spot_balances(bals)
        if r.params.get("omitZeroBalances", "false").lower() == "true":
            rows = [b for b in rows if Decimal(b["free"]) or Decimal(b["locked"])]
        m = next(iter(self.core.markets_of(self.venue)), None)
        maker = m.maker_fee if m else Decimal(0)
        taker = m.taker_fee if m else Decimal(0)
        return {"makerCommission": int(maker * 10000), "takerCommission": int(taker * 10000),
                "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": wire.s8(maker), "taker": wire.s8(taker), "buyer": wire.s8(Decimal(0)),
                                    "seller": wire.s8(Decimal(0))},
                "canTrade": True, "canWithdraw": self._can_withdraw(r), "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": r.now,
                "accountType": "SPOT", "balances": rows, "permissions": ["SPOT"], "uid": 1}

    def _futures_assets(self, r: Req) -> tuple[list[dict], list[dict], dict]:
        core, acct = self.core, r.account
        positions = [p for p in core.positions(acct, self.venue).values()]
        assets = []
        totals = {k: Decimal(0) for k in ("wallet", "upnl", "im", "mm", "oim", "avail")}
        for asset, b in sorted(core.balances(acct, self.venue).items()):
            upnl = im = mm = Decimal(0)
            for p in positions:
                m = core.markets[(self.venue, p.symbol)]
                if p.qty == 0 or m.instrument.quote != asset:
                    continue
                p.mark_price = m.mark or m.mid_price()
                upnl += p.unrealized_pnl
                im += abs(p.qty) * p.mark_price / core.leverage(acct, self.venue, p.symbol)
                mm += abs(p.qty) * p.mark_price * m.maint_margin_rate
            avail = core.available_margin(acct, self.venue, asset)
            wallet = b.total
            assets.append({"asset": asset, "walletBalance": wire.fmt(wallet), "unrealizedProfit": wire.fmt(upnl),
                           "marginBalance": wire.fmt(wallet + upnl), "maintMargin": wire.fmt(mm),
                           "initialMargin": wire.fmt(im + b.locked), "positionInitialMargin": wire.fmt(im),
                           "openOrderInitialMargin": wire.fmt(b.locked), "crossWalletBalance": wire.fmt(wallet),
                           "crossUnPnl": wire.fmt(upnl), "availableBalance": wire.fmt(avail),
                           "maxWithdrawAmount": wire.fmt(max(Decimal(0), avail)), "marginAvailable": True,
                           "updateTime": r.now})
            for k, v in (("wallet", wallet), ("upnl", upnl), ("im", im), ("mm", mm), ("oim", b.locked),
                         ("avail", avail)):
                totals[k] += v
        rows = [self._position_row(r, p) for p in positions if p.qty != 0]
        return assets, rows, totals

    def _position_row(self, r: Req, p) -> dict:
        m = self.core.markets[(self.venue, p.symbol)]
        lev = self.core.leverage(r.account, self.venue, p.symbol)
        mark = m.mark or m.mid_price()
        p.mark_price = mark
        notional = p.qty * mark
        liq = self.core.liquidation_price(r.account, self.venue, p.symbol)
        isolated = self.core.account(r.account).margin_type.get((self.venue, p.symbol)) == "ISOLATED"
        return {"symbol": p.symbol, "positionSide": "BOTH", "positionAmt": wire.fmt(p.qty),
                "entryPrice": wire.fmt(p.entry_price), "breakEvenPrice": wire.fmt(p.entry_price),
                "markPrice": wire.fmt(mark), "unRealizedProfit": wire.fmt(p.unrealized_pnl),
                "unrealizedProfit": wire.fmt(p.unrealized_pnl),
                "liquidationPrice": wire.fmt(liq) if liq is not None else "0",
                "isolatedMargin": "0", "notional": wire.fmt(notional), "marginAsset": m.instrument.quote,
                "isolatedWallet": "0", "initialMargin": wire.fmt(abs(notional) / lev),
                "maintMargin": wire.fmt(abs(notional) * m.maint_margin_rate),
                "positionInitialMargin": wire.fmt(abs(notional) / lev), "openOrderInitialMargin": "0",
                "adl": 0, "bidNotional": "0", "askNotional": "0", "leverage": str(lev), "isolated": isolated,
                "marginType": "isolated" if isolated else "cross", "maxNotionalValue": "1000000", "updateTime": r.now}

    def futures_account(self, r: Req) -> dict:
        assets, positions, t = self._futures_assets(r)
        f = wire.fmt
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": self._can_withdraw(r),
                "updateTime": r.now,
                "multiAssetsMargin": False, "totalInitialMargin": f(t["im"] + t["oim"]),
                "totalMaintMargin": f(t["mm"]), "totalWalletBalance": f(t["wallet"]),
                "totalUnrealizedProfit": f(t["upnl"]), "totalMarginBalance": f(t["wallet"] + t["upnl"]),
                "totalPositionInitialMargin": f(t["im"]), "totalOpenOrderInitialMargin": f(t["oim"]),
                "totalCrossWalletBalance": f(t["wallet"]), "totalCrossUnPnl": f(t["upnl"]),
                "availableBalance": f(t["avail"]), "maxWithdrawAmount": f(max(Decimal(0), t["avail"])),
                "assets": assets, "positions": positions}

    def futures_balance(self, r: Req) -> list:
        assets, _, _ = self._futures_assets(r)
        return [{"accountAlias": "sim", "asset": a["asset"], "balance": a["walletBalance"],
                 "crossWalletBalance": a["crossWalletBalance"], "crossUnPnl": a["crossUnPnl"],
                 "availableBalance": a["availableBalance"], "maxWithdrawAmount": a["maxWithdrawAmount"],
                 "marginAvailable": True, "updateTime": r.now} for a in assets]

    def position_risk(self, r: Req) -> list:
        m = self._market(r.params, required=False)
        open_syms = {o.symbol for o in self.core.open_orders(r.account, self.venue)}
        rows = []
        for sym, p in self.core.positions(r.account, self.venue).items():
            if (m is None or sym == m.symbol) and (p.qty != 0 or sym in open_syms):
                rows.append(self._position_row(r, p))
        return rows

    def income(self, r: Req) -> list:
        m = self._market(r.params, required=False)
        kind = r.params.get("incomeType") or None
        events: list = []
        if kind in (None, "FUNDING_FEE"):
            events += self.core.funding_for(r.account, self.venue, m.symbol if m else None)
        if kind in (None, "TRANSFER") and m is None:  # a transfer moves the wallet, not a symbol
            events += self.core.transfers_for(r.account, self.venue)
        events.sort(key=lambda e: (e.ts_ms, e.event_no))
        rows = _window(events, lambda e: e.ts_ms, r.params, 100, 1000)
        return [wire.income_row(e, e.asset if isinstance(e, TransferEvent) else
                                self.core.markets[(self.venue, e.symbol)].instrument.quote) for e in rows]

    def leverage(self, r: Req) -> dict:
        m = self._market(r.params)
        lev = _int(r.params, "leverage")
        if lev is None:
            raise bad_param("leverage")
        if not 1 <= lev <= 125:
            raise ApiError(400, -4028, f"Leverage {lev} is not valid")
        self.core.set_leverage(r.account, self.venue, m.symbol, lev)
        return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": m.symbol}

    def leverage_bracket(self, r: Req) -> object:
        rows = [{"symbol": m.symbol, "notionalCoef": 1.0,
                 "brackets": [{"bracket": 1, "initialLeverage": 125, "notionalCap": 1000000, "notionalFloor": 0,
                               "maintMarginRatio": float(m.maint_margin_rate), "cum": 0.0}]}
                for m in self._markets(r.params) if m.is_perp]
        return rows[0] if r.params.get("symbol") else rows

    def margin_type(self, r: Req) -> dict:
        """As the venue answers: -4046 when the type is already in force, -4048 while a position is open."""
        m = self._market(r.params)
        wanted = _req(r.params, "marginType")
        if wanted not in ("ISOLATED", "CROSSED"):
            raise bad_param("marginType")
        types = self.core.account(r.account).margin_type
        if types.get((self.venue, m.symbol), "CROSSED") == wanted:
            raise ApiError(400, -4046, "No need to change margin type.")
        pos = self.core.positions(r.account, self.venue).get(m.symbol)
        if pos is not None and pos.qty != 0:
            raise ApiError(400, -4048, "Margin type cannot be changed if there exists position.")
        types[(self.venue, m.symbol)] = wanted
        return {"code": 200, "msg": "success"}

    def dual_side(self, r: Req) -> dict:
        return {"dualSidePosition": False}

    def multi_assets(self, r: Req) -> dict:
        return {"multiAssetsMargin": False}

    def listen_key_post(self, r: Req) -> dict:
        return {"listenKey": self.listen_keys.create(r.account, r.now)}

    def listen_key_put(self, r: Req) -> dict:
        self.listen_keys.keepalive(r.account, r.now)
        return {}

    def listen_key_delete(self, r: Req) -> dict:
        self.listen_keys.delete(r.account)
        return {}

    # ------------------------------------------------------------------ route table
    def _table(self) -> list[Route]:
        spot = self.spot

        def by_symbol(one: int, many: int) -> Callable[[dict[str, str]], int]:
            return lambda p: one if p.get("symbol") else many

        if spot:
            v = "/api/v3"
            return [
                Route("GET", f"{v}/ping", self.ping, 1), Route("GET", f"{v}/time", self.time, 1),
                Route("GET", f"{v}/exchangeInfo", self.exchange_info, 20),
                Route("GET", f"{v}/depth", self.depth, lambda p: depth_weight(True, p)),
                Route("GET", f"{v}/trades", self.trades, 25),
                Route("GET", f"{v}/klines", self.klines, 2),
                Route("GET", f"{v}/ticker/bookTicker", self.book_ticker, by_symbol(2, 4)),
                Route("GET", f"{v}/ticker/price", self.ticker_price, by_symbol(2, 4)),
                Route("GET", f"{v}/ticker/24hr", self.ticker_24h, by_symbol(2, 80)),
                Route("POST", f"{v}/order", self.new_order, 1, "SIGNED", order=True),
                Route("DELETE", f"{v}/order", self.cancel, 1, "SIGNED", free_on_success=True),
                Route("GET", f"{v}/order", self.get_order, 4, "SIGNED"),
                Route("GET", f"{v}/openOrders", self.open_orders, by_symbol(6, 80), "SIGNED"),
                Route("DELETE", f"{v}/openOrders", self.cancel_all, 1, "SIGNED", free_on_success=True),
                Route("GET", f"{v}/allOrders", self.all_orders, 20, "SIGNED"),
                Route("GET", f"{v}/myTrades", self.my_trades, lambda p: 5 if p.get("orderId") else 20, "SIGNED"),
                Route("GET", f"{v}/account", self.spot_account, 20, "SIGNED"),
                Route("GET", "/sapi/v1/account/apiRestrictions", self.api_restrictions, 1, "SIGNED"),
            ]
        v1 = "/fapi/v1"
        routes = [
            Route("GET", f"{v1}/ping", self.ping, 1), Route("GET", f"{v1}/time", self.time, 1),
            Route("GET", f"{v1}/exchangeInfo", self.exchange_info, 1),
            Route("GET", f"{v1}/depth", self.depth, lambda p: depth_weight(False, p)),
            Route("GET", f"{v1}/trades", self.trades, 5),
            Route("GET", f"{v1}/klines", self.klines,
                  lambda p: (lambda n: 1 if n < 100 else 2 if n < 500 else 5 if n <= 1000 else 10)(
                      _int(p, "limit", 500) or 500)),
            Route("GET", f"{v1}/ticker/bookTicker", self.book_ticker, by_symbol(2, 5)),
            Route("GET", f"{v1}/ticker/price", self.ticker_price, by_symbol(1, 2)),
            Route("GET", f"{v1}/ticker/24hr", self.ticker_24h, by_symbol(1, 40)),
            Route("GET", f"{v1}/premiumIndex", self.premium_index, by_symbol(1, 10)),
            Route("GET", f"{v1}/fundingRate", self.funding_rate, 0),
            Route("GET", f"{v1}/fundingInfo", self.funding_info, 0),
            Route("GET", f"{v1}/leverageBracket", self.leverage_bracket, 1, "SIGNED"),
            Route("POST", f"{v1}/order", self.new_order, 1, "SIGNED", order=True),
            Route("DELETE", f"{v1}/order", self.cancel, 1, "SIGNED"),
            Route("GET", f"{v1}/order", self.get_order, 1, "SIGNED"),
            Route("GET", f"{v1}/openOrders", self.open_orders, by_symbol(1, 40), "SIGNED"),
            Route("DELETE", f"{v1}/allOpenOrders", self.cancel_all, 1, "SIGNED"),
            Route("GET", f"{v1}/allOrders", self.all_orders, 5, "SIGNED"),
            Route("GET", f"{v1}/userTrades", self.my_trades, 5, "SIGNED"),
            Route("GET", f"{v1}/income", self.income, 30, "SIGNED"),
            Route("POST", f"{v1}/leverage", self.leverage, 1, "SIGNED"),
            Route("POST", f"{v1}/marginType", self.margin_type, 1, "SIGNED"),
            Route("GET", f"{v1}/positionSide/dual", self.dual_side, 30, "SIGNED"),
            Route("GET", f"{v1}/multiAssetsMargin", self.multi_assets, 30, "SIGNED"),
            Route("POST", f"{v1}/listenKey", self.listen_key_post, 1, "KEY"),
            Route("PUT", f"{v1}/listenKey", self.listen_key_put, 1, "KEY"),
            Route("DELETE", f"{v1}/listenKey", self.listen_key_delete, 1, "KEY"),
        ]
        for ver in ("v2", "v3"):
            routes += [Route("GET", f"/fapi/{ver}/account", self.futures_account, 5, "SIGNED"),
                       Route("GET", f"/fapi/{ver}/balance", self.futures_balance, 5, "SIGNED"),
                       Route("GET", f"/fapi/{ver}/positionRisk", self.position_risk, 5, "SIGNED")]
        return routes

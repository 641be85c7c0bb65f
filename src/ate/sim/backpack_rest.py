"""Backpack `/api/v1/*` and `/wapi/v1/*` endpoints over the matching core (reference §8.1).

Each handler takes the request's parameters (query for GET, JSON body otherwise) and the
authenticated account, and returns a :class:`Reply`; errors raise :class:`BackpackError`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ate.data.candles import Candle
from ate.data.loaders import FundingRate
from ate.model import MarketKind, OrderType, TimeInForce, fmt
from ate.sim import backpack_wire as wire
from ate.sim import klines
from ate.sim.backpack_auth import BackpackError, invalid_request
from ate.sim.clock import Clock
from ate.sim.core import Market, MatchingCore, OrderRejected, RejectReason, SimOrder

MINUTE_MS = 60_000
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
UINT32_MAX = 2**32 - 1
DAY_MS = 86_400_000

REJECTIONS: dict[RejectReason, tuple[int, str]] = {
    RejectReason.UNKNOWN_MARKET: (400, "INVALID_MARKET"),
    RejectReason.UNKNOWN_ACCOUNT: (401, "UNAUTHORIZED"),
    RejectReason.PRICE_FILTER: (400, "INVALID_PRICE"),
    RejectReason.LOT_SIZE: (400, "INVALID_QUANTITY"),
    RejectReason.MIN_NOTIONAL: (400, "INVALID_ORDER"),
    RejectReason.INSUFFICIENT_BALANCE: (400, "INSUFFICIENT_FUNDS"),
    RejectReason.INSUFFICIENT_MARGIN: (400, "INSUFFICIENT_MARGIN"),
    RejectReason.POST_ONLY_WOULD_TAKE: (400, "INVALID_ORDER"),
    RejectReason.DUPLICATE_CLIENT_ID: (400, "INVALID_ORDER"),
    RejectReason.REDUCE_ONLY_REJECTED: (400, "INVALID_ORDER"),
    RejectReason.NO_LIQUIDITY: (400, "INVALID_ORDER"),
    RejectReason.UNKNOWN_ORDER: (404, "RESOURCE_NOT_FOUND"),
    RejectReason.INVALID_PARAMETER: (400, "INVALID_CLIENT_REQUEST"),
    RejectReason.MARKET_CLOSED: (400, "TRADING_PAUSED"),
}
MESSAGES = {
    RejectReason.INSUFFICIENT_BALANCE: "Insufficient funds",
    RejectReason.INSUFFICIENT_MARGIN: "Insufficient margin",
    RejectReason.POST_ONLY_WOULD_TAKE: "Order would immediately match and take",
    RejectReason.UNKNOWN_ORDER: "Order not found",
    RejectReason.UNKNOWN_MARKET: "Invalid market",
    RejectReason.MARKET_CLOSED: "Trading is paused",
}


def rejection(exc: OrderRejected) -> BackpackError:
    status, code = REJECTIONS[exc.reason]
    return BackpackError(status, code, MESSAGES.get(exc.reason) or exc.detail or exc.reason.value)


@dataclass(slots=True)
class Reply:
    body: object
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    text: bool = False  # text/plain instead of JSON


def _str(params: Mapping[str, object], name: str, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise invalid_request(f"Missing parameter `{name}`")
        return None
    return str(value)


def _int(params: Mapping[str, object], name: str, default: int | None = None, lo: int = 0,
         hi: int | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        n = int(str(value))
    except ValueError:
        raise invalid_request(f"Invalid parameter `{name}`") from None
    if n < lo or (hi is not None and n > hi):
        raise invalid_request(f"Parameter `{name}` out of range")
    return n


def _dec(params: Mapping[str, object], name: str) -> Decimal | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise invalid_request(f"Invalid decimal `{name}`") from None
    if not d.is_finite():
        raise invalid_request(f"Invalid decimal `{name}`")
    return d


def _bool(params: Mapping[str, object], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise invalid_request(f"Invalid boolean `{name}`")


def page(rows: Sequence[dict], params: Mapping[str, object], default_limit: int = 100,
         max_limit: int = 1000) -> Reply:
    """A history page with Backpack's X-PAGE-COUNT, X-CURRENT-PAGE, X-PAGE-SIZE, X-TOTAL headers."""
    limit = _int(params, "limit", default_limit, 1, max_limit) or default_limit
    offset = _int(params, "offset", 0) or 0
    total = len(rows)
    headers = {"X-PAGE-COUNT": str(max(1, -(-total // limit))), "X-CURRENT-PAGE": str(offset // limit + 1),
               "X-PAGE-SIZE": str(limit), "X-TOTAL": str(total)}
    return Reply(list(rows[offset:offset + limit]), headers=headers)


def _sorted_by_time(rows: list[tuple[int, dict]], params: Mapping[str, object]) -> list[dict]:
    direction = _str(params, "sortDirection") or "Desc"
    if direction not in ("Asc", "Desc"):
        raise invalid_request("Invalid parameter `sortDirection`")
    rows.sort(key=lambda r: r[0], reverse=direction == "Desc")
    return [r for _, r in rows]


def candles_between(m: Market, start_ms: int, end_ms: int) -> list[Candle]:
    """Closed candles of ``m`` opening in [start_ms, end_ms)."""
    lo = bisect.bisect_left(m.candles, start_ms, key=lambda c: c.open_ms)
    hi = bisect.bisect_left(m.candles, end_ms, key=lambda c: c.open_ms)
    return m.candles[lo:hi]


class BackpackRest:
    """The REST endpoints of one simulated Backpack over ``core`` (markets of venue ``backpack``)."""

    def __init__(self, core: MatchingCore, clock: Clock,
                 funding_history: Callable[[Market, int], Sequence[FundingRate]] = lambda m, until: ()) -> None:
        self.core = core
        self.clock = clock
        self.funding_history = funding_history  # settled rates of a market up to a time (the replay's)

    # -- helpers ----------------------------------------------------------------------------------

    def markets(self) -> list[Market]:
        return self.core.markets_of(wire.VENUE)

    def market(self, params: Mapping[str, object]) -> Market:
        symbol = _str(params, "symbol", required=True)
        m = self.core.markets.get((wire.VENUE, symbol or ""))
        if m is None:
            raise BackpackError(400, "INVALID_MARKET", "Invalid market")
        return m

    def _market_type_ok(self, m: Market, params: Mapping[str, object]) -> bool:
        wanted = params.get("marketType")
        if wanted is None:
            return True
        kind = "PERP" if m.is_perp else "SPOT"
        return kind in (wanted if isinstance(wanted, list) else [wanted])

    # -- public -----------------------------------------------------------------------------------

    def get_markets(self, params: Mapping[str, object], account: str | None) -> Reply:
        return Reply([wire.market_json(m) for m in self.markets() if self._market_type_ok(m, params)])

    def get_market(self, params: Mapping[str, object], account: str | None) -> Reply:
        return Reply(wire.market_json(self.market(params)))

    def get_assets(self, params: Mapping[str, object], account: str | None) -> Reply:
        assets = sorted({a for m in self.markets() for a in (m.instrument.base, m.instrument.quote)})
        return Reply([wire.asset_json(a) for a in assets])

    def get_securities(self, params: Mapping[str, object], account: str | None) -> Reply:
        return Reply([])  # no tokenised stocks in the simulator

    def get_depth(self, params: Mapping[str, object], account: str | None) -> Reply:
        m = self.market(params)
        limit = _int(params, "limit", 1000)
        if limit not in DEPTH_LIMITS:
            raise invalid_request("Invalid parameter `limit`")
        bids, asks = wire.depth_levels(m, limit)
        return Reply({"asks": asks, "bids": bids, "lastUpdateId": str(m.update_id),
                      "timestamp": self.clock.now_ms() * 1000})

    def ticker(self, m: Market, interval: str) -> dict | None:
        now = self.clock.now_ms()
        span = 7 * DAY_MS if interval == "1w" else DAY_MS
        window = candles_between(m, now - span, now)
        if not window and not m.has_book:
            return None
        if window:
            first, last = wire.dec(window[0].open), wire.dec(window[-1].close)
            high, low = max(c.high for c in window), min(c.low for c in window)
            volume = sum((Decimal(repr(c.volume)) for c in window), Decimal(0))
            quote = sum((Decimal(repr(c.volume)) * Decimal(repr(c.close)) for c in window), Decimal(0))
        else:
            first = last = fmt(m.last_price)
            high = low = float(m.last_price)
            volume = quote = Decimal(0)
        change = Decimal(last) - Decimal(first)
        return {"symbol": m.symbol, "firstPrice": first, "lastPrice": last, "priceChange": fmt(change),
                "priceChangePercent": fmt((change / Decimal(first)).quantize(Decimal("0.000001")))
                if Decimal(first) else "0",
                "high": wire.dec(high), "low": wire.dec(low), "volume": fmt(volume),
                "quoteVolume": fmt(quote.quantize(m.tick)), "trades": str(len(window))}

    def get_ticker(self, params: Mapping[str, object], account: str | None) -> Reply:
        interval = _str(params, "interval") or "1d"
        if interval not in ("1d", "1w"):
            raise invalid_request("Invalid parameter `interval`")
        ticker = self.ticker(self.market(params), interval)
        return Reply(None, status=204) if ticker is None else Reply(ticker)

    def get_tickers(self, params: Mapping[str, object], account: str | None) -> Reply:
        interval = _str(params, "interval") or "1d"
        rows = [self.ticker(m, interval) for m in self.markets()]
        return Reply([t for t in rows if t is not None])

    def get_klines(self, params: Mapping[str, object], account: str | None) -> Reply:
        m = self.market(params)
        interval = _str(params, "interval", required=True) or ""
        if interval not in klines.BACKPACK:
            raise invalid_request("Invalid parameter `interval`")
        if _str(params, "priceType") not in (None, "Last"):
            raise invalid_request("Only Last price klines are simulated")
        start_s = _int(params, "startTime")
        if start_s is None:
            raise invalid_request("Missing parameter `startTime`")
        now = self.clock.now_ms()
        end_s = _int(params, "endTime")
        end_ms = min(now, end_s * 1000) if end_s is not None else now
        rows = klines.klines(m.candles, klines.BACKPACK[interval], start_s * 1000, end_ms - 1)
        return Reply([wire.kline_json(m, c) for c in rows[:1000]])

    def get_mark_prices(self, params: Mapping[str, object], account: str | None) -> Reply:
        markets = [self.market(params)] if "symbol" in params else self.markets()
        return Reply([{"symbol": m.symbol, "markPrice": fmt(m.mark or m.mid_price()),
                       "indexPrice": fmt(m.mark or m.mid_price()), "fundingRate": fmt(m.funding_rate),
                       "nextFundingTimestamp": m.next_funding_ms} for m in markets if m.is_perp])

    def get_funding_rates(self, params: Mapping[str, object], account: str | None) -> Reply:
        m = self.market(params)
        rows = [{"symbol": m.symbol, "intervalEndTimestamp": wire.iso(r.ts_ms), "fundingRate": fmt(r.rate)}
                for r in reversed(self.funding_history(m, self.clock.now_ms()))]
        return page(rows, params)

    def get_open_interest(self, params: Mapping[str, object], account: str | None) -> Reply:
        markets = [self.market(params)] if "symbol" in params else self.markets()
        out = []
        for m in markets:
            if not m.is_perp:
                continue
            longs = sum((p.qty for a in self.core.accounts.values()
                         if (p := a.positions.get(m.key)) is not None and p.qty > 0), Decimal(0))
            out.append({"symbol": m.symbol, "openInterest": fmt(longs), "timestamp": self.clock.now_ms()})
        return Reply(out)

    def get_trades(self, params: Mapping[str, object], account: str | None) -> Reply:
        m = self.market(params)
        limit = _int(params, "limit", 100, 1, 1000) or 100
        return Reply([wire.trade_json(t) for t in list(m.tape)[-limit:]])

    def get_trades_history(self, params: Mapping[str, object], account: str | None) -> Reply:
        m = self.market(params)
        limit = _int(params, "limit", 100, 1, 1000) or 100
        offset = _int(params, "offset", 0) or 0
        tape = list(m.tape)
        end = len(tape) - offset
        return Reply([wire.trade_json(t) for t in tape[max(0, end - limit):max(0, end)]])

    def get_status(self, params: Mapping[str, object], account: str | None) -> Reply:
        return Reply({"status": "Ok", "message": None})

    def get_ping(self, params: Mapping[str, object], account: str | None) -> Reply:
        return Reply("pong", text=True)

    def get_time(self, params: Mapping[str, object], account: str | None) -> Reply:
        return Reply(str(self.clock.now_ms()), text=True)

    # -- orders -----------------------------------------------------------------------------------

    def place(self, account: str, params: Mapping[str, object]) -> SimOrder:
        m = self.market(params)
        side = wire.SIDES.get(str(params.get("side")))
        otype = wire.ORDER_TYPES.get(str(params.get("orderType")))
        if side is None:
            raise invalid_request("Invalid parameter `side`")
        if otype is None:
            raise invalid_request("Invalid parameter `orderType`")
        if any(params.get(k) is not None for k in ("triggerPrice", "triggerQuantity", "stopLossTriggerPrice",
                                                    "takeProfitTriggerPrice")):
            raise BackpackError(400, "NOT_IMPLEMENTED", "Trigger orders are not simulated")
        tif_name = _str(params, "timeInForce") or "GTC"
        if tif_name not in ("GTC", "IOC", "FOK"):
            raise invalid_request("Invalid parameter `timeInForce`")
        tif = TimeInForce.POST_ONLY if _bool(params, "postOnly") else TimeInForce(tif_name)
        if tif is TimeInForce.POST_ONLY and otype is OrderType.MARKET:
            raise BackpackError(400, "INVALID_ORDER", "Market orders cannot be post only")
        price = _dec(params, "price")
        qty = _dec(params, "quantity")
        quote_qty = _dec(params, "quoteQuantity")
        if otype is OrderType.LIMIT and (price is None or qty is None):
            raise BackpackError(400, "INVALID_ORDER", "Limit orders need price and quantity")
        if otype is OrderType.MARKET and (qty is None) == (quote_qty is None):
            raise BackpackError(400, "INVALID_ORDER", "Market orders need one of quantity or quoteQuantity")
        cid = _int(params, "clientId", None, 0, UINT32_MAX)
        reduce_only = _bool(params, "reduceOnly")
        if reduce_only and m.instrument.kind is MarketKind.SPOT:
            raise BackpackError(400, "INVALID_ORDER", "Reduce only is for futures markets")
        try:
            order, _ = self.core.place_order(
                account, wire.VENUE, m.symbol, side, otype, qty or Decimal(0),
                price if otype is OrderType.LIMIT else None, tif=tif,
                client_order_id=None if cid is None else str(cid), reduce_only=reduce_only, quote_qty=quote_qty)
        except OrderRejected as exc:
            raise rejection(exc) from None
        return order

    def post_order(self, params: Mapping[str, object], account: str) -> Reply:
        return Reply(wire.order_json(self.place(account, params)))

    def post_orders(self, params: object, account: str) -> Reply:
        """Batch: every element tagged ``{"Ok": order}`` or ``{"Err": {"code","message"}}``."""
        if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
            raise invalid_request("Expected a JSON array of orders")
        out = []
        for p in params:
            try:
                out.append({"Ok": wire.order_json(self.place(account, p))})
            except BackpackError as exc:
                out.append({"Err": exc.body()})
        return Reply(out)

    def _find(self, account: str, params: Mapping[str, object]) -> tuple[Market, int | None, str | None]:
        m = self.market(params)
        order_id = _int(params, "orderId")
        cid = _int(params, "clientId", None, 0, UINT32_MAX)
        if order_id is not None and cid is not None:
            raise invalid_request("Specify only one of `orderId` or `clientId`")
        if order_id is None and cid is None:
            raise invalid_request("Missing parameter `orderId` or `clientId`")
        return m, order_id, None if cid is None else str(cid)

    def get_order(self, params: Mapping[str, object], account: str) -> Reply:
        m, order_id, cid = self._find(account, params)
        try:
            o = self.core.get_order(account, wire.VENUE, m.symbol, order_id, cid)
        except OrderRejected as exc:
            raise rejection(exc) from None
        if not o.is_open:  # only resting orders are served here; history has the rest
            raise BackpackError(404, "RESOURCE_NOT_FOUND", "Order not found")
        return Reply(wire.order_json(o))

    def cancel(self, account: str, params: Mapping[str, object]) -> SimOrder:
        m, order_id, cid = self._find(account, params)
        try:
            return self.core.cancel_order(account, wire.VENUE, m.symbol, order_id, cid)
        except OrderRejected as exc:
            raise rejection(exc) from None

    def resting(self, account: str, params: Mapping[str, object]) -> SimOrder:
        """The open order a cancel names, without touching it (a 202 answers with it as it stands)."""
        m, order_id, cid = self._find(account, params)
        try:
            o = self.core.get_order(account, wire.VENUE, m.symbol, order_id, cid)
        except OrderRejected as exc:
            raise rejection(exc) from None
        if not o.is_open:
            raise BackpackError(404, "RESOURCE_NOT_FOUND", "Order not found")
        return o

    def delete_order(self, params: Mapping[str, object], account: str) -> Reply:
        return Reply(wire.order_json(self.cancel(account, params)))

    def delete_orders(self, params: Mapping[str, object], account: str) -> Reply:
        m = self.market(params)
        return Reply([wire.order_json(o) for o in self.core.cancel_all(account, wire.VENUE, m.symbol)])

    def get_orders(self, params: Mapping[str, object], account: str) -> Reply:
        symbol = _str(params, "symbol")
        if symbol is not None:
            self.market(params)
        orders = [o for o in self.core.open_orders(account, wire.VENUE, symbol)
                  if self._market_type_ok(self.core.markets[(wire.VENUE, o.symbol)], params)]
        return Reply([wire.order_json(o) for o in sorted(orders, key=lambda o: o.order_id)])

    # -- account ----------------------------------------------------------------------------------

    def get_capital(self, params: Mapping[str, object], account: str) -> Reply:
        return Reply(wire.balances_json(self.core.balances(account, wire.VENUE)))

    def get_collateral(self, params: Mapping[str, object], account: str) -> Reply:
        """Quote-currency equity of the shared wallet: balances valued at book mid plus perp unrealized P&L."""
        prices = {m.instrument.base: m.mid_price() for m in self.markets() if not m.is_perp and m.has_book}
        rows, assets_value, locked_value = [], Decimal(0), Decimal(0)
        for asset, b in sorted(self.core.balances(account, wire.VENUE).items()):
            px = Decimal(1) if asset in {m.instrument.quote for m in self.markets()} else prices.get(asset)
            if px is None:
                continue
            value = b.total * px
            assets_value += value
            locked_value += b.locked * px
            rows.append({"symbol": asset, "assetMarkPrice": fmt(px), "totalQuantity": fmt(b.total),
                         "balanceNotional": fmt(value), "collateralWeight": "1", "collateralValue": fmt(value),
                         "openOrderQuantity": fmt(b.locked), "lendQuantity": "0",
                         "availableQuantity": fmt(b.free)})
        upnl = Decimal(0)
        for sym, p in self.core.positions(account, wire.VENUE).items():
            m = self.core.markets[(wire.VENUE, sym)]
            if p.qty:
                upnl += ((m.mark or m.mid_price()) - p.entry_price) * p.qty
        equity = assets_value + upnl
        return Reply({"assetsValue": fmt(assets_value), "borrowLiability": "0", "collateral": rows,
                      "imf": wire.IMF["base"], "mmf": wire.MMF["base"], "liabilitiesValue": "0",
                      "marginFraction": None, "netEquity": fmt(equity),
                      "netEquityAvailable": fmt(equity - locked_value), "netEquityLocked": fmt(locked_value),
                      "netExposureFutures": "0", "pnlUnrealized": fmt(upnl), "unsettledEquity": "0"})

    def get_position(self, params: Mapping[str, object], account: str) -> Reply:
        symbol = _str(params, "symbol")
        out = []
        for sym, p in sorted(self.core.positions(account, wire.VENUE).items()):
            if p.qty == 0 or (symbol is not None and sym != symbol):
                continue
            out.append(wire.position_json(p, self.core.markets[(wire.VENUE, sym)], account,
                                          self.core.liquidation_price(account, wire.VENUE, sym)))
        return Reply(out)

    def get_account(self, params: Mapping[str, object], account: str) -> Reply:
        perps = [m for m in self.markets() if m.is_perp]
        leverage = self.core.leverage(account, wire.VENUE, perps[0].symbol) if perps else self.core.DEFAULT_LEVERAGE
        return Reply({"autoBorrowSettlements": False, "autoLend": False, "autoRealizePnl": True,
                      "autoRepayBorrows": False, "borrowLimit": "0", "futuresMakerFee": "0",
                      "futuresTakerFee": "0", "leverageLimit": str(leverage), "limitOrders": 1000,
                      "liquidating": False, "positionLimit": "0", "spotMakerFee": "0", "spotTakerFee": "0",
                      "triggerOrders": 0})

    def patch_account(self, params: Mapping[str, object], account: str) -> Reply:
        """Leverage is per account on Backpack: `leverageLimit` applies to every perp market."""
        leverage = _int(params, "leverageLimit", None, 1, 125)
        if leverage is not None:
            for m in self.markets():
                if m.is_perp:
                    self.core.set_leverage(account, wire.VENUE, m.symbol, leverage)
        return Reply(None, status=200)

    # -- history (paged) --------------------------------------------------------------------------

    def get_fill_history(self, params: Mapping[str, object], account: str) -> Reply:
        symbol = _str(params, "symbol")
        order_id = _int(params, "orderId")
        start, end = _int(params, "from"), _int(params, "to")
        fill_type = _str(params, "fillType")
        orders = self.core.account(account).orders
        rows = []
        if fill_type in (None, "User"):
            for f in self.core.trades_for(account, wire.VENUE, symbol, order_id):
                if (start is not None and f.ts_ms < start) or (end is not None and f.ts_ms > end):
                    continue
                if not self._market_type_ok(self.core.markets[(wire.VENUE, f.symbol)], params):
                    continue
                o = orders.get((wire.VENUE, f.order_id))
                rows.append((f.ts_ms, wire.fill_json(f, wire.client_id(o) if o else None)))
        return page(_sorted_by_time(rows, params), params)

    def get_order_history(self, params: Mapping[str, object], account: str) -> Reply:
        symbol = _str(params, "symbol")
        order_id = _int(params, "orderId")
        rows = [(o.created_ms, wire.order_json(o, history=True))
                for o in self.core.all_orders(account, wire.VENUE, symbol)
                if (order_id is None or o.order_id == order_id)
                and self._market_type_ok(self.core.markets[(wire.VENUE, o.symbol)], params)]
        return page(_sorted_by_time(rows, params), params)

    def get_funding_history(self, params: Mapping[str, object], account: str) -> Reply:
        symbol = _str(params, "symbol")
        rows = [(e.ts_ms, wire.funding_json(e, account)) for e in self.core.funding_for(account, wire.VENUE, symbol)]
        return page(_sorted_by_time(rows, params), params)


ROUTES: dict[tuple[str, str], Callable] = {
    ("GET", "/api/v1/markets"): BackpackRest.get_markets,
    ("GET", "/api/v1/market"): BackpackRest.get_market,
    ("GET", "/api/v1/assets"): BackpackRest.get_assets,
    ("GET", "/api/v1/securities"): BackpackRest.get_securities,
    ("GET", "/api/v1/depth"): BackpackRest.get_depth,
    ("GET", "/api/v1/ticker"): BackpackRest.get_ticker,
    ("GET", "/api/v1/tickers"): BackpackRest.get_tickers,
    ("GET", "/api/v1/klines"): BackpackRest.get_klines,
    ("GET", "/api/v1/markPrices"): BackpackRest.get_mark_prices,
    ("GET", "/api/v1/fundingRates"): BackpackRest.get_funding_rates,
    ("GET", "/api/v1/openInterest"): BackpackRest.get_open_interest,
    ("GET", "/api/v1/trades"): BackpackRest.get_trades,
    ("GET", "/api/v1/trades/history"): BackpackRest.get_trades_history,
    ("GET", "/api/v1/status"): BackpackRest.get_status,
    ("GET", "/api/v1/ping"): BackpackRest.get_ping,
    ("GET", "/api/v1/time"): BackpackRest.get_time,
    ("POST", "/api/v1/order"): BackpackRest.post_order,
    ("GET", "/api/v1/order"): BackpackRest.get_order,
    ("DELETE", "/api/v1/order"): BackpackRest.delete_order,
    ("POST", "/api/v1/orders"): BackpackRest.post_orders,
    ("GET", "/api/v1/orders"): BackpackRest.get_orders,
    ("DELETE", "/api/v1/orders"): BackpackRest.delete_orders,
    ("GET", "/api/v1/capital"): BackpackRest.get_capital,
    ("GET", "/api/v1/capital/collateral"): BackpackRest.get_collateral,
    ("GET", "/api/v1/position"): BackpackRest.get_position,
    ("GET", "/api/v1/account"): BackpackRest.get_account,
    ("PATCH", "/api/v1/account"): BackpackRest.patch_account,
    ("GET", "/wapi/v1/history/fills"): BackpackRest.get_fill_history,
    ("GET", "/wapi/v1/history/orders"): BackpackRest.get_order_history,
    ("GET", "/wapi/v1/history/funding"): BackpackRest.get_funding_history,
}
HISTORY_MARKET_DATA = {"/api/v1/klines", "/api/v1/trades/history"}  # 30 requests/min on Backpack

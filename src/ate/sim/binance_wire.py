"""Binance JSON shapes (Spot and USD-M) built from core objects: orders, fills, balances, market
data and user-data events. Pure functions; no I/O."""

from __future__ import annotations

from decimal import Decimal

from ate.data.candles import Candle
from ate.model import Balance, MarketKind, OrderStatus, OrderType, Position, TimeInForce, fmt
from ate.sim import klines
from ate.sim.binance_auth import ApiError
from ate.sim.core import (
    FundingEvent,
    Market,
    OrderRejected,
    PublicTrade,
    RejectReason,
    SimFill,
    SimOrder,
    TransferEvent,
)

EIGHT = Decimal("0.00000001")
FAR_FUTURE_MS = 4133404800000


def s8(d: Decimal) -> str:
    """Spot style: fixed 8 decimals."""
    return format(d.quantize(EIGHT), "f")


def fnum(d: Decimal, spot: bool) -> str:
    return s8(d) if spot else fmt(d)


def decimals(step: Decimal) -> int:
    return max(0, -step.as_tuple().exponent)  # type: ignore[operator]


def status(o: SimOrder) -> str:
    return "NEW" if o.status in (OrderStatus.SUBMITTED, OrderStatus.NEW) else o.status.value


def order_type(o: SimOrder, spot: bool) -> str:
    if spot and o.post_only:
        return "LIMIT_MAKER"
    return o.type.value


def tif(o: SimOrder, spot: bool) -> str:
    if o.tif is TimeInForce.POST_ONLY:
        return "GTC" if spot else "GTX"
    return o.tif.value


# --------------------------------------------------------------------------------------- errors
def reject_error(exc: OrderRejected, m: Market | None, spot: bool, *, cancel: bool = False) -> ApiError:
    r = exc.reason
    if r is RejectReason.UNKNOWN_MARKET:
        return ApiError(400, -1121, "Invalid symbol.")
    if r is RejectReason.UNKNOWN_ORDER:
        return ApiError(400, -2011, "Unknown order sent.") if cancel else ApiError(400, -2013, "Order does not exist.")
    if r in (RejectReason.PRICE_FILTER, RejectReason.LOT_SIZE):
        return ApiError(400, -1013, f"Filter failure: {r.value}")
    if r is RejectReason.MIN_NOTIONAL:
        if spot:
            return ApiError(400, -1013, "Filter failure: NOTIONAL")
        n = fmt(m.instrument.min_notional) if m else "0"
        return ApiError(400, -4164, f"Order's notional must be no smaller than {n} (unless you choose reduce only).")
    if r is RejectReason.INSUFFICIENT_BALANCE:
        return ApiError(400, -2010, "Account has insufficient balance for requested action.")
    if r is RejectReason.INSUFFICIENT_MARGIN:
        return ApiError(400, -2019, "Margin is insufficient.")
    if r is RejectReason.POST_ONLY_WOULD_TAKE:
        if spot:
            return ApiError(400, -2010, "Order would immediately match and take.")
        return ApiError(400, -5022, "Due to the order could not be executed as maker, the Post Only order will be "
                                    "rejected. The order will not be recorded in the order history")
    if r is RejectReason.DUPLICATE_CLIENT_ID:
        return ApiError(400, -2010, "Duplicate order sent.") if spot else ApiError(400, -4116,
                                                                                   "ClientOrderId is duplicated.")
    if r is RejectReason.REDUCE_ONLY_REJECTED:
        return ApiError(400, -2022, "ReduceOnly Order is rejected.")
    if r is RejectReason.NO_LIQUIDITY:
        return ApiError(400, -2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity.")
    if r is RejectReason.MARKET_CLOSED:
        if spot:
            return ApiError(400, -2010, "Market is closed.")
        return ApiError(400, -4140, "Invalid symbol status for opening position.")
    if r is RejectReason.UNKNOWN_ACCOUNT:
        return ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    return ApiError(400, -1102, exc.detail or "Invalid parameter.")


# --------------------------------------------------------------------------------------- orders
def spot_order_result(o: SimOrder, fills: list[SimFill] | None, resp_type: str) -> dict:
    out: dict = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
                 "transactTime": o.created_ms}
    if resp_type == "ACK":
        return out
    out.update({"price": s8(o.price or Decimal(0)), "origQty": s8(o.qty), "executedQty": s8(o.filled_qty),
                "origQuoteOrderQty": s8(Decimal(0)), "cummulativeQuoteQty": s8(o.filled_quote),
                "status": status(o), "timeInForce": tif(o, True), "type": order_type(o, True),
                "side": o.side.value, "workingTime": o.created_ms,  # -1 only for untriggered stops (not simulated)
                "selfTradePreventionMode": "EXPIRE_MAKER"})
    if resp_type == "FULL":
        out["fills"] = [{"price": s8(f.price), "qty": s8(f.qty), "commission": s8(f.fee),
                         "commissionAsset": f.fee_asset, "tradeId": f.trade_no} for f in fills or ()]
    return out


def spot_order(o: SimOrder) -> dict:
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
            "price": s8(o.price or Decimal(0)), "origQty": s8(o.qty), "executedQty": s8(o.filled_qty),
            "cummulativeQuoteQty": s8(o.filled_quote), "status": status(o), "timeInForce": tif(o, True),
            "type": order_type(o, True), "side": o.side.value, "stopPrice": s8(Decimal(0)),
            "icebergQty": s8(Decimal(0)), "time": o.created_ms, "updateTime": o.updated_ms,
            "isWorking": o.type is OrderType.LIMIT, "workingTime": o.created_ms,
            "origQuoteOrderQty": s8(Decimal(0)), "selfTradePreventionMode": "EXPIRE_MAKER"}


def usdm_order(o: SimOrder) -> dict:
    avg = o.avg_price
    return {"orderId": o.order_id, "symbol": o.symbol, "status": status(o), "clientOrderId": o.client_order_id,
            "price": fmt(o.price or Decimal(0)), "avgPrice": fmt(avg) if avg is not None else "0",
            "origQty": fmt(o.qty), "executedQty": fmt(o.filled_qty), "cumQty": fmt(o.filled_qty),
            "cumQuote": fmt(o.filled_quote), "timeInForce": tif(o, False), "type": o.type.value,
            "reduceOnly": o.reduce_only, "closePosition": False, "side": o.side.value, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type.value,
            "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
            "time": o.created_ms, "updateTime": o.updated_ms}


def spot_trade(f: SimFill) -> dict:
    return {"symbol": f.symbol, "id": f.trade_no, "orderId": f.order_id, "orderListId": -1, "price": s8(f.price),
            "qty": s8(f.qty), "quoteQty": s8(f.qty * f.price), "commission": s8(f.fee),
            "commissionAsset": f.fee_asset, "time": f.ts_ms, "isBuyer": f.side.value == "BUY",
            "isMaker": f.is_maker, "isBestMatch": True}


def usdm_trade(f: SimFill) -> dict:
    return {"buyer": f.side.value == "BUY", "commission": fmt(f.fee), "commissionAsset": f.fee_asset,
            "id": f.trade_no, "maker": f.is_maker, "orderId": f.order_id, "price": fmt(f.price), "qty": fmt(f.qty),
            "quoteQty": fmt(f.qty * f.price), "realizedPnl": fmt(f.realized_pnl), "side": f.side.value,
            "positionSide": "BOTH", "symbol": f.symbol, "time": f.ts_ms}


# --------------------------------------------------------------------------------------- market data
def exchange_symbol(m: Market, spot: bool) -> dict:
    i = m.instrument
    price_filter = {"filterType": "PRICE_FILTER", "minPrice": fnum(i.min_price, spot),
                    "maxPrice": fnum(i.max_price, spot), "tickSize": fnum(i.tick_size, spot)}
    lot = {"minQty": fnum(i.min_qty, spot), "maxQty": fnum(i.max_qty, spot), "stepSize": fnum(i.step_size, spot)}
    if spot:
        return {"symbol": m.symbol, "status": "BREAK" if m.halted else "TRADING", "baseAsset": i.base,
                "baseAssetPrecision": 8,
                "quoteAsset": i.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
                "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
                "cancelReplaceAllowed": False, "amendAllowed": False, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [price_filter, {"filterType": "LOT_SIZE", **lot},
                            {"filterType": "MARKET_LOT_SIZE", **lot},
                            {"filterType": "NOTIONAL", "minNotional": s8(i.min_notional), "applyMinToMarket": True,
                             "maxNotional": s8(Decimal(9000000)), "applyMaxToMarket": False, "avgPriceMins": 5},
                            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200}],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]}
    return {"symbol": m.symbol, "pair": m.symbol, "contractType": "PERPETUAL" if i.kind is MarketKind.PERP else "",
            "deliveryDate": FAR_FUTURE_MS, "onboardDate": 1569398400000,
            "status": "SETTLING" if m.halted else "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": i.base,
            "quoteAsset": i.quote, "marginAsset": i.quote, "pricePrecision": decimals(i.tick_size),
            "quantityPrecision": decimals(i.step_size), "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [price_filter, {"filterType": "LOT_SIZE", **lot}, {"filterType": "MARKET_LOT_SIZE", **lot},
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": fmt(i.min_notional)},
                        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                         "multiplierDecimal": "4"}],
            "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"]}


def depth_levels(m: Market, limit: int, spot: bool) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[fnum(t * m.tick, spot), fnum(q * m.step, spot)] for t, q in gross_levels(m, True, limit)]
    asks = [[fnum(t * m.tick, spot), fnum(q * m.step, spot)] for t, q in gross_levels(m, False, limit)]
    return bids, asks


def gross_levels(m: Market, bids: bool, n: int) -> list[tuple[int, int]]:
    """The replayed (ticks, steps) levels of one side, best first (liquidity taken since the last
    update is not subtracted: the published book changes only with the replayed data)."""
    if not m.has_book:
        return []
    top, size, sign = (m.bid_t, m.bid_sz, -1) if bids else (m.ask_t, m.ask_sz, 1)
    out = []
    for i in range(min(n, m.depth_levels)):
        t = top + sign * i * m.depth_step_ticks
        if t <= 0:
            break
        out.append((t, size))
    return out


def book_ticker(m: Market, spot: bool, stream: bool, ts: int) -> dict:
    bid, ask = m.bid_price, m.ask_price
    bq, aq = m.bid_sz * m.step, m.ask_sz * m.step
    if stream:
        core = {"u": m.update_id, "s": m.symbol, "b": fnum(bid, spot), "B": fnum(bq, spot), "a": fnum(ask, spot),
                "A": fnum(aq, spot)}
        return core if spot else {"e": "bookTicker", "u": m.update_id, "E": ts, "T": ts, **{
            k: v for k, v in core.items() if k != "u"}}
    out = {"symbol": m.symbol, "bidPrice": fnum(bid, spot), "bidQty": fnum(bq, spot), "askPrice": fnum(ask, spot),
           "askQty": fnum(aq, spot)}
    if not spot:
        out["time"] = ts
        out["lastUpdateId"] = m.update_id
    return out


def stats_24h(m: Market, now: int) -> dict:
    window = [c for c in m.candles[-1440:] if c.open_ms >= now - 86_400_000]
    last = m.last_price
    if not window:
        o = h = lo = last
        vol = qv = Decimal(0)
        open_ms = now - 86_400_000
    else:
        o = Decimal(repr(window[0].open))
        h = max(Decimal(repr(max(c.high for c in window))), last)
        lo = min(Decimal(repr(min(c.low for c in window))), last)
        vol = Decimal(repr(round(sum(c.volume for c in window), 8)))
        qv = Decimal(repr(round(sum(c.volume * c.close for c in window), 8)))
        open_ms = window[0].open_ms
    return {"o": o, "h": h, "l": lo, "c": last, "v": vol, "q": qv, "open_ms": open_ms}


def ticker_24h(m: Market, spot: bool, now: int) -> dict:
    st = stats_24h(m, now)
    change = st["c"] - st["o"]
    pct = (change / st["o"] * 100).quantize(Decimal("0.001")) if st["o"] else Decimal(0)
    wavg = st["q"] / st["v"] if st["v"] else st["c"]
    out = {"symbol": m.symbol, "priceChange": fnum(change, spot), "priceChangePercent": fmt(pct),
           "weightedAvgPrice": fnum(wavg.quantize(m.tick), spot), "lastPrice": fnum(st["c"], spot),
           "lastQty": fnum(m.step, spot), "openPrice": fnum(st["o"], spot), "highPrice": fnum(st["h"], spot),
           "lowPrice": fnum(st["l"], spot), "volume": fnum(st["v"], spot), "quoteVolume": fnum(st["q"], spot),
           "openTime": st["open_ms"], "closeTime": now, "firstId": 1, "lastId": max(1, len(m.tape)),
           "count": len(m.tape)}
    if spot:
        out.update({"prevClosePrice": s8(st["o"]), "bidPrice": s8(m.bid_price), "bidQty": s8(m.bid_sz * m.step),
                    "askPrice": s8(m.ask_price), "askQty": s8(m.ask_sz * m.step)})
    return out


def ticker_stream(m: Market, spot: bool, now: int) -> dict:
    t = ticker_24h(m, spot, now)
    out = {"e": "24hrTicker", "E": now, "s": m.symbol, "p": t["priceChange"], "P": t["priceChangePercent"],
           "w": t["weightedAvgPrice"], "c": t["lastPrice"], "Q": t["lastQty"], "o": t["openPrice"],
           "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"], "O": t["openTime"],
           "C": now, "F": t["firstId"], "L": t["lastId"], "n": t["count"]}
    if spot:
        out.update({"x": t["prevClosePrice"], "b": t["bidPrice"], "B": t["bidQty"], "a": t["askPrice"],
                    "A": t["askQty"]})
    return out


def _kline_values(m: Market, c: Candle, spot: bool) -> tuple[str, ...]:
    """open, high, low, close, volume, quote volume, taker buy volume, taker buy quote volume: prices
    on the tick and sizes on the step, written with the grid's decimals (Spot pads all to 8)."""
    text = s8 if spot else (lambda d: format(d, "f"))
    o, h, lo, cl = (klines.on_grid(x, m.tick) for x in (c.open, c.high, c.low, c.close))
    vol, taker = klines.on_grid(c.volume, m.step), klines.on_grid(klines.taker_buy_volume(c), m.step)
    mid = (o + cl) / 2
    quote_vol, quote_taker = ((q * mid).quantize(EIGHT) for q in (vol, taker))
    return tuple(text(d) for d in (o, h, lo, cl, vol, quote_vol, taker, quote_taker))


def kline_row(m: Market, c: Candle, spot: bool) -> list:
    o, h, lo, cl, v, q, tb, tq = _kline_values(m, c, spot)
    return [c.open_ms, o, h, lo, cl, v, c.close_ms - 1, q, klines.trade_count(c), tb, tq, "0"]


def kline_event(m: Market, c: Candle, interval: str, now: int, closed: bool, spot: bool) -> dict:
    o, h, lo, cl, v, q, tb, tq = _kline_values(m, c, spot)
    return {"e": "kline", "E": now, "s": m.symbol,
            "k": {"t": c.open_ms, "T": c.close_ms - 1, "s": m.symbol, "i": interval, "f": -1, "L": -1,
                  "o": o, "c": cl, "h": h, "l": lo, "v": v, "n": klines.trade_count(c), "x": closed, "q": q,
                  "V": tb, "Q": tq, "B": "0"}}


def trade_event(t: PublicTrade, spot: bool, agg: bool) -> dict:
    m = t.market
    if agg:
        out = {"e": "aggTrade", "E": t.ts_ms, "s": m.symbol, "a": t.trade_no, "p": fnum(t.price, spot),
               "q": fnum(t.qty, spot), "f": t.trade_no, "l": t.trade_no, "T": t.ts_ms, "m": t.buyer_is_maker}
        if spot:
            out["M"] = True
        else:
            out["nq"] = fmt(t.qty)
        return out
    return {"e": "trade", "E": t.ts_ms, "s": m.symbol, "t": t.trade_no, "p": fnum(t.price, spot),
            "q": fnum(t.qty, spot), "T": t.ts_ms, "m": t.buyer_is_maker, "M": True}


def mark_event(m: Market, now: int) -> dict:
    mark = fmt(m.mark.quantize(m.tick)) if m.mark else "0"
    return {"e": "markPriceUpdate", "E": now, "s": m.symbol, "p": mark, "i": mark, "P": mark,
            "r": fmt(m.funding_rate), "ap": mark, "T": m.next_funding_ms}


def premium_index(m: Market, now: int) -> dict:
    mark = fmt(m.mark.quantize(m.tick)) if m.mark else "0"
    return {"symbol": m.symbol, "markPrice": mark, "indexPrice": mark, "estimatedSettlePrice": mark,
            "lastFundingRate": fmt(m.funding_rate), "interestRate": "0.00010000",
            "nextFundingTime": m.next_funding_ms, "time": now}


# --------------------------------------------------------------------------------------- accounts
def spot_balances(balances: dict[str, Balance]) -> list[dict]:
    return [{"asset": a, "free": s8(b.free), "locked": s8(b.locked)} for a, b in sorted(balances.items())]


def execution_report(o: SimOrder, exec_type: str, f: SimFill | None, now: int) -> dict:
    return {"e": "executionReport", "E": now, "s": o.symbol, "c": o.client_order_id, "S": o.side.value,
            "o": order_type(o, True), "f": tif(o, True), "q": s8(o.qty), "p": s8(o.price or Decimal(0)),
            "P": s8(Decimal(0)), "F": s8(Decimal(0)), "g": -1,
            "C": o.client_order_id if exec_type == "CANCELED" else "", "x": exec_type, "X": status(o), "r": "NONE",
            "i": o.order_id, "l": s8(f.qty if f else Decimal(0)), "z": s8(o.filled_qty),
            "L": s8(f.price if f else Decimal(0)), "n": s8(f.fee if f else Decimal(0)),
            "N": f.fee_asset if f else None, "T": f.ts_ms if f else now, "t": f.trade_no if f else -1, "v": 0,
            "I": f.trade_no if f else 0, "w": o.is_open, "m": bool(f and f.is_maker), "M": False,
            "O": o.created_ms, "Z": s8(o.filled_quote),
            "Y": s8(f.qty * f.price if f else Decimal(0)), "Q": s8(Decimal(0)), "W": o.created_ms,
            "V": "EXPIRE_MAKER"}


def balance_update(asset: str, delta: Decimal, ts: int, now: int) -> dict:
    """Spot deposit or withdrawal (followed by an outboundAccountPosition)."""
    return {"e": "balanceUpdate", "E": now, "a": asset, "d": s8(delta), "T": ts}


def account_position(balances: list[Balance], now: int) -> dict:
    return {"e": "outboundAccountPosition", "E": now, "u": now,
            "B": [{"a": b.asset, "f": s8(b.free), "l": s8(b.locked)} for b in balances]}


def order_trade_update(o: SimOrder, exec_type: str, f: SimFill | None, now: int) -> dict:
    """A liquidation is the venue's own order: client id autoclose-…, type LIQUIDATION, and its fill
    has execution type CALCULATED."""
    avg = o.avg_price
    liquidation = o.origin == "LIQUIDATION"
    otype = "LIQUIDATION" if liquidation else o.type.value
    if liquidation and exec_type == "TRADE":
        exec_type = "CALCULATED"
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now,
            "o": {"s": o.symbol, "c": o.client_order_id, "S": o.side.value, "o": otype, "f": tif(o, False),
                  "q": fmt(o.qty), "p": fmt(o.price or Decimal(0)), "ap": fmt(avg) if avg is not None else "0",
                  "sp": "0", "x": exec_type, "X": status(o), "i": o.order_id,
                  "l": fmt(f.qty) if f else "0", "z": fmt(o.filled_qty), "L": fmt(f.price) if f else "0",
                  "N": f.fee_asset if f else "USDT", "n": fmt(f.fee) if f else "0", "T": f.ts_ms if f else now,
                  "t": f.trade_no if f else 0, "b": "0", "a": "0", "m": bool(f and f.is_maker),
                  "R": o.reduce_only, "wt": "CONTRACT_PRICE", "ot": otype, "ps": "BOTH", "cp": False,
                  "rp": fmt(f.realized_pnl) if f else "0", "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
                  "er": "0"}}


def position_json(p: Position) -> dict:
    return {"s": p.symbol, "pa": fmt(p.qty), "ep": fmt(p.entry_price), "bep": fmt(p.entry_price),
            "cr": fmt(p.realized_pnl), "up": fmt(p.unrealized_pnl), "mt": "cross", "iw": "0", "ps": "BOTH"}


def account_update(reason: str, balances: list[Balance], positions: list[Position], now: int,
                   delta: Decimal = Decimal(0)) -> dict:
    """``bc`` is the wallet change other than P&L and commission: a deposit's or withdrawal's amount."""
    return {"e": "ACCOUNT_UPDATE", "E": now, "T": now,
            "a": {"m": reason, "B": [{"a": b.asset, "wb": fmt(b.total), "cw": fmt(b.total), "bc": fmt(delta)}
                                     for b in balances],
                  "P": [position_json(p) for p in positions]}}


def income_row(e: FundingEvent | TransferEvent, asset: str) -> dict:
    kind = "TRANSFER" if isinstance(e, TransferEvent) else "FUNDING_FEE"
    symbol = "" if isinstance(e, TransferEvent) else e.symbol
    return {"symbol": symbol, "incomeType": kind, "income": fmt(e.amount), "asset": asset,
            "info": kind, "time": e.ts_ms, "tranId": e.event_no, "tradeId": ""}

"""Backpack JSON shapes built from the matching core's objects (reference §8.1, §8.3).

REST times are ms (``createdAt``) or naive ISO strings in UTC (history, klines); WS ``E``/``T`` are µs.
Prices and quantities are decimal strings; order ids are strings; ``clientId`` is a uint32 or null.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ate.data.candles import Candle
from ate.model import Balance, OrderStatus, OrderType, Position, Side, TimeInForce, fmt, to_decimal
from ate.sim import klines
from ate.sim.core import FundingEvent, Market, PublicTrade, SimFill, SimOrder

VENUE = "backpack"
SIDES = {"Bid": Side.BUY, "Ask": Side.SELL}
SIDE_NAMES = {Side.BUY: "Bid", Side.SELL: "Ask"}
ORDER_TYPES = {"Limit": OrderType.LIMIT, "Market": OrderType.MARKET}
TYPE_NAMES = {OrderType.LIMIT: "Limit", OrderType.MARKET: "Market"}
STATUS_NAMES = {
    OrderStatus.NEW: "New",
    OrderStatus.SUBMITTED: "New",
    OrderStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELED: "Cancelled",
    OrderStatus.EXPIRED: "Expired",
    OrderStatus.REJECTED: "Expired",
}
# Funding bounds (basis points) and margin functions as Backpack publishes them for BTC_USDC_PERP.
FUNDING_BOUND_BPS = "100"
IMF = {"base": "0.01333333", "factor": "0.00002494", "type": "sqrt"}
MMF = {"base": "0.00666667", "factor": "0.00001496", "type": "sqrt"}


def iso(ts_ms: int) -> str:
    """Naive ISO date-time in UTC with milliseconds, as Backpack's history endpoints write it."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def kline_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def dec(x: Decimal | float | int) -> str:
    return fmt(to_decimal(x))


def opt(x: Decimal | None) -> str | None:
    return None if x is None else fmt(x)


def client_id(order: SimOrder) -> int | None:
    """Backpack's uint32 clientId; orders placed without one carry the core's generated string."""
    coid = order.client_order_id
    return int(coid) if coid.isdigit() else None


def market_json(m: Market) -> dict:
    inst = m.instrument
    perp = m.is_perp
    return {
        "symbol": m.symbol,
        "baseSymbol": inst.base,
        "quoteSymbol": inst.quote,
        "marketType": "PERP" if perp else "SPOT",
        "filters": {
            "price": {
                "minPrice": fmt(inst.min_price or inst.tick_size),
                "maxPrice": opt(inst.max_price or None),
                "tickSize": fmt(inst.tick_size),
                "maxMultiplier": "1.25",
                "minMultiplier": "0.75",
                "maxImpactMultiplier": "1.03",
                "minImpactMultiplier": "0.97",
                "meanMarkPriceBand": {"maxMultiplier": "1.15", "minMultiplier": "0.9"},
                "meanPremiumBand": {"tolerancePct": "0.05"} if perp else None,
            },
            "quantity": {
                "minQuantity": fmt(inst.min_qty or inst.step_size),
                "maxQuantity": opt(inst.max_qty or None),
                "stepSize": fmt(inst.step_size),
            },
        },
        "fundingInterval": m.funding_interval_ms if perp else None,
        "fundingRateUpperBound": FUNDING_BOUND_BPS if perp else None,
        "fundingRateLowerBound": "-" + FUNDING_BOUND_BPS if perp else None,
        "imfFunction": IMF if perp else None,
        "mmfFunction": MMF if perp else None,
        "openInterestLimit": "0",
        "orderBookState": "CancelOnly" if m.halted else "Open",
        "createdAt": "2024-01-01T00:00:00",
    }


def asset_json(symbol: str) -> dict:
    return {"symbol": symbol, "displayName": symbol, "coingeckoId": None, "tokens": []}


def order_json(o: SimOrder, history: bool = False) -> dict:
    """An order as `/api/v1/order(s)` answers it; history rows write createdAt as ISO, as the venue does."""
    return {
        "id": str(o.order_id),
        "clientId": client_id(o),
        "symbol": o.symbol,
        "side": SIDE_NAMES[o.side],
        "orderType": TYPE_NAMES[o.type],
        "price": opt(o.price),
        "quantity": fmt(o.qty),
        "quoteQuantity": None,
        "executedQuantity": fmt(o.filled_qty),
        "executedQuoteQuantity": fmt(o.filled_quote),
        "timeInForce": "GTC" if o.tif is TimeInForce.POST_ONLY else o.tif.value,
        "selfTradePrevention": "RejectTaker",
        "postOnly": o.post_only,
        "reduceOnly": o.reduce_only or None,
        "status": STATUS_NAMES[o.status],
        "createdAt": iso(o.created_ms) if history else o.created_ms,
        "expiryReason": None,
        "triggerPrice": None,
        "triggerQuantity": None,
        "triggerBy": None,
        "triggeredAt": None,
        "stopLossTriggerPrice": None,
        "stopLossLimitPrice": None,
        "stopLossTriggerBy": None,
        "takeProfitTriggerPrice": None,
        "takeProfitLimitPrice": None,
        "takeProfitTriggerBy": None,
        "relatedOrderId": None,
        "strategyId": None,
        "systemOrderType": None,
    }


def fill_json(f: SimFill, order_client_id: int | None) -> dict:
    return {
        "clientId": order_client_id,
        "fee": fmt(f.fee),
        "feeSymbol": f.fee_asset,
        "isMaker": f.is_maker,
        "orderId": str(f.order_id),
        "price": fmt(f.price),
        "quantity": fmt(f.qty),
        "side": SIDE_NAMES[f.side],
        "symbol": f.symbol,
        "systemOrderType": None,
        "timestamp": iso(f.ts_ms),
        "tradeId": f.trade_no,
    }


def funding_json(e: FundingEvent, account: str) -> dict:
    return {
        "userId": account,
        "subaccountId": None,
        "symbol": e.symbol,
        "quantity": fmt(e.amount),
        "intervalEndTimestamp": iso(e.ts_ms),
        "fundingRate": fmt(e.rate),
    }


def balances_json(balances: dict[str, Balance]) -> dict:
    return {asset: {"available": fmt(b.free), "locked": fmt(b.locked), "staked": "0"}
            for asset, b in sorted(balances.items())}


def position_json(p: Position, m: Market, account: str, liquidation: Decimal | None = None) -> dict:
    mark = m.mark or m.mid_price()
    upnl = (mark - p.entry_price) * p.qty if p.qty else Decimal(0)
    notional = p.qty * mark
    return {
        "symbol": p.symbol,
        "netQuantity": fmt(p.qty),
        "netExposureQuantity": fmt(abs(p.qty)),
        "netExposureNotional": fmt(abs(notional)),
        "entryPrice": fmt(p.entry_price),
        "breakEvenPrice": fmt(p.entry_price),
        "estLiquidationPrice": fmt(liquidation) if liquidation is not None else "0",
        "markPrice": fmt(mark),
        "imf": IMF["base"],
        "imfFunction": IMF,
        "mmf": MMF["base"],
        "mmfFunction": MMF,
        "netCost": fmt(p.qty * p.entry_price),
        "pnlRealized": fmt(p.realized_pnl),
        "pnlUnrealized": fmt(upnl),
        "cumulativeFundingPayment": fmt(p.funding),
        "cumulativeInterest": "0",
        "positionId": f"{account}:{p.symbol}",
        "userId": account,
        "subaccountId": None,
    }


def depth_levels(m: Market, limit: int) -> tuple[list[list[str]], list[list[str]]]:
    """(bids, asks) both in ascending price, as Backpack lists them: the best bid is the last bid."""
    bids = [[fmt(m.price(t)), fmt(m.qty(s))] for t, s in reversed(m.levels(Side.BUY, limit))]
    asks = [[fmt(m.price(t)), fmt(m.qty(s))] for t, s in m.levels(Side.SELL, limit)]
    return bids, asks


def _kline_values(m: Market, c: Candle) -> dict[str, str]:
    """Prices on the tick's precision, sizes on the step's."""
    o, h, lo, cl = (klines.on_grid(x, m.tick) for x in (c.open, c.high, c.low, c.close))
    volume = klines.on_grid(c.volume, m.step)
    return {"open": fmt_grid(o), "high": fmt_grid(h), "low": fmt_grid(lo), "close": fmt_grid(cl),
            "volume": fmt_grid(volume), "quoteVolume": fmt_grid((volume * (o + cl) / 2).quantize(m.tick * m.step)),
            "trades": str(klines.trade_count(c))}


def fmt_grid(d: Decimal) -> str:
    """Fixed point with the grid's decimals (``95000.10``), not normalised like ``fmt``."""
    return format(d, "f")


def kline_json(m: Market, c: Candle) -> dict:
    return {"start": kline_time(c.open_ms), "end": kline_time(c.close_ms), **_kline_values(m, c)}


def trade_json(t: PublicTrade) -> dict:
    return {"id": t.trade_no, "price": fmt(t.price), "quantity": fmt(t.qty),
            "quoteQuantity": fmt(t.price * t.qty), "timestamp": t.ts_ms, "isBuyerMaker": t.buyer_is_maker}


# -- WebSocket payloads (times in µs) ------------------------------------------------------------

def ws_book_ticker(m: Market, now_us: int) -> dict:
    return {"e": "bookTicker", "E": now_us, "s": m.symbol, "a": fmt(m.ask_price), "A": fmt(m.qty(m.ask_sz)),
            "b": fmt(m.bid_price), "B": fmt(m.qty(m.bid_sz)), "u": str(m.update_id), "T": m.ts_ms * 1000}


def ws_trade(t: PublicTrade, now_us: int) -> dict:
    # The replayed tape has no counterparties, so buyer/seller order ids are unknown.
    return {"e": "trade", "E": now_us, "s": t.market.symbol, "p": fmt(t.price), "q": fmt(t.qty),
            "b": None, "a": None, "t": t.trade_no, "T": t.ts_ms * 1000, "m": t.buyer_is_maker}


def ws_kline(m: Market, c: Candle, now_us: int) -> dict:
    v = _kline_values(m, c)
    return {"e": "kline", "E": now_us, "s": m.symbol, "t": iso(c.open_ms), "T": iso(c.close_ms),
            "o": v["open"], "c": v["close"], "h": v["high"], "l": v["low"], "v": v["volume"],
            "n": klines.trade_count(c), "X": True}


def ws_mark_price(m: Market, mark: Decimal, rate: Decimal, next_ms: int, ts_ms: int, now_us: int) -> dict:
    return {"e": "markPrice", "E": now_us, "s": m.symbol, "p": fmt(mark), "f": fmt(rate), "i": fmt(mark),
            "n": next_ms, "T": ts_ms * 1000}


ORDER_EVENTS = {"NEW": "orderAccepted", "TRADE": "orderFill", "CANCELED": "orderCancelled",
                "EXPIRED": "orderExpired"}


def ws_order_update(o: SimOrder, exec_type: str, fill: SimFill | None, ts_ms: int, now_us: int) -> dict:
    data = {
        "e": ORDER_EVENTS[exec_type], "E": now_us, "s": o.symbol, "c": client_id(o), "S": SIDE_NAMES[o.side],
        "o": TYPE_NAMES[o.type].upper(), "f": "GTC" if o.tif is TimeInForce.POST_ONLY else o.tif.value,
        "q": fmt(o.qty), "p": opt(o.price), "X": STATUS_NAMES[o.status], "i": str(o.order_id),
        "z": fmt(o.filled_qty), "Z": fmt(o.filled_quote), "r": o.reduce_only,
        "O": "LIQUIDATION_AUTOCLOSE" if o.origin == "LIQUIDATION" else "USER", "T": ts_ms * 1000,
    }
    if fill is not None:
        data.update(t=fill.trade_no, l=fmt(fill.qty), L=fmt(fill.price), m=fill.is_maker, n=fmt(fill.fee),
                    N=fill.fee_asset)
    return data


def ws_position(p: Position, m: Market, account: str, event: str | None, ts_ms: int, now_us: int) -> dict:
    """`account.positionUpdate` payload; ``event`` None is the subscription snapshot (no ``e``)."""
    rest = position_json(p, m, account)
    data = {"E": now_us, "s": p.symbol, "b": rest["entryPrice"], "B": rest["breakEvenPrice"],
            "f": IMF["base"], "M": rest["markPrice"], "m": MMF["base"], "q": rest["netQuantity"],
            "Q": rest["netExposureQuantity"], "n": rest["netExposureNotional"], "i": rest["positionId"],
            "p": rest["pnlRealized"], "P": rest["pnlUnrealized"], "l": "0", "T": ts_ms * 1000}
    if event is not None:
        data["e"] = event
    return data

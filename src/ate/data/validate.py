"""Checks on incoming market data. Each returns None when the value is acceptable, else a reason.

A value that fails is quarantined by the manager (counted, never passed on). ``last`` is the last
value that was accepted for the same market.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from ate.data.candles import Candle
from ate.model.market import BookTicker, MarkPrice, Trade

MAX_JUMP = 10  # a new value more than 10x (or under 1/10) the last accepted one is treated as poisoned


def _bad_decimal(*values: Decimal) -> str | None:
    for v in values:
        if not v.is_finite():
            return "nan"
        if v <= 0:
            return "non_positive"
    return None


def _jumped(new: Decimal | float, last: Decimal | float) -> bool:
    return new > last * MAX_JUMP or new * MAX_JUMP < last


def _follows(ts: int, value: Decimal | float, last_ts: int, last_value: Decimal | float) -> str | None:
    """A value after the last accepted one of its series: not earlier, and not 10x away."""
    if ts < last_ts:
        return "out_of_order"
    if _jumped(value, last_value):
        return "jump"
    return None


def check_book(b: BookTicker, last: BookTicker | None, *, jump: bool = True) -> str | None:
    """``jump=False`` when a :class:`ate.data.price_guard.PriceGuard` judges the price level instead."""
    # Hot path: ordering comparisons on a Decimal NaN raise InvalidOperation, which stands in for four
    # is_finite() calls; only an infinite ask can pass the ordering checks, so that one is tested.
    try:
        if not 0 < b.bid < b.ask:
            return "non_positive" if b.bid <= 0 or b.ask <= 0 else "crossed"
        if b.bid_qty < 0 or b.ask_qty < 0:
            return "bad_size"
    except InvalidOperation:
        return "nan"
    if not b.ask.is_finite():
        return "nan"
    if last is not None:
        if b.update_id and last.update_id:
            if b.update_id < last.update_id:
                return "out_of_order"
        elif b.ts_ms < last.ts_ms:
            return "out_of_order"
        if jump and (_jumped(b.bid, last.bid) or _jumped(b.ask, last.ask)):
            return "jump"
    return None


def check_candle(c: Candle, last: Candle | None) -> str | None:
    prices = (c.open, c.high, c.low, c.close)
    if not all(math.isfinite(p) for p in prices) or not math.isfinite(c.volume):
        return "nan"
    if min(prices) <= 0 or c.volume < 0:
        return "non_positive"
    if c.high < max(c.open, c.close) or c.low > min(c.open, c.close):
        return "inconsistent_ohlc"
    if c.open_ms % c.interval_ms:
        return "misaligned"
    return None if last is None else _follows(c.open_ms, c.close, last.open_ms, last.close)


def check_mark(m: MarkPrice, last: MarkPrice | None) -> str | None:
    reason = _bad_decimal(m.mark)
    if reason is not None:
        return reason
    if m.funding_rate is not None and not m.funding_rate.is_finite():
        return "nan"
    if m.index is not None and (not m.index.is_finite() or m.index <= 0):
        return "non_positive" if m.index.is_finite() else "nan"
    return None if last is None else _follows(m.ts_ms, m.mark, last.ts_ms, last.mark)


def check_trade(t: Trade, last: Trade | None) -> str | None:
    reason = _bad_decimal(t.price, t.qty)
    if reason is not None:
        return reason
    if last is not None and _jumped(t.price, last.price):
        return "jump"
    return None


def check_dvol(c: Candle, last: Candle | None) -> str | None:
    if not math.isfinite(c.close) or c.close <= 0:
        return "nan" if not math.isfinite(c.close) else "non_positive"
    return None if last is None else _follows(c.open_ms, c.close, last.open_ms, last.close)

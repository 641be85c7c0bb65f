"""A candle, mark or DVOL value after the last accepted one of its series: an earlier timestamp is out of
order, a value more than 10x (or under a tenth of) the last is a jump; the same timestamp and anything
within 10x pass (the manager drops same-time repeats as duplicates, not as poison)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ate.data.candles import MINUTE_MS, Candle
from ate.data.validate import check_candle, check_dvol, check_mark
from ate.model.market import MarkPrice

T = 1_700_000_040_000 - 1_700_000_040_000 % MINUTE_MS


def candle(ts: int, close: float) -> Candle:
    return Candle(ts, close, close, close, close, 1.0)


def mark(ts: int, price: float) -> MarkPrice:
    return MarkPrice("binance_usdm", "BTCUSDT", D(repr(price)), None, None, None, ts)


CASES = [((T - MINUTE_MS, 100.0), "out_of_order"), ((T - MINUTE_MS, 5000.0), "out_of_order"),
         ((T, 100.0), None), ((T + MINUTE_MS, 999.0), None), ((T + MINUTE_MS, 1000.5), "jump"),
         ((T + MINUTE_MS, 10.01), None), ((T + MINUTE_MS, 9.99), "jump")]


@pytest.mark.parametrize(("new", "reason"), CASES)
@pytest.mark.parametrize(("make", "check"), [(candle, check_candle), (candle, check_dvol), (mark, check_mark)],
                         ids=["candle", "dvol", "mark"])
def test_a_value_follows_the_last_accepted_one(make, check, new, reason):
    assert check(make(*new), make(T, 100.0)) == reason
    assert check(make(*new), None) is None  # the first of a series has nothing to follow

"""Review 4 (issue 16): a clock stepping back over 00:00 UTC must not move the day a daily-loss breach belongs to.

The tracker keeps its day when the clock steps back (only a later day re-anchors), but it recorded a breach
seen then under the earlier calendar day: the day it tracks then read "not breached", so once equity recovered
below the limit the risk layer let entries through again on the very day the limit was hit (the rule is: blocked
for the rest of that day), and a second CRITICAL breach was raised for it.
"""

from __future__ import annotations

from decimal import Decimal

from ate.risk import DailyLossTracker
from ate.risk.daily import DAY_MS
from ate.risk.events import RISK_BREACH

D = Decimal


def test_a_breach_seen_while_the_clock_stepped_back_over_midnight_stays_on_the_tracked_day(store, clock):
    clock.advance(DAY_MS - clock() % DAY_MS + 60_000)  # 00:01 UTC
    today = clock() - clock() % DAY_MS
    daily = DailyLossTracker(store, D("300"), clock)
    daily.update(D("10000"))
    clock.advance(60_000)
    assert daily.update(D("9650")) == D("350") and daily.breached_day == today
    clock.advance(-3 * 60_000)  # the clock steps back to 23:59 of the day before, still in breach
    assert daily.update(D("9650")) == D("350")
    assert (daily.day_ms, daily.breached_day) == (today, today)
    clock.advance(5 * 60_000)  # forward again; equity recovers below the limit
    assert daily.update(D("9800")) == D("200")
    assert daily.breached_day == daily.day_ms == today  # entries stay blocked for the rest of the day
    assert len(store.events(kind=RISK_BREACH)) == 1

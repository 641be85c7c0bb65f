from __future__ import annotations

from decimal import Decimal

from ate.model import Position
from ate.risk import DailyLossTracker, pnl_total
from ate.risk.daily import DAY_MS
from ate.risk.events import RISK_BREACH

D = Decimal


def test_loss_from_midnight_anchor_and_breach_event_once_per_day(store, clock):
    daily = DailyLossTracker(store, D("300"), clock)
    assert daily.update(D("10000")) == 0
    clock.advance(3_600_000)
    assert daily.update(D("10200")) == 0  # up on the day
    clock.advance(3_600_000)
    assert daily.update(D("9750")) == D("250")
    clock.advance(60_000)
    assert daily.update(D("9700")) == D("300")
    clock.advance(60_000)
    daily.update(D("9600"))
    breaches = store.events(kind=RISK_BREACH)
    assert len(breaches) == 1 and breaches[0].data["value"] == "300"
    assert abs(daily.loss_fraction - 0.04) < 1e-12 and daily.peak == D("10200")
    clock.advance(DAY_MS)  # a new UTC day: anchor = last equity seen, so the loss restarts at 0
    assert daily.update(D("9600")) == 0


def test_flows_are_not_profit_or_loss(store, clock):
    daily = DailyLossTracker(store, D("300"), clock)
    daily.update(D("10000"))
    assert daily.update(D("7000"), flow=D("-3000")) == 0  # a withdrawal
    assert daily.peak == D("7000") and daily.drawdown == 0
    assert daily.update(D("6900")) == D("100")


def test_rebase_after_resume(store, clock):
    daily = DailyLossTracker(store, D("300"), clock)
    daily.update(D("10000"))
    daily.update(D("8000"))
    daily.rebase()
    assert daily.loss == 0 and daily.drawdown == 0
    assert DailyLossTracker(store, D("300"), clock).e_day0 == D("8000")


def test_pnl_total_counts_fees_and_funding():
    p = Position("binance", "BTCUSDT", D("0.1"), D("50000"), realized_pnl=D("12"), fees=D("3"), funding=D("1.5"),
                 mark_price=D("51000"))
    assert pnl_total([p, Position("backpack", "BTC_USDC")]) == D("110.5")

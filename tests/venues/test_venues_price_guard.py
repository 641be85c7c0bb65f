"""The market-data filter's price guard, on the cases of issue 14: a first price of 7/8 while BTC trades near
70,000; a market locked for good after one bad anchor; a 9x spike, a drop to 11 % and a 50 % spread passing."""

from __future__ import annotations

from decimal import Decimal

from ate.data.manager import MarketDataManager
from ate.data.price_guard import QUARANTINED, REANCHORED, RECOVERED, GuardBounds, PriceGuard
from ate.model.market import BookTicker

D = Decimal
KEY = ("binance", "BTCUSDT")


class Recorder:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.events: list[tuple[str, dict]] = []

    def guard(self, **bounds) -> PriceGuard:
        return PriceGuard(GuardBounds(**bounds), ask_reference=self.asked.append,
                          on_event=lambda kind, key, data: self.events.append((kind, data)))


def book(mid: str, spread: str = "1", ts: int = 0, uid: int = 0) -> BookTicker:
    m, s = D(mid), D(spread)
    return BookTicker("binance", "BTCUSDT", m - s / 2, D("1"), m + s / 2, D("1"), uid, ts)


def check(guard: PriceGuard, mid: str, spread: str = "1", ts: int = 0) -> str | None:
    b = book(mid, spread, ts)
    return guard.check(KEY, b.bid, b.ask, ts)


def test_first_price_is_checked_against_the_reference():
    rec = Recorder()
    g = rec.guard()
    assert check(g, "7.875", "0.01") == "no_reference" and rec.asked == [KEY]  # nothing to judge it by: ask, refuse
    g.set_reference(KEY, D("70000"), 1, "rest ticker")
    assert check(g, "7.875", "0.01") == "off_reference"
    assert check(g, "70100") is None and g.anchor(KEY) == D("70100")


def test_spike_drop_and_wide_spread_are_quarantined_and_the_band_follows_confirmed_prices():
    rec = Recorder()
    g = rec.guard()
    g.set_reference(KEY, D("70000"), 0, "rest ticker")
    assert check(g, "70000") is None
    assert check(g, str(70000 * 9)) == "spike"
    assert check(g, str(70000 * 0.11)) == "drop"
    assert check(g, "70000", spread="35000") == "wide_spread"
    assert g.anchor(KEY) == D("70000")  # none of them moved the anchor
    for price in ("72000", "74000", "76000", "78000"):  # a real rally of under 5 % a step is followed
        assert check(g, price) is None
    assert g.anchor(KEY) == D("78000")
    assert [k for k, _ in rec.events] == [QUARANTINED, RECOVERED]
    assert rec.events[0][1]["reason"] == "spike" and rec.events[1][1]["reasons"] == {"spike": 1, "drop": 1,
                                                                                        "wide_spread": 1}


def test_a_market_is_never_locked_for_good():
    """A bad anchor (or a real jump while disconnected) would refuse every real book as a jump; after
    `reanchor_after` quarantined books the guard asks for a fresh reference and follows it."""
    rec = Recorder()
    g = rec.guard(reanchor_after=5)
    g.set_reference(KEY, D("60000"), 0, "rest ticker")
    assert check(g, "60000") is None
    results = [check(g, "70000", ts=i) for i in range(1, 6)]  # the market really is at 70,000 now
    assert results == ["spike"] * 5 and rec.asked == [KEY]
    g.set_reference(KEY, D("70010"), 6, "rest ticker")
    assert check(g, "70000", ts=7) is None
    kinds = [k for k, _ in rec.events]
    assert kinds == [QUARANTINED, REANCHORED, RECOVERED]
    assert rec.events[1][1] == {"from": "60000.0", "to": "70010", "source": "rest ticker", "quarantined": 5, "ts_ms": 6}


def test_a_poisoned_feed_stays_quarantined_after_the_reanchor_and_requests_are_spaced():
    rec = Recorder()
    g = rec.guard(reanchor_after=3, reanchor_after_ms=10_000)
    g.set_reference(KEY, D("70000"), 0, "rest ticker")
    assert check(g, "70000") is None
    assert [check(g, "7.875", "0.001", ts=t) for t in (1, 2, 3)] == ["drop"] * 3 and len(rec.asked) == 1
    g.set_reference(KEY, D("70000"), 4, "rest ticker")  # the venue's REST says the feed is wrong
    assert [check(g, "7.875", "0.001", ts=t) for t in (5, 6, 7, 8, 9)] == ["off_reference"] * 5
    assert len(rec.asked) == 1  # a second request only after ask_interval_ms
    assert check(g, "7.875", "0.001", ts=1_010) == "off_reference" and len(rec.asked) == 2
    g.reference_failed(KEY)
    assert check(g, "70000", ts=1_011) is None


def test_manager_with_a_guard_counts_reasons_and_passes_only_confirmed_books():
    rec = Recorder()
    manager = MarketDataManager(guard=rec.guard())
    seen = []
    manager.subscribe("book", seen.append)
    manager.guard.set_reference(KEY, D("70000"), 0, "rest ticker")
    for i, (mid, spread) in enumerate([("70000", "1"), ("630000", "1"), ("7700", "1"), ("70000", "35000"),
                                        ("70050", "1")], start=1):
        manager.on_book(book(mid, spread, ts=i, uid=i))
    assert [b.update_id for b in seen] == [1, 5]
    assert manager.quarantine_counts() == {"book:drop": 1, "book:spike": 1, "book:wide_spread": 1}

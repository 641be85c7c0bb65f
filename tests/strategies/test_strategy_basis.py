"""The USDT/USDC basis as a live market gating arbitrage across quotes (issue 19, item 1).

Invariants: no entry is emitted while the basis is missing, stale, invalid or outside the band; the veto
raises exactly one CRITICAL event with its reason; entries resume only after an uninterrupted stay inside
the band for `basis_resume_s`; a restart keeps a veto in force; a fixed rate is an explicit override.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ate.config.strategies import ArbitrageConfig
from ate.model import Instrument, MarketKind, Severity
from ate.strategies.arbitrage import ArbitrageStrategy
from ate.strategies.base import SimpleContext

A, B, CONV = "binance:BTCUSDT", "backpack:BTC_USDC", "binance:USDCUSDT"
T0 = 1_678_500_000_000  # 2023-03-11
BINANCE = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"),
                     D("0.00001"), D("9000"), D("0.01"), D("1000000"), D("5"))
BACKPACK = Instrument("backpack", "BTC_USDC", "BTC", "USDC", MarketKind.SPOT, D("0.01"), D("0.00001"),
                      D("0.00001"))
USDCUSDT = Instrument("binance", "USDCUSDT", "USDC", "USDT", MarketKind.SPOT, D("0.0001"), D("1"), D("1"))


def ctx_at(rate_bid: str, rate_ask: str, *, b_bid: str = "22990", b_ask: str = "23000") -> SimpleContext:
    """Binance BTCUSDT at 20,000; Backpack BTC_USDC and the USDCUSDT book as given (all fresh)."""
    ctx = SimpleContext(now_ms=T0, instruments={A: BINANCE, B: BACKPACK, CONV: USDCUSDT})
    ctx.set_book(A, "19999", "20000", "1", "1")
    ctx.set_book(B, b_bid, b_ask, "1", "1")
    ctx.set_book(CONV, rate_bid, rate_ask, "100000", "100000")
    for venue, asset, amount in (("binance", "USDT", "50000"), ("binance", "BTC", "1"),
                                 ("backpack", "USDC", "50000"), ("backpack", "BTC", "1")):
        ctx.set_balance(venue, asset, amount)
    return ctx


def kinds(s: ArbitrageStrategy) -> list[tuple[str, Severity]]:
    return [(e.kind, e.severity) for e in s.drain_events()]


def tick(s: ArbitrageStrategy, ctx: SimpleContext, ms: int, rate: str | None = None):
    """Advance the clock, refresh every book (the conversion at `rate` if given), return B's answer."""
    ctx.now_ms += ms
    for m, b in list(ctx.books.items()):
        bid, ask = (rate, rate) if (m == CONV and rate is not None) else (str(b.bid), str(b.ask))
        if m == CONV and rate is not None:
            bid = str(D(rate) - D("0.0001"))
        ctx.set_book(m, bid, ask, str(b.bid_qty), str(b.ask_qty))
    return s.on_book(B, ctx)


def test_depeg_outside_band_vetoes_a_huge_apparent_edge():
    """USDC at 0.87 USDT: BTC_USDC 22,990 is 15 % above BTCUSDT at a rate of 1, nothing at the real basis."""
    ctx = ctx_at("0.8699", "0.8701")
    s = ArbitrageStrategy(ArbitrageConfig(min_attempt_interval_ms=0))
    assert s.on_book(B, ctx) == ()
    m = s.metrics()
    assert m["basis"]["veto"] == "basis -1300.0 bps outside ±30 bps"
    assert m["basis"]["rate"] == pytest.approx(0.87)
    assert m["basis_source"] == "mid"
    assert m["opportunities_detected"] == 0  # at the live basis there is nothing to take
    ev = s.drain_events()
    assert [(e.kind, e.severity) for e in ev] == [("arbitrage.basis_veto", Severity.CRITICAL)]
    assert ev[0].data["reason"] == "basis -1300.0 bps outside ±30 bps" and ev[0].data["rate"] == "0.8700"
    assert tick(s, ctx, 1000) == ()
    assert kinds(s) == []  # one alert per veto, not one per book


def test_in_band_trades_and_veto_holds_until_back_in_band_for_resume_time():
    ctx = ctx_at("0.9999", "1.0001", b_bid="20100", b_ask="20110")  # 50 bps raw edge, in band
    s = ArbitrageStrategy(ArbitrageConfig(min_attempt_interval_ms=0, basis_resume_s=300))
    first = s.on_book(B, ctx)
    assert len(first) == 2 and s.metrics()["basis"]["veto"] is None
    s.attempt = None  # the attempt's outcome does not matter here
    assert tick(s, ctx, 1000, "0.9950") == ()  # −50 bps: out
    assert kinds(s) == [("arbitrage.basis_veto", Severity.CRITICAL)]
    assert tick(s, ctx, 1000, "1.0000") == ()  # back in band: the resume clock starts
    assert tick(s, ctx, 200_000) == ()
    assert s.metrics()["basis"]["veto"] == "basis back inside the band for 200 of 300 s"
    assert tick(s, ctx, 50_000, "0.9960") == ()  # out again: the clock restarts
    assert tick(s, ctx, 1000, "1.0000") == ()
    assert tick(s, ctx, 299_000) == ()
    assert s.skipped["basis"] == 4
    resumed = tick(s, ctx, 1000)
    assert len(resumed) == 2
    assert kinds(s) == [("arbitrage.basis_resumed", Severity.WARNING)]


def test_stale_or_invalid_conversion_vetoes():
    ctx = ctx_at("0.9999", "1.0001", b_bid="20100", b_ask="20110")
    s = ArbitrageStrategy(ArbitrageConfig(conversion_max_age_s=60))
    ctx.set_book(CONV, "0.9999", "1.0001", ts_ms=T0 - 61_000)
    assert s.on_book(B, ctx) == ()
    assert s.metrics()["basis"]["veto"] == "binance:USDCUSDT stale (61 s old)"
    ctx.set_book(CONV, "1.0001", "0.9999")  # crossed: quarantined, not used
    assert s.on_book(B, ctx) == ()
    assert s.metrics()["basis"]["veto"] == "binance:USDCUSDT quarantined (crossed)"
    assert kinds(s) == [("arbitrage.basis_veto", Severity.CRITICAL)]


def test_conversion_book_alone_drives_the_guard():
    """A depeg seen on the conversion market vetoes at once, before either leg's book moves."""
    ctx = ctx_at("0.9999", "1.0001")
    s = ArbitrageStrategy()
    s.on_book(B, ctx)
    ctx.set_book(CONV, "0.9600", "0.9602")
    assert s.on_book(CONV, ctx) == ()
    assert kinds(s) == [("arbitrage.basis_veto", Severity.CRITICAL)]


def test_cross_from_the_two_legs_and_refusal_of_a_wrong_cross():
    ctx = ctx_at("0.9999", "1.0001", b_bid="23000", b_ask="23000.02")
    cross = ArbitrageStrategy(ArbitrageConfig(conversion_cross=(A, B)))
    assert cross.subscriptions() == (A, B)
    assert cross.on_book(B, ctx) == ()
    m = cross.metrics()["basis"]
    assert m["source"] == "cross" and m["rate"] == pytest.approx(19999.5 / 23000.01)
    assert m["veto"].startswith("basis -1304.")
    wrong = ArbitrageStrategy(ArbitrageConfig(conversion_cross=(B, A)))  # USDC per USDT: upside down
    assert wrong.on_book(B, ctx) == ()
    ev = wrong.drain_events()
    assert [(e.kind, e.severity) for e in ev] == [("arbitrage.basis_config", Severity.CRITICAL),
                                                  ("arbitrage.basis_veto", Severity.CRITICAL)]
    assert "is not USDT per USDC" in ev[0].message


def test_band_disabled_trades_at_the_live_basis_and_fixed_rate_is_an_override():
    ctx = ctx_at("0.8699", "0.8701")
    live = ArbitrageStrategy(ArbitrageConfig(basis_band_bps=None))
    assert live.on_book(B, ctx) == ()  # at the real basis there is no edge
    assert live.metrics()["basis"]["veto"] is None
    fixed = ArbitrageStrategy(ArbitrageConfig(conversion_rate=1.0))
    assert fixed.subscriptions() == ()
    intents = fixed.on_book(B, ctx)  # the pre-guard failure: USDC valued at 1 shows a 15 % "edge"
    assert len(intents) == 2 and fixed.metrics()["basis"]["source"] == "fixed"
    assert fixed.quote_rates() == {}


def test_restart_keeps_the_veto_and_quote_rates_report_the_live_basis():
    ctx = ctx_at("0.9899", "0.9901", b_bid="20300", b_ask="20310")
    s = ArbitrageStrategy()
    s.on_book(B, ctx)
    assert s.quote_rates() == {"USDC": ("USDT", D("0.99"))}
    saved = s.state()
    s2 = ArbitrageStrategy()
    s2.restore(saved)
    ctx.set_book(CONV, "0.9999", "1.0001")
    assert s2.on_book(B, ctx) == ()  # in band again, but the resume time has not passed since the restart
    assert s2.metrics()["basis"]["veto"].startswith("basis back inside the band")
    assert kinds(s2) == []  # the veto was already alerted before the restart

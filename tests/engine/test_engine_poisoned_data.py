"""Poisoned market data through the full engine: the simulator's poison faults on the real wire protocols, the
engine in paper mode with an eager arbitrage. No order is ever placed on a poisoned price, every poisoning is
quarantined and recorded, and each market recovers (issue 14, item 5)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import EAGER_ARB, data_present, sim_config, world

from ate.data.price_guard import QUARANTINED, RECOVERED

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]
BAND = Decimal("0.05")  # March 2026 BTC never moved 5 % within these minutes: beyond it is poison


def mid(book) -> Decimal:
    return (book.bid + book.ask) / 2


async def test_poisoned_prices_never_reach_an_order_and_the_market_recovers(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="paper", engine_sections=EAGER_ARB) as (sim, engine, drive, _):
        accepted: list = []
        engine.data.subscribe("book", accepted.append)
        await drive.run(60_000, 15_000)
        base = {(b.venue, b.symbol): mid(b) for b in accepted}
        assert {("binance", "BTCUSDT"), ("backpack", "BTC_USDC")} <= set(base)
        orders_before = len(engine.store.orders())
        shocked_from = len(accepted)

        sim.inject("spike", venue="backpack", symbol="BTC_USDC", factor=9, ticks=3)
        sim.inject("drop", venue="binance-spot", symbol="BTCUSDT", factor=0.11, ticks=3)
        await drive.run(60_000, 15_000)
        sim.inject("nan_price", venue="backpack", count=2)
        sim.inject("crossed_book", venue="backpack", count=2)
        sim.inject("zero_price", venue="binance-spot", count=2)
        sim.inject("negative_price", venue="binance-spot", count=2)
        await drive.run(4 * 60_000, 15_000)

        assert sim.faults.counts["spike"] == 1 and sim.faults.counts["drop"] == 1
        counts = engine.data.quarantine_counts()
        assert counts.get("book:spike", 0) >= 1 and counts.get("book:drop", 0) >= 1, counts
        assert counts.get("book:nan", 0) >= 1 and counts.get("book:non_positive", 0) >= 1, counts
        assert counts.get("book:crossed", 0) + counts.get("book:locked", 0) >= 1, counts
        for b in accepted:  # nothing poisoned was ever passed on to the strategies
            key = (b.venue, b.symbol)
            if key in base:
                assert abs(mid(b) / base[key] - 1) < BAND, (b, base[key])
        assert engine.core.quarantined == 0  # the core never even saw one (the manager stopped them)
        for o in engine.store.orders():  # and no order carries a poisoned price
            ref = base.get((o.venue, o.symbol))
            if o.price is not None and ref is not None:
                assert abs(o.price / ref - 1) < BAND, o
        # recovered: both markets keep delivering confirmed books after the shocks, and trading went on
        after = accepted[shocked_from:]
        for key in (("binance", "BTCUSDT"), ("backpack", "BTC_USDC")):
            assert sum(1 for b in after if (b.venue, b.symbol) == key) > 10, key
            assert abs(mid(engine.data.book(*key)) / base[key] - 1) < BAND
        assert len(engine.store.orders()) > orders_before, "the arbitrage kept trading after the poisoning"
        events = engine.store.events(kind=QUARANTINED, limit=100)
        reasons = {(e.data["venue"], e.data["reason"]) for e in events}
        assert ("backpack", "spike") in reasons and ("binance", "drop") in reasons, reasons
        recovered = {e.data["venue"] for e in engine.store.events(kind=RECOVERED, limit=100)}
        assert {"backpack", "binance"} <= recovered


async def test_a_market_with_a_50_percent_spread_is_never_traded(tmp_path, monkeypatch):
    cfg = sim_config()
    markets = [m.model_copy(update={"spread_bps": 5000}) if m.venue == "backpack" else m for m in cfg.markets]
    cfg = cfg.model_copy(update={"markets": markets})
    async with world(tmp_path, monkeypatch, mode="paper", sim_cfg=cfg,
                     engine_sections=EAGER_ARB) as (sim, engine, drive, _):
        await drive.run(2 * 60_000, 15_000)
        assert engine.data.quarantine_counts().get("book:wide_spread", 0) > 0
        assert engine.data.book("backpack", "BTC_USDC") is None
        assert [o for o in engine.store.orders() if o.venue == "backpack"] == []
        ev = engine.store.events(kind=QUARANTINED, limit=10)
        assert any(e.data["venue"] == "backpack" and e.data["reason"] == "wide_spread" for e in ev)

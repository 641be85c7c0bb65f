"""A one-legged arbitrage whose unwinds keep failing, against the simulator in canary mode: Backpack's book
moves beyond the unwind cap each time an arbitrage order reaches it (a thin book), and Binance halts right
after the entry (its orders are refused, its book stands still, so its price goes untrusted). The strategy
retries with backoff on both venues, reports the position stuck (CRITICAL event, `ate status`) after its
retries, and matches it once the venues take orders again: nothing stays blocked, nothing is lost."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from engine_support import assert_venue_orders_known, data_present, settle, world

from ate.monitor.status import stored_status
from ate.sim.backpack_face import BackpackFace
from ate.strategies.arbitrage import STUCK_AFTER

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]

EAGER_ARB = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                           "conversion_rate": 1.0, "max_unwind_slippage_bps": 100, "max_notional": 100}}
MOVE_BPS = 200  # beyond the unwind cap: nothing sent to Backpack fills while the book is hostile


class HostileVenues:
    """While `hostile`, every arbitrage order reaching Backpack finds the book moved MOVE_BPS against it;
    the second one (the completion, sent once the entry legs are done) also halts Binance until `calm()`."""

    def __init__(self, sim, monkeypatch) -> None:
        self.sim = sim
        self.hostile = True
        self.posts = 0
        original = BackpackFace._dispatch

        async def dispatch(face, request, path, handler):
            if self.hostile and request.method == "POST" and path == "/api/v1/order":
                self.posts += 1
                self.move(json.loads(await request.text()))
                if self.posts == 2:
                    sim.inject("halt", venue="binance-spot", symbol="BTCUSDT")
            return await original(face, request, path, handler)

        monkeypatch.setattr(BackpackFace, "_dispatch", dispatch)

    def calm(self) -> None:
        self.hostile = False
        self.sim.inject("resume", venue="binance-spot", symbol="BTCUSDT")

    def move(self, body: dict) -> None:
        m = self.sim.core.markets["backpack", body["symbol"]]
        shift = max(1, m.bid_t * MOVE_BPS // 10_000)
        shift = shift if body["side"] == "Bid" else -shift
        self.sim.core.update_book(m, m.bid_t + shift, m.ask_t + shift, m.bid_sz, m.ask_sz, self.sim.clock.now_ms())


async def test_a_stuck_one_legged_arbitrage_is_retried_reported_and_matched(tmp_path, monkeypatch):
    sections = {"strategies": EAGER_ARB, "canary": {"initial_capital": 10000, "max_position_size": 0.05,
                                                    "daily_loss_limit": 1000}}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections) as (sim, engine, drive, _):
        venues = HostileVenues(sim, monkeypatch)
        arb = engine.core.by_name["arbitrage"]
        for _ in range(60):
            await drive.step(5_000)
            if arb.stuck is not None:
                break
        assert venues.posts >= 2 and arb.stuck is not None
        att = arb.attempt
        assert att is not None and att.retries == STUCK_AFTER
        (crit,) = engine.store.events(kind="arbitrage.stuck")
        assert crit.severity == "critical" and crit.data["attempt"] == att.id
        assert Decimal(crit.data["residual"]) == att.base_excess() != 0
        shown = stored_status(engine.store)["arbitrage_stuck"]  # `ate status`
        assert shown["attempt"] == att.id and Decimal(shown["residual"]) == att.base_excess()
        retries = engine.store.events(kind="arbitrage.unwind_retry", limit=100)
        assert len(retries) == STUCK_AFTER
        legs = {o.meta["leg"] for o in engine.store.orders() if o.meta.get("attempt") == att.id}
        # the retries alternate: Backpack's reached the venue and missed; Binance's were refused by risk (its
        # halted book stood still, so no trusted price) and never reached the venue
        assert {"buy", "sell", "complete", "retry1", "retry3", "retry5"} <= legs and not legs & {"retry2", "retry4"}
        assert engine.core.orders.stats.rejected_by_risk.get("no_trusted_price", 0) >= 2

        # the venues take orders again: the next retry matches the position, the block lifts
        venues.calm()
        for _ in range(40):
            await drive.step(5_000)
            await settle(lambda: not engine.core.orders.open_orders(), rounds=500)
            if arb.attempt is None or arb.attempt.id != att.id:
                break
        assert arb.stuck is None and (arb.attempt is None or arb.attempt.id != att.id), arb.metrics()
        assert [e.data["attempt"] for e in engine.store.events(kind="arbitrage.unstuck")] == [att.id]
        assert stored_status(engine.store)["arbitrage_stuck"] is None

        # every fill of the attempt is in the store and they net to zero base (or dust below both minimums)
        orders = [o for o in engine.store.orders() if o.meta.get("attempt") == att.id]
        ids = {o.client_order_id for o in orders}
        fills = [f for f in engine.store.fills() if f.client_order_id in ids]
        assert sum((f.qty for f in fills), Decimal(0)) > 0
        net = sum((f.side.sign * f.qty for f in fills), Decimal(0))
        assert abs(net) <= arb.dust + Decimal("0.00001"), net
        assert not engine.core.orders.open_orders()
        assert_venue_orders_known(sim, engine.store)


class PartialThenThin:
    """The first arbitrage order reaching Backpack fills PARTIAL of its quantity (the rest expires); the
    second (the completion) finds the book moved MOVE_BPS against it."""

    PARTIAL = 0.85

    def __init__(self, sim, monkeypatch) -> None:
        self.posts = 0
        original = BackpackFace._dispatch

        async def dispatch(face, request, path, handler):
            if request.method == "POST" and path == "/api/v1/order":
                self.posts += 1
                if self.posts == 1:
                    sim.inject("partial_fill", venue="backpack", symbol="BTC_USDC", fraction=self.PARTIAL)
                elif self.posts == 2:
                    HostileVenues.move(self, json.loads(await request.text()))
            return await original(face, request, path, handler)

        self.sim = sim
        monkeypatch.setattr(BackpackFace, "_dispatch", dispatch)


async def test_a_leftover_only_one_venue_can_trade_is_retried_there(tmp_path, monkeypatch):
    """The Backpack leg fills 85 %: ~0.00005 BTC (≈ 4 USD) is left, above Backpack's minimum but below
    Binance's 5 USDT minimum notional; the completion on Backpack misses (thin book), the revert on Binance
    is impossible. The retry goes to Backpack, the only venue that takes it, and matches the pair."""
    sections = {"strategies": EAGER_ARB, "canary": {"initial_capital": 10000, "max_position_size": 0.05,
                                                    "daily_loss_limit": 1000}}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections) as (sim, engine, drive, _):
        venues = PartialThenThin(sim, monkeypatch)
        arb = engine.core.by_name["arbitrage"]
        for _ in range(40):
            await drive.step(5_000)
            await settle(lambda: not engine.core.orders.open_orders(), rounds=500)
            if venues.posts >= 2 and arb.attempt is None:
                break
        orders = engine.store.orders()
        first = next(o.meta["attempt"] for o in orders if o.venue == "backpack")
        legs = {o.meta["leg"]: o for o in orders if o.meta.get("attempt") == first}
        entry = legs["buy"] if legs["buy"].venue == "backpack" else legs["sell"]
        other = legs["sell"] if entry is legs["buy"] else legs["buy"]
        left = other.filled_qty - entry.filled_qty
        assert other.filled_qty == other.qty and left > 0, [(k, o.filled_qty) for k, o in legs.items()]
        binance = engine.core.portfolio.instruments["binance:BTCUSDT"]
        assert left * other.price < binance.min_notional, "the leftover must be below Binance's minimum"
        assert legs["complete"].venue == "backpack" and legs["complete"].filled_qty == 0, "the thin book"
        assert "revert" not in legs
        assert legs["retry1"].venue == "backpack" and legs["retry1"].filled_qty == left
        assert arb.stuck is None and arb.dust == 0 and not engine.store.events(kind="arbitrage.stuck")
        assert_venue_orders_known(sim, engine.store)

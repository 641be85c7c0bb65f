"""Arbitrage with one leg missing, against the simulator in canary mode (real orders, real protocols): the
Backpack book moves away between the decision and the order's arrival, so that leg's IOC expires unfilled;
the strategy completes the pair within its slippage cap, and the loss is booked in its metrics and the
ledger."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from engine_support import assert_venue_orders_known, data_present, settle, world

from ate.model import Side
from ate.sim.backpack_face import BackpackFace

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]

EAGER_ARB = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                           "conversion_rate": 1.0, "max_unwind_slippage_bps": 30, "max_notional": 100}}
MOVE_BPS = 12  # less than the unwind cap: the completion must fill


class MovingBook:
    """The first arbitrage order reaching Backpack finds the book moved MOVE_BPS against it."""

    def __init__(self, sim, monkeypatch) -> None:
        self.sim = sim
        self.moved: dict | None = None
        original = BackpackFace._dispatch

        async def dispatch(face, request, path, handler):
            if self.moved is None and request.method == "POST" and path == "/api/v1/order":
                self.move(json.loads(await request.text()))
            return await original(face, request, path, handler)

        monkeypatch.setattr(BackpackFace, "_dispatch", dispatch)

    def move(self, body: dict) -> None:
        m = self.sim.core.markets["backpack", body["symbol"]]
        shift = max(1, m.bid_t * MOVE_BPS // 10_000)
        shift = shift if body["side"] == "Bid" else -shift  # a buy finds the ask higher, a sell the bid lower
        self.moved = {"side": body["side"], "price": Decimal(body["price"]), "before": (m.bid_t, m.ask_t)}
        self.sim.core.update_book(m, m.bid_t + shift, m.ask_t + shift, m.bid_sz, m.ask_sz, self.sim.clock.now_ms())


async def test_one_legged_arbitrage_is_completed_within_the_cap_and_the_loss_booked(tmp_path, monkeypatch):
    sections = {"strategies": EAGER_ARB, "canary": {"initial_capital": 10000, "max_position_size": 0.05,
                                                    "daily_loss_limit": 100}}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections) as (sim, engine, drive, _):
        mover = MovingBook(sim, monkeypatch)
        arb = engine.core.by_name["arbitrage"]
        for _ in range(120):
            await drive.step(15_000)
            await settle(lambda: arb.attempt is None and not engine.core.orders.open_orders(), rounds=500)
            if arb.one_legged:
                break
        assert mover.moved is not None and arb.one_legged == 1, arb.metrics()
        assert arb.attempt is None and arb.stuck is None, "the pair was completed, nothing left unmatched"

        orders = engine.store.orders()
        attempt = next(o.meta["attempt"] for o in orders if o.meta.get("leg") == "complete")
        legs = {o.meta["leg"]: o for o in orders if o.meta.get("attempt") == attempt}
        assert set(legs) == {"buy", "sell", "complete"}
        missed = legs["buy" if mover.moved["side"] == "Bid" else "sell"]
        assert missed.venue == "backpack" and missed.filled_qty == 0
        filled = legs["sell" if missed is legs["buy"] else "buy"]
        complete = legs["complete"]
        assert complete.venue == "backpack" and complete.side is missed.side
        assert complete.filled_qty == filled.filled_qty > 0, "the excess was traded away in full"

        # the completion filled within the unwind cap of the missed leg's price
        fills = {f.client_order_id: f for f in engine.store.fills()}
        c = fills[complete.client_order_id]
        ref = missed.price
        slip_bps = (c.price - ref if complete.side is Side.BUY else ref - c.price) / ref * 10_000
        assert Decimal(MOVE_BPS) - 2 <= slip_bps <= Decimal(30), slip_bps

        # the loss: cash flows of the attempt's fills (USDC counted 1:1 like the strategy), minus their fees
        attempt_fills = [f for f in engine.store.fills() if f.client_order_id in
                         {o.client_order_id for o in legs.values()}]
        cash = sum((-f.side.sign * f.qty * f.price for f in attempt_fills), Decimal(0))
        fees = sum((f.fee * (f.price if f.fee_asset == "BTC" else 1) for f in attempt_fills), Decimal(0))
        metrics = arb.metrics()
        assert metrics["one_legged"] == 1 and metrics["losses"] >= 1
        assert Decimal(repr(metrics["unwind_loss_usd"])) > 0
        assert cash - fees < 0
        assert abs(Decimal(repr(metrics["unwind_loss_usd"])) + (cash - fees)) < Decimal("0.000001")
        # the ledger holds every fee of the attempt, on the strategy, by trade
        ledger = {e["ref"]: e for e in engine.store.ledger(kind="fee")}
        for f in attempt_fills:
            entry = ledger[f"fee:{f.venue}:{f.symbol}:{f.trade_id}"]
            assert entry["strategy"] == "arbitrage" and Decimal(entry["amount"]) == -f.fee
        assert [e for e in engine.store.events(kind="arbitrage.unwind") if e.data["attempt"] == attempt]
        assert_venue_orders_known(sim, engine.store)

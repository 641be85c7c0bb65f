"""A paper run's fills are hypothetical: a canary (or live) run on the same store must never take them for
its own book. Otherwise the canary's positions, risk and close-all plan hold inventory the venue never
traded, and close-all would sell pre-funded balances or hedge a position that does not exist.

Paper, then shadow, then canary on one store over the simulator's wire: order ids stay unique across the
three, and the canary's daily-loss anchor, strategy phases and positions are its own."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import EAGER_ARB, data_present, settle, sim_orders, world
from test_engine_ledger_findings import QUIET, ioc

from ate.config import parse_config
from ate.engine import Engine
from ate.model import OrderStatus, Side
from ate.risk.capital import limits_from_config
from ate.risk.closeall import plan_venue
from ate.risk.events import DAILY_KEY

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]


async def close_all_plan(engine: Engine) -> dict[tuple[str, str], Decimal]:
    """What `ate close-all` would close, planned as it plans: the store's real-book spot positions and the
    venues' own holdings, read through the venue clients."""
    engine_spot = {(p.venue, p.symbol): p.qty for p in engine.store.positions() if p.qty > 0}
    limits = limits_from_config(engine.cfg)
    out: dict[tuple[str, str], Decimal] = {}
    for name, client in engine.clients.items():
        if name == "deribit":
            continue
        spot = {s: q for (vn, s), q in engine_spot.items() if vn == name}
        plan = await plan_venue(client, spot, {}, limits, engine.clock.now_ms)
        for c in plan.closes:
            out[(c.intent.venue, c.intent.symbol)] = c.intent.qty
    return out


async def test_paper_fills_never_become_a_later_canarys_book(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="paper", engine_sections=EAGER_ARB) as (sim, paper, drive, raw):
        await drive.run(10 * 60_000, 15_000)
        paper_fills = paper.store.fills(shadow=True)
        assert paper_fills, "the paper run traded"
        paper_positions = {(p.venue, p.symbol): p.qty for p in paper.store.positions(shadow=True) if p.qty}
        assert paper_positions, "the paper run left a hypothetical position"
        paper_ids = {o.client_order_id for o in paper.store.orders()}
        paper_daily = paper.store.get_state("shadow." + DAILY_KEY)
        assert paper_daily is not None, "the paper book's daily-loss anchor is kept apart"
        for key in (DAILY_KEY, "signals", "strategy.arbitrage"):  # the real book's anchor, emergency, phases
            assert paper.store.get_state(key) is None, key
        await paper.stop()  # the paper run ends; the canary starts on the same store
        drive.engine = None

        shadow = Engine(parse_config({**raw, "mode": "shadow", "strategies": QUIET}), clock=drive.clock)
        await shadow.start()
        drive.engine = shadow
        await drive.run(30_000, 15_000)
        shadow_order = ioc(shadow, "binance:BTCUSDT", Side.BUY, "0.002")
        assert shadow_order is not None and shadow_order.client_order_id not in paper_ids
        await shadow.stop()
        for key in (DAILY_KEY, "signals", "strategy.arbitrage"):
            assert shadow.store.get_state(key) is None, key

        canary = Engine(parse_config({**raw, "mode": "canary", "strategies": QUIET}), clock=drive.clock)
        await canary.start()
        drive.engine = canary
        try:
            await drive.run(30_000, 15_000)
            assert canary.store.fills(shadow=False) == []
            assert [p for p in canary.store.positions() if p.qty] == []
            for key in canary.instruments:
                assert canary.core.portfolio.position(key).qty == 0, key
                assert canary.core.risk.position(key) == 0, key
            assert await close_all_plan(canary) == {}, "close-all plans only what the venues hold for the engine"
            arb = canary.core.book_state.get_state("strategy.arbitrage") or {}
            assert not arb.get("open"), "the paper arbitrage's phases are not the canary's"
            daily = canary.store.get_state(DAILY_KEY)
            assert daily is not None and daily["peak"] != paper_daily["peak"]

            order = ioc(canary, "binance:BTCUSDT", Side.BUY, "0.002")
            assert order is not None, [(e.kind, e.message) for e in canary.store.events() if "emergency" in e.message or "ladder" in e.kind or "state" in e.kind]
            assert order.client_order_id not in paper_ids | {shadow_order.client_order_id}
            stored = canary.store.get_order
            assert await settle(lambda: stored(order.client_order_id).status is OrderStatus.FILLED, rounds=3000)
            assert [o.client_order_id for o in sim_orders(sim)] == [order.client_order_id]
            filled = stored(order.client_order_id).filled_qty
            assert filled == order.qty > 0  # as the canary's risk sized it
            # held: what the buy left after the venue took its fee in BTC
            held = filled - sum(f.fee for f in canary.store.fills(shadow=False) if f.fee_asset == "BTC")
            assert canary.core.portfolio.position("binance:BTCUSDT").qty == held
            assert canary.core.risk.position("binance:BTCUSDT") == held
            sellable = canary.core.portfolio.instruments["binance:BTCUSDT"].round_qty(held)
            assert await close_all_plan(canary) == {("binance", "BTCUSDT"): sellable}
        finally:
            drive.engine = None
            await canary.stop()

"""Paper mode: live books from the simulator's wire protocols, fills from the in-process matching core.

Nothing reaches the venue, and the engine's ledger equals the paper account of the matching core to the
cent: the same accounting as against a real venue, with the venue swapped for the core."""

from __future__ import annotations

import pytest
from engine_support import ACCOUNT, EAGER_ARB, RequestCounter, data_present, world

from ate.sim.paper import ACCOUNT as PAPER

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]



async def test_paper_fills_in_process_and_ledger_equals_the_paper_account(tmp_path, monkeypatch):
    requests = RequestCounter(monkeypatch)
    async with world(tmp_path, monkeypatch, mode="paper", engine_sections=EAGER_ARB) as (sim, engine, drive, _):
        await drive.run(10 * 60_000, 15_000)
        core, paper = engine.core, engine.paper.core
        arb = core.by_name["arbitrage"].metrics()
        assert arb["trades_executed"] > 0
        paper_trades = [t for (venue, symbol) in paper.markets for t in paper.trades_for(PAPER, venue, symbol)]
        assert paper_trades, "paper orders are matched by the in-process core"
        assert core.portfolio.balances["backpack"]["BTC"] != sim_btc(sim), "paper trades moved paper balances only"
        assert len(engine.store.fills()) == len(paper_trades)
        for venue in ("binance", "backpack"):
            mine = {a: v for a, v in core.portfolio.balances[venue].items() if v}
            theirs = {a: b.total for a, b in paper.balances(PAPER, venue).items() if b.total}
            assert {a: round(v, 2) for a, v in mine.items()} == {a: round(v, 2) for a, v in theirs.items()}
        assert requests.order_posts() == 0
        for venue, symbol in sim.core.markets:
            assert sim.core.all_orders(ACCOUNT, venue, symbol) == []


def sim_btc(sim):
    """The venue's own account never moves in paper mode."""
    return sim.core.balances(ACCOUNT, "backpack")["BTC"].total

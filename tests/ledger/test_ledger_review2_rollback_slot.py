"""Review 2 (strategies/per_market.py + TradingCore._reload_from_store): a unit that raises while the process
lives on (a busy database) is rolled back, and what it changed in memory is rebuilt from the store. A slot
with no saved state of its own (a market added to the config since the last save) must come back flat too:
its order's write-ahead was rolled back, so nothing will ever answer the order it is waiting for."""

from __future__ import annotations

import sqlite3

import pytest
from ledger_support import SPOT, START_MS, Clock, ScriptVenue, before_statements, book
from sqlalchemy.exc import OperationalError
from test_ledger_per_market_kill import ETH
from test_ledger_review2_removed_market import start

from ate.store import Store


class BusyOnce:
    """The next write-ahead of an order fails as a locked SQLite database does."""

    def __init__(self, store: Store) -> None:
        self.armed = False
        before_statements(store, self._before)

    def _before(self, statement: str) -> None:
        if self.armed and statement.lstrip().upper().startswith("INSERT INTO ORDERS"):
            self.armed = False
            raise OperationalError(statement, (), sqlite3.OperationalError("database is locked"))


@pytest.mark.parametrize("history", ["market_added", "fresh_store"])
def test_a_rolled_back_decision_of_a_slot_without_saved_state_leaves_it_flat(tmp_path, history):
    url = f"sqlite:///{tmp_path}/ate.db"
    clock = Clock(START_MS)
    if history == "market_added":
        store = Store(url)
        start(store, clock, (SPOT,)).on_timer()  # a run on BTC only saved the strategy's state
        assert set(store.get_state("strategy.slots")["markets"]) == {SPOT.key}
        store.close()

    store = Store(url)  # ETH added to the config
    busy = BusyOnce(store)
    venue = ScriptVenue()
    core = start(store, clock, (SPOT, ETH), venue)
    busy.armed = True
    with pytest.raises(OperationalError):
        core.on_book(book(ETH, "2999", "3001", clock.now))
    assert store.orders() == []  # the decision's write-ahead rolled back: no order exists, none was sent
    assert venue.sent == []
    slot = core.by_name["slots"].slots[ETH.key]
    try:
        assert slot.phase == "flat", "the slot waits for an order that does not exist"
        clock.now += 1_000
        core.on_book(book(ETH, "2999", "3001", clock.now))
        assert [o.symbol for o in venue.sent] == ["ETHUSDT"]
    finally:
        store.close()

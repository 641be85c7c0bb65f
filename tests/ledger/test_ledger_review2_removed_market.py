"""Review 2 (strategies/per_market.py): a market dropped from a per-market strategy's config with an open
position raises a critical alert that says "close it by hand or configure it again". Configuring it again
must resume that market's slot (its phase, its filled quantity, hence its exits and stop): the saved state
may not be erased by the run that did not trade it."""

from __future__ import annotations

from decimal import Decimal

from ledger_support import CFG, INSTRUMENTS, SPOT, START_MS, Clock, ScriptVenue
from test_ledger_per_market_kill import ETH, Entry

from ate.config import parse_config
from ate.store import Store
from ate.strategies.per_market import PerMarket
from ate.trading.core import TradingCore

D = Decimal


def start(store: Store, clock: Clock, markets, venue: ScriptVenue | None = None) -> TradingCore:
    slots = PerMarket("slots", {i.key: Entry(i) for i in markets})
    core = TradingCore(parse_config(CFG, env={}), instruments=(*INSTRUMENTS, ETH), strategies=[slots], clock=clock,
                       state=store, store=store)
    core.attach(venue or ScriptVenue())
    return core


def test_a_market_configured_again_resumes_its_open_slot(tmp_path):
    url = f"sqlite:///{tmp_path}/ate.db"
    store = Store(url)
    clock = Clock(START_MS)
    first = start(store, clock, (SPOT, ETH))
    eth = first.by_name["slots"].slots[ETH.key]
    eth.phase, eth.filled = "open", "0.01"  # ETH's slot holds an open position
    first.on_timer()  # a minute's persist saves every strategy's state
    assert store.get_state("strategy.slots")["markets"][ETH.key]["phase"] == "open"
    store.close()

    store = Store(url)  # the user drops ETH from the config for a run: the alert is raised
    clock.now += 120_000
    only_btc = start(store, clock, (SPOT,))
    clock.now += 120_000
    only_btc.on_timer()  # a minute's persist
    store.close()

    store = Store(url)  # ...and configures it again, as the alert says
    clock.now += 120_000
    again = start(store, clock, (SPOT, ETH)).by_name["slots"].slots[ETH.key]
    try:
        assert (again.phase, D(again.filled)) == ("open", D("0.01")), "ETH's open position was forgotten"
    finally:
        store.close()

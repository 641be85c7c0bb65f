"""Review 4 (issue 16): the msgspec encoding of strategy state (merge ef94021) must store what `json` stored.

A plug-in's `memory` is documented as "a dict of JSON values": Python's `json` writes a dict keyed by ints (a
ladder of rungs, bars by index) with its keys as text. msgspec's sorted encoder refuses such a dict, so the
unit that writes the strategy's state ahead of its orders fails: the orders are never sent and the state never
saved, on every decision of that strategy.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from ledger_support import SPOT, Clock, ScriptVenue, make_core, open_pair

from ate.model import OrderIntent, Side
from ate.model.intent import Purpose
from ate.store import Store
from ate.strategies.base import NO_INTENTS
from ate.strategies.guard import Guarded
from ate.strategies.plugin import UserStrategy
from ate.trading.core import _encode

D = Decimal


class Rungs(UserStrategy):
    """Buys the first rung on the first spot book; remembers its rungs by number (int keys, as Python allows)."""

    name = "rungs"

    def on_book(self, market, ctx):
        if market != SPOT.key or self.memory:
            return NO_INTENTS
        self.memory["rungs"] = {1: "70010", 2: "69000"}
        self.memory["next"] = 2
        return [OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.01"), D("70010"), self.name, Purpose.ENTRY,
                            meta={"rung": 1})]


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'ate.db'}")
    yield s
    s.close()


def test_a_plugin_memory_keyed_by_ints_is_saved_with_its_order_and_read_back_as_json_would(store):
    clock, venue = Clock(), ScriptVenue()
    core = make_core(store, clock, venue, strategies=[Guarded(Rungs())])
    open_pair(core, clock)
    assert [(o.side, o.qty, o.price) for o in venue.sent] == [(Side.BUY, D("0.01"), D("70010"))]
    saved = store.get_state("strategy.rungs")
    assert saved["memory"] == {"rungs": {"1": "70010", "2": "69000"}, "next": 2}  # as json.dumps stored it
    restarted = make_core(store, Clock(clock.now + 60_000), ScriptVenue(), strategies=[Guarded(Rungs())])
    assert restarted.strategies[0].inner.memory == saved["memory"]


def test_state_encoding_keeps_json_s_text_for_int_keys():
    state = {"b": {2: 1.5, 10: "x"}, "a": [1, {3: None}]}
    assert json.loads(_encode(state)) == json.loads(json.dumps(state, sort_keys=True, default=str))


class Warmup(UserStrategy):
    """Keeps its EMA as NaN until warmed up (a float the docs' "numbers" admit); trades on the first spot book."""

    name = "warmup"

    def on_book(self, market, ctx):
        if market != SPOT.key or "ema" in self.memory:
            return NO_INTENTS
        self.memory["ema"] = float("nan")
        return [OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.01"), D("70010"), self.name, Purpose.ENTRY)]


def test_a_plugin_memory_holding_nan_reads_back_as_none_after_a_restart(store):
    """NaN is not JSON: saved as null, as docs/strategies.md says (PostgreSQL's JSON would refuse it), so both
    stores give back the same value and the save never fails."""
    clock = Clock()
    core = make_core(store, clock, ScriptVenue(), strategies=[Guarded(Warmup())])
    open_pair(core, clock)
    restarted = make_core(store, Clock(clock.now + 60_000), ScriptVenue(), strategies=[Guarded(Warmup())])
    assert restarted.strategies[0].inner.memory == {"ema": None}

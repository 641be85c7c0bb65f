"""The injection API itself: the catalogue of kinds, refusals with clear errors, the pure helpers,
and the one balance notification of a transfer."""

from __future__ import annotations

from decimal import Decimal as D

from sim_core_support import ROOT
from sim_faults_support import small_config

from ate.sim.clock import ManualClock
from ate.sim.faults import Faults, poison_book
from ate.sim.inject import KINDS, Injector
from ate.sim.runner import build_world


def test_every_kind_is_injectable_and_unknown_kinds_are_named():
    assert {"deposit", "withdraw", "liquidate", "halt", "resume", "spike", "drop", "maintenance", "ioc_ordering",
            "http_429", "http_5xx", "http_timeout", "reject", "cancel_202", "partial_fill", "ws_drop", "ws_stall",
            "ws_duplicate", "ws_reorder", "ws_malformed", "stale", "depth_gap", "crossed_book", "locked_book",
            "zero_price", "negative_price", "nan_price"} == set(KINDS)
    core, replayer, clock, _ = build_world(small_config(), ManualClock(), base_dir=ROOT)
    injector = Injector(core, replayer, Faults(), clock.now_ms)
    try:
        injector.inject("earthquake")
    except ValueError as exc:
        assert "unknown fault kind 'earthquake'" in str(exc) and "withdraw" in str(exc)
    else:
        raise AssertionError("an unknown kind must be refused")
    for kind, params, why in (("ws_duplicate", {"symbol": "BTCUSDT"}, "whole venue"),
                              ("http_429", {"retry": 3}, "unknown parameter(s) retry"),
                              ("partial_fill", {"fraction": 1.5}, "between 0 and 1"),
                              ("spike", {"venue": "binance-spot", "factor": 0.5}, "above 1"),
                              ("ioc_ordering", {"order": "sideways"}, "rest_first or stream_first")):
        try:
            injector.inject(kind, **params)
        except ValueError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"{kind} {params} must be refused")
    for bad in ({"amount": "-1"}, {"amount": "NaN"}):
        try:
            injector.inject("deposit", account="alice", venue="binance-spot", asset="BTC", **bad)
        except ValueError as exc:
            assert "positive" in str(exc)
        else:
            raise AssertionError(f"{bad} must be refused")


def test_poison_book_rewrites_the_best_live_level_of_either_order():
    binance = {"b": [["100.1", "2"], ["100.0", "0"]], "a": [["100.2", "1"]]}
    backpack = {"b": [["99.9", "1"], ["100.1", "2"], ["100.15", "0"]], "a": [["100.2", "1"], ["100.3", "0"]]}
    assert poison_book(binance, "crossed_book")["b"][0][0] == "100.2"
    assert poison_book(backpack, "crossed_book")["b"][1] == ["100.2", "2"]
    assert poison_book(backpack, "crossed_book")["a"][0] == ["100.1", "1"]
    assert poison_book({"b": "1", "a": "2", "u": 7}, "negative_price") == {"b": "-1", "a": "-2", "u": 7}
    assert binance["b"][0][0] == "100.1"  # the original message is untouched


def test_a_zero_starting_balance_is_no_transfer():
    cfg = small_config(accounts=[{"id": "z", "balances": {"binance-spot": {"USDT": "0", "BTC": "2"}}}])
    core, _, _, _ = build_world(cfg, ManualClock(), base_dir=ROOT)
    seen = []
    core.listen(lambda kind, payload: seen.append(payload))
    assert core.transfer("z", "binance-spot", "USDT", D(0)).free == 0 and seen == []
    core.transfer("z", "binance-spot", "BTC", D("-2"))
    assert [(e.reason, e.delta, e.assets[0].free) for e in seen] == [("WITHDRAW", D(-2), D(0))]

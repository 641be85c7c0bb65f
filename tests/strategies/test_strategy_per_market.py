"""One strategy over a list of markets (ate.strategies.per_market): each market's slot acts on its own
market's decisions, owns its own orders, is busy only with its own orders in flight, and its state is
saved and restored per market (a state saved before lists of markets is the first market's)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal as D

from test_strategy_directional import SPOT_I, decision, fill, make_ctx

from ate.config.strategies import DirectionalConfig, StrategiesConfig
from ate.model import Severity
from ate.strategies.directional import DirectionalStrategy
from ate.strategies.factory import build_strategies
from ate.strategies.per_market import PerMarket

BTC, ETH = "binance:BTCUSDT", "binance:ETHUSDT"
ETH_I = replace(SPOT_I, symbol="ETHUSDT", base="ETH", min_qty=D("0.0001"), step_size=D("0.0001"))


def two() -> tuple[PerMarket, object]:
    cfg = DirectionalConfig(markets=[BTC, ETH])
    s = PerMarket("directional", {m: DirectionalStrategy(cfg, m) for m in cfg.markets})
    ctx = make_ctx()
    ctx.instruments[ETH] = ETH_I
    ctx.set_book(ETH, "2999", "3000")
    return s, ctx


def test_each_slot_acts_on_its_own_markets_decisions_and_orders():
    s, ctx = two()
    (btc_entry,) = s.on_decision(decision(), ctx)
    assert btc_entry.symbol == "BTCUSDT"
    # ETH's order is in flight: BTC's slot is not blocked by it, ETH's is
    ctx.busy.add(f"directional@{ETH}")
    assert s.slots[ETH].on_decision(decision(market=ETH, close=3000.0, atr_value=30.0), ctx) == ()
    ctx.busy.clear()
    (eth_entry,) = s.on_decision(decision(market=ETH, close=3000.0, atr_value=30.0), ctx)
    assert (eth_entry.symbol, eth_entry.qty) == ("ETHUSDT", D("0.06"))  # 180 USD at 3,000
    fill(s, ctx, eth_entry, "3000")  # routed by the order's market: only ETH's slot holds it
    assert s.slots[ETH].phase == "open" and s.slots[BTC].phase == "entering"
    fill(s, ctx, btc_entry, "60000")
    m = s.metrics()
    assert m["markets"][BTC]["position"]["qty"] == 0.003 and m["markets"][ETH]["phase"] == "open"
    assert (m["wins"], m["losses"], m["round_trips"]) == (0, 0, 0)  # the account-wide counts the monitor reads
    assert {e.market for e in s.exposures()} == {BTC, ETH}


def test_state_per_market_round_trips_and_the_single_market_form_resumes_as_the_first():
    s, ctx = two()
    (eth_entry,) = s.on_decision(decision(market=ETH, close=3000.0, atr_value=30.0), ctx)
    fill(s, ctx, eth_entry, "3000")
    saved = json.loads(json.dumps(s.state()))
    assert set(saved["markets"]) == {BTC, ETH} and saved["markets"][BTC]["phase"] == "flat"
    again, _ = two()
    again.restore(saved)
    assert again.state() == s.state()

    single = DirectionalStrategy()  # a state written before lists of markets (one market, top level)
    (entry,) = single.on_decision(decision(), ctx)
    fill(single, ctx, entry, "60000")
    upgraded, _ = two()
    upgraded.restore(json.loads(json.dumps(single.state())))
    assert upgraded.slots[BTC].state() == single.state() and upgraded.slots[ETH].phase == "flat"


def test_a_market_dropped_from_the_config_with_saved_state_is_a_critical_alert():
    s, ctx = two()
    (eth_entry,) = s.on_decision(decision(market=ETH, close=3000.0, atr_value=30.0), ctx)
    fill(s, ctx, eth_entry, "3000")
    saved = json.loads(json.dumps(s.state()))
    (only_btc,) = build_strategies(StrategiesConfig.model_validate(
        {"directional": {"markets": [BTC]}, "arbitrage": {"enabled": False}, "funding_carry": {"enabled": False}}))
    only_btc.restore(saved)
    (alert,) = only_btc.drain_events()
    assert alert.kind == "directional.market_removed" and alert.severity is Severity.CRITICAL
    assert alert.data["market"] == ETH and alert.data["state"]["phase"] == "open"
    # its state is carried forward (configuring it again resumes it); a rollback's reload does not alert again
    assert only_btc.state()["markets"][ETH] == saved["markets"][ETH]
    only_btc.restore(json.loads(json.dumps(only_btc.state())))
    assert only_btc.drain_events() == []

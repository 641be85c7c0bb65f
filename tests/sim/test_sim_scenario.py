"""Scenario files: validated with clear errors, played on the simulator's clock by one player (the
same one ``ate simulate --scenario`` uses), one test per event kind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal as D
from pathlib import Path

import pytest
from sim_core_support import KEY, ROOT, SECRET, START_MS
from sim_faults_support import small_config

from ate.model import OrderType, Side
from ate.sim.clock import SteppingClock
from ate.sim.runner import run_simulator
from ate.sim.scenario import Scenario, ScenarioError
from ate.venues.binance.signing import sign_params

SPOT, USDM = "binance-spot", "binance-usdm"
EXAMPLE = ROOT / "configs" / "scenarios" / "demo-faults.json"


def test_the_brief_example_parses_and_durations_convert():
    sc = Scenario.parse([
        {"at": "30s", "kind": "withdraw", "account": "a", "venue": SPOT, "asset": "BTC", "amount": "0.05"},
        {"at": "60s", "kind": "liquidate", "account": "a", "venue": USDM, "symbol": "BTCUSDT"},
        {"at": "90s", "kind": "spike", "venue": "backpack", "factor": 3, "ticks": 2},
        {"at": "120s", "kind": "ioc_ordering", "order": "rest_first"},
        {"at": 1500, "kind": "halt", "venue": SPOT, "symbol": "BTCUSDT", "duration": "2m"},
        {"at": "0.5h", "kind": "crossed_book", "venue": SPOT, "count": 3},
    ])
    assert [e.at for e in sc.events] == [30_000, 60_000, 90_000, 120_000, 1500, 1_800_000]
    assert sc.events[4].params() == {"venue": SPOT, "symbol": "BTCUSDT", "duration_ms": 120_000}
    assert sc.events[0].params()["amount"] == D("0.05")


def test_every_problem_is_reported_with_its_event_and_field():
    with pytest.raises(ScenarioError) as exc:
        Scenario.parse([
            {"at": "30 parsecs", "kind": "withdraw", "account": "a", "venue": SPOT, "asset": "BTC", "amount": "-1"},
            {"at": "1s", "kind": "earthquake"},
            {"at": "1s", "kind": "spike", "venue": SPOT, "factor": 0.5},
            {"at": "1s", "kind": "ioc_ordering", "order": "sideways", "color": "red"},
        ], "bad.json")
    problems = exc.value.problems
    assert any(p.startswith("event[0].at:") and "duration" in p for p in problems)
    assert any(p.startswith("event[0].amount:") and "greater than 0" in p for p in problems)
    assert any(p.startswith("event[1]") and "earthquake" in p for p in problems)
    assert any(p.startswith("event[2].factor:") for p in problems)
    assert any(p.startswith("event[3].order:") for p in problems)
    assert any(p.startswith("event[3].color:") and "not permitted" in p for p in problems)
    assert str(exc.value).startswith("bad.json: ")
    with pytest.raises(ScenarioError) as exc:
        Scenario.parse({"at": "1s"})
    assert exc.value.problems[0].startswith("scenario:")


async def _sim():
    return run_simulator(small_config(), clock=SteppingClock(), faces=[], base_dir=ROOT)  # the world, no servers


async def test_events_naming_unknown_accounts_or_markets_are_refused_before_play():
    sc = Scenario.parse([{"at": "1s", "kind": "deposit", "account": "mallory", "venue": SPOT, "asset": "BTC",
                          "amount": "1"},
                         {"at": "1s", "kind": "halt", "venue": SPOT, "symbol": "ETHUSDT"},
                         {"at": "1s", "kind": "maintenance", "venue": "backpack"}])
    async with await _sim() as sim:
        with pytest.raises(ScenarioError) as exc:
            sim.play(sc)
    assert exc.value.problems == ["event[0].account: no simulated account 'mallory'",
                                  "event[1].symbol: no simulated market binance-spot:ETHUSDT",
                                  "event[2].venue: no simulated market on backpack"]


def _open_perp(sim) -> None:
    sim.core.place_order("alice", USDM, "BTCUSDT", Side.BUY, OrderType.MARKET, D("0.1"))


# kind → (event fields, set-up, what has happened once it ran)
CASES = {
    "deposit": ({"account": "alice", "venue": SPOT, "asset": "BTC", "amount": "0.5"}, None,
                lambda sim: sim.core.balances("alice", SPOT)["BTC"].free == D("1.5")),
    "withdraw": ({"account": "alice", "venue": SPOT, "asset": "BTC", "amount": "0.05"}, None,
                 lambda sim: sim.core.balances("alice", SPOT)["BTC"].free == D("0.95")),
    "liquidate": ({"account": "alice", "venue": USDM, "symbol": "BTCUSDT"}, _open_perp,
                  lambda sim: sim.core.positions("alice", USDM)["BTCUSDT"].qty == 0),
    "halt": ({"venue": SPOT, "symbol": "BTCUSDT"}, None, lambda sim: sim.core.market(SPOT, "BTCUSDT").halted),
    "resume": ({"venue": SPOT, "symbol": "BTCUSDT"}, lambda sim: sim.core.halt(SPOT, "BTCUSDT"),
               lambda sim: not sim.core.market(SPOT, "BTCUSDT").halted),
    "spike": ({"venue": SPOT, "factor": 4, "ticks": 1}, None,
              lambda sim: sim.core.market(SPOT, "BTCUSDT").bid_price > 300_000),
    "drop": ({"venue": SPOT, "symbol": "BTCUSDT", "factor": 0.25, "ticks": 1}, None,
             lambda sim: sim.core.market(SPOT, "BTCUSDT").bid_price < 30_000),
    "maintenance": ({"venue": SPOT, "duration": "10m"}, None, lambda sim: sim.faults.maintenance(SPOT)),
    "ioc_ordering": ({"order": "stream_first", "venue": SPOT}, None,
                     lambda sim: sim.faults.ioc_order(SPOT) == "stream_first"),
    "http_429": ({"venue": SPOT, "retry_after_s": 9}, None, lambda sim: sim.faults.rate_limited(SPOT) == 9),
    "partial_fill": ({"venue": SPOT, "symbol": "BTCUSDT", "fraction": 0.5}, None,
                     lambda sim: sim.core.place_order("alice", SPOT, "BTCUSDT", Side.BUY, OrderType.MARKET,
                                                      D("0.02"))[0].filled_qty == D("0.01")),
    **{kind: ({"venue": SPOT}, None, lambda sim, kind=kind: sim.faults.armed(kind))
       for kind in ("ws_drop", "ws_stall", "ws_duplicate", "ws_reorder", "ws_malformed", "stale", "depth_gap",
                    "crossed_book", "locked_book", "zero_price", "negative_price", "nan_price", "reject",
                    "cancel_202")},
    "http_5xx": ({"venue": SPOT}, None, lambda sim: sim.faults.http_fault(SPOT) == "5xx"),
    "http_timeout": ({"venue": SPOT}, None, lambda sim: sim.faults.http_fault(SPOT) == "timeout"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_each_event_kind_runs_when_the_replay_reaches_its_time(kind):
    fields, setup, happened = CASES[kind]
    async with await _sim() as sim:
        if setup is not None:
            setup(sim)
        sc = Scenario.parse([{"at": "3m", "kind": kind, **fields}])
        sim.play(sc)
        sim.advance(150_000)
        assert not happened(sim), "ran before its time"
        sim.advance(45_000)
        assert happened(sim) and sc.failures == []


async def test_a_refused_event_is_recorded_and_the_play_goes_on():
    async with await _sim() as sim:
        sc = Scenario.parse([
            {"at": "1m", "kind": "withdraw", "account": "alice", "venue": SPOT, "asset": "BTC", "amount": "7"},
            {"at": "1m", "kind": "liquidate", "account": "alice", "venue": USDM, "symbol": "BTCUSDT"},
            {"at": "2m", "kind": "deposit", "account": "alice", "venue": SPOT, "asset": "BTC", "amount": "1"}])
        sim.play(sc)
        sim.advance(180_000)
    assert [(at, kind) for at, kind, _ in sc.failures] == [(60_000, "withdraw"), (60_000, "liquidate")]
    assert sim.core.balances("alice", SPOT)["BTC"].free == D(2)


def test_the_shipped_example_validates_against_the_demo_world():
    sc = Scenario.load(EXAMPLE)
    kinds = {e.kind for e in sc.events}
    assert {"withdraw", "deposit", "liquidate", "spike", "ioc_ordering", "halt", "maintenance"} <= kinds
    demo = json.loads((ROOT / "configs" / "demo.json").read_text())["sim"]
    accounts = {a["id"] for a in demo["accounts"]}
    markets = {(m["venue"], m["symbol"]) for m in demo["markets"]}
    for e in sc.events:
        assert getattr(e, "account", None) in (None, *accounts)
        if getattr(e, "symbol", None):
            assert (e.venue, e.symbol) in markets


def test_simulate_with_a_bad_scenario_exits_2_naming_the_problem(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"at": "5s", "kind": "withdraw", "account": "demo", "venue": SPOT,
                                "asset": "BTC", "amount": "lots"}]))
    exe = Path(sys.executable).with_name("ate")
    done = subprocess.run([str(exe), "simulate", "--config", str(ROOT / "configs" / "demo.json"),
                           "--scenario", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"--scenario {bad}: event[0].amount:" in done.stderr


def test_simulate_plays_a_scenario_in_replayed_time_on_the_wall_clock(tmp_path: Path):
    cfg = json.loads((ROOT / "configs" / "demo.json").read_text())
    cfg["sim"] = {"speed": 600, "start_ms": START_MS,  # wall clock: a replayed minute is 0.1 s
                  "accounts": [{"id": "t", "binance_api_key": KEY, "binance_api_secret": SECRET,
                                "balances": {SPOT: {"BTC": "1"}}}],
                  "markets": [{"venue": SPOT, "symbol": "BTCUSDT",
                               "data": small_config().markets[0].data}]}
    config, scenario = tmp_path / "sim.json", tmp_path / "scenario.json"
    config.write_text(json.dumps(cfg))
    scenario.write_text(json.dumps([{"at": "1m", "kind": "withdraw", "account": "t", "venue": SPOT,
                                     "asset": "BTC", "amount": "0.25"}]))
    exe = Path(sys.executable).with_name("ate")
    proc = subprocess.Popen([str(exe), "simulate", "--config", str(config), "--scenario", str(scenario)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rest = proc.stdout.readline().split()[2]
        free = None
        for _ in range(100):  # the withdrawal lands one replayed minute in
            q = sign_params(SECRET, [("timestamp", str(int(time.time() * 1000)))])
            req = urllib.request.Request(f"{rest}/api/v3/account?{q}", headers={"X-MBX-APIKEY": KEY})
            with urllib.request.urlopen(req, timeout=5) as r:
                free = next(D(b["free"]) for b in json.loads(r.read())["balances"] if b["asset"] == "BTC")
            if free != 1:
                break
            time.sleep(0.05)
        assert free == D("0.75")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from decimal import Decimal

import pytest
from risk_support import SPOT
from typer.testing import CliRunner

from ate.cli import app
from ate.config.risk import CanaryConfig, CapitalStagesConfig, KillSwitchConfig, RiskLimits
from ate.model import Mode, OrderIntent, OrderType, Purpose, Side, TradingState
from ate.risk import KillSwitch, PreTradeChecker, Reason, TradingStateKeeper, limits_in_force
from ate.risk.events import KILL_SWITCH, TRADING_STATE
from ate.risk.state import read_state

D = Decimal
pytestmark = pytest.mark.timeout(30)


class Venues:
    """Open orders on two venues; ``cancel_all`` is what the engine's order manager would do."""

    def __init__(self) -> None:
        self.open = {"binance": {"a1", "a2"}, "backpack": {"b1"}}
        self.fail_next = False

    async def cancel_all(self) -> int:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("venue down")
        n = sum(len(v) for v in self.open.values())
        for v in self.open.values():
            v.clear()
        return n


def make(store, clock, tmp_path, flattener=None, **cfg):
    keeper = TradingStateKeeper(store, clock)
    checker = PreTradeChecker(limits_in_force(Mode.PAPER, RiskLimits(), CanaryConfig(), CapitalStagesConfig(),
                                              None), clock)
    keeper.subscribe(checker.set_state)
    venues = Venues()
    ks = KillSwitch(KillSwitchConfig(**cfg), keeper, venues.cancel_all, flattener, workdir=tmp_path,
                    sleep=clock.sleep)
    return ks, keeper, checker, venues


def entry(purpose=Purpose.ENTRY, side=Side.BUY, qty="0.001"):
    return OrderIntent("binance", "BTCUSDT", side, D(qty), None, "t", purpose, OrderType.MARKET)


async def test_file_noticed_within_poll_period_and_cancels_everything(store, clock, tmp_path):
    ks, keeper, checker, venues = make(store, clock, tmp_path, poll_ms=250)
    task = asyncio.create_task(ks.run())
    await clock.run_for(700)  # the engine runs for a while: nothing happens
    assert keeper.state is TradingState.ACTIVE and venues.open["binance"]
    created = clock.now
    (tmp_path / "EMERGENCY_STOP").write_text("operator panic")
    while keeper.state is not TradingState.HALTED:
        await clock.run_for(5)
    noticed = clock.now
    ks.stop()
    await clock.run_for(300)  # the loop sees the stop flag after its sleep
    assert task.done()
    assert noticed - created <= 250
    assert venues.open == {"binance": set(), "backpack": set()}
    assert read_state(store)["state"] == "HALTED" and read_state(store)["who"] == "file"
    ev = store.events(kind=KILL_SWITCH)[0]
    assert ev.data["canceled"] == 3 and ev.data["reason"] == "operator panic"


async def test_after_activation_only_close_all_until_resume(store, clock, tmp_path):
    ks, keeper, checker, _ = make(store, clock, tmp_path)
    checker.update_mark(SPOT.key, D(50000), clock.now)
    checker.set_position(SPOT, D("0.01"))
    await ks.activate("api call", "operator:alice")
    assert checker.state is TradingState.HALTED
    for purpose in (Purpose.ENTRY, Purpose.EXIT, Purpose.HEDGE, Purpose.UNWIND):
        assert checker.check(entry(purpose, Side.SELL), SPOT).reason is Reason.HALTED
    assert checker.check(entry(Purpose.CLOSE_ALL, Side.SELL), SPOT).approved
    # removing the file is not enough while HALTED is persisted
    ks.path.unlink(missing_ok=True)
    await ks.poll_once()
    assert checker.check(entry(), SPOT).reason is Reason.HALTED
    await ks.resume("operator:alice")
    assert checker.state is TradingState.ACTIVE and checker.check(entry(), SPOT).approved
    kinds = [(e.data["from"], e.data["to"], e.data["who"]) for e in reversed(store.events(kind=TRADING_STATE))]
    assert kinds == [("ACTIVE", "HALTED", "operator:alice"), ("HALTED", "ACTIVE", "operator:alice")]


async def test_failed_cancel_is_retried_and_flatten_runs_when_configured(store, clock, tmp_path):
    flattened = []

    async def flatten() -> int:
        flattened.append(clock.now)
        return 2

    ks, keeper, _, venues = make(store, clock, tmp_path, flattener=flatten, flatten=True)
    venues.fail_next = True
    await ks.activate("test", "t")
    assert keeper.state is TradingState.HALTED and venues.open["binance"] and not flattened
    await ks.poll_once()
    assert not venues.open["binance"] and len(flattened) == 1
    assert store.events(kind=KILL_SWITCH)[0].data == {"action": "activate", "who": "t", "reason": "test",
                                                      "canceled": 3, "flattened": 2}


async def test_flatten_is_off_by_default(store, clock, tmp_path):
    called = []

    async def flatten() -> int:
        called.append(1)
        return 0

    ks, *_ = make(store, clock, tmp_path, flattener=flatten)
    await ks.activate("test", "t")
    assert not called


async def test_sigusr1_activates(store, clock, tmp_path):
    ks, keeper, _, venues = make(store, clock, tmp_path)
    loop = asyncio.get_running_loop()
    ks.install_signal_handler(loop)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            await asyncio.sleep(0)
            if keeper.state is TradingState.HALTED and not venues.open["backpack"]:
                break
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert keeper.state is TradingState.HALTED and read_state(store)["who"] == "signal"
    assert not venues.open["backpack"]


async def test_cli_kill_and_resume_reach_a_running_engine(store, clock, tmp_path, monkeypatch):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"store": {"url": store.url}, "kill_switch": {"file": str(tmp_path / "EMERGENCY_STOP")}}))
    ks, keeper, checker, venues = make(store, clock, tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["kill", "--reason", "weird fills", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "EMERGENCY_STOP").exists() and read_state(store)["state"] == "HALTED"
    await ks.poll_once()  # the engine's next poll: adopts HALTED from the store and cancels
    assert checker.state is TradingState.HALTED and not venues.open["binance"]
    r = runner.invoke(app, ["resume", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "EMERGENCY_STOP").exists()
    await ks.poll_once()
    assert checker.state is TradingState.ACTIVE


def test_cli_kill_and_resume_without_config_refuse_and_touch_nothing(tmp_path, monkeypatch, capsys):
    """Which engine's files to act on is never guessed: resume on a default store once reported ACTIVE while the
    engine (on another store) stayed HALTED."""
    from ate.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATE_CONFIG", raising=False)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # main() configures logging; put it back after
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging.getLogger("aiohttp.access"), "level", logging.getLogger("aiohttp.access").level)
    for command in ("kill", "resume"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: which engine? `ate {command}`") and "--config" in err and "ATE_CONFIG" in err
    assert list(tmp_path.iterdir()) == []


async def test_restart_while_halted_cancels_again_at_first_poll(store, clock, tmp_path):
    ks, keeper, _, venues = make(store, clock, tmp_path)
    await ks.activate("first", "operator:bob")
    venues.open["binance"].add("left-over")  # e.g. placed just before the crash, never canceled
    restarted, keeper2, checker2, venues2 = make(store, clock, tmp_path)
    venues2.open = venues.open
    assert keeper2.state is TradingState.HALTED and checker2.state is TradingState.HALTED
    await restarted.poll_once()
    assert venues.open["binance"] == set()
    assert store.events(kind=KILL_SWITCH)[0].data["who"] == "operator:bob"

"""close-all as the last line of defence: against the simulator with one venue down, a key refused, a secret
that is not base64, the local clock ten minutes off and the store damaged. Each costs only its own venue (or
its own part), the report names it per venue, and the command says when anything is left open."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from decimal import Decimal

import pytest
from test_risk_e2e_sim import ENV, SimTime, place, rest_far_orders, shut, world

from ate.commands import risk as commands
from ate.config import load_config
from ate.model import Side
from ate.risk.events import CLOSE_ALL
from ate.risk.state import read_state
from ate.store import Store
from ate.venues.clock import ManualClock

D = Decimal
pytestmark = [pytest.mark.timeout(180)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def variant(cfg_path, tmp_path, name: str, **venues) -> object:
    """The world's config with some venue settings changed, as a file (the CLI reads files)."""
    data = json.loads(cfg_path.read_text())
    for venue, changes in venues.items():
        data["venues"][venue].update(changes)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


async def run_body(capsys, cfg, yes: bool, clock) -> tuple[bool, str]:
    capsys.readouterr()
    ok = await commands.close_all(cfg, set(commands.TRADING_VENUES), yes, clock=clock, timeout_s=60)
    return ok, capsys.readouterr().out


async def holdings(clients) -> dict[str, tuple[int, list]]:
    return {v: (len(await c.open_orders()), [(p.symbol, p.qty) for p in await c.positions()])
            for v, c in clients.items()}


async def test_backpack_down_binance_key_refused_the_rest_still_closes(tmp_path, monkeypatch, capsys):
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch)
    store = Store(cfg.store.url)
    try:
        await rest_far_orders(clients, instruments, store)
        await place(clients["binance_usdm"], instruments["binance_usdm"]["BTCUSDT"], Side.BUY, "0.01")
        await place(clients["backpack"], instruments["backpack"]["BTC_USDC_PERP"], Side.SELL, "0.02")
        store.close()

        down = load_config(variant(cfg_path, tmp_path, "down", backpack={"rest_url": f"http://127.0.0.1:{closed_port()}"}))
        ok, out = await run_body(capsys, down, False, SimTime(sim))
        assert not ok  # a venue could not be read: the operator must know the plan is incomplete
        assert "backpack: FAILED: venue: backpack: GET /api/v1/time: ClientConnectorError" in out
        assert "binance_usdm: 1 open orders, 1 to close, 0 skipped" in out
        assert "close  binance_usdm BTCUSDT SELL 0.01 MARKET reduce-only" in out and "dry run" in out
        assert (await holdings(clients))["binance_usdm"] == (1, [("BTCUSDT", D("0.01"))])

        ok, out = await run_body(capsys, down, True, SimTime(sim))
        assert not ok
        assert "backpack: FAILED" in out and "nothing there was cancelled or closed" in out
        assert "binance_usdm: canceled 1, closed 1, errors 0, left open 0" in out
        assert "binance: canceled 1, closed 0, errors 0, left open 0" in out
        assert "NOT EVERYTHING IS CLOSED" in out
        after = await holdings(clients)
        assert after["binance"] == (0, []) and after["binance_usdm"] == (0, [])
        assert after["backpack"] == (2, [("BTC_USDC_PERP", D("-0.02"))])  # untouched: it was unreachable
        store = Store(cfg.store.url)
        ev = store.events(kind=CLOSE_ALL)[0]
        assert any(e.startswith("backpack: venue: backpack: GET /api/v1/time") for e in ev.data["errors"])
        assert read_state(store)["state"] == "HALTED" and (tmp_path / "EMERGENCY_STOP").exists()
        store.close()

        monkeypatch.setenv("E2E_BN_SECRET", "not-the-secret")
        refused = load_config(cfg_path)
        ok, out = await run_body(capsys, refused, True, SimTime(sim))
        assert not ok
        assert "binance: FAILED: venue: binance: " in out and "-1022" in out
        assert "backpack: canceled 2, closed 1, errors 0, left open 0" in out
        assert (await holdings(clients))["backpack"] == (0, [])
    finally:
        await shut(sim_cm, clients)


async def test_bad_backpack_secret_clock_off_and_store_damaged(tmp_path, monkeypatch, capsys):
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch)
    try:
        await place(clients["binance_usdm"], instruments["binance_usdm"]["BTCUSDT"], Side.SELL, "0.01")
        await place(clients["binance"], instruments["binance"]["BTCUSDT"], Side.BUY, "0.003")
        store = Store(cfg.store.url)
        store.close()
        (tmp_path / "ate.db").write_bytes(b"this is no longer a database" * 200)  # damaged after the engine died
        for suffix in ("-wal", "-shm"):
            (tmp_path / f"ate.db{suffix}").unlink(missing_ok=True)
        monkeypatch.setenv("E2E_BP_SECRET", "%%% not base64 %%%")

        class TenMinutesAhead(SimTime):
            def now_ms(self) -> int:
                return super().now_ms() + 600_000

        btc_before = (await clients["binance"].balances())["BTC"].total
        ok, out = await run_body(capsys, load_config(cfg_path), True, TenMinutesAhead(sim))
        assert not ok
        assert "unreadable (the store cannot be used: file is not a database): planning from the venues alone" in out
        assert "FAILED  store" in out and "ok      kill file" in out  # the file halts a running engine
        assert "backpack: FAILED: venues.backpack: the API secret is unusable" in out
        assert "%%%" not in out
        offsets = [int(line.split("local clock is ")[1].split(" ms")[0]) for line in out.splitlines()
                   if "signing with the venue's time" in line]
        assert len(offsets) == 2 and all(abs(o + 600_000) < 5_000 for o in offsets)
        assert "binance_usdm: canceled 0, closed 1, errors 0, left open 0" in out
        # spot cannot be told apart from pre-funded inventory without the store: reported, not sold
        assert "skip   binance spot: the store is unreadable" in out
        assert (await holdings(clients))["binance_usdm"] == (0, [])
        assert (await clients["binance"].balances())["BTC"].total == btc_before > 1
    finally:
        await shut(sim_cm, clients)


async def test_close_all_command_with_one_venue_down_in_its_own_process(tmp_path, monkeypatch):
    """The real command: dry run then --yes, Binance served on wall time, Backpack unreachable. No traceback,
    a line per venue, exit 1 because Backpack is left as it was."""
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch, wall=True)
    try:
        await place(clients["binance_usdm"], instruments["binance_usdm"]["BTCUSDT"], Side.SELL, "0.004")
        down = variant(cfg_path, tmp_path, "down", backpack={
            "enabled": True, "rest_url": f"http://127.0.0.1:{closed_port()}", "ws_url": "ws://127.0.0.1:1",
            "api_key_env": "E2E_BP_KEY", "api_secret_env": "E2E_BP_SECRET"})
        env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}

        async def cli(*args):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ate.cli", "close-all", "--config", str(down), *args, env=env, cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            return proc.returncode, out.decode(), err.decode()

        code, out, err = await cli()
        assert code == 1, out + err
        assert "Traceback" not in out + err and err == ""
        assert "backpack: FAILED: venue: backpack" in out and "close  binance_usdm BTCUSDT BUY 0.004 MARKET" in out
        code, out, err = await cli("--yes")
        assert code == 1, out + err
        assert "Traceback" not in out + err and err == ""
        assert "binance_usdm: canceled 0, closed 1, errors 0, left open 0" in out
        assert "binance: canceled 0, closed 0, errors 0, left open 0" in out
        assert "backpack: FAILED" in out and "NOT EVERYTHING IS CLOSED" in out
        assert await clients["binance_usdm"].positions() == []
    finally:
        await shut(sim_cm, clients)


async def test_a_ban_an_engine_persisted_holds_for_close_all(tmp_path, monkeypatch, capsys):
    """close-all runs when the engine may have earned a ban: sending inside a 418 would lengthen it. A 429
    pause is waited out before the first request; a ban beyond the timeout fails its venue at once, with
    nothing sent, and the other venues still close."""
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch)
    store = Store(cfg.store.url)
    try:
        await rest_far_orders(clients, instruments, store)
        wall = ManualClock(1_800_000_000_000, auto_advance=True)  # bans count in wall time
        start = wall.now_ms()
        store.set_state("venues.pauses", {"binance_spot": {"until_ms": start + 600_000, "reason": "HTTP 418"},
                                          "binance_usdm": {"until_ms": start + 30_000, "reason": "HTTP 429"}})
        store.close()
        capsys.readouterr()
        ok = await commands.close_all(cfg, set(commands.TRADING_VENUES), True, clock=SimTime(sim), timeout_s=60,
                                      wall=wall)
        out = capsys.readouterr().out
        assert not ok
        assert ("binance: FAILED: HTTP 418: the venue bans requests until 2027-01-15 08:10:00 UTC (600 s left, "
                "beyond the 60 s timeout); nothing was sent") in out
        assert "note   waited out HTTP 429 (30 s) before the first request" in out
        assert "binance_usdm: canceled 1, closed 0, errors 0, left open 0" in out
        assert "backpack: canceled 2, closed 0, errors 0, left open 0" in out
        assert wall.now_ms() >= start + 30_000  # the 429 was waited out, on the wall clock
        after = await holdings(clients)
        assert after["binance"][0] == 1 and after["binance_usdm"][0] == 0  # the banned venue was not touched
        store = Store(cfg.store.url)
        waits = [e.message for e in store.events(kind="venue_paused")]
        assert any(m.startswith("close-all waits out binance_usdm's HTTP 429: 30 s left") for m in waits), waits
        store.close()
    finally:
        await shut(sim_cm, clients)

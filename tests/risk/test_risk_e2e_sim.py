"""Kill switch and close-all end to end against the simulator: real venue clients, real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ate.commands import risk as commands
from ate.config import load_config
from ate.config.risk import KillSwitchConfig
from ate.config.sim import SimConfig
from ate.model import Fill, Order, OrderType, Side, TimeInForce, TradingState, client_order_id
from ate.risk import KillSwitch, TradingStateKeeper
from ate.risk.closeall import cancel_all_orders
from ate.risk.events import CLOSE_ALL, KILL_SWITCH
from ate.risk.state import read_state
from ate.sim.backpack_face import BackpackFace
from ate.sim.binance import BinanceFace
from ate.sim.clock import SteppingClock
from ate.sim.runner import run_simulator
from ate.store import Store
from ate.venues.backpack.signing import public_key_from_seed
from ate.venues.factory import build_clients

ROOT = Path(__file__).resolve().parents[2]
SPOT_DATA = "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
PERP_DATA = "data/binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"
START_MS = 1748822400000  # 2025-06-02 00:00 UTC
BN_KEY, BN_SECRET = "riskkey1", "risksecret1"
BP_SEED = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
    Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()
ENV = {"E2E_BN_KEY": BN_KEY, "E2E_BN_SECRET": BN_SECRET, "E2E_BP_KEY": public_key_from_seed(BP_SEED),
       "E2E_BP_SECRET": BP_SEED}
D = Decimal
pytestmark = [pytest.mark.timeout(120)]

if not all((ROOT / f).exists() for f in (SPOT_DATA, PERP_DATA)):
    pytest.skip("simulator data files absent", allow_module_level=True)


def sim_config(**overrides) -> SimConfig:
    # Backpack replays the Binance June 2025 series: one clock, books on every market.
    return SimConfig.model_validate({
        "speed": 0, "start_ms": START_MS,
        "accounts": [{
            "id": "operator", "binance_api_key": BN_KEY, "binance_api_secret": BN_SECRET,
            "backpack_public_key": ENV["E2E_BP_KEY"],
            "balances": {"binance-spot": {"USDT": "100000", "BTC": "1"}, "binance-usdm": {"USDT": "50000"},
                         "backpack": {"USDC": "100000", "BTC": "1"}}}],
        "markets": [
            {"venue": "binance-spot", "symbol": "BTCUSDT", "data": SPOT_DATA, "min_size": 0.5},
            {"venue": "binance-usdm", "symbol": "BTCUSDT", "data": PERP_DATA, "min_size": 0.5},
            {"venue": "backpack", "symbol": "BTC_USDC", "data": SPOT_DATA, "min_size": 0.5},
            {"venue": "backpack", "symbol": "BTC_USDC_PERP", "data": PERP_DATA, "min_size": 0.5},
        ],
        **overrides,
    })


def engine_config(sim, tmp_path: Path, backpack: bool = True) -> Path:
    cfg = {
        "mode": "paper", "run_id": "e2e",
        "store": {"url": f"sqlite:///{tmp_path / 'ate.db'}"},
        "kill_switch": {"file": str(tmp_path / "EMERGENCY_STOP"), "poll_ms": 100},
        "markets": {"primary": "binance:BTCUSDT", "backpack": [{"symbol": "BTC_USDC"}]},
        "venues": {
            "binance": {"spot_rest_url": sim.url("binance-spot"), "spot_ws_url": sim.url("binance-spot", "ws"),
                        "usdm_rest_url": sim.url("binance-usdm"), "usdm_ws_url": sim.url("binance-usdm", "ws"),
                        "api_key_env": "E2E_BN_KEY", "api_secret_env": "E2E_BN_SECRET"},
            "backpack": {"rest_url": sim.url("backpack"), "ws_url": sim.url("backpack", "ws"),
                         "api_key_env": "E2E_BP_KEY", "api_secret_env": "E2E_BP_SECRET"} if backpack
            else {"enabled": False},
            "deribit": {"enabled": False},
        },
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


class SimTime:
    """The venue clients' clock: the simulator's replay time (2025), which its servers check signatures
    against (the ``wall`` clock mode would serve wall time instead, but then tests cannot step it)."""

    def __init__(self, sim) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return self.sim.clock.now_ms()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def world(tmp_path, monkeypatch, *, wall: bool = False):
    """``wall``: Binance only, the simulator in the wall clock mode (real time), so a separate process can
    sign requests."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    faces = [BinanceFace()] if wall else [BinanceFace(), BackpackFace()]
    if wall:
        sim_cm = run_simulator(sim_config(clock="wall", speed=1), faces=faces, base_dir=ROOT)
    else:
        sim_cm = run_simulator(sim_config(), clock=SteppingClock(), faces=faces, base_dir=ROOT)
    sim = await sim_cm.__aenter__()
    if not wall:
        sim.advance(60_000)
    cfg_path = engine_config(sim, tmp_path, backpack=not wall)
    cfg = load_config(cfg_path)
    clients = {k: c for k, c in build_clients(cfg.venues, clock=None if wall else SimTime(sim)).items()
               if k not in ("deribit", "backpack") or (k == "backpack" and not wall)}
    for c in clients.values():
        await c.start()
    instruments = {c.venue: {i.symbol: i for i in await c.instruments()} for c in clients.values()}
    return sim_cm, sim, cfg_path, cfg, clients, instruments


async def place(client, inst, side, qty, price=None, seq=[0]):  # noqa: B006 - a counter shared across calls
    seq[0] += 1
    order = Order(client_order_id("e2e", "setup", seq[0]), client.venue, inst.symbol, side,
                  OrderType.LIMIT if price else OrderType.MARKET, D(qty), None if price is None else D(price),
                  TimeInForce.GTC if price else TimeInForce.IOC)
    res = await client.place_order(order, inst)
    assert res.accepted, res
    return res.order


async def rest_far_orders(clients, instruments, store):
    """Resting bids 20 % below the market on both venues, recorded in the store as the engine would."""
    for venue, symbol in (("binance", "BTCUSDT"), ("binance_usdm", "BTCUSDT"), ("backpack", "BTC_USDC"),
                          ("backpack", "BTC_USDC_PERP")):
        book = await clients[venue].book_ticker(symbol)
        store.save_order(await place(clients[venue], instruments[venue][symbol], Side.BUY, "0.01",
                                     str(round(book.bid * D("0.8")))))
    counts = {v: len(await c.open_orders()) for v, c in clients.items()}
    assert counts == {"binance": 1, "binance_usdm": 1, "backpack": 2}


async def shut(sim_cm, clients):
    for c in clients.values():
        await c.close()
    await sim_cm.__aexit__(None, None, None)


async def test_kill_file_cancels_resting_orders_on_both_venues_within_1s(tmp_path, monkeypatch):
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch)
    store = Store(cfg.store.url)
    try:
        await rest_far_orders(clients, instruments, store)
        keeper = TradingStateKeeper(store, lambda: int(time.time() * 1000))
        ks = KillSwitch(KillSwitchConfig(file=cfg.kill_switch.file, poll_ms=100), keeper,
                        lambda: cancel_all_orders(clients))
        watcher = asyncio.create_task(ks.run())
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        Path(cfg.kill_switch.file).write_text("e2e")
        while any([await c.open_orders() for c in clients.values()]):
            assert time.monotonic() - t0 < 1.0, "open orders left 1 s after the kill file appeared"
            await asyncio.sleep(0.02)
        ks.stop()
        await watcher
        assert keeper.state is TradingState.HALTED
        assert store.events(kind=KILL_SWITCH)[0].data["canceled"] == 4
    finally:
        store.close()
        await shut(sim_cm, clients)


async def test_close_all_with_the_engine_dead(tmp_path, monkeypatch, capsys):
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch)
    store = Store(cfg.store.url)
    try:
        await rest_far_orders(clients, instruments, store)
        await place(clients["binance_usdm"], instruments["binance_usdm"]["BTCUSDT"], Side.BUY, "0.01")
        await place(clients["backpack"], instruments["backpack"]["BTC_USDC_PERP"], Side.SELL, "0.02")
        await place(clients["binance"], instruments["binance"]["BTCUSDT"], Side.BUY, "0.003")
        # what the (now dead) engine recorded: a spot position it bought; the pre-funded 1 BTC is not its own
        store.add_fill(Fill("binance", "BTCUSDT", "t-dead", "ate-dead-1", "1", Side.BUY, D("0.003"), D("105000"),
                            D(0), "USDT", False, 1, "directional"))
        store.close()
        perp = {c.venue: await c.positions() for c in clients.values()}
        assert {(p.venue, p.qty) for ps in perp.values() for p in ps} == {("binance_usdm", D("0.01")),
                                                                         ("backpack", D("-0.02"))}

        async def cli(*args):  # the command's body, in this process: the simulator must keep serving
            capsys.readouterr()
            ok = await commands.close_all(cfg, set(commands.TRADING_VENUES), "--yes" in args, clock=SimTime(sim))
            return (0 if ok else 1), capsys.readouterr().out

        code, out = await cli()  # dry run lists, sends nothing
        assert code == 0, out
        assert out.count("cancel ") == 4 and "close  binance_usdm BTCUSDT SELL 0.01 MARKET" in out
        assert "close  backpack BTC_USDC_PERP BUY 0.02 MARKET" in out and "close  binance BTCUSDT SELL 0.003" in out
        assert len(await clients["backpack"].open_orders()) == 2

        btc_before = (await clients["binance"].balances())["BTC"].total
        code, out = await cli("--yes")
        assert code == 0, out
        for c in clients.values():
            assert await c.open_orders() == [] and await c.positions() == []
        spot = await clients["binance"].balances()
        assert spot["BTC"].total == btc_before - D("0.003")  # only the engine's 0.003 was sold; inventory kept

        store = Store(cfg.store.url)
        ev = store.events(kind=CLOSE_ALL)[0]
        assert len(ev.data["canceled"]) == 4 and len(ev.data["closed"]) == 3 and ev.data["errors"] == []
        closes = [o for o in store.orders() if o.strategy == "close_all"]
        assert len(closes) == 3 and all(o.status.value == "FILLED" for o in closes)
        assert read_state(store)["state"] == "HALTED"
    finally:
        store.close()
        await shut(sim_cm, clients)


async def test_close_all_cli_in_its_own_process(tmp_path, monkeypatch):
    """The real command in a separate process (no engine anywhere): dry run, then --yes."""
    sim_cm, sim, cfg_path, cfg, clients, instruments = await world(tmp_path, monkeypatch, wall=True)
    store = Store(cfg.store.url)
    try:
        usdm = instruments["binance_usdm"]["BTCUSDT"]
        book = await clients["binance_usdm"].book_ticker("BTCUSDT")
        store.save_order(await place(clients["binance_usdm"], usdm, Side.SELL, "0.01", str(round(book.ask * D("1.2")))))
        await place(clients["binance_usdm"], usdm, Side.SELL, "0.004")
        env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}

        async def cli(*args):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ate.cli", "close-all", "--config", str(cfg_path), "--venue", "binance_usdm",
                *args, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()  # awaited: the simulator in this process keeps serving
            return proc.returncode, out.decode()

        code, out = await cli()
        assert code == 0, out
        assert "close  binance_usdm BTCUSDT BUY 0.004 MARKET reduce-only" in out and "dry run" in out
        assert len(await clients["binance_usdm"].open_orders()) == 1
        code, out = await cli("--yes")
        assert code == 0, out
        assert "canceled 1, closed 1, errors 0" in out
        assert await clients["binance_usdm"].open_orders() == [] and await clients["binance_usdm"].positions() == []
        assert read_state(store)["state"] == "HALTED"
    finally:
        store.close()
        await shut(sim_cm, clients)

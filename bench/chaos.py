"""Chaos: the engine in canary against the simulator, with arbitrage, funding carry and directional all
enabled, SIGKILLed at random instants (uniform over each life, start-up and reconciliation included); a
withdrawal, a deposit and a perp liquidation are injected mid-run. Then, with everything stopped, the store
is compared with the venues' records and the figures printed (all should be 0):

    duplicate orders at the venue, venue fills missing from the store, fills booked twice, fills without a
    fee entry, orders stuck non-terminal, store orders the venue never saw although marked sent, balance and
    perp position differences per venue and asset (ledger replay vs venue), unexplained transfers (booked
    as external although only the injected ones happened; funding paid while the engine was down lands here)

Usage: python bench/chaos.py [KILLS=100] [MAX_LIFE_S=4]. The first life is killed after it got ready, so the
opening balances precede the injected transfers. The suite runs a short version
(tests/engine/test_engine_chaos.py). Needs the simulator data files of the repo's data/ directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engine"))  # the engine harness shared with the end-to-end tests

from engine_support import (  # noqa: E402
    ACCOUNT,
    ENGINE_VENUE,
    ENV,
    PERP_2025,
    SIM_VENUE,
    SPOT_2025,
    engine_config_dict,
    sim_config,
    sim_orders,
    venue_client_id,
)

from ate.execution.ledger import replay  # noqa: E402
from ate.execution.portfolio import Portfolio  # noqa: E402
from ate.model import MarketKind, OrderType, Side  # noqa: E402
from ate.sim.clock import ScaledClock  # noqa: E402
from ate.sim.runner import run_simulator  # noqa: E402
from ate.store import Store  # noqa: E402

DRIVER = ROOT / "tests" / "engine" / "engine_driver.py"
START_2025 = 1748822400000
SPEED = 10.0
STRATEGIES = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                            "min_attempt_interval_ms": 0, "max_notional": 50}}
BALANCES = {"binance-spot": {"USDT": "5000", "BTC": "0.05"}, "binance-usdm": {"USDT": "2000"},
            "backpack": {"USDC": "5000", "BTC": "0.05"}}
ZERO = Decimal(0)


def spawn(cfg_path: Path, start_ms: int, t0: float) -> tuple[asyncio.Future, int]:
    """Start the engine process; returns (process future, read end of its ready pipe)."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "src")}
    read_fd, write_fd = os.pipe()
    out = (cfg_path.parent / "engine.log").open("ab")
    proc = asyncio.create_subprocess_exec(
        sys.executable, str(DRIVER), str(cfg_path), str(start_ms), repr(t0), str(SPEED), str(write_fd), cwd=ROOT,
        env=env, stdout=out, stderr=out, pass_fds=(write_fd,))
    return proc, read_fd, write_fd, out


async def life(cfg_path: Path, start_ms: int, t0: float, seconds: float, *, kill: bool,
               after_ready: bool = False) -> bool:
    """One engine process: SIGKILL after `seconds` (from the start, or from ready with `after_ready`), or
    SIGTERM once ready (`kill=False`); True if it said ready."""
    coro, read_fd, write_fd, out = spawn(cfg_path, start_ms, t0)
    proc = await coro
    os.close(write_fd)
    out.close()
    os.set_blocking(read_fd, False)
    ready = False
    deadline = time.monotonic() + (seconds if kill else 60)
    if after_ready:
        deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.returncode is None:
        try:
            if not ready and os.read(read_fd, 16).startswith(b"ready"):
                ready = True
                if after_ready:
                    deadline = time.monotonic() + seconds
        except BlockingIOError:
            pass
        if ready and not kill:
            break
        await asyncio.sleep(0.01)
    os.close(read_fd)
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 60)
    return ready


def figures(sim, store: Store, instruments, injected: int) -> dict[str, object]:
    """The comparison; balance differences within the wire's 8 decimals per fill (fees are sent rounded)
    are shown apart from real ones."""
    sent = [(o.venue, o.client_order_id) for o in sim_orders(sim)]
    known = {(SIM_VENUE[o.venue], venue_client_id(o)): o for o in store.orders()}
    venue_fills = {(f.venue, f.symbol, f.trade_id) for (v, s) in sim.core.markets
                   for f in sim.core.trades_for(ACCOUNT, v, s)}
    stored = [(SIM_VENUE[f.venue], f.symbol, f.trade_id) for f in store.fills()]
    fee_refs = {e["ref"] for e in store.ledger(kind="fee")}
    venue_open = {(o.venue, o.client_order_id) for (v, s) in sim.core.markets
                  for o in sim.core.open_orders(ACCOUNT, v, s)}
    stuck = [o for o in store.orders(open_only=True) if (SIM_VENUE[o.venue], venue_client_id(o)) not in venue_open]
    never_seen = [o for k, o in known.items() if k not in set(sent) and "never reached" not in o.reason]
    portfolio = Portfolio()
    for inst in instruments:
        portfolio.add_instrument(inst)
    replay(portfolio, store)
    balance_diff, rounding = {}, Decimal("1e-8") * max(1, len(stored))
    for sim_venue, venue in ENGINE_VENUE.items():
        held = {a: b.total for a, b in sim.core.balances(ACCOUNT, sim_venue).items()}
        mine = portfolio.balances[venue]
        for asset in set(held) | set(mine):
            d = held.get(asset, ZERO) - mine.get(asset, ZERO)
            if abs(d) > rounding:
                balance_diff[f"{venue}:{asset}"] = str(d)
    position_diff = {}
    for inst in instruments:
        if inst.kind is MarketKind.PERP:
            p = sim.core.positions(ACCOUNT, SIM_VENUE[inst.venue]).get(inst.symbol)
            d = (p.qty if p else ZERO) - portfolio.position(inst.key).qty
            if d:
                position_diff[inst.key] = str(d)
    opening = {e.data["ref"] for e in store.events(kind="opening_balance", limit=1000)}
    later = [e for e in store.ledger(kind="transfer") if e["ref"] not in opening]
    unexplained = [f"{e['venue']}:{e['asset']} {e['amount'].normalize():+f}" for e in later if abs(e["amount"]) > rounding]
    return {
        "orders at the venues": len(sent),
        "fills at the venues": len(venue_fills),
        "duplicate orders at the venue": len(sent) - len(set(sent)),
        "venue fills missing from the store": len(venue_fills - set(stored)),
        "fills booked twice": len(stored) - len(set(stored)),
        "fills without a fee entry": sum(1 for f in store.fills() if f.fee and
                                         f"fee:{f.venue}:{f.symbol}:{f.trade_id}" not in fee_refs),
        "orders stuck non-terminal": len(stuck),
        "store orders the venue never saw": len(never_seen),
        "balance differences": balance_diff,
        "perp position differences": position_diff,
        "transfers booked after the opening balance": unexplained,
        "unexplained transfers (beyond the injected ones)": max(0, len(unexplained) - injected),
        "external fills": sum(1 for f in store.fills() if f.strategy == "external"),
    }


async def chaos(workdir: Path, kills: int, max_life_s: float, seed: int = 20261203) -> dict[str, object]:
    rng = random.Random(seed)
    t0 = time.time()
    clock = ScaledClock(START_2025, SPEED, wall=time.time)
    clock._t0 = t0  # the engine processes derive replay time from the same wall instant
    cfg = sim_config(balances=BALANCES, start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025,
                     backpack_data=PERP_2025)
    async with run_simulator(cfg, clock=clock, base_dir=ROOT) as sim:
        raw = engine_config_dict(sim, workdir / "ate.db", mode="canary", strategies=STRATEGIES,
                                 canary={"initial_capital": 10000, "max_position_size": 0.05,
                                         "daily_loss_limit": 500})
        cfg_path = workdir / "engine.json"
        cfg_path.write_text(json.dumps(raw))
        injections = {kills // 3: ("withdraw", {"venue": "binance-spot", "asset": "USDT", "amount": "100"}),
                      kills // 2: ("deposit", {"venue": "binance-usdm", "asset": "USDT", "amount": "250"}),
                      2 * kills // 3: ("liquidate", {"venue": "binance-usdm", "symbol": "BTCUSDT"})}
        injected, readies = 0, 0
        for k in range(kills):
            if k in injections:
                kind, params = injections[k]
                try:
                    if kind == "liquidate":  # an operator's manual perp trade first (an external fill too)
                        sim.core.place_order(ACCOUNT, "binance-usdm", "BTCUSDT", Side.BUY, OrderType.MARKET,
                                             Decimal("0.002"), client_order_id="manual-chaos")
                    sim.inject(kind, account=ACCOUNT, **params)
                    injected += kind != "liquidate"
                except Exception as exc:  # e.g. no perp position to liquidate at that moment
                    print(f"inject {kind}: {type(exc).__name__}: {exc}")
            # the first life reaches ready (the opening balances are booked before any transfer happens)
            readies += await life(cfg_path, START_2025, t0, rng.uniform(0, max_life_s), kill=True,
                                  after_ready=k == 0)
        assert await life(cfg_path, START_2025, t0, 0, kill=False), (workdir / "engine.log").read_text()[-3000:]
        store = Store(raw["store"]["url"])
        try:
            instruments = [replace(m.instrument, venue=ENGINE_VENUE[v]) for (v, _), m in sim.core.markets.items()]
            out = figures(sim, store, instruments, injected)
        finally:
            store.close()
        out["kills"], out["lives that got ready"] = kills, readies
        return out


def main() -> None:
    import tempfile

    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    max_life = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        out = asyncio.run(chaos(Path(tmp), kills, max_life))
        out["wall seconds"] = round(time.monotonic() - started, 1)
    width = max(len(k) for k in out)
    for k, v in out.items():
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()

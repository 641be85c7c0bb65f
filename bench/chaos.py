"""Chaos: the engine in canary against the simulator, with arbitrage, funding carry and directional all
enabled, SIGKILLed at random instants (uniform over each life, start-up and reconciliation included); a
withdrawal, a deposit and a perp liquidation (with a clearance fee taken beside its trade) are injected
mid-run, each while the engine is down. Then, with everything stopped, the store
is compared with what the venues report through their own APIs (the venue clients over the simulator's REST,
signed like the engine's; never the simulator's objects) and the figures printed (all should be 0):

    duplicate orders at the venue, venue fills missing from the store, fills booked twice, fills without a
    fee entry, orders stuck non-terminal, store orders the venue never saw although marked sent, balance and
    perp position differences per venue and asset (ledger replay vs venue), unexplained transfers (booked
    as external although only the injected ones happened; funding paid while the engine was down lands here)

and `ate close-all`'s dry-run plan against the venues' holdings (every perp position; spot inventory above the
opening balance) and open orders.

The arbitrage and the carry trade within these minutes of replay (eager settings below); the directional's
real signals decide ENTER long on the 01:00 bar of 2025-06-11 (the replay starts four minutes before), and
its long stays open (a 2 ATR stop) through the kills that follow. The fills per strategy are printed.

Usage: python bench/chaos.py [KILLS=100] [MAX_LIFE_S=4]. The first life is killed once it got ready and the
directional's entry is in its store (or a minute later), so the opening balances precede the injected
transfers and every later life has a directional position to resume. The suite runs a short version
(tests/engine/test_engine_chaos.py). Needs the simulator data files of the repo's data/ directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engine"))  # the engine harness shared with the end-to-end tests

from engine_driver import SharedReplayClock  # noqa: E402
from engine_support import (  # noqa: E402
    ACCOUNT,
    ENGINE_VENUE,
    ENV,
    PERP_2025,
    SPOT_2025,
    STAND_IN_RATE,
    engine_config_dict,
    sim_config,
    venue_client_id,
)

from ate.config import parse_config  # noqa: E402
from ate.execution.ledger import replay  # noqa: E402
from ate.execution.portfolio import Portfolio  # noqa: E402
from ate.model import Balance, Fill, MarketKind, Order, OrderType, Side  # noqa: E402
from ate.sim.clock import ScaledClock  # noqa: E402
from ate.sim.runner import run_simulator  # noqa: E402
from ate.store import Store  # noqa: E402
from ate.venues.backpack import parse as bp_parse  # noqa: E402
from ate.venues.backpack.client import HISTORY_PAGE as BP_PAGE  # noqa: E402
from ate.venues.binance import parse as bn_parse  # noqa: E402
from ate.venues.factory import build_clients  # noqa: E402
from ate.venues.rest import Request  # noqa: E402

DRIVER = ROOT / "tests" / "engine" / "engine_driver.py"
START_2025 = 1749603360000  # 2025-06-11 00:56: ten days of history for the signals to warm up on
SPEED = 10.0
# Eager settings so every strategy trades within minutes of replay: the arbitrage on any spread (the Backpack
# stand-in replays a USDT series, so its fixed rate of 1 is the truth), the carry on the first positive rate.
STRATEGIES = {"arbitrage": {"net_threshold_bps": 0, "fee_a_bps": 0, "fee_b_bps": 0, "slippage_buffer_bps": 0,
                            "min_attempt_interval_ms": 0, "max_notional": 50, **STAND_IN_RATE},
              "funding_carry": {"min_rate_bps_8h": 0, "persistence": 1, "notional": 300, "fee_spot_bps": 0,
                                "fee_perp_bps": 0, "slippage_bps": 0}}
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
               after: Callable[[], bool] | None = None) -> bool:
    """One engine process: SIGKILL after `seconds` (from the start, or with `after` from the moment it is
    ready and `after()` holds, waiting at most 90 s for that), or SIGTERM once ready (`kill=False`); True if it
    said ready."""
    coro, read_fd, write_fd, out = spawn(cfg_path, start_ms, t0)
    proc = await coro
    os.close(write_fd)
    out.close()
    os.set_blocking(read_fd, False)
    ready, waiting = False, after is not None
    deadline = time.monotonic() + (90 if waiting or not kill else seconds)
    while time.monotonic() < deadline and proc.returncode is None:
        try:
            if not ready and os.read(read_fd, 16).startswith(b"ready"):
                ready = True
        except BlockingIOError:
            pass
        if ready and not kill:
            break
        if ready and waiting and after():
            waiting, deadline = False, time.monotonic() + seconds
        await asyncio.sleep(0.01)
    os.close(read_fd)
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 60)
    return ready


class DirectionalWatch:
    """Whether the directional's entry fill is in the store, read while the engine writes it (the store is
    opened once the engine has created it)."""

    def __init__(self, url: str) -> None:
        self.url, self.store = url, None

    def __call__(self) -> bool:
        if self.store is None:
            self.store = Store(self.url)
        return bool(self.store.fills(strategy="directional"))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


async def venue_orders(client) -> list[Order]:
    """Every order the venue holds for the account, from its own order history (client ids as it knows them:
    Backpack reports its uint32 clientId). The venue clients have no call for this; it is signed like theirs."""
    out: list[Order] = []
    for inst in await client.instruments():
        if client.venue == "backpack":
            offset = 0
            while True:
                rows = (await client.rest.request(Request("GET", "/wapi/v1/history/orders", {
                    "symbol": inst.symbol, "limit": BP_PAGE, "offset": offset}, signed=True))).data
                out += [bp_parse.parse_order(client.venue, r, str) for r in rows]
                if len(rows) < BP_PAGE:
                    break
                offset += BP_PAGE
            continue
        path = "/api/v3/allOrders" if inst.kind is MarketKind.SPOT else "/fapi/v1/allOrders"
        from_id = 0
        while True:
            rows = (await client.rest.request(Request("GET", path, [
                ("symbol", inst.symbol), ("orderId", from_id), ("limit", 1000)], weight=20, signed=True))).data
            out += [bn_parse.parse_order(client.venue, r) for r in rows]
            if len(rows) < 1000:
                break
            from_id = max(int(r["orderId"]) for r in rows) + 1
    return out


async def venue_fills(client) -> list[Fill]:
    out: list[Fill] = []
    for inst in await client.instruments():
        cursor = None
        while True:
            page, cursor_after = await client.fills_since(inst.symbol, cursor)
            out += page
            if not page or cursor_after == cursor:
                break
            cursor = cursor_after
    return out


async def venue_view(clients) -> dict[str, dict]:
    """What each venue reports through its own API: orders, fills, open orders, balances, perp positions."""
    view = {}
    for name, client in clients.items():
        view[name] = {"instruments": await client.instruments(), "orders": await venue_orders(client),
                      "fills": await venue_fills(client), "open": await client.open_orders(),
                      "balances": await client.balances(), "positions": await client.positions()}
    return view


CLOSE_LINE = re.compile(r"^\s+close\s+(\S+) (\S+) (BUY|SELL) (\S+) MARKET reduce-only$")
CANCEL_LINE = re.compile(r"^\s+cancel (\S+) (\S+) .*\((\S+)\)$")


async def close_all_plan(cfg_path: Path) -> tuple[dict[str, Decimal], set[tuple[str, str]], list[str]]:
    """`ate close-all` without --yes (the dry run an operator would read): signed closes per market (BUY is
    +), cancels, and the venues it could not read or would skip, parsed from its output. A child process: the
    simulator answers on this process's event loop."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ate.cli", "close-all", "--config", str(cfg_path), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    closes, cancels, problems = {}, set(), []
    for line in out.decode().splitlines():
        if m := CLOSE_LINE.match(line):
            closes[f"{m[1]}:{m[2]}"] = Decimal(m[4]) * (1 if m[3] == "BUY" else -1)
        elif m := CANCEL_LINE.match(line):
            cancels.add((m[1], m[3]))
        elif "FAILED" in line or line.strip().startswith("skip"):
            problems.append(line.strip())
    if "dry run: nothing was sent" not in out.decode():
        problems.append(f"close-all exited {proc.returncode}: {out.decode()[-500:]}")
    return closes, cancels, problems


def figures(view: dict[str, dict], store: Store, opening: dict, plan: tuple, injected: int) -> dict[str, object]:
    """The comparison of the store with what the venues report. Balance differences within the wire's 8
    decimals per fill (fees are sent rounded) are not counted."""
    sent = [(v, o.client_order_id) for v, d in view.items() for o in d["orders"]]
    venue_fills = {(f.venue, f.symbol, f.trade_id) for d in view.values() for f in d["fills"]}
    stored = [(f.venue, f.symbol, f.trade_id) for f in store.fills()]
    fee_refs = {e["ref"] for e in store.ledger(kind="fee")}
    venue_open = {(v, o.client_order_id) for v, d in view.items() for o in d["open"]}
    stuck = [o for o in store.orders(open_only=True) if (o.venue, venue_client_id(o)) not in venue_open]
    never_seen = [o for o in store.orders() if (o.venue, venue_client_id(o)) not in set(sent)
                  and "never reached" not in o.reason]
    instruments = [i for d in view.values() for i in d["instruments"]]
    portfolio = Portfolio()
    for inst in instruments:
        portfolio.add_instrument(inst)
    replay(portfolio, store)
    balance_diff, rounding = {}, Decimal("1e-8") * max(1, len(stored))
    for venue, d in view.items():
        held = {a: b.total for a, b in d["balances"].items()}
        mine = portfolio.balances[venue]
        for asset in set(held) | set(mine):
            diff = held.get(asset, ZERO) - mine.get(asset, ZERO)
            if abs(diff) > rounding:
                balance_diff[f"{venue}:{asset}"] = str(diff)
    held_perp = {f"{v}:{p.symbol}": p.qty for v, d in view.items() for p in d["positions"]}
    position_diff = {}
    for inst in instruments:
        if inst.kind is MarketKind.PERP:
            diff = held_perp.get(inst.key, ZERO) - portfolio.position(inst.key).qty
            if diff:
                position_diff[inst.key] = str(diff)
    # What close-all must close: every perp the venue holds, and the spot inventory the engine bought (the
    # venue's base balance above its opening balance; pre-funded inventory is never sold).
    holdings = {k: -q for k, q in held_perp.items() if q}
    for inst in instruments:
        if inst.kind is MarketKind.SPOT:
            bought = view[inst.venue]["balances"].get(inst.base, Balance(inst.base)).total - opening.get(
                (inst.venue, inst.base), ZERO)
            if bought > rounding:
                holdings[inst.key] = -inst.round_qty(bought)
    closes, cancels, problems = plan
    plan_vs_holdings: dict[str, object] = {
        k: f"plan {closes.get(k, ZERO)} vs holdings {holdings.get(k, ZERO)}"
        for k in set(closes) | set(holdings) if closes.get(k, ZERO) != holdings.get(k, ZERO)}
    if problems:
        plan_vs_holdings["close-all problems"] = problems
    if cancels != venue_open:
        plan_vs_holdings["open orders"] = f"plan cancels {len(cancels)} vs {len(venue_open)} open at the venues"
    opening_refs = {e.data["ref"] for e in store.events(kind="opening_balance", limit=1000)}
    later = [e for e in store.ledger(kind="transfer") if e["ref"] not in opening_refs]
    unexplained = [f"{e['venue']}:{e['asset']} {e['amount'].normalize():+f}" for e in later if abs(e["amount"]) > rounding]
    by_strategy = Counter(f.strategy or "?" for f in store.fills())
    return {
        "orders at the venues": len(sent),
        "fills at the venues": len(venue_fills),
        "fills per strategy (store)": dict(sorted(by_strategy.items())),
        "duplicate orders at the venue": len(sent) - len(set(sent)),
        "venue fills missing from the store": len(venue_fills - set(stored)),
        "fills booked twice": len(stored) - len(set(stored)),
        "fills without a fee entry": sum(1 for f in store.fills() if f.fee and
                                         f"fee:{f.venue}:{f.symbol}:{f.trade_id}" not in fee_refs),
        "orders stuck non-terminal": len(stuck),
        "store orders the venue never saw": len(never_seen),
        "balance differences": balance_diff,
        "perp position differences": position_diff,
        "venue holdings to close": {k: str(q) for k, q in sorted(holdings.items())},
        "close-all plan": {**{k: str(q) for k, q in sorted(closes.items())}, "cancels": len(cancels)},
        "close-all plan vs venue holdings": plan_vs_holdings,
        "transfers booked after the opening balance": unexplained,
        "unexplained transfers (beyond the injected ones)": max(0, len(unexplained) - injected),
        "external fills": by_strategy.get("external", 0),
        "liquidation costs booked": [f"{e['venue']}:{e['asset']} {e['amount'].normalize():+f}"
                                     for e in store.ledger(kind="liquidation")],
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
                                         "daily_loss_limit": 500},
                                 risk_limits={"trusted_price_max_age_s": 120})
        cfg_path = workdir / "engine.json"
        cfg_path.write_text(json.dumps(raw))
        injections = {kills // 3: ("withdraw", {"venue": "binance-spot", "asset": "USDT", "amount": "100"}),
                      kills // 2: ("deposit", {"venue": "binance-usdm", "asset": "USDT", "amount": "250"}),
                      2 * kills // 3: ("liquidate", {"venue": "binance-usdm", "symbol": "BTCUSDT", "clearance_fee": "0.005"})}
        injected, readies = 0, 0
        entered = DirectionalWatch(raw["store"]["url"])
        for k in range(kills):
            if k in injections:
                kind, params = injections[k]
                try:
                    # an operator's manual perp short first (an external fill too), never netting the carry's
                    # short to flat, so there is a position to liquidate
                    if kind == "liquidate":
                        sim.core.place_order(ACCOUNT, "binance-usdm", "BTCUSDT", Side.SELL, OrderType.MARKET,
                                             Decimal("0.002"), client_order_id="manual-chaos")
                    sim.inject(kind, account=ACCOUNT, **params)
                    injected += kind != "liquidate"
                except Exception as exc:  # e.g. no perp position to liquidate at that moment
                    print(f"inject {kind}: {type(exc).__name__}: {exc}")
            # The first life reaches ready (the opening balances are booked before any transfer happens) and
            # the directional's entry. A life after an injection is killed only once ready (its account
            # comparison done): a deposit and a liquidation's fee in one wallet between two comparisons are
            # one difference the venue's balances cannot tell apart.
            after = entered if k == 0 else (lambda: True) if k in injections else None
            readies += await life(cfg_path, START_2025, t0, rng.uniform(0, max_life_s), kill=True, after=after)
            entered.close()
        assert await life(cfg_path, START_2025, t0, 0, kill=False), (workdir / "engine.log").read_text()[-3000:]
        plan = await close_all_plan(cfg_path)
        env = {**os.environ, **ENV}
        clients = build_clients(parse_config(raw, env=env).venues, clock=SharedReplayClock(START_2025, t0, SPEED),
                                environ=env)
        clients.pop("deribit", None)
        store = Store(raw["store"]["url"])
        try:
            for client in clients.values():
                await client.start()
            view = await venue_view(clients)
            opening = {(v, a): Decimal(q) for v, assets in BALANCES.items() for a, q in assets.items()}
            out = figures(view, store, {(ENGINE_VENUE[v], a): q for (v, a), q in opening.items()}, plan, injected)
        finally:
            store.close()
            for client in clients.values():
                await client.close()
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

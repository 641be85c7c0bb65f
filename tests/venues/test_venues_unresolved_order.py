"""An order whose outcome the venue will not tell (issue 19, item 4), against the simulator's faults.

Invariants: the placement answered 503 after acting, and every query answers 503 (then is refused for a
skewed timestamp); the executor keeps querying with backoff, never resends, never declares an outcome;
after `resolve_timeout_s` one CRITICAL `order_unresolved` event is raised and the order is listed by the
executor and by `ate status`; until the venue answers, the order stays open, its risk headroom (pending
quantity) and its balance stay held. When the venue answers, an `order_resolved` event follows and the
real outcome is booked once (its fill through reconciliation: this test runs no user stream).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from rich.console import Console
from test_venues_sim_e2e import REPO, SEED, SPOT, START_MS, SimTime, sim_config  # noqa: E402

from ate.config import parse_config
from ate.config.sim import FaultSpec
from ate.execution.executors import VenueExecutor
from ate.execution.reconcile import reconcile
from ate.model import OrderIntent, OrderStatus, Purpose, Severity, Side, TimeInForce
from ate.monitor.console import status_tables
from ate.monitor.status import stored_status
from ate.monitor.view import StoreView
from ate.sim.clock import SteppingClock
from ate.sim.runner import run_simulator
from ate.store import Store
from ate.trading.core import TradingCore
from ate.trading.memory_state import MemoryState
from ate.venues.backpack.client import BackpackClient, BackpackUrls
from ate.venues.backpack.signing import public_key_from_seed
from ate.venues.credentials import Credentials

pytestmark = pytest.mark.skipif(not (REPO / SPOT).exists(), reason="simulator data files absent")
MARKET = "backpack:BTC_USDC"


def engine_config():
    return parse_config({
        "mode": "paper", "run_id": "unres",
        "markets": {"primary": MARKET, "binance": [], "backpack": [{"symbol": "BTC_USDC"}]},
        "risk_limits": {"max_position_size_usd": 1e8, "max_daily_loss_pct": 0.25, "max_single_trade_pct": 0.25,
                        "emergency_stop_loss_pct": 0.5, "max_order_pct_of_capital": 0.5, "capital_usd": 1e6,
                        "max_price_deviation_pct": 0.5, "trusted_price_max_age_s": 600},
        "strategies": {"arbitrage": {"enabled": False}, "funding_carry": {"enabled": False},
                       "directional": {"enabled": False}},
    }, env={})


async def until(predicate, what: str, seconds: float = 20.0) -> None:
    """Poll a real async outcome with a deadline (the simulated clock moves as the executor sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_unresolvable_order_alerts_holds_headroom_and_resolves_when_the_venue_answers(tmp_path):
    async with run_simulator(sim_config(), clock=SteppingClock(START_MS), base_dir=REPO) as sim:
        sim.advance(120_000)
        time = SimTime(sim)
        c = BackpackClient(BackpackUrls(sim.url("backpack", "rest"), sim.url("backpack", "ws")),
                           Credentials(public_key_from_seed(SEED), SEED), clock=time)
        await c.sync_clock()
        inst = {i.symbol: i for i in await c.instruments()}["BTC_USDC"]
        book = await c.book_ticker("BTC_USDC")
        store = Store(f"sqlite:///{tmp_path / 'ate.db'}")
        core = TradingCore(engine_config(), instruments=[inst], strategies=[], clock=time.now_ms, state=MemoryState(),
                           store=store)
        events = []
        core.on_event = events.append
        ex = VenueExecutor({"backpack": c}, core.on_order_update, time.now_ms, on_event=core.record,
                           sleep=time.sleep, resolve_timeout_s=60, backoff_s=(0.2, 10.0))
        core.attach(ex)
        core.set_balances("backpack", {"USDC": Decimal("100000"), "BTC": Decimal("1")})
        core.on_book(book)

        sim.faults.spec = FaultSpec(http_5xx=1.0)  # every REST answer is a 503 (after the request acted)
        qty, price = Decimal("0.002"), inst.round_price(book.ask * Decimal("1.01"), Side.BUY)
        order = core.orders.submit(OrderIntent("backpack", "BTC_USDC", Side.BUY, qty, price, "arbitrage",
                                               Purpose.ENTRY, tif=TimeInForce.IOC))
        assert order is not None
        coid = order.client_order_id
        await until(lambda: coid in ex.unresolved and ex.unresolved[coid].alerted, "the unresolved alert")
        alerts = [e for e in events if e.kind == "order_unresolved"]
        assert len(alerts) == 1 and alerts[0].severity is Severity.CRITICAL and alerts[0].data["order"] == coid
        assert "held" in alerts[0].message
        # the venue did fill it, but nobody may assume so: open, headroom and quote balance held
        assert core.orders.open_orders() == [order] and order.status is OrderStatus.NEW
        assert core.risk.pending(MARKET, Side.BUY) == qty
        assert core.locked("backpack", "USDC") == qty * price
        status = stored_status(store)  # `ate status`
        assert [u["client_order_id"] for u in status["unresolved_orders"]] == [coid]
        console = Console(record=True, width=200)
        console.print(status_tables(status))
        text = console.export_text()
        assert "UNRESOLVED" in text and coid in text
        api = await StoreView(store, clock=time.now_ms).metrics_snapshot()  # the dashboard's /api/metrics
        assert [u["client_order_id"] for u in api["system_health"]["unresolved_orders"]] == [coid]
        placed = [o for o in sim.core.all_orders("alice", "backpack", "BTC_USDC")
                  if o.client_order_id == str(c.client_id(coid))]
        assert len(placed) == 1 and placed[0].status is OrderStatus.FILLED  # never resent

        # the venue now refuses the query itself: the local clock is a minute behind it
        sim.faults.spec = FaultSpec(clock_skew_ms=60_000)
        before = ex.unresolved[coid].attempts
        await until(lambda: ex.unresolved[coid].attempts >= before + 2, "queries refused for the timestamp")
        assert "expired" in ex.unresolved[coid].last_error.lower()
        assert coid in ex.unresolved and order.is_open and core.risk.pending(MARKET, Side.BUY) == qty
        assert len([e for e in events if e.kind == "order_unresolved"]) == 1  # one alert, not one per query

        sim.faults.spec = FaultSpec()  # the venue answers again
        await until(lambda: coid not in ex.unresolved, "the resolution")
        # no user stream in this test: its fills come back through reconciliation, booked once
        report = await reconcile(core, c, store, time.now_ms())
        assert report.fills_replayed == 1
        assert order.status is OrderStatus.FILLED and order.filled_qty == qty
        assert core.risk.pending(MARKET, Side.BUY) == 0
        assert [e.kind for e in events if e.kind.startswith("order_")] == ["order_unresolved", "order_resolved"]
        assert stored_status(store)["unresolved_orders"] == []
        await c.close()
        store.close()

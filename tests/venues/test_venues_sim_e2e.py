"""End to end against the simulator (``ate.sim``) on loopback: the adapters' order lifecycle on both
venues must match the simulator's own records, and a timed-out order must never be duplicated."""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ate.config.sim import FaultSpec, SimConfig
from ate.model import MarketKind, Order, OrderStatus, OrderType, Side, TimeInForce
from ate.sim.clock import SteppingClock
from ate.sim.core import FundingEvent
from ate.sim.runner import run_simulator
from ate.venues.backpack.client import BackpackClient, BackpackUrls
from ate.venues.backpack.signing import public_key_from_seed
from ate.venues.base import Outcome
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
SPOT = "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
PERP = "data/binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"
FUNDING = "data/binance_usdm_BTCUSDT_funding.csv"
START_MS = 1748822400000  # 2025-06-02 00:00 UTC
KEY, SECRET = "venues-e2e-key", "venues-e2e-secret"
SEED = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
    Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()

pytestmark = pytest.mark.skipif(not (REPO / SPOT).exists(), reason="simulator data files absent")


def sim_config(faults: str = "") -> SimConfig:
    return SimConfig.model_validate({
        "speed": 0, "start_ms": START_MS, "faults": faults,
        "accounts": [{"id": "alice", "binance_api_key": KEY, "binance_api_secret": SECRET,
                      "backpack_public_key": public_key_from_seed(SEED),
                      "balances": {"binance-spot": {"USDT": "100000", "BTC": "1"},
                                   "binance-usdm": {"USDT": "50000"},
                                   "backpack": {"USDC": "100000", "BTC": "1"}}}],
        "markets": [
            {"venue": "binance-spot", "symbol": "BTCUSDT", "data": SPOT, "min_size": 0.5},
            {"venue": "binance-usdm", "symbol": "BTCUSDT", "data": PERP, "funding": FUNDING, "min_size": 0.5},
            {"venue": "backpack", "symbol": "BTC_USDC", "data": SPOT, "min_size": 0.5},
        ],
    })


class SimTime:
    """The adapters' injectable clock bound to the simulator's: sleeping moves the replay forward.
    (So the tests call ``sync_clock()``, not ``start()``, whose periodic re-sync would sleep forever.)"""

    def __init__(self, sim) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return self.sim.clock.now_ms()

    async def sleep(self, seconds: float) -> None:
        self.sim.advance(int(seconds * 1000))
        await asyncio.sleep(0)


@pytest.fixture
async def sim():
    async with run_simulator(sim_config(), clock=SteppingClock(START_MS), base_dir=REPO) as s:
        s.advance(120_000)
        yield s


def binance(sim, kind: MarketKind, **kw) -> BinanceClient:
    venue = "binance-spot" if kind is MarketKind.SPOT else "binance-usdm"
    rest, ws = sim.url(venue, "rest"), sim.url(venue, "ws")
    return BinanceClient(kind, BinanceUrls(rest, ws, ws + "/ws-api/v3"), Credentials(KEY, SECRET),
                         clock=SimTime(sim), **kw)


@pytest.mark.parametrize("kind", [MarketKind.SPOT, MarketKind.PERP])
async def test_binance_order_lifecycle_matches_simulator(sim, kind):
    venue = "binance-spot" if kind is MarketKind.SPOT else "binance-usdm"
    c = binance(sim, kind)
    await c.sync_clock()
    inst = {i.symbol: i for i in await c.instruments()}["BTCUSDT"]
    book = await c.book_ticker("BTCUSDT")
    assert book.bid < book.ask

    resting = Order("ate-e2e-rest", c.venue, "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.002"),
                    book.bid * Decimal("0.95"), tif=TimeInForce.GTC, created_ms=c.clock.now_ms())
    r = await c.place_order(resting, inst)
    assert r.outcome is Outcome.ACCEPTED and r.order.status is OrderStatus.SUBMITTED
    sim_order = sim.core.get_order("alice", venue, "BTCUSDT", client_order_id="ate-e2e-rest")
    assert str(sim_order.order_id) == r.order.venue_order_id and sim_order.price == r.order.price
    assert [o.client_order_id for o in await c.open_orders("BTCUSDT")] == ["ate-e2e-rest"]
    cancelled = await c.cancel_order("BTCUSDT", "ate-e2e-rest")
    assert cancelled.outcome is Outcome.ACCEPTED and cancelled.order.status is OrderStatus.CANCELED
    assert sim.core.get_order("alice", venue, "BTCUSDT", client_order_id="ate-e2e-rest").status \
        is OrderStatus.CANCELED

    taker = Order("ate-e2e-take", c.venue, "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.003"),
                  book.ask * Decimal("1.01"), tif=TimeInForce.IOC)
    t = await c.place_order(taker, inst)
    assert t.outcome is Outcome.ACCEPTED and t.order.status is OrderStatus.FILLED
    fills, cursor = await c.fills_since("BTCUSDT", None)
    sim_fills = sim.core.trades_for("alice", venue, "BTCUSDT")
    assert [(f.trade_id, f.qty, f.price) for f in fills] == [(str(f.trade_no), f.qty, f.price) for f in sim_fills]
    assert all(f.client_order_id == "ate-e2e-take" for f in fills) and sum(f.qty for f in fills) == Decimal("0.003")
    assert (await c.fills_since("BTCUSDT", cursor))[0] == []

    rejected = await c.cancel_order("BTCUSDT", "never-placed")
    assert rejected.outcome is Outcome.REJECTED and rejected.code == -2011
    balances = await c.balances()
    sim_bal = sim.core.balances("alice", venue)
    asset = "USDT"
    assert balances[asset].total == sim_bal[asset].total  # USD-M: free = available, locked = margin in use
    if kind is MarketKind.PERP:
        mark = await c.mark_price("BTCUSDT")
        assert mark.mark > 0 and mark.next_funding_ms > c.clock.now_ms() and mark.funding_rate is not None
        assert isinstance(await c.funding_intervals(), dict)
        (pos,) = await c.positions()
        assert pos.qty == sim.core.positions("alice", venue)["BTCUSDT"].qty == Decimal("0.003")
        now = c.clock.now_ms()
        for ts, rate in ((now + 1, Decimal("0.0001")), (now + 2, Decimal("-0.0002"))):
            sim.core.settle_funding(venue, "BTCUSDT", ts, rate, Decimal("100000"))
        paid, cursor = await c.funding_since(now)  # the income history, from the cursor on
        assert [(p.symbol, p.amount, p.ts_ms) for p in paid] == [("BTCUSDT", Decimal("-0.03"), now + 1),
                                                                 ("BTCUSDT", Decimal("0.06"), now + 2)]
        assert cursor == now + 2 and await c.funding_since(cursor) == ([], cursor)
        # deposits and withdrawals of the futures wallet: income TRANSFER, kept apart from the funding
        sim.core.transfer("alice", venue, "USDT", Decimal("250"))
        sim.core.transfer("alice", venue, "USDT", Decimal("-40.5"))
        moved = await c.transfers_since(now - 1)  # made at the venue's now
        assert [(t.asset, t.amount) for t in moved] == [("USDT", Decimal("250")), ("USDT", Decimal("-40.5"))]
        assert len({t.ref for t in moved}) == 2 and await c.transfers_since(moved[-1].ts_ms) == []
        assert (await c.funding_since(now))[0] == paid
    else:
        assert await c.funding_since(0) == ([], 0)  # spot pays no funding
        assert await c.transfers_since(0) is None  # the spot deposit history is not read
    await c.close()


async def test_backpack_order_lifecycle_matches_simulator(sim):
    c = BackpackClient(BackpackUrls(sim.url("backpack", "rest"), sim.url("backpack", "ws")),
                       Credentials(public_key_from_seed(SEED), SEED), clock=SimTime(sim))
    await c.sync_clock()
    inst = {i.symbol: i for i in await c.instruments()}["BTC_USDC"]
    book = await c.book_ticker("BTC_USDC")
    resting = Order("ate-bp-rest", "backpack", "BTC_USDC", Side.SELL, OrderType.LIMIT, Decimal("0.002"),
                    book.ask * Decimal("1.05"))
    r = await c.place_order(resting, inst)
    assert r.outcome is Outcome.ACCEPTED and r.order.client_order_id == "ate-bp-rest"
    cid = str(c.client_id("ate-bp-rest"))
    sim_order = sim.core.get_order("alice", "backpack", "BTC_USDC", client_order_id=cid)
    assert str(sim_order.order_id) == r.order.venue_order_id
    assert (await c.query_order("BTC_USDC", "ate-bp-rest")).status is OrderStatus.SUBMITTED
    cancelled = await c.cancel_order("BTC_USDC", "ate-bp-rest")
    assert cancelled.outcome is Outcome.ACCEPTED
    assert sim.core.get_order("alice", "backpack", "BTC_USDC", client_order_id=cid).status is OrderStatus.CANCELED
    found = await c.query_order("BTC_USDC", "ate-bp-rest")  # no longer resting: found in order history
    assert found is not None and found.status is OrderStatus.CANCELED

    taker = Order("ate-bp-take", "backpack", "BTC_USDC", Side.BUY, OrderType.MARKET, Decimal("0.003"))
    t = await c.place_order(taker, inst)
    assert t.outcome is Outcome.ACCEPTED
    fills, _ = await c.fills_since("BTC_USDC", None)
    sim_fills = sim.core.trades_for("alice", "backpack", "BTC_USDC")
    assert [(f.trade_id, f.qty, f.price) for f in fills] == [(str(f.trade_no), f.qty, f.price) for f in sim_fills]
    assert {f.client_order_id for f in fills} == {"ate-bp-take"}
    bal = await c.balances()
    assert bal["BTC"].free == sim.core.balances("alice", "backpack")["BTC"].free
    assert await c.funding_intervals() == {}  # the fixture lists no Backpack perp
    # so the account's funding history is given as the venue would keep it for a perp held across two
    # settlements: read back over the wire (ISO times, signed quantities), from the cursor on
    sim.core.account("alice").funding.extend(
        FundingEvent("alice", "backpack", "BTC_USDC_PERP", amount, Decimal("0.0001"), Decimal("100000"),
                     Decimal("-0.01"), ts, n) for n, (ts, amount) in enumerate(
            ((START_MS + 8 * 3_600_000, Decimal("0.1")), (START_MS + 16 * 3_600_000, Decimal("-0.25")))))
    paid, cursor = await c.funding_since(START_MS)
    assert [(p.symbol, p.amount, p.ts_ms) for p in paid] == [
        ("BTC_USDC_PERP", Decimal("0.1"), START_MS + 8 * 3_600_000),
        ("BTC_USDC_PERP", Decimal("-0.25"), START_MS + 16 * 3_600_000)]
    assert (await c.funding_since(START_MS + 8 * 3_600_000))[0] == paid[1:]
    assert await c.funding_since(cursor) == ([], cursor)
    await c.close()


async def test_timed_out_order_is_resolved_and_never_duplicated():
    async with run_simulator(sim_config(), clock=SteppingClock(START_MS), base_dir=REPO) as sim:
        sim.advance(120_000)
        c = binance(sim, MarketKind.SPOT, timeout_s=0.3)
        await c.sync_clock()
        inst = {i.symbol: i for i in await c.instruments()}["BTCUSDT"]
        book = await c.book_ticker("BTCUSDT")
        sim.faults.spec = FaultSpec(http_timeout=1.0, timeout_ms=2000)  # every REST answer hangs 2 s
        o = Order("ate-e2e-hang", c.venue, "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.002"),
                  book.bid * Decimal("0.95"), created_ms=c.clock.now_ms())
        result = await c.place_order(o, inst)
        assert result.outcome is Outcome.UNKNOWN
        sim.faults.spec = FaultSpec()
        resolved = await c.resolve(o)
        assert resolved.outcome is Outcome.ACCEPTED and resolved.order.client_order_id == "ate-e2e-hang"
        placed = [x for x in sim.core.all_orders("alice", "binance-spot") if x.client_order_id == "ate-e2e-hang"]
        assert len(placed) == 1  # reached the venue exactly once
        await c.close()


class CompressedTime(SimTime):
    """Simulator time, with waits shortened to a few real milliseconds (the replay is stepped by the test)."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.02))


async def test_session_under_faults_keeps_complete_candles_and_never_418():
    from ate.data.manager import MarketDataManager

    faults = "ws_drop=0.01,ws_stall=0.003,http_5xx=0.2,stale=0.02"
    async with run_simulator(sim_config(faults), clock=SteppingClock(START_MS), base_dir=REPO) as sim:
        sim.advance(60_000)
        clients = [binance(sim, MarketKind.SPOT), binance(sim, MarketKind.PERP)]
        manager = MarketDataManager(timeframes=("5m",))
        streams = [c.market_stream(["BTCUSDT"], manager, marks=c.kind is MarketKind.PERP) for c in clients]
        for c, s in zip(clients, streams, strict=True):
            c.clock = CompressedTime(sim)
            c.rest.clock = c.limiter.clock = c.clock
            for conn in s.connections:
                conn.clock = c.clock
                conn.stale_after_ms = 90_000
            s.gaps.clock = c.clock
        tasks = [asyncio.create_task(s.run()) for s in streams]
        for s in streams:
            for conn in s.connections:
                await asyncio.wait_for(conn.connected.wait(), 5)
        first_open = sim.clock.now_ms() // 60_000 * 60_000
        for _ in range(40):  # 40 replayed minutes, in 15 s steps
            for _ in range(4):
                sim.advance(15_000)
                await asyncio.sleep(0.01)
        end = sim.clock.now_ms() // 60_000 * 60_000
        venues = {c.venue for c in clients}

        def complete() -> bool:
            return all(manager.candles(v, "BTCUSDT") and manager.candles(v, "BTCUSDT")[-1].open_ms >= end - 60_000
                       for v in venues)
        for _ in range(300):
            if complete():
                break
            await asyncio.sleep(0.02)
        for s in streams:
            await s.close()
        await asyncio.gather(*tasks)
        for v in venues:
            opens = [c.open_ms for c in manager.candles(v, "BTCUSDT")]
            assert opens[0] <= first_open and opens[-1] >= end - 60_000, v
            assert opens == list(range(opens[0], opens[-1] + 60_000, 60_000)), f"{v}: a closed candle is missing"
        assert manager.quarantine_counts() == {}
        counts = sim.faults.counts
        assert counts["ws_drop"] + counts["ws_stall"] > 0 and counts["5xx"] > 0  # the session really was disturbed
        reconnects = sum(conn.connects - 1 for s in streams for conn in s.connections)
        assert reconnects > 0
        print(f"faults {dict(counts)}, reconnects {reconnects}, backfilled {[s.gaps.backfilled for s in streams]}")
        assert all(418 not in c.rest.status_counts for c in clients)
        assert manager.marks[("binance_usdm", "BTCUSDT")].mark > 0
        for c in clients:
            await c.close()


class OrderSink:
    def __init__(self) -> None:
        self.events: list = []
        self.gaps = 0

    def on_order(self, order, fill) -> None:
        self.events.append((order, fill))

    def on_gap(self, venue: str) -> None:
        self.gaps += 1


@pytest.mark.parametrize("venue", ["binance", "binance_usdm", "backpack"])
async def test_user_stream_reports_own_order_and_fill(sim, venue):
    if venue == "backpack":
        c = BackpackClient(BackpackUrls(sim.url("backpack", "rest"), sim.url("backpack", "ws")),
                           Credentials(public_key_from_seed(SEED), SEED), clock=CompressedTime(sim))
        symbol = "BTC_USDC"
    else:
        c = binance(sim, MarketKind.SPOT if venue == "binance" else MarketKind.PERP)
        c.clock = c.rest.clock = c.limiter.clock = CompressedTime(sim)
        symbol = "BTCUSDT"
    await c.sync_clock()
    inst = {i.symbol: i for i in await c.instruments()}[symbol]
    sink = OrderSink()
    stream = c.user_stream(sink)
    task = asyncio.create_task(stream.run())
    await asyncio.wait_for(stream.conn.connected.wait(), 5)
    await asyncio.sleep(0.05)  # the subscription frame is processed
    o = Order("ate-user-1", c.venue, symbol, Side.BUY, OrderType.MARKET, Decimal("0.002"))
    assert (await c.place_order(o, inst)).outcome is Outcome.ACCEPTED
    for _ in range(200):
        if any(fill is not None for _, fill in sink.events):
            break
        await asyncio.sleep(0.01)
    await stream.close()
    await task
    fills = [f for _, f in sink.events if f is not None]
    assert fills and all(f.client_order_id == "ate-user-1" for f in fills), sink.events
    assert sum(f.qty for f in fills) == Decimal("0.002")
    assert sink.events[-1][0].status is OrderStatus.FILLED
    await c.close()


async def test_check_reports_every_venue_against_simulator(sim):
    from ate.commands.venues import run_checks
    from ate.config.models import EngineConfig
    from ate.venues.check import FAIL, OK, WARN

    spot, usdm = sim.url("binance-spot", "rest"), sim.url("binance-usdm", "rest")
    cfg = EngineConfig.model_validate({"mode": "paper", "venues": {
        "binance": {"spot_rest_url": spot, "usdm_rest_url": usdm, "api_key": KEY, "api_secret": SECRET},
        "backpack": {"rest_url": sim.url("backpack", "rest"), "api_key": public_key_from_seed(SEED),
                     "api_secret": SEED},
        "deribit": {"rest_url": sim.url("deribit", "rest")},
    }})
    # The simulator's clock is the 2025 replay: a real clock would be refused, which check must report.
    rows = await run_checks(cfg)
    skew = {r.venue: r.status for r in rows if r.check == "clock skew"}
    assert skew == {"binance": FAIL, "binance_usdm": FAIL, "backpack": FAIL}
    rows = await run_checks(cfg, clock=SimTime(sim))  # on the simulator's clock everything passes
    assert {(r.venue, r.check): r.status for r in rows} == {
        **{(v, c): OK for v in ("binance", "binance_usdm", "backpack")
           for c in ("reachable", "clock skew", "keys", "permissions", "rate-limit headroom")},
        # the simulator's key reads and trades only, from a whitelisted IP; Backpack cannot tell
        ("binance", "withdrawals"): OK, ("binance", "ip restriction"): OK,
        ("backpack", "withdrawals"): WARN, ("backpack", "ip restriction"): WARN,
        ("deribit", "reachable"): OK}


async def test_ticker_prints_top_of_book_from_simulator(sim, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    from ate.commands.venues import _ticker
    from ate.config.models import EngineConfig

    cfg = EngineConfig.model_validate({"mode": "paper", "venues": {
        "binance": {"spot_rest_url": sim.url("binance-spot", "rest")}}})
    book = sim.core.market("binance-spot", "BTCUSDT")
    await _ticker(cfg, "binance", "BTCUSDT", watch=False)
    out = capsys.readouterr().out
    assert "binance:BTCUSDT" in out and str(book.bid_price) in out and str(book.ask_price) in out


class DepthSink:
    def __init__(self) -> None:
        self.snapshots = 0
        self.diffs = 0

    def on_depth(self, d) -> None:
        if d.snapshot:
            self.snapshots += 1
        else:
            self.diffs += 1

    def on_book(self, b) -> None: ...
    def on_candle(self, *a) -> None: ...
    def on_mark(self, m) -> None: ...
    def on_trade(self, t) -> None: ...


@pytest.mark.parametrize("venue", ["binance", "binance_usdm", "backpack"])
async def test_local_book_tracks_simulator_through_depth_gaps(venue):
    async with run_simulator(sim_config("depth_gap=0.3"), clock=SteppingClock(START_MS), base_dir=REPO) as sim:
        sim.advance(60_000)
        if venue == "backpack":
            c = BackpackClient(BackpackUrls(sim.url("backpack", "rest"), sim.url("backpack", "ws")),
                               clock=CompressedTime(sim))
            symbol, sim_venue = "BTC_USDC", "backpack"
        else:
            c = binance(sim, MarketKind.SPOT if venue == "binance" else MarketKind.PERP)
            c.clock = c.rest.clock = c.limiter.clock = CompressedTime(sim)
            symbol, sim_venue = "BTCUSDT", "binance-spot" if venue == "binance" else "binance-usdm"
        sink = DepthSink()
        stream = c.market_stream([symbol], sink, book=False, candles=False, depth=True)
        task = asyncio.create_task(stream.run())
        for conn in getattr(stream, "connections", None) or [stream.conn]:
            await asyncio.wait_for(conn.connected.wait(), 5)
        for _ in range(60):
            sim.advance(5_000)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        book = stream.depth.books[symbol]
        m = sim.core.market(sim_venue, symbol)
        assert book.synced and book.best() == (m.bid_price, m.ask_price)
        assert sink.diffs > 0 and sink.snapshots >= 1
        assert sim.faults.counts["depth_gap"] > 0 and book.resyncs > 0  # gaps happened and were healed
        await stream.close()
        await task
        await c.close()


def test_every_client_satisfies_the_venue_contract():
    from ate.venues.base import VenueClient

    clients = [BinanceClient(MarketKind.SPOT, BinanceUrls("http://x", "ws://x")),
               BinanceClient(MarketKind.PERP, BinanceUrls("http://x", "ws://x")),
               BackpackClient(BackpackUrls("http://x", "ws://x"))]
    assert all(isinstance(c, VenueClient) for c in clients)


async def test_dvol_poller_feeds_the_manager_from_simulator(sim):
    from ate.data.manager import MarketDataManager
    from ate.venues.deribit.client import DeribitClient, DvolPoller

    manager = MarketDataManager()
    client = DeribitClient(sim.url("deribit", "rest"), clock=SimTime(sim))
    poller = DvolPoller(client, manager, ("BTC",), lookback_ms=30 * 86_400_000)
    await poller.poll_once()
    await poller.poll_once()  # the same days again: nothing new, nothing quarantined
    latest = manager.dvol["BTC"]
    assert latest.close > 0 and latest.close_ms <= sim.clock.now_ms()  # no look-ahead
    history = await client.dvol("BTC", START_MS - 30 * 86_400_000, sim.clock.now_ms())
    assert history[-1] == latest and len(history) >= 29
    assert manager.quarantine_counts() == {}
    await client.close()


async def test_check_starts_the_simulator_for_simulated_venues():
    from ate.commands.venues import run_checks
    from ate.config import load_config
    from ate.venues.check import FAIL

    demo = REPO / "configs" / "demo.json"
    if not demo.exists():
        pytest.skip("configs/demo.json absent")
    rows = await run_checks(load_config(demo))
    assert [r for r in rows if r.status == FAIL] == []
    assert {r.venue for r in rows if r.check == "keys" and r.status == "ok"} == {"binance", "binance_usdm",
                                                                                "backpack"}


async def test_binance_fills_since_pages_past_a_thousand_trades(sim):
    """A long downtime leaves more trades than one history page: every one is read before the balances are
    compared (a trade left for later would be in the balance and booked again as a fill)."""
    c = binance(sim, MarketKind.SPOT)
    await c.sync_clock()
    sim.core.place_order("alice", "binance-spot", "BTCUSDT", Side.BUY, OrderType.MARKET, Decimal("0.001"),
                         tif=TimeInForce.IOC, client_order_id="seen-0")
    (seen,), _ = await c.fills_since("BTCUSDT", None)
    for n in range(1, 1051):
        sim.core.place_order("alice", "binance-spot", "BTCUSDT", Side.SELL if n % 2 else Side.BUY, OrderType.MARKET,
                             Decimal("0.001"), tif=TimeInForce.IOC, client_order_id=f"down-{n}")
    fills, cursor = await c.fills_since("BTCUSDT", seen.trade_id)
    venue = [t for t in sim.core.trades_for("alice", "binance-spot", "BTCUSDT") if t.trade_no > int(seen.trade_id)]
    assert len(venue) == 1050
    assert [f.trade_id for f in fills] == [str(t.trade_no) for t in venue]
    assert [f.client_order_id for f in fills[:2]] == ["down-1", "down-2"] and fills[-1].client_order_id == "down-1050"
    assert cursor == str(venue[-1].trade_no) and await c.fills_since("BTCUSDT", cursor) == ([], cursor)
    await c.close()

import os
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ate.model import (
    EngineEvent,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Severity,
    Side,
    client_order_id,
)
from ate.store import Store
from ate.store.schema import metadata


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/ate.db")
    yield s
    s.close()


def test_migrations_build_exactly_the_declared_schema(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_wal_mode_and_full_sync(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_order_round_trip_keeps_decimals_and_state(store):
    o = Order(client_order_id("r", "arbitrage", 1), "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT,
              Decimal("0.00123"), Decimal("60123.45"), strategy="arbitrage", created_ms=1, meta={"leg": "buy"})
    store.save_order(o)
    o.transition(OrderStatus.SUBMITTED, 2)
    o.venue_order_id = "42"
    o.apply_fill(Decimal("0.001"), Decimal("60123.45"), 3)
    store.save_order(o)
    back = store.get_order(o.client_order_id)
    assert back == o
    assert [x.client_order_id for x in store.orders(open_only=True)] == [o.client_order_id]
    o.apply_fill(Decimal("0.00023"), Decimal("60120"), 4)
    store.save_order(o)
    assert store.orders(open_only=True) == []


def test_fills_ledger_are_idempotent_and_positions_round_trip(store):
    f = Fill("binance", "BTCUSDT", "t1", "c1", "1", Side.SELL, Decimal("0.5"), Decimal("60000.5"),
             Decimal("0.03"), "USDT", False, 1000, "carry")
    assert store.add_fill(f) is True
    assert store.add_fill(f) is False
    assert store.fills() == [f]
    assert store.add_ledger(ts_ms=1, kind="funding", amount=Decimal("1.25"), asset="USDT", venue="binance", ref="f1")
    assert not store.add_ledger(ts_ms=1, kind="funding", amount=Decimal("1.25"), asset="USDT", venue="binance",
                                ref="f1")
    assert [r["amount"] for r in store.ledger()] == [Decimal("1.25")]
    # positions are a projection of the fills: −0.5 at 60000.5, then +0.2 at 59000 realises 200.1
    store.add_fill(Fill("binance", "BTCUSDT", "t2", "c2", "2", Side.BUY, Decimal("0.2"), Decimal("59000"),
                        Decimal(0), "USDT", False, 2000, "carry"))
    assert store.positions() == [Position("binance", "BTCUSDT", Decimal("-0.3"), Decimal("60000.5"),
                                          Decimal("200.1"), mark_price=Decimal("59000"))]
    store.add_equity(10, Decimal("1000.5"))
    assert store.equity_series() == [(10, Decimal("1000.5"), Decimal(0))]
    store.add_event(EngineEvent(5, "trading_state", "HALTED by operator", Severity.CRITICAL, {"who": "cli"}))
    assert store.events()[0].data == {"who": "cli"}
    store.set_state("trading_state", {"state": "HALTED"})
    store.set_state("trading_state", {"state": "ACTIVE"})
    assert store.get_state("trading_state") == {"state": "ACTIVE"}


WRITER = textwrap.dedent("""
    import sys
    from decimal import Decimal
    from sqlalchemy import insert
    from ate.store import Store
    from ate.store import schema as t
    s = Store(sys.argv[1])
    batch = 0
    print("ready", flush=True)
    while True:
        batch += 1
        with s.engine.begin() as c:  # one transaction = 50 ledger rows of one batch
            for i in range(50):
                c.execute(insert(t.ledger).values(ts_ms=batch, kind="realized", amount=Decimal(i), asset="USDT",
                                                  venue="sim", symbol="", strategy="", ref=f"{batch}-{i}",
                                                  shadow=False))
""")


def test_killed_writer_leaves_only_complete_transactions(tmp_path):
    url = f"sqlite:///{tmp_path}/crash.db"
    Store(url).close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    store = Store(url)
    while len(store.ledger()) < 500 and time.monotonic() < deadline:
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store.close()
    reopened = Store(url)
    rows = reopened.ledger()
    per_batch: dict[int, int] = {}
    for r in rows:
        per_batch[r["ts_ms"]] = per_batch.get(r["ts_ms"], 0) + 1
    assert len(rows) >= 500
    assert set(per_batch.values()) == {50}
    assert sorted(per_batch) == list(range(1, len(per_batch) + 1))


HOLDER = textwrap.dedent("""
    import os, sys, time
    from ate.store import Store
    store = Store(sys.argv[1])
    store.claim_engine()
    os.write(int(sys.argv[2]), b"claimed\\n")
    time.sleep(60)
""")


def test_one_engine_per_store_and_a_killed_engine_frees_it(tmp_path):
    """Two engines on one store would each trade the same positions: the second claim is refused while the
    first holds it, in this process or another, and a SIGKILLed holder frees the store for its restart."""
    from ate.store import StoreBusy

    url = f"sqlite:///{tmp_path}/one.db"
    first, second = Store(url), Store(url)
    first.claim_engine()
    with pytest.raises(StoreBusy, match="another ate engine is running"):
        second.claim_engine()
    first.close()  # a clean stop releases it
    second.claim_engine()
    second.close()

    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(write)], pass_fds=(write,))
    os.close(write)
    with os.fdopen(read) as channel:
        assert channel.readline().strip() == "claimed"
        third = Store(url)
        with pytest.raises(StoreBusy):
            third.claim_engine()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    third.claim_engine()
    third.close()

"""The same store code on a real PostgreSQL server: a throwaway cluster started for this test module."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from ate.model import EngineEvent, Fill, Order, OrderStatus, OrderType, Severity, Side, client_order_id
from ate.store import Store
from ate.store.rows import JsonText


def _pg_bin(name: str) -> str | None:
    """On PATH, or where Debian's postgresql package puts the server binaries."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        found = candidates[-1] if candidates else None
    return found


INITDB = _pg_bin("initdb")
PG_CTL = _pg_bin("pg_ctl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    if not (INITDB and PG_CTL):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' system user to run the server as")
    if os.geteuid() not in (0, user.pw_uid):
        pytest.skip("starting a cluster as 'postgres' needs root or the postgres user")
    base = Path(tempfile.mkdtemp(prefix="ate-pg-"))  # pytest's tmp root is private to root: postgres can't enter
    os.chmod(base, 0o777)
    data = base / "data"
    port = _free_port()

    def as_pg(*cmd: str) -> None:
        pre = [] if os.geteuid() == user.pw_uid else ["runuser", "-u", "postgres", "--"]
        subprocess.run([*pre, *cmd], check=True, capture_output=True, timeout=120)

    as_pg(INITDB, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    as_pg(PG_CTL, "-D", str(data), "-w", "-l", str(base / "log"), "-o",
          f"-h 127.0.0.1 -p {port} -k {base} -F", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_pg(PG_CTL, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_store_round_trips_on_postgresql(pg_url):
    store = Store(pg_url)
    o = Order(client_order_id("pg", "carry", 1), "binance_usdm", "BTCUSDT", Side.SELL, OrderType.LIMIT,
              Decimal("0.123"), Decimal("60000.1"), strategy="carry", created_ms=5)
    store.save_order(o)
    o.transition(OrderStatus.SUBMITTED, 6)
    o.apply_fill(Decimal("0.123"), Decimal("60000.1"), 7)
    store.save_order(o)
    assert store.get_order(o.client_order_id) == o
    f = Fill("binance_usdm", "BTCUSDT", "9", o.client_order_id, "1", Side.SELL, Decimal("0.123"),
             Decimal("60000.1"), Decimal("3.690006"), "USDT", False, 7, "carry")
    assert store.add_fill(f) and not store.add_fill(f)
    assert store.fills() == [f]
    store.set_state("risk.trading_state", {"state": "HALTED"})
    assert store.get_state("risk.trading_state") == {"state": "HALTED"}
    store.set_state("risk.trading_state", JsonText('{"state": "ACTIVE"}'))  # an upsert, already encoded
    assert store.get_state("risk.trading_state") == {"state": "ACTIVE"}
    entry = {"ts_ms": 7, "kind": "fee", "amount": Decimal("-3.690006"), "asset": "USDT", "venue": "binance_usdm",
             "ref": "fee:9", "value_usd": Decimal("-3.690006"), "price_source": "quote"}
    assert store.add_ledger(**entry) and not store.add_ledger(**entry)
    assert store.ledger()[0]["amount"] == Decimal("-3.690006")
    ev = EngineEvent(8, "external_fill", "a fill", Severity.CRITICAL, {"qty": "0.1"})
    store.add_event(ev)
    assert store.events() == [ev]
    store.close()
    assert Store(pg_url).get_order(o.client_order_id).status is OrderStatus.FILLED  # migrations re-run as no-ops


def test_one_engine_per_store_on_postgresql(pg_url):
    from ate.store import StoreBusy

    first, second = Store(pg_url), Store(pg_url)
    first.claim_engine()
    with pytest.raises(StoreBusy):
        second.claim_engine()
    first.close()
    second.claim_engine()
    second.close()

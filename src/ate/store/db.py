"""The store: SQLAlchemy 2 Core over SQLite (WAL, fsync on commit) or PostgreSQL by URL.

The ledger lives here. A write outside a unit of work commits before the method returns; inside
``with store.unit():`` every write of the thread joins one transaction, and work registered with
``after_commit`` (the sending of written-ahead orders: the outbox) runs only once it committed. A kill
at any instruction therefore leaves the store before or after a unit, never in between.

The schema is versioned with Alembic; opening a store upgrades it to head under a lock (a file lock
next to a SQLite file, an advisory lock on PostgreSQL), so concurrent opens of a new store are safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import bindparam, create_engine, event, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

from ate.model import (
    EngineEvent,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Severity,
    Side,
    TimeInForce,
    held_fee,
)
from ate.store import schema as t
from ate.store.rows import CoreRows, SqliteRows

MIGRATIONS = Path(__file__).with_name("migrations")
MARKS_KEY = "engine.marks"  # the running engine's latest marks, for readers of the store (monitor, status)
# The engine's spot markets and their base coins (written at start): a fee taken in the base coin is not held.
SPOT_BASES_KEY = "engine.spot_bases"
OPEN_STATUSES = [s.value for s in OrderStatus if not s.is_terminal]
_STATE_SELECT = select(t.engine_state.c.value).where(t.engine_state.c.key == bindparam("key_key"))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_PG_MIGRATION_LOCK = 0x617465  # any fixed key: every ate process agrees on it
_PG_ENGINE_LOCK = 0x61746501


class StoreBusy(RuntimeError):
    """Another engine holds this store."""


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema upgrades between processes opening the same store ("table orders already exists")."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        yield
        return
    with open(f"{database}.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _order_from(r: Any) -> Order:
    return Order(
        client_order_id=r.client_order_id, venue=r.venue, symbol=r.symbol, side=Side(r.side),
        type=OrderType(r.type), qty=r.qty, price=r.price, tif=TimeInForce(r.tif), reduce_only=r.reduce_only,
        strategy=r.strategy, status=OrderStatus(r.status), venue_order_id=r.venue_order_id,
        filled_qty=r.filled_qty, filled_quote=r.filled_quote, created_ms=r.created_ms, updated_ms=r.updated_ms,
        reason=r.reason, meta=dict(r.meta or {}),
    )


def _fill_from(r: Any) -> Fill:
    return Fill(
        venue=r.venue, symbol=r.symbol, trade_id=r.trade_id, client_order_id=r.client_order_id,
        venue_order_id=r.venue_order_id, side=Side(r.side), qty=r.qty, price=r.price, fee=r.fee,
        fee_asset=r.fee_asset, is_maker=r.is_maker, ts_ms=r.ts_ms, strategy=r.strategy,
    )


def _fill_row(r: Any) -> tuple[int, Fill]:
    return r.id, _fill_from(r)


class _Projection:
    """Positions replayed from the fills up to `last_id` (`count` fills, the latest at `last_ts`), with the
    spot markets' base coins (`SPOT_BASES_KEY`) the held fees were judged by."""

    __slots__ = ("positions", "count", "last_id", "last_ts", "bases")

    def __init__(self, bases: dict[str, str] | None = None) -> None:
        self.positions: dict[tuple[str, str], Position] = {}
        self.count = self.last_id = self.last_ts = 0
        self.bases: dict[str, str] = bases or {}

    def copy(self) -> _Projection:
        other = _Projection(self.bases)
        other.positions = {k: replace(p) for k, p in self.positions.items()}
        other.count, other.last_id, other.last_ts = self.count, self.last_id, self.last_ts
        return other


class _Unit:
    __slots__ = ("conn", "rows", "before", "after")

    def __init__(self, conn: Connection, rows: SqliteRows | CoreRows) -> None:
        self.conn = conn
        self.rows = rows
        self.before: list[Callable[[], None]] = []
        self.after: list[Callable[[], None]] = []


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)
        self._rows = SqliteRows if self.engine.dialect.name == "sqlite" else CoreRows
        self._local = threading.local()
        self._conns: list[Connection] = []  # every thread's unit connection, closed with the store
        self._conns_lock = threading.Lock()
        self._projections: dict[bool, _Projection] = {}  # positions replayed so far, per book
        self._projection_lock = threading.Lock()

    def close(self) -> None:
        self.release_engine()
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self.engine.dispose()

    def claim_engine(self) -> None:
        """Hold the store for one engine until `release_engine` or the process ends (kill -9 included: the
        kernel drops a file lock, PostgreSQL an advisory lock, with their owner). Two engines on one store
        would each trade the same strategies and positions, so the second is refused with StoreBusy."""
        database = self.engine.url.database or ""
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_ENGINE_LOCK}).scalar():
                conn.close()
                raise StoreBusy(f"another ate engine is running on {self.engine.url.render_as_string()}")
            conn.commit()
            self._claim = conn
        elif database not in ("", ":memory:"):
            f = open(f"{database}.engine.lock", "a+b")  # noqa: SIM115 - held for the engine's lifetime
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                raise StoreBusy(f"another ate engine is running on {database}") from None
            self._claim = f

    def release_engine(self) -> None:
        claim, self._claim = getattr(self, "_claim", None), None
        if claim is None:
            return
        if isinstance(claim, Connection):
            with contextlib.suppress(Exception):
                claim.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_ENGINE_LOCK})
                claim.commit()
        claim.close()

    # -- units of work --

    @contextlib.contextmanager
    def unit(self) -> Iterator[bool]:
        """One transaction for everything written in the block; yields True for the outermost unit (nested
        units join it and yield False). `before_commit` work runs inside the transaction at its end;
        `after_commit` work runs after the commit, in order. On an exception nothing is written and the
        work is dropped."""
        if getattr(self._local, "unit", None) is not None:
            yield False
            return
        conn = self._unit_connection()
        with conn.begin():
            unit = self._local.unit = _Unit(conn, self._rows(conn))
            try:
                yield True
                while unit.before:
                    unit.before.pop(0)()
            finally:
                self._local.unit = None
        for fn in unit.after:
            fn()

    def _unit_connection(self) -> Connection:
        """The thread's connection for units, kept open: a pool checkout per unit cost more than its writes."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.invalidated:  # its database connection failed (a disk error): a new one
            conn.close()
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def before_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` as the last writes of the current unit (at once when no unit is open)."""
        unit = getattr(self._local, "unit", None)
        if unit is None:
            fn()
        else:
            unit.before.append(fn)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the current unit committed; at once when no unit is open (every write committed)."""
        unit = getattr(self._local, "unit", None)
        if unit is None:
            fn()
        else:
            unit.after.append(fn)

    @contextlib.contextmanager
    def _write(self) -> Iterator[SqliteRows | CoreRows]:
        """The writer of the current unit, else of a transaction that commits when the block ends."""
        unit = getattr(self._local, "unit", None)
        if unit is not None:
            yield unit.rows
        else:
            with self.engine.begin() as conn:
                yield self._rows(conn)

    def _apply(self, write: str, *args: Any) -> Any:
        """One of the writer's hot writes (`SqliteRows`), in the current unit or committed at once; inside a unit
        (every decision and venue event) without `_write`'s context manager."""
        unit = getattr(self._local, "unit", None)
        if unit is not None:
            return getattr(unit.rows, write)(*args)
        with self.engine.begin() as conn:
            return getattr(self._rows(conn), write)(*args)

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """Reads inside a unit see its own uncommitted writes."""
        unit = getattr(self._local, "unit", None)
        if unit is not None:
            yield unit.conn
        else:
            with self.engine.connect() as conn:
                yield conn

    # -- key/value engine state (trading state, daily loss anchor, equity peak, cursors) --

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._read() as c:
            row = c.execute(_STATE_SELECT, {"key_key": key}).first()
        return default if row is None else row[0]

    def set_state(self, key: str, value: Any, ts_ms: int | None = None) -> None:
        ts = ts_ms or _now_ms()
        self._apply("state", key, value, ts)

    def all_state(self) -> dict[str, Any]:
        with self._read() as c:
            return {r.key: r.value for r in c.execute(select(t.engine_state))}

    # -- orders --

    def save_order(self, order: Order, *, shadow: bool = False, new: bool = False) -> None:
        """Insert or update by client order id; durable when this returns. `new`: a fresh id (write-ahead of
        a new order), so one INSERT suffices — and a reused id fails loudly instead of overwriting."""
        self._apply("order", order, shadow, new)

    def get_order(self, client_order_id: str) -> Order | None:
        with self._read() as c:
            r = c.execute(select(t.orders).where(t.orders.c.client_order_id == client_order_id)).first()
        return None if r is None else _order_from(r)

    def order_by_venue_id(self, venue: str, venue_order_id: str) -> Order | None:
        """An order by the venue's own id (a venue that reports only a derived form of our client id)."""
        q = select(t.orders).where((t.orders.c.venue == venue) & (t.orders.c.venue_order_id == venue_order_id))
        with self._read() as c:
            r = c.execute(q).first()
        return None if r is None else _order_from(r)

    def orders(self, *, open_only: bool = False, venue: str | None = None, shadow: bool | None = None,
               limit: int | None = None) -> list[Order]:
        q = select(t.orders).order_by(t.orders.c.created_ms.desc(), t.orders.c.client_order_id)
        if open_only:
            q = q.where(t.orders.c.status.in_(OPEN_STATUSES))
        if venue is not None:
            q = q.where(t.orders.c.venue == venue)
        if shadow is not None:
            q = q.where(t.orders.c.shadow == shadow)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as c:
            return [_order_from(r) for r in c.execute(q)]

    # -- fills (idempotent on venue + symbol + trade id) --

    def add_fill(self, fill: Fill, *, shadow: bool = False) -> bool:
        """Record a fill; False if it was already recorded (replayed stream or reconciliation)."""
        return self._apply("fill", fill, shadow)

    def fills(self, *, since_ms: int | None = None, strategy: str | None = None,
              shadow: bool | None = None, limit: int | None = None) -> list[Fill]:
        q = select(t.fills).order_by(t.fills.c.ts_ms, t.fills.c.id)
        if since_ms is not None:
            q = q.where(t.fills.c.ts_ms >= since_ms)
        if strategy is not None:
            q = q.where(t.fills.c.strategy == strategy)
        if shadow is not None:
            q = q.where(t.fills.c.shadow == shadow)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as c:
            return [_fill_from(r) for r in c.execute(q)]

    # -- positions: derived from the fills, never stored apart from them --

    def positions(self, *, shadow: bool = False) -> list[Position]:
        """Every market's position replayed from its fills (quantity net of fees taken in a spot market's base
        coin, `SPOT_BASES_KEY`; entry; realised P&L), marked at the engine's last recorded marks (`MARKS_KEY`),
        else at the last fill price. Positions are a projection of the ledger, never a snapshot of a process:
        the replay is kept between calls and only the fills booked since are applied (a reader polling
        positions no longer replays the whole history)."""
        with self._projection_lock:  # readers on several threads (the monitor's) share the kept replay
            out = {k: replace(p) for k, p in self._replay_fills(shadow).items()}
        marks = self.get_state(MARKS_KEY) or {}
        for (venue, symbol), pos in out.items():
            if f"{venue}:{symbol}" in marks:
                pos.mark_price = Decimal(marks[f"{venue}:{symbol}"])
        return [out[k] for k in sorted(out)]

    def _replay_fills(self, shadow: bool) -> dict[tuple[str, str], Position]:
        """The fills applied in (time, id) order, as `fills()` lists them. Fills are only ever added, so the
        kept replay stays valid while the new ones come after it: a fill booked with an earlier time
        (reconciliation) or a gap in the ids (a transaction that committed late) replays everything again.
        Inside a unit the uncommitted fills are applied to a copy, never kept (the unit may roll back)."""
        c_ = t.fills.c
        bases = self.get_state(SPOT_BASES_KEY) or {}
        kept = self._projections.get(shadow)
        if kept is None or kept.bases != bases:  # the held-fee rule changed: every fill is judged again
            kept = _Projection(bases)
        with self._read() as c:
            count, last_id = c.execute(select(func.count(), func.max(c_.id)).where(c_.shadow == shadow)).one()
            new = [] if last_id is None or last_id <= kept.last_id else [_fill_row(r) for r in c.execute(
                select(t.fills).where((c_.shadow == shadow) & (c_.id > kept.last_id)).order_by(c_.ts_ms, c_.id))]
        if kept.count + len(new) != count or (new and new[0][1].ts_ms < kept.last_ts):
            kept, new = _Projection(bases), [_fill_row(r) for r in self._fill_rows(shadow)]
        in_unit = getattr(self._local, "unit", None) is not None
        if in_unit and new:
            kept = kept.copy()
        for fill_id, f in new:
            pos = kept.positions.get((f.venue, f.symbol))
            if pos is None:
                pos = kept.positions[(f.venue, f.symbol)] = Position(f.venue, f.symbol)
            pos.apply_fill(f.side, f.qty, f.price,
                           held_fee=held_fee(f.fee, f.fee_asset, bases.get(f"{f.venue}:{f.symbol}")))
            pos.mark_price = f.price
            kept.last_id, kept.last_ts = max(kept.last_id, fill_id), max(kept.last_ts, f.ts_ms)
        kept.count += len(new)
        if not in_unit:
            self._projections[shadow] = kept
        return kept.positions

    def _fill_rows(self, shadow: bool) -> list[Any]:
        q = select(t.fills).where(t.fills.c.shadow == shadow).order_by(t.fills.c.ts_ms, t.fills.c.id)
        with self._read() as c:
            return list(c.execute(q))

    # -- balances --

    def add_balance_snapshot(self, venue: str, balances: dict[str, tuple[Decimal, Decimal]], ts_ms: int) -> None:
        """What a venue reported (for the record and the operator); the engine's balances come from the ledger."""
        with self._write() as w:
            for asset, (free, locked) in balances.items():
                w.conn.execute(insert(t.balance_snapshots).values(ts_ms=ts_ms, venue=venue, asset=asset, free=free,
                                                             locked=locked))

    def latest_balances(self, venue: str) -> dict[str, tuple[Decimal, Decimal]]:
        with self._read() as c:
            last = c.execute(select(func.max(t.balance_snapshots.c.ts_ms)).where(
                t.balance_snapshots.c.venue == venue)).scalar()
            if last is None:
                return {}
            rows = c.execute(select(t.balance_snapshots).where(
                (t.balance_snapshots.c.venue == venue) & (t.balance_snapshots.c.ts_ms == last)))
            return {r.asset: (r.free, r.locked) for r in rows}

    # -- P&L ledger (idempotent on kind + venue + ref) --

    def add_ledger(self, *, ts_ms: int, kind: str, amount: Decimal, asset: str, venue: str, ref: str,
                   symbol: str = "", strategy: str = "", shadow: bool = False, value_usd: Decimal | None = None,
                   price_source: str = "") -> bool:
        """Book an entry once (by kind + venue + ref); False if it was already booked. `value_usd` and
        `price_source`: the entry's value when booked and where its price came from (fees in any asset)."""
        return self._apply("ledger", {
            "ts_ms": ts_ms, "kind": kind, "amount": amount, "asset": asset, "venue": venue, "symbol": symbol,
            "strategy": strategy, "ref": ref, "shadow": shadow, "value_usd": value_usd, "price_source": price_source})

    def has_ledger(self, kind: str, venue: str, ref: str, *, shadow: bool = False) -> bool:
        c_ = t.ledger.c
        q = select(c_.id).where((c_.kind == kind) & (c_.venue == venue) & (c_.ref == ref) & (c_.shadow == shadow))
        with self._read() as c:
            return c.execute(q).first() is not None

    def ledger(self, *, since_ms: int | None = None, kind: str | None = None, shadow: bool | None = None) -> list[dict]:
        q = select(t.ledger).order_by(t.ledger.c.ts_ms, t.ledger.c.id)
        if since_ms is not None:
            q = q.where(t.ledger.c.ts_ms >= since_ms)
        if kind is not None:
            q = q.where(t.ledger.c.kind == kind)
        if shadow is not None:
            q = q.where(t.ledger.c.shadow == shadow)
        with self._read() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    # -- equity snapshots (promotion gates, Sharpe, daily P&L) --

    def add_equity(self, ts_ms: int, equity: Decimal, flows: Decimal = Decimal(0), *, shadow: bool = False) -> None:
        with self._write() as w:
            w.conn.execute(insert(t.equity_snapshots).values(ts_ms=ts_ms, equity=equity, flows=flows, shadow=shadow))

    def equity_series(self, *, since_ms: int | None = None, shadow: bool = False) -> list[tuple[int, Decimal, Decimal]]:
        q = select(t.equity_snapshots).where(t.equity_snapshots.c.shadow == shadow).order_by(
            t.equity_snapshots.c.ts_ms, t.equity_snapshots.c.id)
        if since_ms is not None:
            q = q.where(t.equity_snapshots.c.ts_ms >= since_ms)
        with self._read() as c:
            return [(r.ts_ms, r.equity, r.flows) for r in c.execute(q)]

    # -- events --

    def add_event(self, ev: EngineEvent) -> None:
        self._apply("event", ev)

    def events(self, *, limit: int = 100, kind: str | None = None, since_ms: int | None = None) -> list[EngineEvent]:
        q = select(t.events).order_by(t.events.c.ts_ms.desc(), t.events.c.id.desc()).limit(limit)
        if kind is not None:
            q = q.where(t.events.c.kind == kind)
        if since_ms is not None:
            q = q.where(t.events.c.ts_ms >= since_ms)
        with self._read() as c:
            return [EngineEvent(r.ts_ms, r.kind, r.message, Severity(r.severity), dict(r.data or {}))
                    for r in c.execute(q)]

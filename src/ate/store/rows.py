"""The store's hot writes (order write-ahead, fill, ledger entry, state, event), one implementation per dialect.

Every unit of work writes a few of these rows, and on SQLite SQLAlchemy's statement machinery cost more than
the statement itself (~75 µs a write against ~12 µs for the sqlite3 call). `SqliteRows` therefore binds plain
tuples to fixed SQL on the unit's own DBAPI connection through one cursor per transaction: sqlite3 keeps each
statement prepared (its statement cache is keyed by the SQL text), and the writes join the unit's transaction
like any other. `CoreRows` is the SQLAlchemy Core form of the same writes, for PostgreSQL. Both store the same
values, so SQLAlchemy reads them back alike (Decimals as `DecimalText` formats them; JSON that `json.loads`
reads as it was given — an order's meta is encoded by msgspec, which writes a non-finite float as null).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ate.model import EngineEvent, Fill, Order
from ate.store import schema as t


class JsonText(str):
    """A value already encoded as JSON (a caller that encoded it to compare with what it saved last): stored
    as is instead of being encoded again."""


def _json(value: Any) -> str:
    return value if isinstance(value, JsonText) else json.dumps(value)


def _dec(value) -> str | None:
    if type(value) is Decimal:  # the usual case: no copy through Decimal() first
        return format(value, "f")
    return None if value is None else t.decimal_text(value)


_ORDER_COLS = ("client_order_id", "venue", "symbol", "side", "type", "tif", "qty", "price", "reduce_only", "strategy",
               "status", "venue_order_id", "filled_qty", "filled_quote", "created_ms", "updated_ms", "reason",
               "shadow", "meta")
_FILL_COLS = ("venue", "symbol", "trade_id", "client_order_id", "venue_order_id", "side", "qty", "price", "fee",
              "fee_asset", "is_maker", "ts_ms", "strategy", "shadow")
_LEDGER_COLS = ("ts_ms", "kind", "amount", "asset", "venue", "symbol", "strategy", "ref", "shadow", "value_usd",
                "price_source")


def _marks(n: int) -> str:
    return ", ".join("?" * n)


_SQL_ORDER_INSERT = f"INSERT INTO orders ({', '.join(_ORDER_COLS)}) VALUES ({_marks(len(_ORDER_COLS))})"
_SQL_ORDER_UPDATE = (f"UPDATE orders SET {', '.join(f'{c} = ?' for c in _ORDER_COLS)} "
                     "WHERE client_order_id = ?")
_SQL_FILL_INSERT = (f"INSERT INTO fills ({', '.join(_FILL_COLS)}) VALUES ({_marks(len(_FILL_COLS))}) "
                    "ON CONFLICT (venue, symbol, trade_id) DO NOTHING")
_SQL_LEDGER_INSERT = (f"INSERT INTO ledger ({', '.join(_LEDGER_COLS)}) VALUES ({_marks(len(_LEDGER_COLS))}) "
                      "ON CONFLICT (kind, venue, ref, shadow) DO NOTHING")
_SQL_STATE_UPSERT = ("INSERT INTO engine_state (key, value, updated_ms) VALUES (?, ?, ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms")
_SQL_EVENT_INSERT = "INSERT INTO events (ts_ms, kind, severity, message, data) VALUES (?, ?, ?, ?, ?)"


# An order's meta (the strategy's tags) by msgspec: `json` spent ~5 µs on it in every order's write-ahead.
_META_JSON = msgspec.json.Encoder()


def _order_values(o: Order, shadow: bool) -> tuple:
    # `_value_`: the enums' `.value` is a descriptor call, four of them on every order's write-ahead
    return (o.client_order_id, o.venue, o.symbol, o.side._value_, o.type._value_, o.tif._value_, _dec(o.qty),
            _dec(o.price), o.reduce_only, o.strategy, o.status._value_, o.venue_order_id, _dec(o.filled_qty),
            _dec(o.filled_quote), o.created_ms, o.updated_ms, o.reason, shadow, _META_JSON.encode(o.meta).decode())


class SqliteRows:
    """Hot writes as prepared sqlite3 statements on the connection of the caller's transaction, through one
    cursor per transaction (`Connection.execute` of sqlite3 makes a cursor for every statement)."""

    __slots__ = ("conn", "_cursor")

    def __init__(self, c: Connection) -> None:
        self.conn = c
        self._cursor = c.connection.driver_connection.cursor()

    def run(self, sql: str, values: tuple) -> int:
        """Execute one write; the number of rows it changed. A failure is raised as SQLAlchemy raises it (e.g.
        `sqlalchemy.exc.IntegrityError`), so callers see one kind of store error whatever the path."""
        try:
            return self._cursor.execute(sql, values).rowcount
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc

    def order(self, o: Order, shadow: bool, new: bool) -> None:
        values = _order_values(o, shadow)
        if new or not self.run(_SQL_ORDER_UPDATE, (*values, o.client_order_id)):
            self.run(_SQL_ORDER_INSERT, values)

    def fill(self, f: Fill, shadow: bool) -> bool:
        return self.run(_SQL_FILL_INSERT, (
            f.venue, f.symbol, f.trade_id, f.client_order_id, f.venue_order_id, f.side._value_, _dec(f.qty),
            _dec(f.price), _dec(f.fee), f.fee_asset, f.is_maker, f.ts_ms, f.strategy, shadow)) == 1

    def ledger(self, entry: dict) -> bool:
        values = tuple(_dec(entry[k]) if k in ("amount", "value_usd") else entry[k] for k in _LEDGER_COLS)
        return self.run(_SQL_LEDGER_INSERT, values) == 1

    def state(self, key: str, value: Any, ts_ms: int) -> None:
        self.run(_SQL_STATE_UPSERT, (key, _json(value), ts_ms))

    def event(self, ev: EngineEvent) -> None:
        self.run(_SQL_EVENT_INSERT, (ev.ts_ms, ev.kind, ev.severity._value_, ev.message, json.dumps(ev.data)))


_ORDER_UPDATE = update(t.orders).where(t.orders.c.client_order_id == bindparam("key_coid"))
_ORDER_INSERT = insert(t.orders)
_STATE_UPSERT = postgresql.insert(t.engine_state)
_STATE_UPSERT = _STATE_UPSERT.on_conflict_do_update(index_elements=["key"], set_={
    "value": _STATE_UPSERT.excluded.value, "updated_ms": _STATE_UPSERT.excluded.updated_ms})
_FILL_INSERT = postgresql.insert(t.fills).on_conflict_do_nothing(
    index_elements=["venue", "symbol", "trade_id"]).returning(t.fills.c.id)
_LEDGER_INSERT = postgresql.insert(t.ledger).on_conflict_do_nothing(
    index_elements=["kind", "venue", "ref", "shadow"]).returning(t.ledger.c.id)
_EVENT_INSERT = insert(t.events)


class CoreRows:
    """The same writes through SQLAlchemy Core (PostgreSQL)."""

    __slots__ = ("conn",)

    def __init__(self, c: Connection) -> None:
        self.conn = c

    def order(self, o: Order, shadow: bool, new: bool) -> None:
        row = {**dict(zip(_ORDER_COLS, _order_values(o, shadow), strict=True)), "meta": o.meta}
        if new or not self.conn.execute(_ORDER_UPDATE, {**row, "key_coid": o.client_order_id}).rowcount:
            self.conn.execute(_ORDER_INSERT, row)

    def fill(self, f: Fill, shadow: bool) -> bool:
        return self.conn.execute(_FILL_INSERT, {"shadow": shadow, **asdict(f), "side": f.side.value}).first() is not None

    def ledger(self, entry: dict) -> bool:
        return self.conn.execute(_LEDGER_INSERT, entry).first() is not None

    def state(self, key: str, value: Any, ts_ms: int) -> None:
        self.conn.execute(_STATE_UPSERT, {"key": key, "updated_ms": ts_ms,
                                          "value": json.loads(value) if isinstance(value, JsonText) else value})

    def event(self, ev: EngineEvent) -> None:
        self.conn.execute(_EVENT_INSERT, {"ts_ms": ev.ts_ms, "kind": ev.kind, "severity": ev.severity.value,
                                          "message": ev.message, "data": ev.data})

"""Tables. Decimals are stored as text so SQLite and PostgreSQL both keep them exact."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


def decimal_text(value) -> str:
    """How a Decimal is stored: plain notation, every digit kept."""
    return format(Decimal(value), "f")


class DecimalText(TypeDecorator):
    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else decimal_text(value)

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", String(64), primary_key=True),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),
    Column("tif", String(16), nullable=False),
    Column("qty", DecimalText, nullable=False),
    Column("price", DecimalText),
    Column("reduce_only", Boolean, nullable=False, default=False),
    Column("strategy", String(32), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("venue_order_id", String(64)),
    Column("filled_qty", DecimalText, nullable=False),
    Column("filled_quote", DecimalText, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("shadow", Boolean, nullable=False, default=False),
    Column("meta", JSON, nullable=False, default=dict),
    Index("ix_orders_status", "status"),
    Index("ix_orders_venue_symbol", "venue", "symbol"),
)

fills = Table(
    "fills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("trade_id", String(64), nullable=False),
    Column("client_order_id", String(64), nullable=False),
    Column("venue_order_id", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("qty", DecimalText, nullable=False),
    Column("price", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=False),
    Column("fee_asset", String(16), nullable=False),
    Column("is_maker", Boolean, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("strategy", String(32), nullable=False, default=""),
    Column("shadow", Boolean, nullable=False, default=False),
    UniqueConstraint("venue", "symbol", "trade_id", name="uq_fills_trade"),
    Index("ix_fills_ts", "ts_ms"),
)

balance_snapshots = Table(
    "balance_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("venue", String(32), nullable=False),
    Column("asset", String(16), nullable=False),
    Column("free", DecimalText, nullable=False),
    Column("locked", DecimalText, nullable=False),
    Index("ix_balance_snapshots_ts", "ts_ms"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    # realized | fee | funding | transfer (external deposit > 0 / withdrawal < 0, found by reconciliation)
    Column("kind", String(16), nullable=False),
    Column("amount", DecimalText, nullable=False),
    Column("asset", String(16), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False, default=""),
    Column("strategy", String(32), nullable=False, default=""),
    Column("ref", String(96), nullable=False, default=""),
    Column("shadow", Boolean, nullable=False, default=False),
    # the entry's USD value when booked and the source of the price used (fees paid in BNB, BTC, ...)
    Column("value_usd", DecimalText),
    Column("price_source", String(48), nullable=False, default=""),
    UniqueConstraint("kind", "venue", "ref", "shadow", name="uq_ledger_ref"),
    Index("ix_ledger_ts", "ts_ms"),
)

equity_snapshots = Table(
    "equity_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("equity", DecimalText, nullable=False),
    # external deposits (+) and withdrawals (−) since the previous snapshot, for flow-adjusted returns
    Column("flows", DecimalText, nullable=False),
    Column("shadow", Boolean, nullable=False, default=False),
    Index("ix_equity_ts", "ts_ms"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("kind", String(48), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index("ix_events_ts", "ts_ms"),
    Index("ix_events_kind", "kind"),
)

engine_state = Table(
    "engine_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

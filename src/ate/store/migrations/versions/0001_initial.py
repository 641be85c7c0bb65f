"""Initial schema: orders, fills, positions, balances, ledger, equity, events, engine state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from ate.store.schema import DecimalText

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(64), primary_key=True),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("tif", sa.String(16), nullable=False),
        sa.Column("qty", DecimalText, nullable=False),
        sa.Column("price", DecimalText),
        sa.Column("reduce_only", sa.Boolean, nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("venue_order_id", sa.String(64)),
        sa.Column("filled_qty", DecimalText, nullable=False),
        sa.Column("filled_quote", DecimalText, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_venue_symbol", "orders", ["venue", "symbol"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("trade_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("venue_order_id", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("qty", DecimalText, nullable=False),
        sa.Column("price", DecimalText, nullable=False),
        sa.Column("fee", DecimalText, nullable=False),
        sa.Column("fee_asset", sa.String(16), nullable=False),
        sa.Column("is_maker", sa.Boolean, nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.UniqueConstraint("venue", "symbol", "trade_id", name="uq_fills_trade"),
    )
    op.create_index("ix_fills_ts", "fills", ["ts_ms"])
    op.create_table(
        "positions",
        sa.Column("venue", sa.String(32), primary_key=True),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("shadow", sa.Boolean, primary_key=True),
        sa.Column("qty", DecimalText, nullable=False),
        sa.Column("entry_price", DecimalText, nullable=False),
        sa.Column("realized_pnl", DecimalText, nullable=False),
        sa.Column("fees", DecimalText, nullable=False),
        sa.Column("funding", DecimalText, nullable=False),
        sa.Column("mark_price", DecimalText, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "balance_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("free", DecimalText, nullable=False),
        sa.Column("locked", DecimalText, nullable=False),
    )
    op.create_index("ix_balance_snapshots_ts", "balance_snapshots", ["ts_ms"])
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", DecimalText, nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("venue", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(96), nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
        sa.UniqueConstraint("kind", "venue", "ref", "shadow", name="uq_ledger_ref"),
    )
    op.create_index("ix_ledger_ts", "ledger", ["ts_ms"])
    op.create_table(
        "equity_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("equity", DecimalText, nullable=False),
        sa.Column("flows", DecimalText, nullable=False),
        sa.Column("shadow", sa.Boolean, nullable=False),
    )
    op.create_index("ix_equity_ts", "equity_snapshots", ["ts_ms"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_ts", "events", ["ts_ms"])
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_table(
        "engine_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("engine_state", "events", "equity_snapshots", "ledger", "balance_snapshots", "positions",
                 "fills", "orders"):
        op.drop_table(name)

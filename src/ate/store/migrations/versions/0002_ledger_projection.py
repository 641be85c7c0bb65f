"""Positions become a projection of the fills (the snapshot table goes); ledger entries carry their USD
value and the price source.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from ate.store.schema import DecimalText

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.drop_table("positions")
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("value_usd", DecimalText))
        batch.add_column(sa.Column("price_source", sa.String(48), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("price_source")
        batch.drop_column("value_usd")
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

"""A partial index of the refused requests whose amount no payment can have, so the
Finance page leaves them out of money lost without reading every refusal of its range
(0.6 s for a week of a 10-million-payment store).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from mpesa_ops.ingest.schema import IMPOSSIBLE_AMOUNT

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transactions_impossible_amount", "transactions", ["created_at"],
                    sqlite_where=sa.text(IMPOSSIBLE_AMOUNT), postgresql_where=sa.text(IMPOSSIBLE_AMOUNT))


def downgrade() -> None:
    op.drop_index("ix_transactions_impossible_amount", table_name="transactions")

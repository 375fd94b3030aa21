"""The initial store: transactions, result events, webhook deliveries, rejected records,
load runs and the per-minute rollups.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from mpesa_ops.ingest.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _source_columns():
    return [
        sa.Column("load_run_id", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_line", sa.Integer),
    ]


def upgrade() -> None:
    op.create_table(
        "load_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("sources", sa.Text),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in ("read", "loaded", "updated", "duplicates", "rejected")),
        sa.Column("message", sa.Text),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("shortcode", sa.String(20)),
        sa.Column("link_id", sa.String(200)),
        sa.Column("msisdn", sa.String(32)),
        sa.Column("amount_cents", sa.BigInteger),
        sa.Column("account_reference", sa.Text),
        sa.Column("http_status", sa.Integer),
        sa.Column("error_code", sa.String(100)),
        sa.Column("merchant_request_id", sa.String(200)),
        sa.Column("checkout_request_id", sa.String(200)),
        sa.Column("result_code", sa.String(50)),
        sa.Column("result_desc", sa.Text),
        sa.Column("mpesa_receipt", sa.String(64)),
        sa.Column("conflicting_results", sa.Boolean, nullable=False),
        sa.Column("record_hash", sa.String(32), nullable=False),
        sa.Column("extra", sa.Text),
        *_source_columns(),
    )
    op.create_index("ix_transactions_created_at", "transactions", ["created_at"])
    op.create_index("ix_transactions_checkout", "transactions", ["checkout_request_id"])
    op.create_index("ix_transactions_msisdn", "transactions", ["msisdn"])
    op.create_index("ix_transactions_receipt", "transactions", ["mpesa_receipt"])
    op.create_index("ix_transactions_status_created", "transactions", ["status", "created_at"])

    op.create_table(
        "result_events",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("transaction_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code", sa.String(50)),
        sa.Column("description", sa.Text),
        sa.Column("time", UtcDateTime),
        sa.Column("time_source", sa.String(20)),
        sa.Column("checkout_request_id", sa.String(200)),
        sa.Column("merchant_request_id", sa.String(200)),
        sa.Column("request_id", sa.String(200)),
        sa.Column("shortcode", sa.String(20)),
        sa.Column("amount_cents", sa.BigInteger),
        sa.Column("mpesa_receipt", sa.String(64)),
        sa.Column("msisdn", sa.String(32)),
        sa.Column("transaction_date", UtcDateTime),
        sa.Column("raw", sa.Text, nullable=False),
        *_source_columns(),
    )
    op.create_index("ix_result_events_txn", "result_events", ["transaction_id"])
    op.create_index("ix_result_events_checkout", "result_events", ["checkout_request_id"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(200)),
        sa.Column("transaction_id", sa.String(200)),
        sa.Column("event_type", sa.String(100)),
        sa.Column("url", sa.Text),
        sa.Column("attempt", sa.Integer),
        sa.Column("sent_at", UtcDateTime, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("latency_ms", sa.Float),
        sa.Column("error", sa.String(100)),
        sa.Column("signature", sa.Text),
        sa.Column("signature_timestamp", sa.String(100)),
        sa.Column("headers", sa.Text),
        sa.Column("payload", sa.Text),
        sa.Column("response_body", sa.Text),
        sa.Column("extra", sa.Text),
        sa.Column("record_hash", sa.String(32), nullable=False),
        *_source_columns(),
    )
    op.create_index("ix_webhook_deliveries_sent_at", "webhook_deliveries", ["sent_at"])
    op.create_index("ix_webhook_deliveries_txn", "webhook_deliveries", ["transaction_id"])
    op.create_index("ix_webhook_deliveries_event", "webhook_deliveries", ["event_id"])

    op.create_table(
        "rejected_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(32), nullable=False, unique=True),
        sa.Column("load_run_id", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("field", sa.String(100)),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("rejected_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "txn_rollup_minute",
        sa.Column("bucket", UtcDateTime, primary_key=True),
        sa.Column("shortcode", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("outcome", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "delivery_rollup_minute",
        sa.Column("bucket", UtcDateTime, primary_key=True),
        sa.Column("url", sa.String(500), primary_key=True),
        sa.Column("outcome", sa.String(100), primary_key=True),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("delivery_rollup_minute", "txn_rollup_minute", "rejected_records", "webhook_deliveries",
                  "result_events", "transactions", "load_runs"):
        op.drop_table(table)

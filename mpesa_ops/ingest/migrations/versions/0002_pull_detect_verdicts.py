"""Hourly rollups, pull cursors, detection runs, alerts and their notifications, stored
signature verdicts, and an index for the failure search.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from mpesa_ops.ingest.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "txn_rollup_hour",
        sa.Column("bucket", UtcDateTime, primary_key=True),
        sa.Column("shortcode", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("outcome", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "delivery_rollup_hour",
        sa.Column("bucket", UtcDateTime, primary_key=True),
        sa.Column("url", sa.String(500), primary_key=True),
        sa.Column("outcome", sa.String(100), primary_key=True),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
    )
    # Built from the minute rollups of stores loaded before this migration.
    for kind, cols in (("txn", "shortcode, status, outcome, attempts, amount_cents"),
                       ("delivery", "url, outcome, deliveries, retries, latency_ms_sum")):
        keys = "shortcode, status, outcome" if kind == "txn" else "url, outcome"
        sums = ("SUM(attempts), SUM(amount_cents)" if kind == "txn"
                else "SUM(deliveries), SUM(retries), SUM(latency_ms_sum)")
        hour = ("strftime('%Y-%m-%d %H:00:00.000000', bucket)" if op.get_bind().dialect.name == "sqlite"
                else "date_trunc('hour', bucket)")
        op.execute(f"INSERT INTO {kind}_rollup_hour (bucket, {cols}) "
                   f"SELECT {hour}, {keys}, {sums} FROM {kind}_rollup_minute GROUP BY {hour}, {keys}")

    op.create_table(
        "pull_cursors",
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("high_water", UtcDateTime),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("state", sa.Text),
        sa.Column("load_run_id", sa.Integer),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "detection_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("data_from", UtcDateTime),
        sa.Column("data_to", UtcDateTime),
        sa.Column("opened", sa.Integer, nullable=False),
        sa.Column("resolved", sa.Integer, nullable=False),
        sa.Column("message", sa.Text),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("shortcode", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("ended_at", UtcDateTime),
        sa.Column("last_seen_at", UtcDateTime, nullable=False),
        sa.Column("window_minutes", sa.Integer),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("observed_rate", sa.Float),
        sa.Column("baseline_rate", sa.Float),
        sa.Column("score", sa.Float),
        sa.Column("top_shortcodes", sa.Text),
        sa.Column("details", sa.Text),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("acknowledged_at", UtcDateTime),
        sa.Column("ack_comment", sa.Text),
        sa.Column("silenced_until", UtcDateTime),
        sa.Column("silenced_by", sa.String(200)),
        sa.Column("silence_comment", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_alerts_key_status", "alerts", ["key", "status"])
    op.create_index("ix_alerts_status_started", "alerts", ["status", "started_at"])
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UtcDateTime),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime),
    )
    op.create_index("ix_alert_notifications_status", "alert_notifications", ["status", "next_attempt_at"])

    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("signature_verdict", sa.String(32)))
        batch.add_column(sa.Column("signature_skew_seconds", sa.Float))
        batch.add_column(sa.Column("verdict_secrets", sa.String(32)))
    op.create_index("ix_webhook_deliveries_verdict", "webhook_deliveries", ["signature_verdict", "sent_at"])
    op.create_index("ix_webhook_deliveries_error", "webhook_deliveries", ["error"])  # finding refused signatures
    op.create_index("ix_transactions_outcome_created", "transactions", ["outcome", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_transactions_outcome_created", "transactions")
    op.drop_index("ix_webhook_deliveries_error", "webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_verdict", "webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        for name in ("verdict_secrets", "signature_skew_seconds", "signature_verdict"):
            batch.drop_column(name)
    for table in ("alert_notifications", "alerts", "detection_runs", "pull_cursors",
                  "delivery_rollup_hour", "txn_rollup_hour"):
        op.drop_table(table)

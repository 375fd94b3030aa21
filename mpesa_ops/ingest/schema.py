"""The store's tables (SQLAlchemy Core). Alembic migrations create them; this module
is what the code reads and writes against. Times are UTC; money is integer cents."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table,
                        Text, TypeDecorator)


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (stored naive UTC) and Postgres (timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; times must be aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # a raw SQLite expression result
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = MetaData()

load_runs = Table(
    "load_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(32), nullable=False),
    Column("sources", Text),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("status", String(16), nullable=False),  # running | ok | failed (a run left "running" was interrupted)
    Column("read", Integer, nullable=False, default=0),
    Column("loaded", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("rejected", Integer, nullable=False, default=0),
    Column("message", Text),
)

transactions = Table(
    "transactions", metadata,
    Column("id", String(200), primary_key=True),
    Column("origin", String(16), nullable=False),  # log (format A) | callback (a result with no known request) | daraja
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
    Column("status", String(16), nullable=False),
    Column("outcome", String(64), nullable=False),  # result code, error code, or "pending": what the rollups count
    Column("shortcode", String(20)),
    Column("link_id", String(200)),
    Column("msisdn", String(32)),
    Column("amount_cents", BigInteger),
    Column("account_reference", Text),
    Column("http_status", Integer),
    Column("error_code", String(100)),
    Column("merchant_request_id", String(200)),
    Column("checkout_request_id", String(200)),
    Column("result_code", String(50)),
    Column("result_desc", Text),
    Column("mpesa_receipt", String(64)),
    Column("conflicting_results", Boolean, nullable=False, default=False),
    Column("record_hash", String(32), nullable=False),
    Column("extra", Text),
    Column("load_run_id", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_line", Integer),
    Index("ix_transactions_created_at", "created_at"),
    Index("ix_transactions_checkout", "checkout_request_id"),
    Index("ix_transactions_msisdn", "msisdn"),
    Index("ix_transactions_receipt", "mpesa_receipt"),
    Index("ix_transactions_status_created", "status", "created_at"),
)

result_events = Table(
    "result_events", metadata,
    Column("key", String(32), primary_key=True),
    Column("transaction_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # callback | query | query_error | init_response | init_error
    Column("status", String(16), nullable=False),
    Column("code", String(50)),
    Column("description", Text),
    Column("time", UtcDateTime),
    Column("time_source", String(20)),
    Column("checkout_request_id", String(200)),
    Column("merchant_request_id", String(200)),
    Column("request_id", String(200)),
    Column("shortcode", String(20)),
    Column("amount_cents", BigInteger),
    Column("mpesa_receipt", String(64)),
    Column("msisdn", String(32)),
    Column("transaction_date", UtcDateTime),
    Column("raw", Text, nullable=False),
    Column("load_run_id", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_line", Integer),
    Index("ix_result_events_txn", "transaction_id"),
    Index("ix_result_events_checkout", "checkout_request_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", String(200), primary_key=True),
    Column("event_id", String(200)),
    Column("transaction_id", String(200)),
    Column("event_type", String(100)),
    Column("url", Text),
    Column("attempt", Integer),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float),
    Column("error", String(100)),
    Column("signature", Text),
    Column("signature_timestamp", String(100)),
    Column("headers", Text),
    Column("payload", Text),
    Column("response_body", Text),
    Column("extra", Text),
    Column("record_hash", String(32), nullable=False),
    Column("load_run_id", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_line", Integer),
    Index("ix_webhook_deliveries_sent_at", "sent_at"),
    Index("ix_webhook_deliveries_txn", "transaction_id"),
    Index("ix_webhook_deliveries_event", "event_id"),
)

rejected_records = Table(
    "rejected_records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(32), nullable=False, unique=True),  # hash of source, line and raw text: a re-read adds nothing
    Column("load_run_id", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("line", Integer),
    Column("field", String(100)),
    Column("reason_code", String(32), nullable=False),  # invalid_field, missing_field, invalid_json, truncated, ...
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("rejected_at", UtcDateTime, nullable=False),
)

# Per minute x shortcode x outcome: what charts and detection read instead of the rows.
txn_rollup_minute = Table(
    "txn_rollup_minute", metadata,
    Column("bucket", UtcDateTime, primary_key=True),  # the UTC minute of created_at
    Column("shortcode", String(20), primary_key=True),  # "" when unknown
    Column("status", String(16), primary_key=True),
    Column("outcome", String(64), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
)

delivery_rollup_minute = Table(
    "delivery_rollup_minute", metadata,
    Column("bucket", UtcDateTime, primary_key=True),  # the UTC minute of sent_at
    Column("url", String(500), primary_key=True),  # "" when unknown
    Column("outcome", String(100), primary_key=True),  # "delivered" or the error class
    Column("deliveries", Integer, nullable=False),
    Column("retries", Integer, nullable=False),  # attempts after the first
    Column("latency_ms_sum", Float, nullable=False),
)

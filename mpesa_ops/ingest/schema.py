"""The store's tables (SQLAlchemy Core). Alembic migrations create them; this module
is what the code reads and writes against. Times are UTC; money is integer cents."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table,
                        Text, TypeDecorator, text)

from mpesa_ops.ingest import fields


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

# Refused requests whose amount no payment can have (0, or millions: INVALID_AMOUNT). Few
# rows, so a partial index finds a range's of them without reading every refusal; the
# queries that use it state this condition word for word, as literals, or the planner
# cannot match it. The band's ends are code constants, not values from outside.
IMPOSSIBLE_AMOUNT = (f"status = 'rejected' AND (amount_cents < {fields.MIN_AMOUNT_CENTS} "
                     f"OR amount_cents > {fields.MAX_AMOUNT_CENTS})")

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
    Index("ix_transactions_impossible_amount", "created_at",
          sqlite_where=text(IMPOSSIBLE_AMOUNT), postgresql_where=text(IMPOSSIBLE_AMOUNT)),
    Index("ix_transactions_outcome_created", "outcome", "created_at"),
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
    # The signature diagnosis (mpesa_ops.signatures VERDICTS) of a delivery that failed on
    # its signature, and the fingerprint of the secrets it was reached with: a change of
    # secrets makes the verdicts stale and they are computed again.
    Column("signature_verdict", String(32)),
    Column("signature_skew_seconds", Float),
    Column("verdict_secrets", String(32)),
    Index("ix_webhook_deliveries_sent_at", "sent_at"),
    Index("ix_webhook_deliveries_verdict", "signature_verdict", "sent_at"),
    Index("ix_webhook_deliveries_error", "error"),
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


def _txn_rollup(name: str) -> Table:
    return Table(
        name, metadata,
        Column("bucket", UtcDateTime, primary_key=True),  # the UTC minute (or hour) of created_at
        Column("shortcode", String(20), primary_key=True),  # "" when unknown
        Column("status", String(16), primary_key=True),
        Column("outcome", String(64), primary_key=True),
        Column("attempts", Integer, nullable=False),
        Column("amount_cents", BigInteger, nullable=False),
    )


def _delivery_rollup(name: str) -> Table:
    return Table(
        name, metadata,
        Column("bucket", UtcDateTime, primary_key=True),  # the UTC minute (or hour) of sent_at
        Column("url", String(500), primary_key=True),  # "" when unknown
        Column("outcome", String(100), primary_key=True),  # "delivered" or the error class
        Column("deliveries", Integer, nullable=False),
        Column("retries", Integer, nullable=False),  # attempts after the first
        Column("latency_ms_sum", Float, nullable=False),
    )


# Per minute (and per hour) x shortcode x outcome: what charts and detection read instead
# of the rows. Detection reads minutes; charts over more than a couple of days read hours.
txn_rollup_minute = _txn_rollup("txn_rollup_minute")
txn_rollup_hour = _txn_rollup("txn_rollup_hour")
delivery_rollup_minute = _delivery_rollup("delivery_rollup_minute")
delivery_rollup_hour = _delivery_rollup("delivery_rollup_hour")

# Where each stream of the gateway's log API was read up to. Saved in the same database
# transaction as the rows of the page it follows.
pull_cursors = Table(
    "pull_cursors", metadata,
    Column("stream", String(64), primary_key=True),  # "transactions" | "deliveries" (a setting may add more)
    Column("cursor", Text),  # the next_cursor to ask for, or None when the last round reached the end
    Column("high_water", UtcDateTime),  # newest updated time seen; the next round starts at it minus the lag
    Column("pages", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    Column("state", Text),  # JSON: what else a pull keeps per stream
    Column("load_run_id", Integer),
    Column("updated_at", UtcDateTime, nullable=False),
)

detection_runs = Table(
    "detection_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("status", String(16), nullable=False),  # running | ok | failed
    Column("data_from", UtcDateTime),  # the first and last bucket examined
    Column("data_to", UtcDateTime),
    Column("opened", Integer, nullable=False, default=0),
    Column("resolved", Integer, nullable=False, default=0),
    Column("message", Text),
)

# One row per alert episode: at most one open (pending or firing) per key at a time.
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),  # detector|code|shortcode
    Column("detector", String(32), nullable=False),  # rate | slow_burn | volume | pending | ...
    Column("code", String(100), nullable=False),
    Column("family", String(32), nullable=False),
    Column("shortcode", String(20), nullable=False),  # "" = all shortcodes together
    Column("severity", String(16), nullable=False),  # warning | critical
    Column("status", String(16), nullable=False),  # pending | firing | resolved
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("last_seen_at", UtcDateTime, nullable=False),  # the last bucket that was still anomalous
    Column("window_minutes", Integer),
    Column("failures", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("observed_rate", Float),
    Column("baseline_rate", Float),
    Column("score", Float),
    Column("top_shortcodes", Text),  # JSON list of {shortcode, failures, excess}
    Column("details", Text),  # JSON: what the detector wants to keep
    Column("acknowledged_by", String(200)),
    Column("acknowledged_at", UtcDateTime),
    Column("ack_comment", Text),
    Column("silenced_until", UtcDateTime),
    Column("silenced_by", String(200)),
    Column("silence_comment", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_alerts_key_status", "key", "status"),
    Index("ix_alerts_status_started", "status", "started_at"),
)

alert_notifications = Table(
    "alert_notifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False),
    Column("event", String(16), nullable=False),  # fired | resolved
    Column("target", String(100), nullable=False),  # the name of the configured target
    Column("status", String(16), nullable=False),  # pending | sent | failed (given up)
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("next_attempt_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Index("ix_alert_notifications_status", "status", "next_attempt_at"),
)

"""The migrations build exactly the schema the code uses, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from mpesa_ops.ingest.db import upgrade
from mpesa_ops.ingest.schema import metadata


def test_migrated_schema_matches_the_code(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_upgrading_twice_is_harmless(engine):
    upgrade(engine)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_0002_builds_the_hour_rollups_of_a_store_loaded_before_it(db_url):
    from datetime import datetime, timezone

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert, select

    from mpesa_ops.ingest.db import MIGRATIONS, make_engine
    from mpesa_ops.ingest.schema import delivery_rollup_hour, delivery_rollup_minute, txn_rollup_hour, txn_rollup_minute

    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    t = lambda h, m: datetime(2026, 10, 1, h, m, tzinfo=timezone.utc)  # noqa: E731
    with engine.begin() as conn:
        conn.execute(insert(txn_rollup_minute), [
            {"bucket": t(7, 5), "shortcode": "174379", "status": "success", "outcome": "0", "attempts": 2, "amount_cents": 300},
            {"bucket": t(7, 59), "shortcode": "174379", "status": "success", "outcome": "0", "attempts": 1, "amount_cents": 50},
            {"bucket": t(8, 0), "shortcode": "174379", "status": "failed", "outcome": "1", "attempts": 4, "amount_cents": 900},
        ])
        conn.execute(insert(delivery_rollup_minute), [
            {"bucket": t(7, 1), "url": "https://a", "outcome": "delivered", "deliveries": 3, "retries": 1, "latency_ms_sum": 30.0},
            {"bucket": t(7, 2), "url": "https://a", "outcome": "delivered", "deliveries": 1, "retries": 0, "latency_ms_sum": 5.0},
        ])
    upgrade(engine)
    with engine.connect() as conn:
        hours = {(r.bucket, r.outcome): (r.attempts, r.amount_cents) for r in conn.execute(select(txn_rollup_hour))}
        dhours = [tuple(r) for r in conn.execute(select(delivery_rollup_hour))]
    engine.dispose()
    assert hours == {(t(7, 0), "0"): (3, 350), (t(8, 0), "1"): (4, 900)}
    assert dhours == [(t(7, 0), "https://a", "delivered", 4, 1, 35.0)]

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

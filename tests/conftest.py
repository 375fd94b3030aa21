"""Shared fixtures: every storage test runs on SQLite and on the real Postgres.

Postgres comes from MPESA_OPS_TEST_PG (default: the local server, database `test`).
Each test gets a schema of its own, dropped afterwards. A Postgres that cannot be
reached fails those tests: it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mpesa_ops.ingest.db import open_store


pytest_plugins = ["dashboardhelpers"]  # the dashboard tests' fixtures

PG_URL = os.environ.get("MPESA_OPS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "samples" / "daraja"


KEEP_ENV = {"MPESA_OPS_TEST_PG", "MPESA_OPS_SCREENSHOTS"}


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch, tmp_path):
    """No test sees the developer's settings: every MPESA_OPS_* variable but the test
    ones is unset, and the secrets file is one that does not exist. A test that wants
    a setting sets it."""
    for name in list(os.environ):
        if name.startswith("MPESA_OPS_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(tmp_path / "no-secrets.toml"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_factory(request, tmp_path):
    """Makes empty stores of the parametrised backend: db_factory() -> URL."""
    schemas, admin = [], None

    def make() -> str:
        nonlocal admin
        n = len(schemas)
        if request.param == "sqlite":
            schemas.append(None)
            return f"sqlite:///{tmp_path / ('store.db' if n == 0 else f'store{n}.db')}"
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = admin or create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        return f"{PG_URL}?options=-csearch_path%3D{schema}"

    make.backend = request.param
    yield make
    if admin is not None:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db_url(db_factory):
    return db_factory()


@pytest.fixture
def engine(db_url):
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def write_jsonl(path: Path, records: list) -> Path:
    import orjson

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path

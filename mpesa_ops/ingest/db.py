"""Where the store is and how to open it: URL resolution, engine, migrations."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_SQLITE_FILE = "mpesa-ops.db"
MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(RuntimeError):
    """The store cannot be opened or migrated; the message says what to do."""


def resolve_url(db: str | None = None) -> str:
    """--db, else MPESA_OPS_DB, else a SQLite file in the working directory.
    A plain path means a SQLite file; postgres:// and postgresql:// use psycopg 3."""
    url = db or os.environ.get("MPESA_OPS_DB") or DEFAULT_SQLITE_FILE
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return url


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def error_reason(exc: BaseException) -> str:
    """The first line of what the database driver said (SQLAlchemy wraps it in
    `orig`), or the exception's type when it said nothing."""
    lines = str(getattr(exc, "orig", exc)).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # the dashboard reads while a load writes
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(db: str | None = None) -> Engine:
    url = resolve_url(db)
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {redact(url)}: {exc}; use a SQLite path (store.db, "
                         "sqlite:///path/store.db) or postgresql://user@host/database") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates it on an empty database)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def missing_sqlite_file(engine: Engine) -> Path | None:
    """The SQLite file the engine would create, when it does not exist yet."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    path = Path(engine.url.database)
    return None if path.exists() else path


def open_store(db: str | None = None, *, migrate: bool = True, must_exist: bool = False) -> Engine:
    """An engine on a migrated store, or StoreError naming the cause and the fix.
    `must_exist`: for commands that only read (a mistyped SQLite path would otherwise
    become a new, empty store that reports zeros)."""
    engine = make_engine(db)
    missing = missing_sqlite_file(engine) if must_exist else None
    if missing is not None:
        raise StoreError(f"no store at {missing}: load data into it first (mpesa-ops ingest, pull or demo), "
                         "or point --db or MPESA_OPS_DB at the right one")
    try:
        if migrate:
            upgrade(engine)
        else:
            inspect(engine).get_table_names()
    except StoreError:
        raise
    except Exception as exc:  # driver errors differ by dialect; all mean the same to the user
        raise StoreError(f"cannot open the store at {redact(str(engine.url))}: {error_reason(exc)}. "
                         "Check --db or MPESA_OPS_DB and that the database server is running.") from None
    return engine

"""Ingest benchmark: simulated transactions from JSON Lines into the store, against
the raw limit measured in the same run.

SQLite: `mpesa-ops ingest` of the simulated transactions log (a pending row and a
final row per payment, plus repeats) into a fresh file, beside the same stored rows
as ready tuples through sqlite3 executemany into the same table of another fresh
store. Postgres: the same ingest, beside COPY of the same rows into the same table.
Peak memory is the ingest process's maximum resident set size, and the largest of its
writer process's and its own.

    python bench/ingest.py [--transactions 1000000] [--pg URL | --no-pg]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpesa_ops.ingest.db import open_store  # noqa: E402
from mpesa_ops.ingest.schema import transactions  # noqa: E402
from mpesa_ops.ingest.simulate import simulate  # noqa: E402
from mpesa_ops.ingest.writer import CACHE_KIB  # noqa: E402

DAYS = 20


def run_ingest(log: Path, url: str) -> tuple[float, dict, int, int]:
    """(seconds, counts, peak RSS in MB, the largest peak RSS of any process waited for
    so far, the ingest's writer included) of `mpesa-ops ingest` in a process of its own.
    The load alone (--no-detect): detection after it is timed on its own."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mpesa_ops", "ingest", str(log), "--db", url, "--json", "--no-detect"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the maximum over all children
    seconds = time.perf_counter() - t
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"ingest failed: {err.decode()}")
    tree = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the writer was waited for by the ingest
    return seconds, json.loads(out), usage.ru_maxrss // 1024, tree // 1024


def run_detect(url: str) -> float:
    """Seconds of `mpesa-ops detect` (a full backfill) over the loaded store."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mpesa_ops", "detect", "--db", url, "--no-notify"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def stored_rows(url: str) -> tuple[list[str], list[tuple]]:
    engine = create_engine(url)
    cols = [c.name for c in transactions.columns]
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql(f"SELECT {', '.join(cols)} FROM transactions")]
    engine.dispose()
    return cols, rows


def sqlite_raw_limit(path: Path, cols: list[str], rows: list[tuple], batch: int = 5000) -> float:
    """Rows per second of executemany of ready tuples into the same (indexed) table."""
    open_store(f"sqlite:///{path}").dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # the connection settings the store's writer uses
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    sql = f"INSERT INTO transactions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        with conn:
            conn.executemany(sql, rows[i:i + batch])
    seconds = time.perf_counter() - t
    conn.close()
    return len(rows) / seconds


def pg_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema, f"{base}?options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def pg_copy_limit(url: str, cols: list[str], rows: list[tuple]) -> float:
    import psycopg

    open_store(url).dispose()
    engine = create_engine(url)
    with engine.connect() as sa_conn:
        raw = sa_conn.connection.driver_connection
        raw.execute("SET TIME ZONE 'UTC'")  # the rows carry SQLite's naive UTC text
        t = time.perf_counter()
        with raw.cursor() as cur, cur.copy(f"COPY transactions ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
        seconds = time.perf_counter() - t
    engine.dispose()
    assert isinstance(raw, psycopg.Connection)
    return len(rows) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, default=1_000_000, help="payments to simulate (default 1,000,000)")
    ap.add_argument("--pg", default=os.environ.get("MPESA_OPS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--no-pg", action="store_true", help="skip the Postgres half")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mpesa-ops-bench-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        sim = simulate(tmp / "logs", days=DAYS, seed=1, per_day=max(1, args.transactions // DAYS))
        log = tmp / "logs" / "transactions.jsonl"
        print(f"simulated {sim['transactions']:,} payments ({sim['transaction_rows']:,} log rows, "
              f"{log.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s", flush=True)

        # Both ingests first: a process forked after the baselines' rows are in memory
        # would report their size as its peak.
        db = tmp / "ingest.db"
        seconds, counts, peak, largest = run_ingest(log, f"sqlite:///{db}")
        assert counts["read"] == counts["loaded"] + counts["updated"] + counts["duplicates"] + counts["rejected"]
        pg = None
        if not args.no_pg:
            schema, url = pg_schema(args.pg)
            copy_schema, copy_url = pg_schema(args.pg)
            try:
                pg = run_ingest(log, url)
            except BaseException:
                drop_schema(args.pg, schema)
                drop_schema(args.pg, copy_schema)
                raise

        cols, rows = stored_rows(f"sqlite:///{db}")
        raw = sqlite_raw_limit(tmp / "raw.db", cols, rows)
        print(f"SQLite  ingest: {counts['read']:,} records in {seconds:.1f} s = {counts['read'] / seconds:,.0f} "
              f"records/s, {len(rows) / seconds:,.0f} payments/s stored; peak RSS {peak} MB "
              f"(writer process included: {largest} MB)", flush=True)
        print(f"SQLite  raw executemany of the same {len(rows):,} rows into the same table: {raw:,.0f} rows/s")
        print(f"SQLite  ingest / raw limit = {len(rows) / seconds / raw:.2f} (target >= 0.50)", flush=True)
        print(f"SQLite  detection after the load (full backfill, `mpesa-ops detect`): {run_detect(f'sqlite:///{db}'):.1f} s",
              flush=True)

        if pg is not None:
            try:
                seconds, counts, peak, _ = pg
                copy = pg_copy_limit(copy_url, cols, rows)
                print(f"Postgres ingest: {counts['read']:,} records in {seconds:.1f} s = "
                      f"{counts['read'] / seconds:,.0f} records/s, {len(rows) / seconds:,.0f} payments/s stored; "
                      f"peak RSS {peak} MB")
                print(f"Postgres COPY of the same {len(rows):,} rows into the same table: {copy:,.0f} rows/s")
                print(f"Postgres ingest / COPY = {len(rows) / seconds / copy:.2f}", flush=True)
            finally:
                drop_schema(args.pg, schema)
                drop_schema(args.pg, copy_schema)


if __name__ == "__main__":
    main()

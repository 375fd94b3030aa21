"""Dashboard benchmark: each page's script time (AppTest, caches cleared) on a store of
10 thousand and one of 10 million payments; the Overview's chart read from the rollups
against the same chart from a plain GROUP BY over the transactions table; the memory
of a real `mpesa-ops dashboard` server after a browser has visited every page.

Targets: a page at 10 M at most 2x its time at 10 k; the rollup read at least 10x
faster than the plain GROUP BY; the server under 600 MB.

The stores are synthesised with SQL, not ingested (ingesting 10 M payments takes far
too long): payments spread evenly over 90 days ending 2026-03-31, four shortcodes
(40/30/20/10 %), the simulator's outcome mix (success 67 %, insufficient funds 11 %,
cancelled 9 %, unreachable 6 %, wrong PIN 2 %, the rest spread over 17, 26, 1019,
1025, 9999, gateway refusals and pending), amounts KES 10-20,000, 2 million customer
numbers (so some fail repeatedly). Rollups are then built from the rows by GROUP BY, as
the loader would have kept them. Built once into bench/out/ (git ignores it) and reused.

    python bench/dashboard.py [--sizes 10000 10000000] [--ranges 24h 7d] [--repeat 3] [--no-server]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from mpesa_ops.dashboard import nav, queries  # noqa: E402
from mpesa_ops.ingest.db import open_store  # noqa: E402
from mpesa_ops.ingest.schema import transactions  # noqa: E402

OUT = REPO / "bench" / "out"
APP = REPO / "mpesa_ops" / "dashboard" / "app.py"
END = datetime(2026, 4, 1, tzinfo=timezone.utc)
DAYS = 90
# (upper bound of r in 0..999, status, outcome): the outcome mix of one payment
MIX = [(670, "success", "0"), (780, "failed", "1"), (870, "failed", "1032"), (930, "failed", "1037"),
       (950, "failed", "2001"), (958, "failed", "17"), (963, "failed", "26"), (970, "failed", "1019"),
       (975, "failed", "1025"), (980, "failed", "9999"), (984, "rejected", "INVALID_MSISDN"),
       (987, "rejected", "VALIDATION_ERROR"), (989, "rejected", "INVALID_API_KEY"),
       (992, "rejected", "500.003.02"), (995, "rejected", "STK_PUSH_FAILED"), (1000, "pending", "pending")]
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def _case(column: int) -> str:
    """SQL picking MIX's status (1) or outcome (2) from r."""
    return "CASE " + " ".join(f"WHEN r < {row[0]} THEN '{row[column]}'" for row in MIX) + " END"


def build(n: int) -> str:
    """The SQLite store of n synthetic payments (built once, then reused)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"dashboard-{n}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    began = time.perf_counter()
    tmp = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    engine = open_store(f"sqlite:///{tmp}")
    start = int((END - timedelta(days=DAYS)).timestamp())
    step = DAYS * 86400 / n
    with engine.begin() as conn:
        for index in transactions.indexes:  # faster to index once at the end
            conn.execute(text(f"DROP INDEX {index.name}"))
        conn.execute(text("INSERT INTO load_runs (command, started_at, finished_at, status, read, loaded, updated, "
                          "duplicates, rejected) VALUES ('bench', :t, :t, 'ok', :n, :n, 0, 0, 0)"),
                     {"t": END.replace(tzinfo=None).isoformat(" "), "n": n})
        conn.execute(text(f"""
            WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < :n - 1),
            hashed AS (SELECT i, (i * 2654435761 + 12345) % 4294967291 AS k FROM seq),
            gen AS (SELECT i, k, (k / 7) % 1000 AS r,
                           strftime('%Y-%m-%d %H:%M:%S', :start + CAST(i * :step AS INTEGER), 'unixepoch')
                               || '.000000' AS ts FROM hashed)
            INSERT INTO transactions (id, origin, created_at, updated_at, completed_at, status, outcome, shortcode,
                                      msisdn, amount_cents, checkout_request_id, result_code, mpesa_receipt,
                                      conflicting_results, record_hash, load_run_id, source)
            SELECT printf('txn_%012d', i), 'log', ts, ts, ts, {_case(1)}, {_case(2)},
                   CASE WHEN k % 10 < 4 THEN '174379' WHEN k % 10 < 7 THEN '600977'
                        WHEN k % 10 < 9 THEN '4071233' ELSE '888880' END,
                   '2547' || printf('%08d', (k / 10) % 2000000), 1000 + (k / 7) % 2000000,
                   printf('ws_CO_%012d', i), {_case(2)}, CASE WHEN r < 670 THEN printf('BNC%07d', i) END,
                   0, printf('%032d', i), 1, 'bench'
            FROM gen"""), {"n": n, "start": start, "step": step})
        for index in transactions.indexes:
            index.create(conn)
        for table, width, tail in (("txn_rollup_minute", 16, ":00.000000"), ("txn_rollup_hour", 13, ":00:00.000000")):
            conn.execute(text(f"""
                INSERT INTO {table} (bucket, shortcode, status, outcome, attempts, amount_cents)
                SELECT substr(created_at, 1, {width}) || :tail, coalesce(shortcode, ''), status, outcome,
                       count(*), coalesce(sum(amount_cents), 0)
                FROM transactions GROUP BY 1, 2, 3, 4"""), {"tail": tail})
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.rename(path)
    print(f"  built {n:,} payments in {time.perf_counter() - began:.0f} s -> {path}", flush=True)
    return url


def page_times(url: str, ranges: list[str], repeat: int) -> dict[tuple[str, str], float]:
    """Median script time of each page (admin, caches cleared before each run)."""
    import streamlit
    from streamlit.testing.v1 import AppTest

    os.environ.update(MPESA_OPS_DB=url, MPESA_OPS_ROLE="admin", MPESA_OPS_SECRETS=str(OUT / "no-secrets.toml"))
    times: dict[tuple[str, str], float] = {}
    for rng in ranges:
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.query_params["range"] = rng
        at.run()
        for pdef in nav.PAGES:
            runs = []
            for _ in range(repeat):
                streamlit.cache_data.clear()
                at.switch_page(nav.page_path(pdef.name))
                began = time.perf_counter()
                at.run()
                runs.append(time.perf_counter() - began)
                if at.exception:
                    raise SystemExit(f"{pdef.name} failed: {at.exception[0].value}")
            times[(rng, pdef.name)] = statistics.median(runs)
    return times


def plain_group_by(engine, start: datetime, end: datetime):
    """The Overview chart's numbers straight from the rows."""
    minute = "substr(created_at, 1, 16)" if end - start <= queries.MINUTE_ROLLUP_MAX else "substr(created_at, 1, 13)"
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT {minute}, status, outcome, count(*), sum(amount_cents) FROM transactions "
                                 "WHERE created_at >= :a AND created_at < :b GROUP BY 1, 2, 3"),
                            {"a": start.replace(tzinfo=None).isoformat(" "),
                             "b": end.replace(tzinfo=None).isoformat(" ")}).all()


def chart_times(url: str, ranges: list[str], repeat: int) -> dict[str, tuple[float, float]]:
    engine = open_store(url)
    out = {}
    for rng in ranges:
        start, end = END - RANGES[rng], END
        rollup = min(_timed(lambda: queries.outcomes(engine, start, end)) for _ in range(repeat))
        plain = min(_timed(lambda: plain_group_by(engine, start, end)) for _ in range(repeat))
        out[rng] = (rollup, plain)
    engine.dispose()
    return out


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids += [int(c) for c in children]
    return total


def server_memory(url: str) -> tuple[float, float]:
    """RSS of `mpesa-ops dashboard` (with its Streamlit child) after start and after a
    browser has opened every page over 7 days."""
    import httpx
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).with_name("mpesa-ops")
    proc = subprocess.Popen([str(cli), "dashboard", "--db", url, "--port", str(port), "--address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, MPESA_OPS_ROLE="admin"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        idle = _rss_mb(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for pdef in nav.PAGES:
                page.goto(f"{base}/{'' if pdef is nav.PAGES[0] else pdef.name}?range=7d")
                page.locator("h1").first.wait_for(timeout=120_000)
                page.wait_for_timeout(4000)
            browser.close()
        return idle, _rss_mb(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[10_000, 10_000_000], metavar=("SMALL", "LARGE"))
    ap.add_argument("--ranges", nargs="+", default=["24h", "7d"], choices=list(RANGES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-server", action="store_true", help="skip the server memory measurement")
    args = ap.parse_args()
    began = time.perf_counter()
    small, large = args.sizes
    print(f"stores (built once into {OUT}):", flush=True)
    urls = {n: build(n) for n in (small, large)}
    print("\npage script time, AppTest, admin, caches cleared (median of "
          f"{args.repeat}), against the small store in the same run:")
    times = {n: page_times(urls[n], args.ranges, args.repeat) for n in (small, large)}
    print(f"  {'range':<6} {'page':<16} {f'{small:,}':>10} {f'{large:,}':>12} {'ratio':>7}  (target <= 2x)")
    for key in times[small]:
        a, b = times[small][key], times[large][key]
        print(f"  {key[0]:<6} {key[1]:<16} {a:>9.3f}s {b:>11.3f}s {b / a:>6.2f}x")
    print(f"\nOverview chart at {large:,}: rollup read against a plain GROUP BY over transactions "
          "(best of the runs):")
    for rng, (rollup, plain) in chart_times(urls[large], args.ranges + ["30d"] * ("30d" not in args.ranges),
                                            args.repeat).items():
        print(f"  {rng:<6} rollup {rollup:>8.3f}s   GROUP BY {plain:>8.3f}s   {plain / rollup:>6.1f}x faster "
              "(target >= 10x)")
    if not args.no_server:
        idle, busy = server_memory(urls[large])
        print(f"\nserver memory (RSS of mpesa-ops dashboard and its Streamlit process, {large:,} store): "
              f"{idle:.0f} MB started, {busy:.0f} MB after every page over 7 days (target < 600 MB)")
    print(f"\nbench/dashboard.py took {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()

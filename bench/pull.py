"""Pull benchmark: records per second pulled from the gateway simulator into SQLite,
beside the same records ingested from the files the simulator serves, in one run.

Both are the real commands in processes of their own: `mpesa-ops gateway-sim` serving
the simulated transactions and webhook-delivery logs, `mpesa-ops pull` from it into a
fresh SQLite file, and `mpesa-ops ingest` of the same two files into another. Target:
the pull at least half as fast as the file (ratio >= 0.5).

    python bench/pull.py [--days 3] [--per-day 2000] [--page-size N]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpesa_ops.ingest.simulate import simulate  # noqa: E402

LOGS = ("transactions.jsonl", "webhook_deliveries.jsonl")


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, dict]:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"{' '.join(cmd[2:4])} failed: {done.stderr.decode().strip()}")
    return seconds, json.loads(done.stdout)


def stored(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (conn.execute("SELECT count(*) FROM transactions").fetchone()[0],
                conn.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3, help="days of traffic to simulate (default 3)")
    ap.add_argument("--per-day", type=int, default=2000, help="payment requests a day (default 2000)")
    ap.add_argument("--page-size", type=int, help="records per page (default: the pull's own default)")
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("MPESA_OPS_")}
    env.update(MPESA_OPS_API_KEY="bench-key", MPESA_OPS_LINK_ID="bench-link")
    py = [sys.executable, "-m", "mpesa_ops"]
    with tempfile.TemporaryDirectory(prefix="mpesa-ops-bench-pull-") as tmp:
        tmp = Path(tmp)
        simulate(tmp / "logs", days=args.days, seed=7, per_day=args.per_day)
        sim = subprocess.Popen(py + ["gateway-sim", "--data", str(tmp / "logs"), "--port", "0"], env=env, cwd=tmp,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            banner = sim.stdout.readline()
            if " at http://" not in banner:
                sys.exit(f"the simulator did not start: {sim.stderr.read().strip()}")
            url = banner.split(" at ", 1)[1].split()[0]
            # The loads alone: detection after them is the same work for both.
            pull_cmd = py + ["pull", "--db", f"sqlite:///{tmp / 'pull.db'}", "--base-url", url, "--json", "--no-detect"]
            if args.page_size:
                pull_cmd += ["--page-size", str(args.page_size)]
            ingest_s, ingest = timed(py + ["ingest", *(str(tmp / "logs" / n) for n in LOGS),
                                           "--db", f"sqlite:///{tmp / 'ingest.db'}", "--json", "--no-detect"], env, tmp)
            pull_s, pull = timed(pull_cmd, env, tmp)
        finally:
            sim.terminate()
            sim.wait()
        same = stored(tmp / "pull.db") == stored(tmp / "ingest.db")
    ingest_rate, pull_rate = ingest["read"] / ingest_s, pull["read"] / pull_s
    print(f"records: {pull['read']:,} pulled in {pull['pages']:,} pages, {ingest['read']:,} ingested "
          f"({args.days} days x {args.per_day:,}/day); same rows stored: {'yes' if same else 'NO'}")
    print(f"ingest from files  {ingest_rate:>10,.0f} records/s  ({ingest_s:.2f} s, the baseline)")
    print(f"pull from gateway  {pull_rate:>10,.0f} records/s  ({pull_s:.2f} s)")
    print(f"ratio pull/ingest  {pull_rate / ingest_rate:>10.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()

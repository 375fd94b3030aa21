"""An ingest killed with SIGKILL mid-file, then run again, leaves the store as one clean run would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import load_runs, transactions

from conftest import write_jsonl
from storehelpers import rollup_from_rows, rollup_stored, snapshot


def big_log(path, n=30000):
    records = []
    for i in range(n):
        base = {"id": f"txn_{i:06d}", "created_at": f"2026-10-0{1 + i % 7}T{8 + i % 12:02d}:{i % 60:02d}:00+03:00",
                "shortcode": ["174379", "600977"][i % 2], "msisdn": f"07{i % 100000000:08d}", "amount": 10 + i % 900,
                "status": "pending", "checkout_request_id": f"ws_CO_{i:020d}"}
        records.append(base)
        if i % 5:
            records.append({**base, "status": "success" if i % 4 else "failed", "result_code": 0 if i % 4 else 1037,
                            "updated_at": base["created_at"].replace(":00+03:00", ":30+03:00")})
        if i % 97 == 0:
            records.append("not an object")
    return write_jsonl(path, records)


def test_sigkill_then_rerun_equals_a_clean_run(db_factory, tmp_path):
    log = big_log(tmp_path / "big.jsonl")
    killed_url, clean_url = db_factory(), db_factory()
    open_store(killed_url).dispose()  # migrate first, so the child only loads
    env = {**os.environ, "MPESA_OPS_BATCH_SIZE": "500"}
    proc = subprocess.Popen([sys.executable, "-m", "mpesa_ops", "ingest", str(log), "--db", killed_url],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    engine = open_store(killed_url, migrate=False)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                read = conn.execute(select(func.max(load_runs.c.read))).scalar() or 0
            if read >= 5000 or proc.poll() is not None:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the ingest ended before it could be killed: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with engine.connect() as conn:
            partial = conn.execute(select(func.count()).select_from(transactions)).scalar_one()
            run = conn.execute(select(load_runs)).mappings().one()
        assert 0 < partial < 30000 and run["status"] == "running"  # killed mid-file, its run left open

        rerun = ingest_paths(engine, [str(log)])
        assert rerun.counts.balanced()
        clean_engine = open_store(clean_url)
        clean = ingest_paths(clean_engine, [str(log)])
        assert snapshot(engine) == snapshot(clean_engine)
        assert rollup_stored(engine) == rollup_from_rows(engine)
        assert rerun.counts.read == clean.counts.read and rerun.counts.rejected == clean.counts.rejected
        clean_engine.dispose()
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()

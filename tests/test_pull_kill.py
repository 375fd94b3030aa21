"""A pull killed with SIGKILL mid-walk, then run again, leaves the store a clean pull
would: each page was committed with its cursor, and the rerun resumes at that cursor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.gateway_sim import GatewaySim
from mpesa_ops.ingest.pull.run import pull_once
from mpesa_ops.ingest.pull.sources import load_settings
from mpesa_ops.ingest.schema import load_runs, pull_cursors
from mpesa_ops.ingest.simulate import simulate

from storehelpers import rollup_from_rows, rollup_stored, snapshot

KEY, LINK = "k-kill-test", "l-kill-test"


def test_sigkill_mid_pull_then_rerun_equals_a_clean_pull(db_factory, tmp_path):
    simulate(tmp_path / "logs", days=1, seed=17, per_day=200)
    sim = GatewaySim.from_dir(tmp_path / "logs", api_keys=[KEY], link_ids=[LINK])
    killed_url, clean_url = db_factory(), db_factory()
    engine = open_store(killed_url)  # migrated first, so the child only pulls
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPESA_OPS_")}
    env.update(MPESA_OPS_API_KEY=KEY, MPESA_OPS_LINK_ID=LINK)
    with sim.running() as url:
        sim.faults.delay = 0.05  # a slow gateway, so the kill lands mid-walk
        proc = subprocess.Popen([sys.executable, "-m", "mpesa_ops", "pull", "--db", killed_url, "--base-url", url,
                                 "--page-size", "10"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                with engine.connect() as conn:
                    if (conn.execute(select(func.max(pull_cursors.c.pages))).scalar() or 0) >= 4:
                        break
                time.sleep(0.02)
            assert proc.poll() is None, f"the pull ended before it could be killed: {proc.stderr.read()}"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with engine.connect() as conn:
            cursor = conn.execute(select(pull_cursors)).mappings().one()
            run = conn.execute(select(load_runs)).mappings().one()
        assert cursor["stream"] == "transactions" and cursor["cursor"] is not None  # killed mid-walk
        assert run["status"] == "running"

        sim.faults.delay = 0.0
        settings = load_settings(base_url=url, api_key=KEY, link_id=LINK, page_size=10, secrets={})
        rerun = pull_once(engine, settings)
        assert rerun.streams[0].resumed and not rerun.streams[1].resumed
        assert rerun.counts.balanced()
        clean_engine = open_store(clean_url)
        pull_once(clean_engine, settings)
    assert snapshot(engine) == snapshot(clean_engine)
    assert rollup_stored(engine) == rollup_from_rows(engine)
    clean_engine.dispose()
    engine.dispose()

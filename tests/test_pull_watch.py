"""`pull --watch`: rounds with a callback after each, a clean stop on SIGTERM after the
page in flight is committed, and the command's --json output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest
from sqlalchemy import func, select

from mpesa_ops.cli import main
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.gateway_sim import GatewaySim
from mpesa_ops.ingest.pull.run import watch
from mpesa_ops.ingest.pull.sources import load_settings
from mpesa_ops.ingest.schema import load_runs, pull_cursors
from mpesa_ops.ingest.simulate import simulate

KEY, LINK = "k-watch-test", "l-watch-test"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    simulate(folder, days=1, seed=19, per_day=150)
    return folder


@pytest.fixture
def sim(logs):
    s = GatewaySim.from_dir(logs, api_keys=[KEY], link_ids=[LINK])
    with s.running():
        yield s


def test_watch_runs_rounds_and_the_callback_after_each(engine, sim):
    settings = load_settings(base_url=sim.url, api_key=KEY, link_id=LINK, secrets={})
    stop, rounds, seen = threading.Event(), [], []

    def after_round(eng):
        seen.append(eng)
        if len(seen) == 1:
            sim.add("deliveries", [{"id": "dlv_between", "sent_at": "2026-10-05T00:00:00Z",
                                    "url": "https://x.example"}])
        else:
            stop.set()

    watch(engine, settings, 0, stop=stop, after_round=after_round, on_round=rounds.append)
    assert seen == [engine, engine]
    assert rounds[0].counts.read == sim.count("transactions") + sim.count("deliveries") - 1
    assert rounds[1].counts.loaded == 1


def test_sigterm_stops_after_the_page_in_flight_is_committed(tmp_path, sim):
    url = f"sqlite:///{tmp_path / 'watch.db'}"
    engine = open_store(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPESA_OPS_")}
    env.update(MPESA_OPS_API_KEY=KEY, MPESA_OPS_LINK_ID=LINK)
    sim.faults.delay = 0.1
    proc = subprocess.Popen([sys.executable, "-m", "mpesa_ops", "pull", "--db", url, "--base-url", sim.url,
                             "--page-size", "10", "--watch", "60"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                if (conn.execute(select(func.max(pull_cursors.c.pages))).scalar() or 0) >= 3:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"stopped" in err and KEY.encode() not in err + out and LINK.encode() not in err + out
    with engine.connect() as conn:
        run = conn.execute(select(load_runs)).mappings().one()
        cursor = conn.execute(select(pull_cursors)).mappings().one()
    assert run["status"] == "ok" and run["message"] == "stopped on request"
    assert cursor["cursor"] is not None and run["read"] == cursor["records"] == 10 * cursor["pages"]
    engine.dispose()


def test_pull_json_prints_one_object_of_totals_and_streams(tmp_path, sim, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MPESA_OPS_SECRETS")  # the default place: .streamlit/secrets.toml here
    monkeypatch.setenv("MPESA_OPS_LINK_ID", LINK)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f'[gateway]\napi_key = "{KEY}"\npage_size = 40\n')
    assert main(["pull", "--db", f"sqlite:///{tmp_path / 'j.db'}", "--base-url", sim.url, "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert {"read", "loaded", "updated", "duplicates", "rejected", "pages", "streams"} <= set(out)
    assert out["read"] == out["loaded"] + out["updated"] + out["duplicates"] + out["rejected"]
    assert out["read"] == sim.count("transactions") + sim.count("deliveries")
    assert out["streams"]["transactions"]["pages"] == -(-sim.count("transactions") // 40)

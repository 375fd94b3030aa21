"""`pull` over loopback HTTP from the gateway simulator: the same store as ingesting
the same logs, incremental rounds, records that arrive between and during pulls, the
lag window, and a gateway whose API differs configured by settings alone."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.gateway_sim import Api, GatewaySim
from mpesa_ops.ingest.pull.run import pull_once
from mpesa_ops.ingest.pull.sources import load_settings
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import pull_cursors, transactions
from mpesa_ops.ingest.simulate import simulate

from conftest import write_jsonl
from storehelpers import rollup_from_rows, rollup_stored, snapshot

KEY, LINK = "k-pull-test", "l-pull-test"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    simulate(folder, days=1, seed=11, per_day=200)
    return folder


@pytest.fixture
def sim(logs):
    s = GatewaySim.from_dir(logs, api_keys=[KEY], link_ids=[LINK])
    with s.running():
        yield s


def settings_for(url, page_size=64, lag=600.0, secrets=None):
    return load_settings(base_url=url, api_key=KEY, link_id=LINK, page_size=page_size, lag_seconds=lag,
                         secrets=secrets or {})


def ingested(db_factory, paths):
    engine = open_store(db_factory())
    ingest_paths(engine, [str(p) for p in paths])
    return engine


def test_a_clean_pull_stores_what_ingesting_the_same_logs_stores(engine, db_factory, sim, logs):
    report = pull_once(engine, settings_for(sim.url))
    assert report.counts.balanced() and report.counts.read == sim.count("transactions") + sim.count("deliveries")
    assert [s.pages for s in report.streams] == [-(-sim.count("transactions") // 64), -(-sim.count("deliveries") // 64)]
    files = ingested(db_factory, [logs / "transactions.jsonl", logs / "webhook_deliveries.jsonl"])
    assert snapshot(engine) == snapshot(files)
    assert rollup_stored(engine) == rollup_from_rows(engine)
    with engine.connect() as conn:
        cursors = {r["stream"]: r for r in conn.execute(select(pull_cursors)).mappings()}
        sources = conn.execute(select(transactions.c.source, transactions.c.source_line)).all()
    assert set(cursors) == {"transactions", "deliveries"}
    assert all(c["cursor"] is None and c["load_run_id"] == report.run_id for c in cursors.values())
    assert cursors["transactions"]["records"] == sim.count("transactions")
    assert all(src.startswith("GET /v1/transactions?limit=64") and 1 <= line <= 64 for src, line in sources)
    files.dispose()


def test_a_second_round_reads_only_the_lag_window_and_loads_nothing(engine, sim):
    pull_once(engine, settings_for(sim.url))
    before = snapshot(engine)
    again = pull_once(engine, settings_for(sim.url, lag=300))
    assert again.counts.loaded == again.counts.updated == 0
    assert 0 < again.counts.read < sim.count("transactions")
    assert all(s.since is not None and not s.resumed for s in again.streams)
    assert snapshot(engine) == before


def new_payment(n, when="2026-10-03T10:00:00+03:00", done="2026-10-03T10:00:20+03:00"):
    pending = {"id": f"txn_added_{n}", "created_at": when, "updated_at": when, "shortcode": "174379",
               "msisdn": "254712345678", "amount": 100 + n, "status": "pending",
               "checkout_request_id": f"ws_CO_added_{n}"}
    final = {**pending, "updated_at": done, "status": "success", "result_code": 0, "completed_at": done,
             "mpesa_receipt": f"RCP{n:07d}"}
    return pending, final


def test_records_added_at_the_gateway_between_two_pulls_arrive_once(engine, db_factory, sim, logs, tmp_path):
    pull_once(engine, settings_for(sim.url))
    added = [row for n in range(3) for row in new_payment(n)]
    delivery = {"id": "dlv_added", "event_id": "evt_added", "transaction_id": "txn_added_0",
                "event_type": "payment.success", "url": "https://shop.example/hooks", "attempt": 1,
                "sent_at": "2026-10-03T10:00:21+03:00", "status_code": 200, "latency_ms": 80}
    sim.add("transactions", added)
    sim.add("deliveries", [delivery])
    second = pull_once(engine, settings_for(sim.url))
    assert second.counts.loaded == 4  # three payments and one delivery
    third = pull_once(engine, settings_for(sim.url))
    assert third.counts.loaded == third.counts.updated == 0
    extra = write_jsonl(tmp_path / "added.jsonl", added + [delivery])
    files = ingested(db_factory, [logs / "transactions.jsonl", logs / "webhook_deliveries.jsonl", extra])
    assert snapshot(engine) == snapshot(files)
    files.dispose()


def test_records_that_appear_while_a_pull_runs_arrive_once(engine, db_factory, sim, logs, tmp_path):
    late_night = [row for n in range(2) for row in new_payment(n, "2026-10-02T02:00:00+03:00",
                                                                "2026-10-02T02:00:30+03:00")]
    sim.faults.add_after_pages, sim.faults.pending_records = 2, {"transactions": late_night}
    first = pull_once(engine, settings_for(sim.url))
    second = pull_once(engine, settings_for(sim.url))
    assert first.counts.loaded + second.counts.loaded == sim.count("deliveries") + len(
        {r["id"] for r in late_night}) + len(_ids(logs))
    files = ingested(db_factory, [logs / "transactions.jsonl", logs / "webhook_deliveries.jsonl",
                                  write_jsonl(tmp_path / "late.jsonl", late_night)])
    assert snapshot(engine) == snapshot(files)
    files.dispose()


def _ids(logs):
    return {orjson.loads(line)["id"] for line in (logs / "transactions.jsonl").read_bytes().splitlines()}


def test_the_lag_window_rereads_an_update_recorded_late(engine, sim):
    pull_once(engine, settings_for(sim.url))
    with engine.connect() as conn:
        high_water = conn.execute(select(pull_cursors.c.high_water)
                                  .where(pull_cursors.c.stream == "transactions")).scalar_one()
    pending, final = new_payment(7, (high_water - timedelta(minutes=9)).isoformat(),
                                 (high_water - timedelta(minutes=5)).isoformat())
    sim.add("transactions", [pending])
    pull_once(engine, settings_for(sim.url))  # the pending row arrives
    sim.add("transactions", [final])  # its result, recorded late: updated before the high water
    missed = pull_once(engine, settings_for(sim.url, lag=0))
    assert missed.streams[0].counts.updated == 0
    reread = pull_once(engine, settings_for(sim.url, lag=600))
    assert reread.streams[0].counts.updated == 1
    with engine.connect() as conn:
        assert conn.execute(select(transactions.c.status).where(transactions.c.id == "txn_added_7")).scalar_one() \
            == "success"


def test_a_gateway_that_differs_needs_settings_not_code(engine, logs):
    api = Api(paths={"/api/v2/txns": "transactions", "/api/v2/hooks": "deliveries"}, since_param="since",
              cursor_param="page_token", limit_param="per_page", data_key="items", next_key="next",
              apikey_header="x-api-key", linkid_header="x-link")
    sim = GatewaySim.from_dir(logs, api_keys=[KEY], link_ids=[LINK], api=api)
    names = {"since_param": "since", "cursor_param": "page_token", "limit_param": "per_page",
             "data_key": "items", "next_key": "next"}
    secrets = {"gateway": {"apikey_header": "x-api-key", "linkid_header": "x-link", "streams": {
        "transactions": {"path": "/api/v2/txns", **names}, "deliveries": {"path": "/api/v2/hooks", **names}}}}
    with sim.running() as url:
        report = pull_once(engine, settings_for(url, secrets=secrets))
    assert report.counts.read == sim.count("transactions") + sim.count("deliveries")
    assert report.counts.rejected == 0 and report.counts.loaded > 0


def test_a_record_dated_after_tomorrow_is_kept_as_a_reject_not_loaded(engine, sim):
    from mpesa_ops.ingest.schema import rejected_records

    pull_once(engine, settings_for(sim.url))
    sim.add("transactions", [{"id": "txn_next_year", "created_at": "2030-01-01T10:00:00+03:00",
                              "updated_at": "2030-01-01T10:00:00+03:00", "status": "pending"}])
    report = pull_once(engine, settings_for(sim.url))
    assert (report.counts.loaded, report.counts.rejected) == (0, 1)
    with engine.connect() as conn:
        reject = conn.execute(select(rejected_records).where(rejected_records.c.reason_code == "future_time")).one()
        assert conn.execute(select(transactions.c.id).where(transactions.c.id == "txn_next_year")).first() is None
    assert reject.field == "created_at" and reject.source.startswith("GET /v1/transactions") and "2030" in reject.raw

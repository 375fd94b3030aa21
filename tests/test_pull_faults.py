"""The pull against a misbehaving gateway: rate limits, 5xx, stalls, dead ports, bad
pages, pagination loops and every error of the seed, with the key kept out of every
message and row."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import select

from mpesa_ops import catalogue
from mpesa_ops.cli import main
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.gateway_sim import GatewaySim
from mpesa_ops.ingest.pull.client import GatewayClient, retry_after_seconds
from mpesa_ops.ingest.pull.run import PullError, pull_once
from mpesa_ops.ingest.pull.sources import load_settings
from mpesa_ops.ingest.schema import load_runs, pull_cursors, rejected_records
from mpesa_ops.ingest.simulate import simulate

from storehelpers import snapshot

KEY, LINK = "k-SECRET-4d2f9a", "l-SECRET-77c1e0"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    simulate(folder, days=1, seed=13, per_day=120)
    return folder


@pytest.fixture
def sim(logs):
    s = GatewaySim.from_dir(logs, api_keys=[KEY], link_ids=[LINK], inactive_link_ids=["l-off"])
    with s.running():
        yield s


def settings_for(url, key=KEY, link=LINK, **gateway):
    return load_settings(base_url=url, api_key=key, link_id=link, page_size=50, secrets={"gateway": gateway})


class Waits(list):
    """A client's wait that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> bool:
        self.append(seconds)
        return False


@pytest.fixture
def store(tmp_path):
    """A SQLite store for tests of how the client behaves (the store's side runs on both backends elsewhere)."""
    engine = open_store(f"sqlite:///{tmp_path / 'client.db'}")
    yield engine
    engine.dispose()


def pull(engine, settings, waits=None, client_class=GatewayClient):
    with client_class(settings, wait=waits if waits is not None else Waits()) as client:
        return pull_once(engine, settings, client=client)


def assert_no_secret_stored(engine):
    with engine.connect() as conn:
        texts = [str(v) for table in (load_runs, rejected_records, pull_cursors)
                 for row in conn.execute(select(table)) for v in row]
    assert not any(KEY in t or LINK in t for t in texts)


def test_a_429_waits_as_long_as_retry_after_says(store, sim):
    sim.faults.rate_limit, sim.faults.retry_after = 2, "7"
    waits = Waits()
    report = pull(store, settings_for(sim.url), waits)
    assert waits == [7.0, 7.0] and report.retries == 2 and report.as_dict()["retries"] == 2
    assert report.counts.read == sim.count("transactions") + sim.count("deliveries")


def test_a_stop_asked_for_while_waiting_to_retry_ends_the_round_cleanly(store, sim):
    sim.faults.rate_limit = 1
    stop = threading.Event()

    def wait(seconds):
        stop.set()  # as SIGTERM would, during the wait
        return True

    with GatewayClient(settings_for(sim.url), wait=wait) as client:
        report = pull_once(store, settings_for(sim.url), client=client, stop=stop)
    assert report.stopped and report.counts.read == 0
    with store.connect() as conn:
        run = conn.execute(select(load_runs)).mappings().one()
    assert run["status"] == "ok" and run["message"] == "stopped on request"


def test_retry_after_may_be_an_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: at once
    assert retry_after_seconds("soon") is None and retry_after_seconds("2.5") == 2.5


def test_server_errors_and_stalls_are_retried_with_backoff(store, sim):
    sim.faults.server_errors, sim.faults.stall, sim.faults.stall_seconds = 3, 1, 2.0
    waits = Waits()
    report = pull(store, settings_for(sim.url, timeout_seconds=0.3), waits)
    assert len(waits) == 4 == report.retries  # three 500s and one answer that came too late
    assert all(0 <= w <= 0.5 * 2 ** i for i, w in enumerate(waits[:3]))  # exponential, with jitter
    assert report.counts.read == sim.count("transactions") + sim.count("deliveries")


def test_an_unreachable_gateway_fails_after_its_tries(store):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull(store, settings_for(f"http://127.0.0.1:{port}", max_attempts=3), waits)
    assert "cannot reach the gateway" in str(err.value) and "after 3 tries" in str(err.value)
    assert err.value.transient and len(waits) == 2


def seed_line(code):
    guide = catalogue.lookup(code).guide
    fix = guide.check_first[0].rstrip(".")
    return f"{code}: {guide.meaning.split(': ')[0]} (HTTP {catalogue.lookup(code).http_status}); " \
           f"{fix[0].lower()}{fix[1:]}"


@pytest.mark.parametrize("code, key, link, gateway", [
    ("MISSING_HEADERS", KEY, LINK, {"apikey_header": "x-api-key"}),
    ("INVALID_API_KEY", "k-SECRET-wrong", LINK, {}),
    ("INVALID_LINK_ID", KEY, "l-SECRET-wrong", {}),
    ("INACTIVE_SHORTCODE", KEY, "l-off", {}),
])
def test_each_refusal_ends_the_run_with_its_meaning_and_fix(engine, sim, code, key, link, gateway):
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull(engine, settings_for(sim.url, key, link, **gateway), waits)
    message = str(err.value)
    assert message.startswith(seed_line(code)) and not err.value.transient and waits == []
    assert "k-SECRET" not in message and "l-SECRET" not in message
    with engine.connect() as conn:
        run = conn.execute(select(load_runs)).mappings().one()
    assert run["status"] == "failed" and run["message"].startswith(code)
    assert_no_secret_stored(engine)


def test_mpesa_unavailable_is_retried_then_explained(store, sim):
    sim.faults.error = "MPESA_UNAVAILABLE"
    waits = Waits()
    with pytest.raises(PullError) as err:
        pull(store, settings_for(sim.url, max_attempts=4), waits)
    assert str(err.value).startswith(seed_line("MPESA_UNAVAILABLE")) and "after 4 tries" in str(err.value)
    assert len(waits) == 3 and err.value.transient


def test_the_command_prints_one_line_without_the_key(sim, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPESA_OPS_API_KEY", "k-SECRET-wrong")
    status = main(["pull", "--db", f"sqlite:///{tmp_path / 's.db'}", "--base-url", sim.url, "--link-id", LINK])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err.startswith("mpesa-ops pull: " + seed_line("INVALID_API_KEY")) and err.count("\n") == 1
    assert "k-SECRET" not in err and "l-SECRET" not in err


def test_missing_settings_name_the_setting_and_the_three_ways(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["pull", "--db", f"sqlite:///{tmp_path / 's.db'}", "--base-url", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err == ("mpesa-ops pull: no gateway api key: give --api-key, set MPESA_OPS_API_KEY, "
                                       "or set api_key in the [gateway] table of .streamlit/secrets.toml\n")


class FaultAfterFirstPage(GatewayClient):
    """Sets a fault on the simulator once the first page of the walk is fetched."""

    sim: GatewaySim
    fault: str

    def get(self, path, params, request):
        body = super().get(path, params, request)
        if "cursor" not in params:
            setattr(self.sim.faults, self.fault, 1 if self.fault != "loop" else True)
        return body


@pytest.mark.parametrize("fault, reason, words", [
    ("truncated", "truncated", "cut short"),
    ("not_json", "invalid_json", "not JSON"),
    ("wrong_shape", "wrong_shape", "no list under 'data'"),
])
def test_a_bad_page_stops_the_run_keeps_the_page_and_not_the_cursor(engine, db_factory, sim, fault, reason, words):
    client_class = type("Faulty", (FaultAfterFirstPage,), {"sim": sim, "fault": fault})
    with pytest.raises(PullError) as err:
        pull(engine, settings_for(sim.url), client_class=client_class)
    assert words in str(err.value) and "the cursor of transactions stays where it was" in str(err.value)
    with engine.connect() as conn:
        cursor = conn.execute(select(pull_cursors)).mappings().one()
        rejected = conn.execute(select(rejected_records)).mappings().one()
    assert cursor["pages"] == 1 and cursor["records"] == 50 and cursor["cursor"] is not None
    assert rejected["reason_code"] == reason and rejected["source"].endswith(f"cursor={cursor['cursor']}")
    assert rejected["raw"] and rejected["line"] is None

    resumed = pull(engine, settings_for(sim.url))
    assert resumed.streams[0].resumed and resumed.counts.read == sim.count("transactions") - 50 + sim.count(
        "deliveries")
    clean_engine = open_store(db_factory())
    pull(clean_engine, settings_for(sim.url))
    ours, theirs = snapshot(engine), snapshot(clean_engine)
    assert len(ours.pop("rejected")) == 1 and theirs.pop("rejected") == []
    assert ours == theirs
    clean_engine.dispose()


def test_a_repeated_cursor_is_a_loop_that_stops_the_run(store, sim):
    client_class = type("Looping", (FaultAfterFirstPage,), {"sim": sim, "fault": "loop"})
    with pytest.raises(PullError) as err:
        pull(store, settings_for(sim.url), client_class=client_class)
    assert "pagination loop" in str(err.value) and not err.value.transient
    with store.connect() as conn:
        assert conn.execute(select(pull_cursors.c.pages)).scalar_one() == 1
        assert conn.execute(select(load_runs.c.status)).scalar_one() == "failed"

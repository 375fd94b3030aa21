"""The gateway simulator over loopback HTTP: pages, cursors, credentials, the seed's
errors, faults and the control endpoint."""

from __future__ import annotations

import httpx
import orjson
import pytest

from mpesa_ops import catalogue
from mpesa_ops.ingest.gateway_sim import Api, GatewaySim
from mpesa_ops.ingest.simulate import simulate

HEADERS = {"apikey": "k-test", "linkid": "l-test"}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    simulate(folder, days=1, seed=5, per_day=200)
    return folder


@pytest.fixture
def sim(logs):
    s = GatewaySim.from_dir(logs, api_keys=["k-test"], link_ids=["l-test"], inactive_link_ids=["l-off"])
    with s.running():
        yield s


def walk(url, path="/v1/transactions", limit=50, **params):
    ids, cursor, pages = [], None, 0
    with httpx.Client(base_url=url, headers=HEADERS) as http:
        while True:
            r = http.get(path, params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200
            page = r.json()
            ids += [(rec["id"], rec.get("updated_at") or rec["sent_at"]) for rec in page["data"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                return ids, pages


def test_walking_the_cursor_serves_every_row_once_in_updated_order(sim, logs):
    rows = [orjson.loads(line) for line in (logs / "transactions.jsonl").read_bytes().splitlines()]
    served, pages = walk(sim.url)
    assert len(served) == len(rows) and pages == -(-len(rows) // 50)
    assert sorted(served) == sorted((r["id"], r["updated_at"]) for r in rows)
    deliveries, _ = walk(sim.url, "/v1/webhooks/deliveries", limit=5000)
    assert len(deliveries) == sim.count("deliveries") > 0


def test_updated_since_filters_and_new_records_come_after_the_cursor(sim):
    all_rows, _ = walk(sim.url)
    late = sorted(all_rows, key=lambda r: r[1])[-10][1]
    recent, _ = walk(sim.url, updated_since=late)
    assert 10 <= len(recent) < len(all_rows)
    with httpx.Client(base_url=sim.url, headers=HEADERS) as http:
        first = http.get("/v1/transactions", params={"limit": 400}).json()
        sim.add("transactions", [{"id": "txn_new", "created_at": "2030-01-01T00:00:00Z",
                                  "updated_at": "2030-01-01T00:00:00Z", "status": "pending"}])
        rest = http.get("/v1/transactions", params={"limit": 5000, "cursor": first["next_cursor"]}).json()
    assert rest["data"][-1]["id"] == "txn_new" and rest["next_cursor"] is None


@pytest.mark.parametrize("headers, code", [
    ({"apikey": "k-test"}, "MISSING_HEADERS"),
    ({"linkid": "l-test"}, "MISSING_HEADERS"),
    ({"apikey": "nope", "linkid": "l-test"}, "INVALID_API_KEY"),
    ({"apikey": "k-test", "linkid": "nope"}, "INVALID_LINK_ID"),
    ({"apikey": "k-test", "linkid": "l-off"}, "INACTIVE_SHORTCODE"),
])
def test_credentials_are_checked_with_the_seeds_errors(sim, headers, code):
    r = httpx.get(f"{sim.url}/v1/transactions", headers=headers)
    assert r.status_code == catalogue.lookup(code).http_status == 401
    assert r.json()["error"]["code"] == code


def test_a_forced_gateway_error_has_the_seeds_status(sim):
    sim.faults.error = "MPESA_UNAVAILABLE"
    r = httpx.get(f"{sim.url}/v1/transactions", headers=HEADERS)
    assert r.status_code == 500 and r.json()["error"]["code"] == "MPESA_UNAVAILABLE"


def test_counted_faults_apply_to_the_next_requests_only(sim):
    sim.faults.rate_limit, sim.faults.retry_after = 1, "3"
    sim.faults.server_errors = 1
    sim.faults.truncated = sim.faults.not_json = sim.faults.wrong_shape = 1
    with httpx.Client(base_url=sim.url, headers=HEADERS) as http:
        answers = [http.get("/v1/transactions", params={"limit": 5}) for _ in range(6)]
    assert answers[0].status_code == 429 and answers[0].headers["retry-after"] == "3"
    assert answers[1].status_code == 500 and answers[1].json()["error"]["code"] == "INTERNAL_ERROR"
    with pytest.raises(ValueError):
        orjson.loads(answers[2].content)  # truncated
    assert answers[3].content.startswith(b"<html>")
    assert not isinstance(answers[4].json()["data"], list)
    assert answers[5].status_code == 200 and len(answers[5].json()["data"]) == 5


def test_the_loop_fault_hands_back_the_cursor_it_was_asked_with(sim):
    sim.faults.loop = True
    with httpx.Client(base_url=sim.url, headers=HEADERS) as http:
        first = http.get("/v1/transactions", params={"limit": 5}).json()
        second = http.get("/v1/transactions", params={"limit": 5, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] == first["next_cursor"]


def test_bad_query_values_are_validation_errors(sim):
    for params in ({"limit": "many"}, {"limit": 0}, {"cursor": "###"}, {"updated_since": "yesterday"}):
        r = httpx.get(f"{sim.url}/v1/transactions", headers=HEADERS, params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_the_control_endpoint_sets_faults_adds_records_and_counts(sim):
    with httpx.Client(base_url=sim.url) as http:
        assert http.post("/_sim/faults", json={"server_errors": 2}).json()["server_errors"] == 2
        assert http.post("/_sim/faults", json={"bogus": 1}).status_code == 400
        before = sim.count("deliveries")
        added = http.post("/_sim/records/deliveries", json=[{"id": "dlv_x", "sent_at": "2030-01-01T00:00:00Z"}])
        assert added.json() == {"added": 1} and sim.count("deliveries") == before + 1
        assert httpx.get(f"{sim.url}/v1/transactions", headers=HEADERS).status_code == 500
        stats = http.get("/_sim/stats").json()
    assert stats["requests"] == 1 and stats["deliveries_records"] == before + 1


def test_records_are_added_after_a_number_of_pages(sim):
    sim.faults.add_after_pages = 2
    sim.faults.pending_records = {"transactions": [{"id": "txn_mid", "created_at": "2030-01-01T00:00:00Z",
                                                    "status": "pending"}]}
    before = sim.count("transactions")
    with httpx.Client(base_url=sim.url, headers=HEADERS) as http:
        http.get("/v1/transactions", params={"limit": 1})
        assert sim.count("transactions") == before
        http.get("/v1/transactions", params={"limit": 1})
    assert sim.count("transactions") == before + 1


def test_another_api_shape_is_served_under_its_own_names(logs):
    api = Api(paths={"/api/v2/txns": "transactions"}, since_param="since", cursor_param="page_token",
              limit_param="per_page", data_key="items", next_key="next", apikey_header="x-api-key")
    sim = GatewaySim.from_dir(logs, api_keys=["k"], link_ids=["l"], api=api)
    with sim.running() as url:
        r = httpx.get(f"{url}/api/v2/txns", headers={"x-api-key": "k", "linkid": "l"}, params={"per_page": 3})
        assert len(r.json()["items"]) == 3 and r.json()["next"]
        assert httpx.get(f"{url}/v1/transactions", headers={"x-api-key": "k", "linkid": "l"}).status_code == 404

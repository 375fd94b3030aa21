"""The Webhooks page: its queries on SQLite and Postgres, and the page itself with AppTest
(charts, one refused delivery with its diff, the check form that forgets secrets)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from streamlit.testing.v1 import AppTest

from conftest import write_jsonl
from mpesa_ops.dashboard import webhook_queries as wq
from mpesa_ops.dashboard.queries import rollup_for
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import delivery_rollup_hour, delivery_rollup_minute
from mpesa_ops.ingest.simulate import simulate
from mpesa_ops.ingest.verdicts import refresh_verdicts
from mpesa_ops.ingest.webhook_secrets import load_config
from mpesa_ops.signatures import sign

SHOP = "https://shop.example.co.ke/mpesa/webhook"
DAY_START = datetime(2026, 9, 30, 21, tzinfo=timezone.utc)  # 1 Oct 2026, Nairobi
DAY_END = DAY_START + timedelta(days=1)
PHONE = "254712345678"
LINK_ID = "lnk_5ecret0f9a2"
CHECKOUT = "ws_CO_01102026130000123" + PHONE[3:]  # Daraja ids end with the customer's national number
BODY = json.dumps({"event": "payment.success", "data": {"msisdn": PHONE, "amount": 10, "link_id": LINK_ID,
                                                        "checkout_request_id": CHECKOUT}}, separators=(",", ":"))
API_KEY = "sk_live_do_not_show_41"
TYPED_SECRET = "typed-secret-never-kept-9f3b"


def secret_of(sim, url: str) -> str:
    return json.loads((sim / "webhook-secrets.json").read_text())["endpoints"][url]["current"]


def pretty_delivery(sim) -> dict:
    """A delivery refused because the endpoint re-serialised the body (logged pretty)."""
    sig = sign("gateway", BODY.encode(), secret_of(sim, SHOP))
    ts = int(datetime(2026, 10, 1, 10, tzinfo=timezone.utc).timestamp())
    return {"id": "dlv_pretty", "event_id": "evt_pretty", "transaction_id": "txn_x", "event_type": "payment.success",
            "url": SHOP, "attempt": 1, "sent_at": "2026-10-01T13:00:00+03:00", "status_code": 401, "latency_ms": 30,
            "error": "invalid_signature", "signature": sig, "signature_timestamp": str(ts),
            "headers": {"X-Signature": sig, "X-Timestamp": str(ts), "X-Api-Key": API_KEY,
                        "Authorization": f"Bearer {API_KEY}"},
            "payload": json.dumps(json.loads(BODY), indent=2), "response_body": '{"error":"Invalid Signature"}'}


def load_demo(engine, tmp_path):
    sim = tmp_path / "sim"
    simulate(sim, days=1, seed=11, per_day=300)
    write_jsonl(sim / "extra_deliveries.jsonl", [pretty_delivery(sim)])
    ingest_paths(engine, [str(sim)])
    return sim


# --- queries (both backends) ---

def test_delivery_queries(engine, tmp_path):
    sim = load_demo(engine, tmp_path)
    df = wq.delivery_outcomes(engine, DAY_START, DAY_END)
    with engine.connect() as conn:
        stored = conn.execute(delivery_rollup_minute.select()).mappings().all()
    assert df["deliveries"].sum() == sum(r["deliveries"] for r in stored) > 300
    assert rollup_for(DAY_START, DAY_START + timedelta(hours=6), wq.DELIVERY_ROLLUPS) is delivery_rollup_minute
    assert rollup_for(DAY_START, DAY_END, wq.DELIVERY_ROLLUPS) is delivery_rollup_hour
    week = wq.delivery_outcomes(engine, DAY_START - timedelta(days=3), DAY_END + timedelta(days=3))
    assert week["deliveries"].sum() == df["deliveries"].sum() and set(week["bucket"].dt.minute) == {0}
    shop = wq.delivery_outcomes(engine, DAY_START, DAY_END, SHOP)
    assert set(shop["url"]) == {SHOP} and 0 < shop["deliveries"].sum() < df["deliveries"].sum()
    table = wq.by_endpoint(df)
    assert list(table["endpoint"]) == sorted(wq.endpoints(engine), key=lambda u: -int(
        df.loc[df["url"] == u, "deliveries"].sum()))
    row = table.iloc[0]
    assert row["delivered"] + row["failed"] == row["deliveries"] and 0 < row["delivered share"] <= 1
    totals = wq.health_totals(df)
    assert totals["retries"] == df["retries"].sum() > 0 and totals["mean_latency_ms"] > 0
    events = [json.loads(line) for line in (sim / "webhook_deliveries.jsonl").read_text().splitlines()]
    assert totals["deliveries"] == len(events) + 1  # every simulated attempt and the added one


def test_signature_failure_queries(engine, tmp_path):
    sim = load_demo(engine, tmp_path)
    failures = wq.signature_failures(engine, DAY_START, DAY_END)
    assert set(failures["verdict"]) == {wq.UNDIAGNOSED}
    config = load_config(sim / "webhook-secrets.json")
    assert wq.stale_verdicts(failures, config.fingerprint()) == len(failures) > 0
    refresh_verdicts(engine, config)
    failures = wq.signature_failures(engine, DAY_START, DAY_END)
    assert wq.stale_verdicts(failures, config.fingerprint()) == 0
    onsets = wq.failure_onsets(failures)
    rotation = next(i for i in json.loads((sim / "incidents.json").read_text()) if i["kind"] == "signature_rotation")
    previous = onsets[onsets["verdict"] == "previous_secret"].iloc[0]
    assert previous["url"] == rotation["url"]
    assert previous["first"] >= datetime.fromisoformat(rotation["start"])
    assert previous["last"] < datetime.fromisoformat(rotation["end"])
    listed = wq.failure_list(engine, DAY_START, DAY_END, verdict="body_reserialized")
    assert "dlv_pretty" in set(listed["id"]) and set(listed["verdict"]) == {"body_reserialized"}
    assert wq.failure_list(engine, DAY_START, DAY_END, verdict=wq.UNDIAGNOSED).empty
    newest = wq.failure_list(engine, DAY_START, DAY_END, limit=3)
    assert len(newest) == 3 and newest["sent_at"].is_monotonic_decreasing
    assert wq.delivery(engine, "dlv_pretty")["payload"].startswith("{\n") and wq.delivery(engine, "nope") is None


def test_the_diff_says_what_differs_instead_of_marking_every_line():
    pretty = json.dumps(json.loads(BODY), indent=2)
    compact = wq.reserialized_form(pretty, "compact")
    assert compact == BODY and wq.reserialized_form(pretty, "no_such_variant") is None
    notes = wq.body_differences(pretty, compact)
    assert len(notes) == 1 and notes[0].startswith("whitespace outside strings differs: the raw body has 8 line breaks")
    text, language = wq.body_diff(pretty, compact)  # same JSON, same order: the bytes, not a diff
    assert language == "text" and "first differ at character 1" in text
    moved = wq.reserialized_form(pretty, "compact+sorted_keys")
    assert any(n.startswith("key order") for n in wq.body_differences(pretty, moved))
    text, language = wq.body_diff(pretty, moved)
    changed = [line for line in text.splitlines()[2:] if line[:1] in "+-"]
    assert language == "diff" and 0 < len(changed) < len(pretty.splitlines())  # only the moved keys
    assert wq.body_differences(BODY, BODY + "\n") == ["trailing newline: the signed form ends with one, "
                                                       "the raw body does not"]
    escaped = json.dumps({"n": "café"})
    assert wq.body_differences(escaped, json.dumps({"n": "café"}, ensure_ascii=False))[0].startswith("escaping: 1 ")
    assert wq.pretty_payload("not json") == ("not json", "text")
    assert wq.headers_of({"headers": '{"X-Signature": "s"}'}) == {"X-Signature": "s"}


def test_redaction_hides_secrets_for_everyone_and_phones_in_every_shape():
    from mpesa_ops.dashboard import redact

    text = (f'{{"msisdn":"{PHONE}","checkout_request_id":"{CHECKOUT}","link_id":"{LINK_ID}",'
            f'"api_key":"{API_KEY}","note":"call 0{PHONE[3:]} or +254111222333","other":"{PHONE[3:]}"}}')
    seen_by_support = redact.redact_text(text, hide_phones=False)
    assert LINK_ID not in seen_by_support and API_KEY not in seen_by_support and PHONE in seen_by_support
    assert '"link_id":"•••"' in seen_by_support and '"api_key":"•••"' in seen_by_support
    masked = redact.redact_text(text, phones=[PHONE], hide_phones=True)
    assert PHONE[3:] not in masked and "111222333" not in masked and LINK_ID not in masked
    assert '"msisdn":"2547•••••678"' in masked and "0712•••••678" not in masked and "07•••••678" in masked
    assert CHECKOUT[:-9] + "7•••••678" in masked
    assert redact.redact_text("Authorization: Bearer abc.def\nX-Trace: 1", hide_phones=False) == \
        "Authorization: •••\nX-Trace: 1"
    shown = redact.redact_json({"Authorization": "Bearer x", "data": {"PhoneNumber": 254712345678, "id": CHECKOUT,
                                                                       "LinkID": 7, "amount": 10}},
                               hide_phones=True)
    assert shown == {"Authorization": "•••", "data": {"PhoneNumber": "2547•••••678",
                                                      "id": CHECKOUT[:-9] + "7•••••678", "LinkID": "•••",
                                                      "amount": 10}}


def test_a_number_the_log_got_wrong_is_masked_wherever_its_digits_appear():
    """Refused requests keep numbers that are not mobile numbers (a landline, 00254...):
    their national digits are masked in every field, not only where they appear whole."""
    from mpesa_ops.dashboard import redact

    text = '{"msisdn_raw": "0201234567", "result_desc": "Invalid MSISDN 254201234567", "note": "retry 201234567"}'
    masked = redact.redact_text(text, phones=["0201234567"], hide_phones=True)
    assert "1234" not in masked and masked.count("•••••567") == 2 and '"0201•••567"' in masked
    assert "201234567" not in redact.redact_text("retry 00254201234567", phones=["00254201234567"], hide_phones=True)


# --- the page (AppTest, SQLite) ---

@pytest.fixture
def page(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'page.db'}"
    engine = open_store(db)
    sim = load_demo(engine, tmp_path)
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(tmp_path / "no-secrets.toml"))
    monkeypatch.delenv("MPESA_OPS_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("MPESA_OPS_WEBHOOK_PREVIOUS_SECRET", raising=False)
    monkeypatch.setenv("MPESA_OPS_WEBHOOK_SECRETS_FILE", str(sim / "webhook-secrets.json"))
    refresh_verdicts(engine)
    engine.dispose()
    monkeypatch.setenv("MPESA_OPS_DB", db)
    monkeypatch.setenv("MPESA_OPS_ROLE", "engineer")

    def make(**params) -> AppTest:
        at = AppTest.from_string("from mpesa_ops.dashboard.views import webhooks\nwebhooks.render()",
                                 default_timeout=30)
        at.query_params.update({"range": "window", "from": "2026-09-30T21:00Z", "to": "2026-10-01T21:00Z", **params})
        return at.run()

    make.sim = sim
    return make


def texts(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "code", "error", "success", "warning", "info", "metric", "json"):
        parts += [str(getattr(el, "value", "")) for el in getattr(at, kind)]
    return "\n".join(parts)


def test_page_shows_health_and_the_rotation(page):
    at = page()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Deliveries", "Signature failures", "One refused delivery",
                                              "Check a signature"]
    assert at.metric[0].label == "Deliveries" and int(at.metric[0].value.replace(",", "")) > 300
    onsets = at.dataframe[1].value
    assert set(onsets["verdict"]) == {"previous_secret", "body_reserialized"}
    assert "Signed with a rotated-out secret" in " ".join(e.label for e in at.expander)


def test_one_delivery_with_its_diff_and_masked_phone(page):
    at = page(delivery="dlv_pretty")
    assert not at.exception
    shown = texts(at)
    assert "Diagnosis: `body_reserialized`" in shown and "re-serialised compactly" in shown
    assert "whitespace outside strings differs" in shown and "first differ at character 1" in shown
    assert PHONE[3:] not in shown and "2547•••••678" in shown  # engineers see masked phones, ids included
    assert CHECKOUT[:-9] + "7•••••678" in shown
    assert LINK_ID not in shown and API_KEY not in shown and '"link_id": "•••"' in shown  # secrets: nobody
    assert json.loads(at.json[0].value)["X-Api-Key"] == "•••"
    assert "Read the raw body before any parsing" in shown  # the verdict's guide


def test_check_form_diagnoses_and_forgets_the_secret(page):
    at = page()
    body = json.dumps({"a": 1})
    at.text_area(key="wh_payload").input(body)
    at.text_input(key="wh_signature").input(sign("gateway", body.encode(), "the-old-one"))
    at.text_input(key="wh_secret").input(TYPED_SECRET)
    at.text_input(key="wh_previous_secret").input("the-old-one")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert "`previous_secret`" in " ".join(e.value for e in at.error)
    assert at.session_state["wh_secret"] == "" and at.session_state["wh_previous_secret"] == ""
    kept = repr(at.session_state.to_dict()) + repr(dict(at.query_params)) + texts(at)
    assert TYPED_SECRET not in kept and "the-old-one" not in kept
    at.run()  # a later rerun shows the result again, still without the secret
    assert TYPED_SECRET not in texts(at) + repr(at.session_state.to_dict())


def test_check_form_bad_input_is_a_message(page):
    at = page()
    at.text_input(key="wh_secret").input("   ")
    at.button[0].click()
    at.run()
    assert not at.exception and "secret #1 is empty" in " ".join(e.value for e in at.error)


def test_page_without_secrets_says_how_to_configure(page, monkeypatch):
    monkeypatch.delenv("MPESA_OPS_WEBHOOK_SECRETS_FILE")
    at = page(delivery="dlv_pretty")
    assert not at.exception
    note = " ".join(i.value for i in at.info)
    assert "Showing the verdicts stored" in note and "live diagnosis" in note and "MPESA_OPS_WEBHOOK_SECRETS_FILE" in note
    assert "refused signatures have no verdict" not in note
    assert "Diagnosis:" not in texts(at) and "**stored verdict** `body_reserialized`" in texts(at)


def test_the_verdict_chart_spans_the_range_with_bars_one_bucket_wide(page):
    at = page()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    fig = next(c for c in charts if "Refused signatures by verdict" in c["layout"]["title"]["text"])
    assert fig["layout"]["xaxis"]["range"] == ["2026-10-01T00:00:00", "2026-10-02T00:00:00"]  # Nairobi day
    assert {t["width"] for t in fig["data"]} == {3_600_000 * 0.9} and {t["offset"] for t in fig["data"]} == {0}

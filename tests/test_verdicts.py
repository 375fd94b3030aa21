"""Stored signature verdicts: one stored delivery per verdict, recomputation when the
secrets change, no work when they do not, and the simulator's rotation incident."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime

import pytest
from sqlalchemy import select, update

from conftest import write_jsonl
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import webhook_deliveries as wd
from mpesa_ops.ingest.simulate import simulate
from mpesa_ops.ingest.verdicts import refresh_verdicts, verdict_counts
from mpesa_ops.ingest.webhook_secrets import WebhookConfig, load_config
from mpesa_ops.signatures import sign

SHOP = "https://shop.example.co.ke/mpesa/webhook"
STD = "https://std.example.com/hooks"
UNKNOWN = "https://unknown.example.com/hook"
CUR = "dGVzdC1zZWNyZXQtY3VycmVudA=="  # base64 of "test-secret-current", for secret_encoding
PREV = "previous-secret-1"
STD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROTATED_AT = "2026-10-01T09:00:00+03:00"
SENT = "2026-10-01T10:00:00+03:00"
SENT_TS = int(datetime.fromisoformat(SENT).timestamp())
BODY = b'{"event":"payment.success","event_id":"evt_1","data":{"amount":10,"result_desc":"ok"}}'


def toml(**shop_change) -> dict:
    shop = {"url": SHOP, "secret": CUR, "previous_secret": PREV, "rotated_at": ROTATED_AT, **shop_change}
    return {"webhooks": {"endpoints": {"shop": shop,
                                       "std": {"url": STD, "scheme": "standard", "secret": STD_SECRET}}}}


def hex_mac(key: bytes, body: bytes = BODY) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def delivery(did: str, signature: str | None, *, payload: bytes | None = BODY, ts: int | None = SENT_TS,
             url: str = SHOP, sent_at: str = SENT, error: str | None = "invalid_signature", status: int | None = 401,
             response: str = '{"error":"Invalid Signature"}', headers: dict | None = None) -> dict:
    if headers is None:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Signature"] = signature
        if ts is not None:
            headers["X-Timestamp"] = str(ts)
    return {"id": did, "event_id": "evt_" + did, "transaction_id": "txn_1", "event_type": "payment.success",
            "url": url, "attempt": 1, "sent_at": sent_at, "status_code": status, "latency_ms": 20, "error": error,
            "signature": signature, "signature_timestamp": None if ts is None else str(ts), "headers": headers,
            "payload": None if payload is None else payload.decode(), "response_body": response}


def std_delivery() -> dict:
    """A Standard Webhooks delivery whose id and timestamp are only in its headers."""
    sig = sign("standard", BODY, STD_SECRET, timestamp=SENT_TS, msg_id="msg_1")
    rec = delivery("d_std_valid", None, url=STD, ts=None,
                   headers={"webhook-id": "msg_1", "webhook-timestamp": str(SENT_TS), "webhook-signature": sig})
    return rec


CUR_HEX = "sha256=" + hex_mac(CUR.encode())
CASES = {  # delivery id -> (record, verdict expected with toml())
    "d_valid": (delivery("d_valid", CUR_HEX), "valid"),
    "d_missing": (delivery("d_missing", None), "missing_signature"),
    "d_malformed": (delivery("d_malformed", "sha256=zzzz"), "malformed_signature"),
    "d_skew": (delivery("d_skew", CUR_HEX, ts=SENT_TS - 600), "timestamp_skew"),
    "d_previous": (delivery("d_previous", "sha256=" + hex_mac(PREV.encode())), "previous_secret"),
    "d_before_rotation": (delivery("d_before_rotation", "sha256=" + hex_mac(PREV.encode()),
                                   sent_at="2026-10-01T08:59:00+03:00", ts=SENT_TS - 61 * 60), "valid"),
    "d_secret_encoding": (delivery("d_secret_encoding", "sha256=" + hex_mac(b"test-secret-current")),
                          "secret_encoding"),
    "d_reserialized": (delivery("d_reserialized", CUR_HEX,
                                payload=json.dumps(json.loads(BODY), indent=2).encode()), "body_reserialized"),
    "d_encoding": (delivery("d_encoding", "sha256=" + base64.b64encode(
        hmac.new(CUR.encode(), BODY, hashlib.sha256).digest()).decode()), "encoding_mismatch"),
    "d_wrong": (delivery("d_wrong", "sha256=" + hex_mac(b"someone-else")), "wrong_secret"),
    # a log that classed the refusal as http_error, but the answer names the signature
    "d_http_401": (delivery("d_http_401", "sha256=" + hex_mac(b"x"), error="http_error",
                            response="Signature verification failed"), "wrong_secret"),
    "d_std_valid": (std_delivery(), "valid"),
}
NOT_DIAGNOSED = {  # not signature failures: never touched
    "d_delivered": delivery("d_delivered", CUR_HEX, error=None, status=200, response="ok"),
    "d_401_token": delivery("d_401_token", "sha256=" + hex_mac(b"x"), error="http_error",
                            response='{"error":"invalid bearer token"}'),
}
CANNOT = {  # signature failures that cannot be diagnosed: no verdict, but marked as tried
    "d_unknown_url": delivery("d_unknown_url", CUR_HEX, url=UNKNOWN),
    "d_no_payload": delivery("d_no_payload", CUR_HEX, payload=None),
    "d_oversized": delivery("d_oversized", CUR_HEX, payload=b'{"note": "' + b"x" * 1_000_001 + b'"}'),
}


def stored(engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(select(wd.c.id, wd.c.signature_verdict, wd.c.signature_skew_seconds,
                                   wd.c.verdict_secrets)).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.fixture
def loaded(engine, tmp_path):
    records = [rec for rec, _ in CASES.values()] + list(NOT_DIAGNOSED.values()) + list(CANNOT.values())
    ingest_paths(engine, [str(write_jsonl(tmp_path / "deliveries.jsonl", records))])
    return engine


def test_each_verdict_is_reached_by_a_stored_delivery(loaded):
    config = load_config(secrets=toml())
    report = refresh_verdicts(loaded, config, batch_size=5)
    got = stored(loaded)
    assert {did: got[did][0] for did in CASES} == {did: verdict for did, (_, verdict) in CASES.items()}
    fp = config.fingerprint()
    assert all(got[did][2] == fp for did in list(CASES) + list(CANNOT))
    assert got["d_skew"][1] == 600.0 and got["d_valid"][1] == 0.0 and got["d_missing"][1] == 0.0
    assert {did: got[did] for did in NOT_DIAGNOSED} == {did: (None, None, None) for did in NOT_DIAGNOSED}
    assert {got[did][0] for did in CANNOT} == {None}
    assert report.examined == len(CASES) + len(CANNOT) and report.diagnosed == len(CASES)
    assert report.by_verdict["valid"] == 3 and report.by_verdict["wrong_secret"] == 2
    assert report.not_diagnosable == {"no secret configured for its endpoint": 1, "the log kept no payload": 1,
                                      "payload over the size limit": 1}
    assert "could not be diagnosed" in report.message


def test_unchanged_secrets_skip_work(loaded):
    config = load_config(secrets=toml())
    refresh_verdicts(loaded, config)
    with loaded.begin() as conn:  # a marker the next refresh would overwrite if it redid the work
        conn.execute(update(wd).where(wd.c.id == "d_wrong").values(signature_verdict="marker"))
    again = refresh_verdicts(loaded, load_config(secrets=toml()))
    assert (again.examined, again.diagnosed) == (0, 0) and again.message == "signature verdicts are up to date"
    assert stored(loaded)["d_wrong"][0] == "marker"


def test_changed_secrets_recompute(loaded):
    refresh_verdicts(loaded, load_config(secrets=toml()))
    # the rotation is undone: the previous secret is the only one again
    config = load_config(secrets=toml(secret=PREV, previous_secret=None, rotated_at=None))
    report = refresh_verdicts(loaded, config)
    got = stored(loaded)
    assert report.examined == len(CASES) + len(CANNOT)
    assert got["d_previous"][0] == "valid" and got["d_valid"][0] == "wrong_secret"
    assert got["d_std_valid"][0] == "valid" and got["d_std_valid"][2] == config.fingerprint()


def test_a_changed_delivery_gets_a_new_verdict(loaded, tmp_path):
    config = load_config(secrets=toml())
    refresh_verdicts(loaded, config)
    fixed = delivery("d_wrong", CUR_HEX)  # the log now has the delivery with another signature
    ingest_paths(loaded, [str(write_jsonl(tmp_path / "later.jsonl", [fixed]))])
    report = refresh_verdicts(loaded, config)
    assert report.examined == 1 and stored(loaded)["d_wrong"][0] == "valid"


def test_no_secrets_does_nothing_and_says_so(loaded):
    report = refresh_verdicts(loaded)
    assert not report.configured and "no webhook secrets configured" in report.message
    assert {v for v in stored(loaded).values()} == {(None, None, None)}
    assert refresh_verdicts(loaded, WebhookConfig()).configured is False


def test_verdict_counts_per_bucket(loaded):
    refresh_verdicts(loaded, load_config(secrets=toml()))
    start, end = datetime.fromisoformat("2026-10-01T00:00:00+03:00"), datetime.fromisoformat(SENT.replace("10:", "11:"))
    counts = verdict_counts(loaded, start, end)
    by = {(c.bucket.isoformat(), c.url, c.verdict): c.deliveries for c in counts}
    assert by[("2026-10-01T07:00:00+00:00", SHOP, "valid")] == 1
    assert by[("2026-10-01T05:59:00+00:00", SHOP, "valid")] == 1  # the delivery before the rotation
    assert by[("2026-10-01T07:00:00+00:00", SHOP, "wrong_secret")] == 2
    assert by[("2026-10-01T07:00:00+00:00", UNKNOWN, "undiagnosed")] == 1
    assert sum(by.values()) == len(CASES) + len(CANNOT)
    hours = verdict_counts(loaded, start, end, hours=True)
    assert {c.bucket.minute for c in hours} == {0} and sum(c.deliveries for c in hours) == sum(by.values())


def test_simulated_rotation_is_diagnosed_as_previous_secret(engine, tmp_path):
    out = tmp_path / "sim"
    simulate(out, days=1, seed=11, per_day=400)
    ingest_paths(engine, [str(out / "webhook_deliveries.jsonl")])
    report = refresh_verdicts(engine, load_config(out / "webhook-secrets.json"))
    incident = next(i for i in json.loads((out / "incidents.json").read_text()) if i["kind"] == "signature_rotation")
    start, end = datetime.fromisoformat(incident["start"]), datetime.fromisoformat(incident["end"])
    with engine.connect() as conn:
        rows = conn.execute(select(wd.c.url, wd.c.sent_at, wd.c.signature_verdict)
                            .where(wd.c.error == "invalid_signature")).all()
    in_incident = [v for url, sent, v in rows if url == incident["url"] and start <= sent < end]
    assert len(in_incident) >= 5 and set(in_incident) == {"previous_secret"}
    assert report.by_verdict["previous_secret"] == len(in_incident) and not report.not_diagnosable

"""Tests of the simulated gateway logs (mpesa_ops.ingest.simulate)."""

from __future__ import annotations

import collections
import datetime
import gzip
import hashlib
import hmac
import re
import statistics

import orjson
import pytest

from mpesa_ops.ingest.simulate import DEFAULT_START, simulate

NAIROBI = datetime.timezone(datetime.timedelta(hours=3))
DAYS = 3
PER_DAY = 500
SEED = 11

TX_FIELDS = [
    "id", "created_at", "updated_at", "shortcode", "link_id", "msisdn", "amount", "account_reference",
    "status", "http_status", "error_code", "merchant_request_id", "checkout_request_id", "result_code",
    "result_desc", "mpesa_receipt", "completed_at",
]
DELIVERY_FIELDS = [
    "id", "event_id", "transaction_id", "event_type", "url", "attempt", "sent_at", "status_code",
    "latency_ms", "error", "signature", "signature_timestamp", "headers", "payload", "response_body",
]
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$")
CHECKOUT_RE = re.compile(r"^ws_CO_(\d{2})(\d{2})(\d{4})(\d{2})(\d{2})(\d{2})(\d{3})(\d{9})$")
MRID_RE = re.compile(r"^(\d{4,5}-\d{6,8}-[12]|[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d{4,7})$")
FILES = ["transactions.jsonl", "callbacks.jsonl", "webhook_deliveries.jsonl", "webhook-secrets.json",
         "incidents.json"]


def _lines(path):
    return path.read_bytes().splitlines()


def _ts(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso)


def _hmac_hex(secret: str, payload: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate(out, days=DAYS, seed=SEED, per_day=PER_DAY)
    tx = [orjson.loads(x) for x in _lines(out / "transactions.jsonl")]
    cb = [orjson.loads(x) for x in _lines(out / "callbacks.jsonl")]
    dl = [orjson.loads(x) for x in _lines(out / "webhook_deliveries.jsonl")]
    incidents = orjson.loads((out / "incidents.json").read_bytes())
    secrets = orjson.loads((out / "webhook-secrets.json").read_bytes())
    final = {}
    for row in tx:
        final[row["id"]] = row  # rows are ordered by updated_at: the last one wins
    return {"out": out, "summary": summary, "tx": tx, "cb": cb, "dl": dl, "incidents": incidents,
            "secrets": secrets, "final": final}


# ---- files and shapes ----------------------------------------------------------------


def test_files_and_summary(run):
    out, summary = run["out"], run["summary"]
    assert summary["files"] == FILES
    for name in FILES:
        assert (out / name).is_file()
    assert summary["transaction_rows"] == len(run["tx"])
    assert summary["callbacks"] == len(run["cb"])
    assert summary["deliveries"] == len(run["dl"])
    assert summary["incidents"] == len(run["incidents"])
    assert summary["transactions"] == len(run["final"])
    # per_day is the daily mean over the span (each day has its own noise)
    assert 0.8 * DAYS * PER_DAY < summary["transactions"] < 1.25 * DAYS * PER_DAY
    for name in FILES[:3]:
        data = (out / name).read_bytes()
        assert data.endswith(b"\n") and b"\r" not in data
        data.decode("utf-8")


def test_transaction_rows_shape(run):
    ids_by_status = collections.Counter()
    for row in run["tx"]:
        assert list(row) == TX_FIELDS
        assert re.fullmatch(r"txn_[0-9a-f]{20}", row["id"])
        assert ISO_RE.match(row["created_at"]) and ISO_RE.match(row["updated_at"])
        assert row["created_at"] <= row["updated_at"]
        assert re.fullmatch(r"\d{5,7}", row["shortcode"]) and row["link_id"]
        assert isinstance(row["amount"], (int, float))
        status = row["status"]
        ids_by_status[status] += 1
        if status == "rejected":
            assert row["http_status"] in (401, 422, 500)
            assert row["error_code"] and row["result_code"] is None
            assert row["checkout_request_id"] is None and row["merchant_request_id"] is None
            continue
        assert row["http_status"] == 200 and row["error_code"] is None
        assert re.fullmatch(r"254[17]\d{8}", row["msisdn"])
        assert 1 <= row["amount"] <= 150_000
        assert MRID_RE.match(row["merchant_request_id"]), row["merchant_request_id"]
        assert CHECKOUT_RE.match(row["checkout_request_id"])
        if status == "pending":
            assert row["result_code"] is None and row["completed_at"] is None
            assert row["updated_at"] == row["created_at"]
        else:
            assert isinstance(row["result_code"], int) and row["result_desc"]
            assert row["completed_at"] == row["updated_at"] > row["created_at"]
            if status == "success":
                assert row["result_code"] == 0
                assert re.fullmatch(r"[A-Z][A-Z0-9]{9}", row["mpesa_receipt"])
            else:
                assert status == "failed" and row["result_code"] != 0 and row["mpesa_receipt"] is None
    assert set(ids_by_status) == {"pending", "success", "failed", "rejected"}
    receipts = [r["mpesa_receipt"] for r in run["final"].values() if r["mpesa_receipt"]]
    assert len(receipts) == len(set(receipts))


def test_callback_lines_shape(run):
    empty = 0
    for line in run["cb"]:
        assert list(line) == ["received_at", "shortcode", "body"]
        assert ISO_RE.match(line["received_at"])
        if line["body"] == {}:
            empty += 1
            continue
        cb = line["body"]["Body"]["stkCallback"]
        assert isinstance(cb["ResultCode"], int) and isinstance(cb["ResultDesc"], str)
        assert CHECKOUT_RE.match(cb["CheckoutRequestID"]) and MRID_RE.match(cb["MerchantRequestID"])
        if cb["ResultCode"] == 0:
            items = {i["Name"]: i.get("Value", "<none>") for i in cb["CallbackMetadata"]["Item"]}
            assert set(items) - {"Balance"} == {"Amount", "MpesaReceiptNumber", "TransactionDate", "PhoneNumber"}
            assert isinstance(items["PhoneNumber"], int) and str(items["PhoneNumber"]).startswith("254")
            datetime.datetime.strptime(str(items["TransactionDate"]), "%Y%m%d%H%M%S")
        else:
            assert "CallbackMetadata" not in cb
    assert empty < 0.02 * len(run["cb"])
    # every completed (non-rejected, non-forever-pending) request has its callback
    by_checkout = collections.Counter(
        c["body"]["Body"]["stkCallback"]["CheckoutRequestID"] for c in run["cb"] if c["body"])
    completed = [r for r in run["final"].values() if r["status"] in ("success", "failed")]
    assert all(by_checkout[r["checkout_request_id"]] >= 1 for r in completed)


def test_callback_texts_vary_per_code(run):
    texts = collections.defaultdict(set)
    for line in run["cb"]:
        if line["body"]:
            cb = line["body"]["Body"]["stkCallback"]
            texts[cb["ResultCode"]].add(cb["ResultDesc"])
    assert len(texts[1032]) >= 2 and len(texts[1037]) >= 2
    assert texts[1037] <= {"DS timeout.", "DS timeout user cannot be reached.", "No response from user."}


def test_delivery_lines_shape(run):
    urls = set(run["secrets"]["endpoints"])
    ids = set()
    for d in run["dl"]:
        assert list(d) == DELIVERY_FIELDS
        assert d["id"] not in ids
        ids.add(d["id"])
        assert d["url"] in urls and d["event_type"] in ("payment.success", "payment.failed")
        assert 1 <= d["attempt"] <= 5 and ISO_RE.match(d["sent_at"])
        assert d["error"] in (None, "timeout", "connection_error", "tls_error", "invalid_signature", "http_error")
        if d["error"] in ("timeout", "connection_error", "tls_error"):
            assert d["status_code"] is None
        if d["error"] is None:
            assert 200 <= d["status_code"] < 300
        assert d["headers"] == {"Content-Type": "application/json", "X-Signature": d["signature"],
                                "X-Timestamp": d["signature_timestamp"]}
        assert d["signature_timestamp"].isdigit()
        assert d["transaction_id"] in run["final"]
    first = [d for d in run["dl"] if d["attempt"] == 1]
    ok_first = sum(1 for d in first if d["error"] is None) / len(first)
    assert 0.93 < ok_first < 0.995
    # retries keep the event id; attempts of one event are numbered 1, 2, ... in time order
    by_event = collections.defaultdict(list)
    for d in run["dl"]:
        by_event[d["event_id"]].append(d)
    for attempts in by_event.values():
        assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        assert all(a["error"] is not None for a in attempts[:-1])


def test_files_are_time_ordered(run):
    for key, rows in (("updated_at", run["tx"]), ("received_at", run["cb"]), ("sent_at", run["dl"])):
        times = [_ts(r[key]) for r in rows]
        assert times == sorted(times), key


# ---- the story the data tells -------------------------------------------------------------


def test_final_rows_follow_a_pending_row(run):
    seen_pending = set()
    n_final = 0
    for row in run["tx"]:
        if row["status"] == "pending":
            seen_pending.add(row["id"])
        elif row["status"] in ("success", "failed"):
            n_final += 1
            assert row["id"] in seen_pending, row["id"]
    assert n_final > 0.9 * len(run["final"])


def test_duplicates_are_exact_repeated_lines(run):
    lines = _lines(run["out"] / "transactions.jsonl")
    counts = collections.Counter(lines)
    dups = sum(c - 1 for c in counts.values())
    assert 0 < dups < 0.03 * len(lines)
    ids = collections.Counter(orjson.loads(x)["id"] for x in set(lines))
    assert max(ids.values()) <= 3  # pending + final (+ an earlier 1019 result)


def test_checkout_ids_encode_the_request_time_and_phone(run):
    for row in run["final"].values():
        if row["checkout_request_id"] is None:
            continue
        m = CHECKOUT_RE.match(row["checkout_request_id"])
        dd, mm, yyyy, hh, mi, ss, _ms, phone9 = m.groups()
        when = datetime.datetime(int(yyyy), int(mm), int(dd), int(hh), int(mi), int(ss), tzinfo=NAIROBI)
        assert when == _ts(row["created_at"])
        assert row["msisdn"] == "254" + phone9


def test_outcome_mix(run):
    finals = [r for r in run["final"].values() if r["status"] != "pending"]
    status = collections.Counter(r["status"] for r in finals)
    assert 0.003 < status["rejected"] / len(finals) < 0.035
    codes = collections.Counter(r["result_code"] for r in finals if r["status"] != "rejected")
    n = sum(codes.values())
    share = {c: k / n for c, k in codes.items()}
    assert 0.62 < share[0] < 0.82
    assert 0.05 < share[1032] < 0.14
    assert 0.04 < share[1037] < 0.13
    assert 0.03 < share[1] < 0.16  # the whole 3-day span is a month-end rise here
    assert share.get(2001, 0) < 0.04
    rejected = collections.Counter(r["http_status"] for r in finals if r["status"] == "rejected")
    assert set(rejected) <= {401, 422, 500}
    pending = sum(1 for r in run["final"].values() if r["status"] == "pending")
    assert pending < 0.02 * len(run["final"])


def test_nights_are_much_sparser_than_lunch(run):
    buckets = collections.Counter()
    for row in run["final"].values():
        t = _ts(row["created_at"])
        buckets[(t.date(), t.hour, t.minute // 5)] += 1
    days = [DEFAULT_START + datetime.timedelta(days=i) for i in range(DAYS)]

    def mean(hours):
        return statistics.mean(buckets[(d, h, m)] for d in days for h in hours for m in range(12))

    night, lunch, evening = mean(range(0, 5)), mean(range(12, 14)), mean(range(17, 20))
    assert night * 4 < lunch and night * 4 < evening
    assert night < 1.5  # a handful per 5 minutes at per_day=500 means about one or none


def test_incidents_ground_truth(run):
    incidents = run["incidents"]
    span_start = datetime.datetime.combine(DEFAULT_START, datetime.time(), NAIROBI)
    span_end = span_start + datetime.timedelta(days=DAYS)
    kinds = {i["kind"] for i in incidents}
    assert kinds == {"result_code_surge", "result_code_outage", "signature_rotation", "insufficient_funds_rise"}
    ids = [i["id"] for i in incidents]
    assert len(ids) == len(set(ids))
    for inc in incidents:
        assert {"id", "kind", "code", "shortcode", "start", "end", "description"} <= set(inc)
        assert ISO_RE.match(inc["start"]) and ISO_RE.match(inc["end"])
        start, end = _ts(inc["start"]), _ts(inc["end"])
        assert span_start <= start < end <= span_end
        if inc["kind"] == "result_code_surge":
            assert inc["code"] == "1037" and inc["shortcode"] and 2.5 <= inc["multiplier"] <= 5
            assert 9 <= start.hour and (end.hour, end.minute) <= (20, 0)
            assert datetime.timedelta(minutes=30) <= end - start <= datetime.timedelta(minutes=60)
        if inc["kind"] == "result_code_outage":
            assert inc["code"] == "9999" and inc["shortcode"] is None and 0.05 <= inc["rate"] <= 0.15
            assert datetime.timedelta(minutes=15) <= end - start <= datetime.timedelta(minutes=45)


def test_night_outage_from_a_week(tmp_path):
    simulate(tmp_path, days=7, seed=5, per_day=50)
    incidents = orjson.loads((tmp_path / "incidents.json").read_bytes())
    outages = [i for i in incidents if i["kind"] == "result_code_outage"]
    start, end = _ts(outages[0]["start"]), _ts(outages[0]["end"])
    assert start.hour < 5 and (end.hour, end.minute) <= (5, 0)
    assert any(i["kind"] == "result_code_surge" and 9 <= _ts(i["start"]).hour for i in incidents)


def test_surge_is_visible_in_the_data(run):
    surge = next(i for i in run["incidents"] if i["kind"] == "result_code_surge")
    start, end = _ts(surge["start"]), _ts(surge["end"])
    rows = [r for r in run["final"].values()
            if r["status"] in ("success", "failed") and r["shortcode"] == surge["shortcode"]]
    inside = [r for r in rows if start <= _ts(r["created_at"]) < end]
    outside = [r for r in rows if not start <= _ts(r["created_at"]) < end]
    rate_in = sum(r["result_code"] == 1037 for r in inside) / max(1, len(inside))
    rate_out = sum(r["result_code"] == 1037 for r in outside) / len(outside)
    if len(inside) >= 10:  # at per_day=500 a 30-minute window on one shortcode is small
        assert rate_in > 1.5 * rate_out


# ---- signatures -----------------------------------------------------------------------------


def test_signatures_and_rotation(run):
    endpoints = run["secrets"]["endpoints"]
    rotation = next(i for i in run["incidents"] if i["kind"] == "signature_rotation")
    url, start, end = rotation["url"], _ts(rotation["start"]), _ts(rotation["end"])
    rotated = endpoints[url]
    assert rotated["previous"] and rotated["current"] != rotated["previous"]
    assert rotated["rotated_at"] == rotation["start"]
    for other_url, sec in endpoints.items():
        if other_url != url:
            assert sec["previous"] is None and sec["rotated_at"] is None
        assert re.fullmatch(r"[0-9a-f]{64}", sec["current"])

    in_window = [d for d in run["dl"] if d["url"] == url and start <= _ts(d["sent_at"]) < end]
    assert in_window, "the rotation window saw no delivery"
    for d in in_window:
        assert d["status_code"] == 401 and d["error"] == "invalid_signature"
        assert "Invalid Signature" in d["response_body"]
        assert hmac.compare_digest(d["signature"], _hmac_hex(rotated["previous"], d["payload"]))
        assert not hmac.compare_digest(d["signature"], _hmac_hex(rotated["current"], d["payload"]))
    # those events were retried (and failed again while the window lasted)
    retried = {d["event_id"] for d in in_window if d["attempt"] > 1}
    assert retried

    normal = [d for d in run["dl"] if d["error"] is None]
    with_current = 0
    for d in normal:
        sec = endpoints[d["url"]]
        assert d["payload"] == orjson.dumps(orjson.loads(d["payload"])).decode()  # compact, as signed
        if sec["rotated_at"] is not None and _ts(d["sent_at"]) < start:
            # before the rotation the old secret was the one in force
            assert hmac.compare_digest(d["signature"], _hmac_hex(sec["previous"], d["payload"]))
            continue
        assert hmac.compare_digest(d["signature"], _hmac_hex(sec["current"], d["payload"]))
        with_current += 1
    assert with_current > 0.5 * len(normal)


def test_payload_matches_transaction(run):
    for d in run["dl"][:200]:
        payload = orjson.loads(d["payload"])
        assert payload["event"] == d["event_type"] and payload["event_id"] == d["event_id"]
        data = payload["data"]  # the transaction record as in the log, at the time of the event
        assert list(data) == TX_FIELDS and data["id"] == d["transaction_id"]
        assert data["status"] == d["event_type"].split(".")[1] and data["completed_at"] == payload["created_at"]
        row = run["final"][d["transaction_id"]]
        assert data["checkout_request_id"] == row["checkout_request_id"]


# ---- determinism, gzip, arguments ---------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    sa = simulate(a, days=2, seed=3, per_day=300)
    sb = simulate(b, days=2, seed=3, per_day=300)
    sc = simulate(c, days=2, seed=4, per_day=300)
    assert sa == sb
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("transactions.jsonl", "callbacks.jsonl", "webhook_deliveries.jsonl", "webhook-secrets.json"):
        assert (a / name).read_bytes() != (c / name).read_bytes(), name
    assert sa != sc


def test_gzip_variant(tmp_path):
    plain, packed, again = tmp_path / "plain", tmp_path / "packed", tmp_path / "again"
    s_plain = simulate(plain, days=1, seed=9, per_day=300, start=datetime.date(2026, 2, 27))
    s_packed = simulate(packed, days=1, seed=9, per_day=300, start=datetime.date(2026, 2, 27), gzip=True)
    simulate(again, days=1, seed=9, per_day=300, start=datetime.date(2026, 2, 27), gzip=True)
    assert s_packed["files"] == [f + ".gz" for f in FILES[:3]] + FILES[3:]
    for k in ("transactions", "transaction_rows", "callbacks", "deliveries", "incidents"):
        assert s_plain[k] == s_packed[k]
    for name in FILES[:3]:
        raw = (packed / (name + ".gz")).read_bytes()
        assert gzip.decompress(raw) == (plain / name).read_bytes()
        assert raw == (again / (name + ".gz")).read_bytes()  # mtime=0: deterministic bytes
    for name in FILES[3:]:
        assert (packed / name).read_bytes() == (plain / name).read_bytes()


def test_start_date_is_used(tmp_path):
    simulate(tmp_path, days=1, seed=1, per_day=200, start=datetime.date(2027, 3, 24))
    first = orjson.loads(_lines(tmp_path / "transactions.jsonl")[0])
    assert first["created_at"].startswith("2027-03-24T")
    # the 25th is the day after the span: the insufficient-funds rise ends at the span end
    incidents = orjson.loads((tmp_path / "incidents.json").read_bytes())
    rise = next(i for i in incidents if i["kind"] == "insufficient_funds_rise")
    assert rise["end"] == "2027-03-25T00:00:00+03:00"


@pytest.mark.parametrize("kwargs", [{"days": 0}, {"days": -1}, {"per_day": 0}])
def test_invalid_arguments(tmp_path, kwargs):
    args = {"days": 1, "seed": 1, "per_day": 10} | kwargs
    with pytest.raises(ValueError):
        simulate(tmp_path, **args)


def test_until_ends_every_log_at_that_moment(tmp_path):
    import datetime as dt

    import orjson

    from mpesa_ops.ingest.fields import timestamp

    until = dt.datetime(2026, 10, 2, 14, 30, tzinfo=dt.timezone.utc)
    full = simulate(tmp_path / "full", days=3, seed=5, per_day=300)
    cut = simulate(tmp_path / "cut", days=3, seed=5, per_day=300, until=until)
    assert 0 < cut["transaction_rows"] < full["transaction_rows"] and 0 < cut["deliveries"] < full["deliveries"]
    times = {"transactions.jsonl": "updated_at", "webhook_deliveries.jsonl": "sent_at",
             "callbacks.jsonl": "received_at"}
    for name, key in times.items():
        rows = [orjson.loads(line) for line in (tmp_path / "cut" / name).read_bytes().splitlines()]
        stamps = [timestamp(r[key], key) for r in rows if r.get(key)]
        assert stamps and max(stamps) <= until, name
        # the same rows as the full logs up to that moment: the cut changes nothing before it
        full_rows = [orjson.loads(line) for line in (tmp_path / "full" / name).read_bytes().splitlines()]
        assert rows == [r for r in full_rows if not r.get(key) or timestamp(r[key], key) <= until][:len(rows)]


def test_an_outage_under_way_at_the_end_of_the_logs(tmp_path):
    import datetime as dt

    import orjson

    until = dt.datetime(2026, 10, 2, 11, 0, tzinfo=dt.timezone.utc)  # 14:00 in Nairobi
    simulate(tmp_path / "d", days=2, seed=5, per_day=2000, until=until, outage_at_until=True)
    incidents = orjson.loads((tmp_path / "d" / "incidents.json").read_bytes())
    last = [i for i in incidents if i["kind"] == "result_code_outage" and "under way" in i["description"]]
    assert len(last) == 1 and last[0]["code"] == "9999" and last[0]["shortcode"] is None
    rows = [orjson.loads(line) for line in (tmp_path / "d" / "transactions.jsonl").read_bytes().splitlines()]
    recent = [r for r in rows if r.get("status") in ("success", "failed")
              and r["created_at"] >= "2026-10-02T13:30"]  # Nairobi times, the outage's last 30 minutes
    assert recent and sum(str(r.get("result_code")) == "9999" for r in recent) >= 0.1 * len(recent)
    with pytest.raises(ValueError, match="needs until"):
        simulate(tmp_path / "e", days=1, seed=5, outage_at_until=True)

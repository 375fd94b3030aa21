"""The loader keeps each payment once, with its latest state, and every count adds up."""

from __future__ import annotations

from sqlalchemy import select

from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import (result_events, transactions, txn_rollup_hour, txn_rollup_minute,
                                     webhook_deliveries)

from conftest import write_jsonl
from storehelpers import rollup_from_rows, rollup_stored, snapshot


def txn(id, status="pending", updated="2026-10-01T10:00:00+03:00", **kw):
    row = {"id": id, "created_at": "2026-10-01T10:00:00+03:00", "updated_at": updated, "shortcode": "174379",
           "msisdn": "0712345678", "amount": 100, "status": status, "http_status": 200,
           "checkout_request_id": f"ws_CO_01102026100000{id[-3:]}", "merchant_request_id": f"m-{id}"}
    if status == "success":
        row.update(result_code=0, mpesa_receipt="TIK4Q812ZC", completed_at=updated)
    row.update(kw)
    return row


def callback(checkout, code, received="2026-10-01T10:01:00+03:00", amount=None):
    cb = {"MerchantRequestID": "m", "CheckoutRequestID": checkout, "ResultCode": code, "ResultDesc": f"desc {code}"}
    if code == 0:
        cb["CallbackMetadata"] = {"Item": [{"Name": "Amount", "Value": amount or 100},
                                           {"Name": "MpesaReceiptNumber", "Value": "RCPT123456"},
                                           {"Name": "TransactionDate", "Value": 20261001100055},
                                           {"Name": "PhoneNumber", "Value": 254712345678}]}
    return {"received_at": received, "shortcode": "174379", "body": {"Body": {"stkCallback": cb}}}


def one(engine, table, **where):
    with engine.connect() as conn:
        stmt = select(table)
        for k, v in where.items():
            stmt = stmt.where(table.c[k] == v)
        return conn.execute(stmt).mappings().one()


def counts(report):
    c = report.counts
    assert c.balanced(), c
    return (c.read, c.loaded, c.updated, c.duplicates, c.rejected)


def test_pending_then_final_is_one_payment_with_the_final_state(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [txn("txn_001"), txn("txn_001", "success", "2026-10-01T10:01:00+03:00")])
    assert counts(ingest_paths(engine, [str(f)])) == (2, 1, 1, 0, 0)
    row = one(engine, transactions, id="txn_001")
    assert (row["status"], row["result_code"], row["mpesa_receipt"]) == ("success", "0", "TIK4Q812ZC")
    assert row["msisdn"] == "254712345678" and row["amount_cents"] == 10000


def test_same_file_twice_changes_nothing(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [txn("txn_001"), txn("txn_001", "success", "2026-10-01T10:01:00+03:00"),
                                           txn("txn_002", "failed", result_code=1032), {"nonsense": 1}])
    first = counts(ingest_paths(engine, [str(f)]))
    before = snapshot(engine)
    assert counts(ingest_paths(engine, [str(f)])) == (4, 0, 0, 3, 1)
    assert snapshot(engine) == before
    assert first == (4, 2, 1, 0, 1)


def test_an_older_state_never_overwrites_a_newer_one(engine, tmp_path):
    final = write_jsonl(tmp_path / "a.jsonl", [txn("txn_001", "failed", "2026-10-01T10:02:00+03:00", result_code=1037)])
    stale = write_jsonl(tmp_path / "b.jsonl", [txn("txn_001", "pending"),
                                              txn("txn_001", "failed", "2026-10-01T10:01:00+03:00", result_code=1032)])
    ingest_paths(engine, [str(final)])
    # the pending row is a duplicate; the older 1032 changes nothing but the conflict flag
    assert counts(ingest_paths(engine, [str(stale)])) == (2, 0, 1, 1, 0)
    assert counts(ingest_paths(engine, [str(stale)])) == (2, 0, 0, 2, 0)
    row = one(engine, transactions, id="txn_001")
    assert (row["status"], row["result_code"]) == ("failed", "1037")
    assert row["conflicting_results"] is True  # two different final results were seen


def test_the_same_id_twice_in_one_batch(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [txn("txn_001"), txn("txn_001"), txn("txn_001", "success",
                                                                                "2026-10-01T10:01:00+03:00")])
    assert counts(ingest_paths(engine, [str(f)])) == (3, 1, 1, 1, 0)


def test_batch_size_does_not_change_counts_or_store(db_factory, tmp_path):
    from mpesa_ops.ingest.db import open_store

    records = []
    for i in range(40):
        records.append(txn(f"txn_{i:03d}"))
        records.append(callback(f"ws_CO_01102026100000{i:03d}", [0, 1032, 1037, 1][i % 4]))
        if i % 3 == 0:
            records.append(txn(f"txn_{i:03d}", "failed", "2026-10-01T10:03:00+03:00", result_code=1037))
    f = write_jsonl(tmp_path / "t.jsonl", records)
    results = []
    for batch_size in (1, 7, 1000):
        engine = open_store(db_factory())
        results.append((counts(ingest_paths(engine, [str(f)], batch_size=batch_size)), snapshot(engine)))
        engine.dispose()
    assert results[0] == results[1] == results[2]


def test_callback_completes_the_payment_with_its_checkout_id(engine, tmp_path):
    ingest_paths(engine, [str(write_jsonl(tmp_path / "a.jsonl", [txn("txn_001")]))])
    r = ingest_paths(engine, [str(write_jsonl(tmp_path / "b.jsonl", [callback("ws_CO_01102026100000001", 0)]))])
    assert counts(r) == (1, 0, 1, 0, 0)
    row = one(engine, transactions, id="txn_001")
    assert (row["status"], row["mpesa_receipt"], row["origin"]) == ("success", "RCPT123456", "log")
    assert one(engine, result_events, transaction_id="txn_001")["code"] == "0"


def test_callback_before_its_request_row_is_taken_over_by_the_row(engine, tmp_path):
    cb = write_jsonl(tmp_path / "a.jsonl", [callback("ws_CO_01102026100000001", 1032)])
    assert counts(ingest_paths(engine, [str(cb)])) == (1, 1, 0, 0, 0)
    standalone = one(engine, transactions, id="ws_CO_01102026100000001")
    assert standalone["origin"] == "callback" and standalone["status"] == "failed"
    rows = write_jsonl(tmp_path / "b.jsonl", [txn("txn_001")])
    assert counts(ingest_paths(engine, [str(rows)])) == (1, 1, 0, 0, 0)
    with engine.connect() as conn:
        all_rows = conn.execute(select(transactions)).mappings().all()
    assert len(all_rows) == 1
    row = all_rows[0]
    # the pending request row does not undo the result that already arrived
    assert (row["id"], row["status"], row["result_code"], row["origin"]) == ("txn_001", "failed", "1032", "log")
    assert row["link_id"] is None and row["amount_cents"] == 10000
    assert one(engine, result_events, checkout_request_id="ws_CO_01102026100000001")["transaction_id"] == "txn_001"
    assert rollup_stored(engine) == rollup_from_rows(engine)


def test_callback_and_request_row_in_the_same_batch(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [callback("ws_CO_01102026100000001", 0), txn("txn_001")])
    assert counts(ingest_paths(engine, [str(f)])) == (2, 2, 0, 0, 0)
    row = one(engine, transactions, id="txn_001")
    assert row["status"] == "success"
    assert one(engine, result_events, checkout_request_id="ws_CO_01102026100000001")["transaction_id"] == "txn_001"


def test_two_callbacks_with_different_codes_keep_both_and_flag_the_conflict(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [
        txn("txn_001"),
        callback("ws_CO_01102026100000001", 1019, "2026-10-01T10:01:00+03:00"),
        callback("ws_CO_01102026100000001", 1037, "2026-10-01T10:02:00+03:00"),
    ])
    assert counts(ingest_paths(engine, [str(f)])) == (3, 1, 2, 0, 0)
    row = one(engine, transactions, id="txn_001")
    assert (row["result_code"], row["conflicting_results"]) == ("1037", True)
    with engine.connect() as conn:
        assert conn.execute(select(result_events.c.code).order_by(result_events.c.time)).scalars().all() == \
               ["1019", "1037"]


def test_a_later_pending_answer_does_not_undo_a_result(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [
        txn("txn_001", "success", "2026-10-01T10:01:00+03:00"),
        {"requestId": "ws_CO_01102026100000001", "errorCode": "500.001.1001",
         "errorMessage": "The transaction is being processed", "received_at": "2026-10-01T10:05:00+03:00"},
    ])
    assert counts(ingest_paths(engine, [str(f)])) == (2, 2, 0, 0, 0)  # the answer is a new event; nothing changed
    assert one(engine, transactions, id="txn_001")["status"] == "success"


def test_rollups_follow_every_state_change(engine, tmp_path):
    records = []
    for i in range(30):
        records.append(txn(f"txn_{i:03d}", created_at=f"2026-10-01T10:{i:02d}:00+03:00", amount=100 + i))
    for i in range(0, 30, 2):
        records.append(txn(f"txn_{i:03d}", "failed", "2026-10-01T11:00:00+03:00", result_code=1,
                           created_at=f"2026-10-01T10:{i:02d}:00+03:00", amount=100 + i))
    for i in range(0, 30, 3):
        records.append(callback(f"ws_CO_01102026100000{i:03d}", 0, "2026-10-01T11:05:00+03:00"))
    ingest_paths(engine, [str(write_jsonl(tmp_path / "t.jsonl", records))], batch_size=8)
    assert rollup_stored(engine) == rollup_from_rows(engine)
    assert rollup_stored(engine, hours=True) == rollup_from_rows(engine, hours=True)
    with engine.connect() as conn:  # a minute whose payments all moved on leaves no empty row behind
        assert conn.execute(select(txn_rollup_minute).where(txn_rollup_minute.c.attempts <= 0)).first() is None
        assert conn.execute(select(txn_rollup_hour).where(txn_rollup_hour.c.attempts <= 0)).first() is None


def test_webhook_deliveries_load_once_and_change_on_new_content(engine, tmp_path):
    d = {"delivery_id": "dlv_1", "event_id": "evt_1", "transaction_id": "txn_001", "type": "payment.success",
         "endpoint": "https://shop.example/hook", "attempt": 1, "sent_at": "2026-10-01T10:01:05Z",
         "response_status": 401, "latency_ms": 120, "error": "invalid_signature",
         "x_signature": "sha256=abc", "x_timestamp": "1790000000", "raw_body": '{"a":1}',
         "headers": {"X-Signature": "sha256=abc"}, "response_body": '{"error":"Invalid Signature"}'}
    f = write_jsonl(tmp_path / "d.jsonl", [d, d])
    assert counts(ingest_paths(engine, [str(f)])) == (2, 1, 0, 1, 0)
    row = one(engine, webhook_deliveries, id="dlv_1")
    assert (row["url"], row["status_code"], row["error"], row["payload"], row["signature"]) == \
           ("https://shop.example/hook", 401, "invalid_signature", '{"a":1}', "sha256=abc")
    changed = write_jsonl(tmp_path / "e.jsonl", [{**d, "latency_ms": 130}])
    assert counts(ingest_paths(engine, [str(changed)])) == (1, 0, 1, 0, 0)


def test_unknown_fields_are_kept_not_rejected(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [txn("txn_001", channel="ussd", Note="vip")])
    assert counts(ingest_paths(engine, [str(f)])) == (1, 1, 0, 0, 0)
    import orjson

    assert orjson.loads(one(engine, transactions, id="txn_001")["extra"]) == {"channel": "ussd", "Note": "vip"}


def test_aliases_of_every_field(engine, tmp_path):
    rec = {"TXN_ID": "txn_009", "Timestamp": "2026-10-01 10:00:00", "Paybill": "600977", "LinkID": "lnk",
           "Phone_Number": "+254 712 345 678", "amount": "1,250.50", "status": "failed", "http_status": "200",
           "MerchantRequestID": "m-1", "CheckoutRequestID": "ws_CO_01102026100000009", "ResultCode": "1",
           "ResultDesc": "The balance is insufficient for the transaction", "receipt": None}
    ingest_paths(engine, [str(write_jsonl(tmp_path / "t.jsonl", [rec]))])
    row = one(engine, transactions, id="txn_009")
    assert (row["shortcode"], row["link_id"], row["msisdn"], row["amount_cents"], row["result_code"]) == \
           ("600977", "lnk", "254712345678", 125050, "1")
    assert row["created_at"].isoformat() == "2026-10-01T07:00:00+00:00"  # naive is Nairobi


def test_a_callback_with_an_unusable_phone_still_completes_the_payment(engine, tmp_path):
    cb = callback("ws_CO_01102026100000001", 0)
    cb["body"]["Body"]["stkCallback"]["CallbackMetadata"]["Item"][-1]["Value"] = "not-a-phone"
    r = ingest_paths(engine, [str(write_jsonl(tmp_path / "t.jsonl", [txn("txn_001"), cb]))])
    assert counts(r) == (2, 1, 1, 0, 0)
    row = one(engine, transactions, id="txn_001")
    assert (row["status"], row["msisdn"]) == ("success", "254712345678")
    assert "not-a-phone" in one(engine, result_events, transaction_id="txn_001")["raw"]


def test_values_orjson_refuses_do_not_stop_a_load(engine, tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text('{"id": "txn_big", "created_at": "2026-10-01T10:00:00Z", "status": "pending", '
                 '"note": 123456789012345678901234567890}\n')
    assert counts(ingest_paths(engine, [str(f)]))[1] == 1


def test_equal_times_keep_the_first_state_whatever_the_order(engine, tmp_path):
    a = txn("txn_001", "failed", "2026-10-01T10:01:00+03:00", result_code=1037, result_desc="DS timeout.")
    b = txn("txn_001", "failed", "2026-10-01T10:01:00+03:00", result_code=1037, result_desc="No response from user.")
    f = write_jsonl(tmp_path / "t.jsonl", [a, b])
    assert counts(ingest_paths(engine, [str(f)])) == (2, 1, 0, 1, 0)
    before = snapshot(engine)
    assert counts(ingest_paths(engine, [str(f)])) == (2, 0, 0, 2, 0)  # a re-read changes nothing
    assert snapshot(engine) == before
    assert one(engine, transactions, id="txn_001")["result_desc"] == "DS timeout."


def test_a_late_pending_answer_does_not_shift_which_result_is_newer(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [
        txn("txn_001", "success", "2026-10-01T10:00:00+03:00"),
        {"requestId": "ws_CO_01102026100000001", "errorCode": "500.001.1001",
         "errorMessage": "The transaction is being processed", "received_at": "2026-10-01T10:10:00+03:00"},
        txn("txn_001", "failed", "2026-10-01T10:05:00+03:00", result_code=1032),
    ])
    ingest_paths(engine, [str(f)])
    row = one(engine, transactions, id="txn_001")
    assert (row["status"], row["result_code"], row["conflicting_results"]) == ("failed", "1032", True)


def test_an_event_that_changes_nothing_counts_as_loaded(engine, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [
        txn("txn_001", "success", "2026-10-01T10:01:00+03:00"),
        {"requestId": "ws_CO_01102026100000001", "errorCode": "500.001.1001",
         "errorMessage": "The transaction is being processed", "received_at": "2026-10-01T10:05:00+03:00"},
    ])
    assert counts(ingest_paths(engine, [str(f)])) == (2, 2, 0, 0, 0)


def test_a_stand_alone_result_merges_into_a_request_row_stored_without_its_checkout_id(engine, tmp_path):
    pending = txn("txn_001")
    del pending["checkout_request_id"]
    ingest_paths(engine, [str(write_jsonl(tmp_path / "a.jsonl", [pending]))])
    ingest_paths(engine, [str(write_jsonl(tmp_path / "b.jsonl", [callback("ws_CO_01102026100000001", 0)]))])
    final = txn("txn_001", "success", "2026-10-01T10:01:00+03:00")
    assert counts(ingest_paths(engine, [str(write_jsonl(tmp_path / "c.jsonl", [final]))])) == (1, 0, 1, 0, 0)
    with engine.connect() as conn:
        ids = conn.execute(select(transactions.c.id)).scalars().all()
    assert ids == ["txn_001"]
    assert one(engine, result_events, checkout_request_id="ws_CO_01102026100000001")["transaction_id"] == "txn_001"
    assert rollup_stored(engine) == rollup_from_rows(engine)

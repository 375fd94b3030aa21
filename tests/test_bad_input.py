"""Bad input: each record loads or is kept as rejected with file, line, field and reason;
the rest of the file loads; the command never ends in a traceback."""

from __future__ import annotations

import gzip
import json

import orjson
from sqlalchemy import select

from mpesa_ops.cli import main
from mpesa_ops.ingest.schema import rejected_records, transactions

GOOD = {"id": "txn_good", "created_at": "2026-10-01T10:00:00+03:00", "shortcode": "174379", "msisdn": "0712345678",
        "amount": 100, "status": "success", "result_code": 0, "mpesa_receipt": "TIK4Q812ZC"}


def run_ingest(capsys, db_url, *paths):
    code = main(["ingest", *map(str, paths), "--db", db_url, "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, (json.loads(out) if out.strip() else None), err


def rejects(engine):
    with engine.connect() as conn:
        return conn.execute(select(rejected_records).order_by(rejected_records.c.line)).mappings().all()


def test_a_file_of_every_kind_of_bad_record(capsys, db_url, engine, tmp_path):
    lines = [
        orjson.dumps(GOOD),
        b'{"id": "txn_cut", "created_at": "2026-10-01T10:00:00+03:00", "amou',  # truncated
        b"{not json at all}",
        orjson.dumps({**GOOD, "id": "txn_amount", "amount": "abc"}),
        orjson.dumps({**GOOD, "id": "txn_big", "amount": 5_000_000}),
        orjson.dumps({**GOOD, "id": "txn_date", "created_at": "2026-02-30T10:00:00"}),
        orjson.dumps({**GOOD, "id": "txn_phone", "msisdn": "12345"}),
        orjson.dumps({**GOOD, "id": None}),
        orjson.dumps({"hello": "world"}),
        orjson.dumps({**GOOD, "id": "txn_status", "status": "maybe"}),
        orjson.dumps({**GOOD, "id": "txn_shape", "amount": [1, 2]}),
        b'{"id": "txn_latin", "created_at": "2026-10-01T10:00:00", "status": "pending", "account_reference": "caf\xe9"}',
        orjson.dumps({"received_at": "2026-10-01T10:00:00Z", "body": {}}),
        orjson.dumps([1, 2, 3]),
        orjson.dumps({**GOOD, "id": "txn_phone_ok", "msisdn": "+254 (712) 345-678"}),
    ]
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    code, counts, _ = run_ingest(capsys, db_url, f)
    assert code == 0
    assert counts == {"read": 15, "loaded": 2, "updated": 0, "duplicates": 0, "rejected": 13}
    got = {(r["line"], r["reason_code"], r["field"]) for r in rejects(engine)}
    assert got == {
        (2, "truncated", None), (3, "invalid_json", None), (4, "invalid_field", "amount"),
        (5, "invalid_field", "amount"), (6, "invalid_field", "created_at"), (7, "invalid_field", "msisdn"),
        (8, "missing_field", "id"), (9, "unknown_format", None), (10, "invalid_field", "status"),
        (11, "invalid_field", "amount"), (12, "not_utf8", None), (13, "empty_callback", "body"),
        (14, "not_an_object", None),
    }
    for r in rejects(engine):
        assert r["source"] == str(f.resolve()) and r["raw"] and r["reason"]
    assert rejects(engine)[0]["raw"].startswith('{"id": "txn_cut"')
    assert "\\xe9" in next(r["raw"] for r in rejects(engine) if r["line"] == 12)  # raw kept, byte shown


def test_same_id_twice_in_one_batch_and_reject_kept_once(capsys, db_url, engine, tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(orjson.dumps(GOOD) + b"\n" + orjson.dumps(GOOD) + b"\n{bad\n")
    assert run_ingest(capsys, db_url, f)[1] == {"read": 3, "loaded": 1, "updated": 0, "duplicates": 1, "rejected": 1}
    assert run_ingest(capsys, db_url, f)[1] == {"read": 3, "loaded": 0, "updated": 0, "duplicates": 2, "rejected": 1}
    assert len(rejects(engine)) == 1  # read again, the reject is not stored twice


def test_empty_file_non_utf8_file_and_csv(capsys, db_url, engine, tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "latin1.csv").write_bytes(
        "id,created_at,status,amount,account_reference\n"
        "txn_a,2026-10-01T10:00:00,pending,100,ok\n".encode() + "txn_b,2026-10-01T10:00:00,pending,100,caf\u00e9\n"
        .encode("latin-1"))
    (tmp_path / "gz.json.gz").write_bytes(gzip.compress(orjson.dumps([GOOD])))
    code, counts, _ = run_ingest(capsys, db_url, tmp_path)
    assert code == 0
    assert counts == {"read": 3, "loaded": 2, "updated": 0, "duplicates": 0, "rejected": 1}
    [r] = rejects(engine)
    assert (r["line"], r["reason_code"]) == (3, "not_utf8") and r["source"].endswith("latin1.csv")
    main(["ingest", str(tmp_path / "empty.jsonl"), "--db", db_url])
    assert "holds no records" in capsys.readouterr().out


def test_a_folder_of_thousands_of_files(capsys, db_url, engine, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(2000):
        (folder / f"f{i:04d}.jsonl").write_bytes(orjson.dumps({**GOOD, "id": f"txn_{i}"}) + b"\n")
    (folder / "notes.txt").write_text("not a log")
    code, counts, _ = run_ingest(capsys, db_url, folder)
    assert (code, counts["loaded"], counts["rejected"]) == (0, 2000, 0)
    with engine.connect() as conn:
        assert conn.execute(select(transactions.c.id)).scalars().all().__len__() == 2000


def test_refused_requests_keep_the_values_that_were_refused(capsys, db_url, engine, tmp_path):
    refused = [{"id": "txn_r1", "created_at": "2026-10-01T10:00:00Z", "status": "rejected", "http_status": 422,
                "error_code": "INVALID_MSISDN", "msisdn": "0812"},
               {"id": "txn_r2", "created_at": "2026-10-01T10:00:00Z", "status": "rejected", "http_status": 422,
                "api_error": "invalid_amount", "amount": 500000},
               {"id": "txn_r3", "created_at": "2026-10-01T10:00:00Z", "status": "rejected", "http_status": 422,
                "api_error": "INVALID_AMOUNT", "amount": -1050}]
    f = tmp_path / "r.json"
    f.write_bytes(orjson.dumps(refused))
    assert run_ingest(capsys, db_url, f)[1]["loaded"] == 3
    with engine.connect() as conn:
        rows = {r["id"]: r for r in conn.execute(select(transactions)).mappings()}
    assert rows["txn_r1"]["msisdn"] is None and "0812" in rows["txn_r1"]["extra"]
    assert (rows["txn_r2"]["amount_cents"], rows["txn_r2"]["error_code"]) == (50_000_000, "INVALID_AMOUNT")
    assert rows["txn_r3"]["amount_cents"] is None and '"amount_raw":-1050' in rows["txn_r3"]["extra"]


def test_a_saved_gateway_api_page_loads_its_records(capsys, db_url, engine, tmp_path):
    page = {"data": [GOOD, {**GOOD, "id": "txn_second"}, {"bad": 1}], "next_cursor": "c2"}
    f = tmp_path / "page.json"
    f.write_bytes(orjson.dumps(page, option=orjson.OPT_INDENT_2))
    assert run_ingest(capsys, db_url, f)[1] == {"read": 3, "loaded": 2, "updated": 0, "duplicates": 0, "rejected": 1}
    assert rejects(engine)[0]["raw"] == '{"bad":1}'


def test_a_record_dated_after_tomorrow_is_rejected_not_stored(capsys, db_url, engine, tmp_path):
    from datetime import datetime, timedelta, timezone

    soon = datetime.now(timezone.utc) + timedelta(hours=2)  # within a day: clocks differ, it loads
    later = datetime.now(timezone.utc) + timedelta(days=200)
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"".join(orjson.dumps({"id": i, "created_at": t.isoformat(), "status": "pending"}) + b"\n"
                           for i, t in (("txn_soon", soon), ("txn_later", later))))
    assert main(["ingest", str(f), "--db", db_url, "--json", "--no-detect"]) == 0
    assert json.loads(capsys.readouterr().out)["rejected"] == 1
    with engine.connect() as conn:
        assert [r.id for r in conn.execute(select(transactions.c.id))] == ["txn_soon"]
        reject = conn.execute(select(rejected_records)).one()
    assert (reject.reason_code, reject.field, reject.line) == ("future_time", "created_at", 2)
    assert "more than a day after the time of loading" in reject.reason

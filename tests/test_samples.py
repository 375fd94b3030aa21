"""Every real Daraja payload in shared/samples loads, and means what it says."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from mpesa_ops.ingest.fields import NAIROBI
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import result_events, transactions

from conftest import SAMPLES

# file -> (payment id, status, result code, error code, amount in cents, receipt, phone, completed/transaction time UTC)
EXPECTED = {
    "01_code_0": ("ws_CO_24012018144725647", "success", "0", None, 100, "MAO0DO9BYO", "254713154085",
                  datetime(2018, 1, 24, 11, 47, 54, tzinfo=timezone.utc)),
    "02_code_0": ("ws_CO_191220191020363925", "success", "0", None, 100, "NLJ7RT61SV", "254708374149",
                  datetime(2019, 12, 19, 7, 21, 15, tzinfo=timezone.utc)),
    "03_code_0": ("ws_CO_20092025115007849757597007", "success", "0", None, 500, "TIK4Q812ZC", "254757597007",
                  datetime(2025, 9, 20, 8, 50, 23, tzinfo=timezone.utc)),
    "04_code_0": ("ws_CO_15022025100126631768579526", "success", "0", None, 100, "TBF34EVY55", "254768579526",
                  datetime(2025, 2, 15, 7, 1, 38, tzinfo=timezone.utc)),
    "05_code_1032": ("ws_CO_17112022155511840796440427", "failed", "1032", None, None, None, None, None),
    "06_code_1032": ("ws_CO_16112025184607932790370094", "failed", "1032", None, None, None, None, None),
    "08_code_1037": ("ws_CO_20022026001154691790370092", "failed", "1037", None, None, None, None, None),
    "09_code_1037": ("ws_CO_26102025152704026745789590", "failed", "1037", None, None, None, None, None),
    "10_code_1037": ("ws_CO_250120221936525017", "failed", "1037", None, None, None, None, None),
    "14_code_2001": ("ws_CO_09082024154209046703131090", "failed", "2001", None, None, None, None, None),
    "18_code_1": ("ws_CO_16012021154558038107", "failed", "1", None, None, None, None, None),
    "19_code_17": ("ws_CO_190520210856425749", "failed", "17", None, None, None, None, None),
    "21_code_0_query": ("ws_CO_13012021093521236557", "success", "0", None, None, None, None, None),
    "23_code_1_query": ("ws_CO_25102017153023394", "failed", "1", None, None, None, None, None),
    "24_code_1001_query": ("ws_CO_17102017143731981", "failed", "1001", None, None, None, None, None),
    "25_code_500.001.1001_query_error": ("ws_CO_20022018230142206", "pending", None, None, None, None, None, None),
    "28_code_0_init_response": ("ws_CO_1007202409152617172396192", "pending", None, None, None, None, None, None),
    "29_code_400.002.02_init_error": ("19072-295731-1", "rejected", None, "400.002.02", None, None, None, None),
    "30_code_404.001.03_init_error": ("1459-15094918-1", "rejected", None, "404.001.03", None, None, None, None),
    "31_code_500.001.1001_init_error": ("1494-250373-3", "rejected", None, "500.001.1001", None, None, None, None),
    "32_code_400.002.02_init_error": ("9458-79414631-1", "rejected", None, "400.002.02", None, None, None, None),
}


def test_every_sample_is_listed():
    names = {p.stem for p in SAMPLES.glob("*.json")}
    # 07 and 22 are one payment (a callback and the status query about it), checked below
    assert names - {"07_code_1032", "22_code_1032_query"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_alone(engine, name):
    report = ingest_paths(engine, [str(SAMPLES / f"{name}.json")])
    assert report.counts.rejected == 0 and report.counts.loaded == 1
    txn_id, status, code, error, cents, receipt, phone, completed = EXPECTED[name]
    with engine.connect() as conn:
        row = conn.execute(select(transactions).where(transactions.c.id == txn_id)).mappings().one()
    assert (row["status"], row["result_code"], row["error_code"]) == (status, code, error)
    assert (row["amount_cents"], row["mpesa_receipt"], row["msisdn"]) == (cents, receipt, phone)
    if completed is not None:
        assert row["completed_at"] == completed
    if txn_id.startswith("ws_CO_") and txn_id[6:20].isdigit():
        # the request time comes from the CheckoutRequestID (ws_CO_DDMMYYYYHHMMSS, Nairobi)
        d = txn_id[6:20]
        local = datetime(int(d[4:8]), int(d[2:4]), int(d[0:2]), int(d[8:10]), int(d[10:12]), int(d[12:14]),
                         tzinfo=NAIROBI)
        assert row["created_at"] == local


def test_whole_folder_with_a_query_about_a_callback(engine):
    report = ingest_paths(engine, [str(SAMPLES)])
    c = report.counts
    assert (c.read, c.rejected) == (23, 0) and c.balanced()
    assert [p for p in report.skipped if p.endswith("README.md")]
    with engine.connect() as conn:
        row = conn.execute(select(transactions).where(transactions.c.id == "ws_CO_27072017151044001")).mappings().one()
        kinds = conn.execute(select(result_events.c.kind).where(
            result_events.c.transaction_id == "ws_CO_27072017151044001").order_by(result_events.c.kind)).scalars()
        assert list(kinds) == ["callback", "query"]
    # one code, two texts: grouped by the code, never the text
    assert (row["status"], row["result_code"], row["conflicting_results"]) == ("failed", "1032", False)


def test_result_codes_are_stored_as_text(engine):
    ingest_paths(engine, [str(SAMPLES)])
    with engine.connect() as conn:
        codes = set(conn.execute(select(result_events.c.code)).scalars())
    assert {"0", "1", "17", "1001", "1032", "1037", "2001", "500.001.1001", "400.002.02"} <= codes

"""Normalisation is pure and total: any JSON value gives a typed record or a Rejected,
and the aliases and casing of field names do not change the result."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_ops.ingest.normalise import (DELIVERY_FIELDS, TXN_FIELDS, Delivery, Event, Rejected, Txn, normalise,
                                        recognise)

json_scalars = st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)
# keys the formats know, so that random records reach the format-specific code
known_keys = st.sampled_from(sorted({a for names in (*TXN_FIELDS.values(), *DELIVERY_FIELDS.values()) for a in names}
                                    | {"Body", "body", "stkCallback", "CheckoutRequestID", "ResultCode", "errorCode",
                                       "requestId", "ResponseCode", "received_at"}))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(known_keys | st.text(max_size=10), json_values, max_size=12))
def test_any_record_normalises_or_is_rejected_never_raises(record):
    assert isinstance(normalise(record), (Txn, Event, Delivery, Rejected))


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_normalises_or_is_rejected(value):
    assert isinstance(normalise(value), (Txn, Event, Delivery, Rejected))


CANONICAL = {
    "id": "txn_001", "created_at": "2026-10-01T10:00:00+03:00", "updated_at": "2026-10-01T10:01:00+03:00",
    "shortcode": "174379", "link_id": "lnk_1", "msisdn": "254712345678", "amount": 150,
    "account_reference": "INV-7", "status": "failed", "http_status": 200, "error_code": None,
    "merchant_request_id": "29115-34620561-1", "checkout_request_id": "ws_CO_01102026100000001",
    "result_code": 1037, "result_desc": "DS timeout.", "mpesa_receipt": None,
    "completed_at": "2026-10-01T10:01:00+03:00",
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_aliases_and_casing_do_not_change_a_payment(data):
    record = {}
    for field, value in CANONICAL.items():
        if value is None:
            continue
        name = data.draw(st.sampled_from(TXN_FIELDS[field]), label=field)
        name = data.draw(st.sampled_from([name, name.upper(), name.title()]), label=f"{field} case")
        record[name] = value
    assert normalise(record) == normalise(dict(CANONICAL))


@pytest.mark.parametrize("record, kind", [
    (CANONICAL, "txn"),
    ({"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0}}}, "callback"),
    ({"received_at": "2026-10-01T10:00:00Z", "body": {}}, "callback"),
    ({"receivedAt": "2026-10-01T10:00:00Z", "body": '{"Body": {}}'}, "callback"),
    ({"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 1032}}, "callback"),
    ({"CheckoutRequestID": "ws_CO_1", "ResultCode": "0", "ResponseCode": "0"}, "query"),
    ({"CheckoutRequestID": "ws_CO_1", "ResponseCode": "0", "MerchantRequestID": "m"}, "query"),
    ({"requestId": "1-2-3", "errorCode": "400.002.02", "errorMessage": "Bad Request"}, "daraja_error"),
    ({"delivery_id": "d1", "sent_at": "2026-10-01T10:00:00Z", "url": "https://x"}, "delivery"),
    ({"id": "d1", "timestamp": "2026-10-01T10:00:00Z", "event_id": "e", "status_code": 200, "body": "{}"},
     "delivery"),
    ({"id": "t1", "timestamp": "2026-10-01T10:00:00Z", "status": "pending", "amount": 10}, "txn"),
    ({"hello": "world"}, None),
])
def test_each_format_is_recognised_per_record(record, kind):
    assert recognise(record) == kind


def test_a_record_of_no_known_format_names_its_fields():
    r = normalise({"foo": 1, "bar": 2})
    assert isinstance(r, Rejected) and r.code == "unknown_format" and "bar, foo" in r.reason

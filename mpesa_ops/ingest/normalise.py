"""Pure normalisation: one raw record (a dict from JSON or CSV) in, one typed record out.

The format is recognised per record, so a file may mix them:
  A  transaction log rows                          -> Txn
  B  STK callbacks (bare or wrapped), status-query
     answers, initiation answers, Daraja errors     -> Event
  C  webhook delivery attempts                      -> Delivery
Anything that cannot be stored becomes a Rejected naming the field and the reason.
Unknown fields are kept in `extra`, never a reason to reject.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Callable

import orjson

from mpesa_ops import catalogue
from mpesa_ops.ingest import fields as F

TXN_STATUSES = ("pending", "success", "failed", "rejected")


@dataclass(slots=True)
class Txn:
    id: str
    created_at: datetime
    updated_at: datetime
    status: str
    shortcode: str | None = None
    link_id: str | None = None
    msisdn: str | None = None
    amount_cents: int | None = None
    account_reference: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    merchant_request_id: str | None = None
    checkout_request_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    mpesa_receipt: str | None = None
    completed_at: datetime | None = None
    extra: dict | None = None


@dataclass(slots=True)
class Event:
    """A result that reached a payment: a callback, a status-query answer, an
    initiation answer or a Daraja error. `time` is when it happened as best known;
    `time_source` says where that came from."""

    key: str
    kind: str  # callback | query | query_error | init_response | init_error
    status: str  # what it says of the payment: pending | success | failed | rejected
    checkout_request_id: str | None
    merchant_request_id: str | None
    code: str | None  # ResultCode, or the Daraja errorCode
    description: str | None
    time: datetime | None
    time_source: str | None  # received_at | transaction_date | checkout_id | None
    shortcode: str | None = None
    amount_cents: int | None = None
    mpesa_receipt: str | None = None
    msisdn: str | None = None
    transaction_date: datetime | None = None
    request_id: str | None = None
    raw: dict = field(default_factory=dict)


@dataclass(slots=True)
class Delivery:
    id: str
    sent_at: datetime
    event_id: str | None = None
    transaction_id: str | None = None
    event_type: str | None = None
    url: str | None = None
    attempt: int | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    signature: str | None = None
    signature_timestamp: str | None = None
    headers: dict | None = None
    payload: str | None = None
    response_body: str | None = None
    extra: dict | None = None


@dataclass(slots=True)
class Rejected:
    reason: str  # what was wrong, in words, with the offending value
    field: str | None = None
    code: str = "invalid_field"  # stable reason class: invalid_field, missing_field, invalid_json, truncated, ...


Normalised = Txn | Event | Delivery | Rejected


# Canonical field -> accepted names (compared case-insensitively).
TXN_FIELDS = {
    "id": ("id", "transaction_id", "txn_id"),
    "created_at": ("created_at", "timestamp", "requested_at"),
    "updated_at": ("updated_at",),
    "shortcode": ("shortcode", "business_shortcode", "paybill", "till"),
    "link_id": ("link_id", "linkid"),
    "msisdn": ("msisdn", "phone", "phone_number"),
    "amount": ("amount",),
    "account_reference": ("account_reference",),
    "status": ("status",),
    "http_status": ("http_status",),
    "error_code": ("error_code", "api_error"),
    "merchant_request_id": ("merchant_request_id", "merchantrequestid"),
    "checkout_request_id": ("checkout_request_id", "checkoutrequestid"),
    "result_code": ("result_code", "resultcode"),
    "result_desc": ("result_desc", "resultdesc"),
    "mpesa_receipt": ("mpesa_receipt", "mpesareceiptnumber", "receipt"),
    "completed_at": ("completed_at",),
}
DELIVERY_FIELDS = {
    "id": ("id", "delivery_id"),
    "event_id": ("event_id",),
    "transaction_id": ("transaction_id",),
    "event_type": ("event_type", "type"),
    "url": ("url", "endpoint"),
    "attempt": ("attempt",),
    "sent_at": ("sent_at", "timestamp"),
    "status_code": ("status_code", "response_status"),
    "latency_ms": ("latency_ms",),
    "error": ("error",),
    "signature": ("signature", "signature_header", "x_signature"),
    "signature_timestamp": ("signature_timestamp", "x_timestamp"),
    "headers": ("headers",),
    "payload": ("payload", "body", "raw_body"),
    "response_body": ("response_body",),
}
DELIVERY_ERRORS = ("timeout", "connection_error", "tls_error", "invalid_signature", "http_error")

# Keys that only one of A and C has; the larger overlap decides between them.
_TXN_ONLY = {"created_at", "requested_at", "updated_at", "shortcode", "business_shortcode", "paybill", "till",
             "link_id", "linkid", "msisdn", "phone", "phone_number", "amount", "account_reference", "status",
             "http_status", "error_code", "api_error", "merchant_request_id", "merchantrequestid",
             "checkout_request_id", "checkoutrequestid", "result_code", "resultcode", "result_desc", "resultdesc",
             "mpesa_receipt", "mpesareceiptnumber", "receipt", "completed_at", "txn_id"}
_DELIVERY_ONLY = {"delivery_id", "event_id", "event_type", "type", "url", "endpoint", "attempt", "sent_at",
                  "status_code", "response_status", "latency_ms", "error", "signature", "signature_header",
                  "x_signature", "signature_timestamp", "x_timestamp", "headers", "payload", "raw_body",
                  "response_body"}


_SPECS = {"txn": TXN_FIELDS, "delivery": DELIVERY_FIELDS}


@lru_cache(maxsize=512)
def _plan(keys: tuple, spec_name: str) -> tuple[Callable[[dict], tuple], tuple]:
    """How to map records with these keys, worked out once per shape (records of
    one file share keys): a function from a record to its canonical fields' values
    (in the spec's order), and the keys no field claims."""
    lower: dict[str, list] = {}
    for k in keys:
        lower.setdefault(k.lower() if isinstance(k, str) else str(k), []).append(k)
    found, used = [], set()
    for names in _SPECS[spec_name].values():
        present = tuple(k for name in names for k in lower.get(name, ()))
        found.append(present)
        used.update(present)
    extra_keys = tuple(k for k in keys if k not in used)
    if all(len(present) == 1 for present in found):  # each field under one name: the common case
        return operator.itemgetter(*(present[0] for present in found)), extra_keys
    return partial(_values, tuple(found)), extra_keys


def _values(found: tuple[tuple, ...], record: dict) -> tuple:
    """Each field's value: the first of its names present and not empty (None when absent)."""
    out = []
    for present in found:
        if len(present) == 1:
            out.append(record[present[0]])
            continue
        value = None
        for k in present:
            v = record[k]
            if v is not None and v != "":
                value = v
                break
        out.append(value)
    return tuple(out)


def _map_fields(record: dict, spec_name: str) -> tuple[tuple, dict | None]:
    """The values of the spec's canonical fields, in its order (the first alias present
    and not empty); the rest as extra. An empty value stays "", which every field
    parser reads as absent."""
    values, extra_keys = _plan(tuple(record), spec_name)
    return values(record), ({k: record[k] for k in extra_keys} or None) if extra_keys else None


def _required(value, field: str):
    if value is None:
        raise F.FieldError(field, "is required and missing", "missing_field")
    return value


def normalise_txn(record: dict) -> Txn:
    (raw_id, raw_created, raw_updated, shortcode, link_id, raw_msisdn, raw_amount, account_reference, raw_status,
     http_status, raw_error_code, merchant_request_id, checkout_request_id, raw_result_code, result_desc,
     mpesa_receipt, raw_completed), extra = _map_fields(record, "txn")  # in TXN_FIELDS order
    txn_id = _required(F.text(raw_id, "id", 200), "id")
    created = _required(F.timestamp(raw_created, "created_at"), "created_at")
    updated = F.timestamp(raw_updated, "updated_at")
    completed = F.timestamp(raw_completed, "completed_at")
    status = F.text(raw_status, "status")
    result_code = catalogue.normalise_code(raw_result_code)
    error_code = F.text(raw_error_code, "error_code", 100)
    if status is None:
        status = _infer_status(result_code, error_code)
    status = status.lower()
    if status not in TXN_STATUSES:
        raise F.FieldError("status", f"{raw_status!r} is not one of {', '.join(TXN_STATUSES)}")
    refused = status == "rejected"
    # A refused request may carry the very number or amount the gateway refused:
    # the record is kept, the unusable value moves to extra as it arrived.
    try:
        phone = F.msisdn(raw_msisdn)
    except F.FieldError:
        if not refused:
            raise
        phone, extra = None, {**(extra or {}), "msisdn_raw": raw_msisdn}
    try:
        amount = F.amount_cents(raw_amount, strict_range=not refused)
    except F.FieldError:
        if not refused:
            raise
        amount, extra = None, {**(extra or {}), "amount_raw": raw_amount}
    return Txn(
        id=txn_id,
        created_at=created,
        updated_at=updated or completed or created,
        status=status,
        shortcode=_shortcode(shortcode),
        link_id=F.text(link_id, "link_id", 200),
        msisdn=phone,
        amount_cents=amount,
        account_reference=F.text(account_reference, "account_reference"),
        http_status=F.integer(http_status, "http_status"),
        error_code=error_code.upper() if error_code and not error_code[0].isdigit() else error_code,
        merchant_request_id=F.text(merchant_request_id, "merchant_request_id", 200),
        checkout_request_id=F.text(checkout_request_id, "checkout_request_id", 200),
        result_code=result_code,
        result_desc=F.text(result_desc, "result_desc"),
        mpesa_receipt=F.text(mpesa_receipt, "mpesa_receipt", 64),
        completed_at=completed,
        extra=extra,
    )


def _infer_status(result_code: str | None, error_code: str | None) -> str:
    if error_code:
        return "rejected"
    if result_code is None or catalogue.is_pending(result_code):
        return "pending"
    return "success" if result_code == "0" else "failed"


def _shortcode(value) -> str | None:
    s = F.text(value, "shortcode", 20)
    if s is None:
        return None
    if not (s.isdigit() and 5 <= len(s) <= 7):
        raise F.FieldError("shortcode", f"{value!r} is not a 5 to 7 digit shortcode")
    return s


def normalise_delivery(record: dict) -> Delivery:
    values, extra = _map_fields(record, "delivery")
    v = dict(zip(DELIVERY_FIELDS, values))
    error = F.text(v["error"], "error", 100)
    if error is not None:
        error = error.lower()
    headers = v["headers"]
    if isinstance(headers, str) and not headers.strip():
        headers = None
    if isinstance(headers, str):
        try:
            headers = orjson.loads(headers)
        except orjson.JSONDecodeError:
            raise F.FieldError("headers", "is not a JSON object") from None
    if headers is not None and not isinstance(headers, dict):
        raise F.FieldError("headers", "is not an object of header names to values")
    payload = v["payload"]
    if payload is not None and not isinstance(payload, str):
        payload = orjson.dumps(payload).decode()  # a log that kept the body parsed, not as raw text
    latency = v["latency_ms"]
    if latency is not None and latency != "":
        try:
            latency = float(latency)
        except (TypeError, ValueError):
            raise F.FieldError("latency_ms", f"expected a number, got {latency!r}") from None
    else:
        latency = None
    return Delivery(
        id=_required(F.text(v["id"], "id", 200), "id"),
        sent_at=_required(F.timestamp(v["sent_at"], "sent_at"), "sent_at"),
        event_id=F.text(v["event_id"], "event_id", 200),
        transaction_id=F.text(v["transaction_id"], "transaction_id", 200),
        event_type=F.text(v["event_type"], "event_type", 100),
        url=F.text(v["url"], "url"),
        attempt=F.integer(v["attempt"], "attempt"),
        status_code=F.integer(v["status_code"], "status_code"),
        latency_ms=latency,
        error=error,
        signature=F.text(v["signature"], "signature", 20000),
        signature_timestamp=F.text(v["signature_timestamp"], "signature_timestamp", 100),
        headers=headers,
        payload=payload,
        response_body=F.text(v["response_body"], "response_body", 20000),
        extra=extra,
    )


# --- B: what Safaricom sent (callbacks, query answers, initiation answers, errors) ---

def _event_key(*parts) -> str:
    h = hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode())
    return h.hexdigest()[:32]


def _metadata_items(callback: dict) -> dict:
    meta = callback.get("CallbackMetadata") or {}
    items = meta.get("Item") if isinstance(meta, dict) else None
    out = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("Name"), str):
                out[item["Name"]] = item.get("Value")
    return out


def _unwrap_callback(record: dict) -> tuple[dict | None, dict]:
    """(stkCallback object or None when the body is empty, wrapper fields)."""
    lower = {k.lower(): v for k, v in record.items() if isinstance(k, str)}
    wrapper = {}
    body = record
    if "body" in lower and "stkcallback" not in lower:
        wrapper = {"received_at": lower.get("received_at", lower.get("receivedat")), "shortcode": lower.get("shortcode")}
        body = lower["body"]
        if isinstance(body, str):
            try:
                body = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError:
                raise F.FieldError("body", "is not JSON") from None
        if not isinstance(body, dict):
            raise F.FieldError("body", "is not a JSON object")
        if not body:
            return None, wrapper
        blower = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
        if "body" in blower:
            body = blower["body"]
            if not isinstance(body, dict):
                raise F.FieldError("Body", "is not a JSON object")
    lower = {k.lower(): v for k, v in body.items() if isinstance(k, str)}
    cb = lower.get("stkcallback", body)
    if not isinstance(cb, dict):
        raise F.FieldError("stkCallback", "is not a JSON object")
    return (cb or None), wrapper


def normalise_callback(record: dict) -> Event:
    cb, wrapper = _unwrap_callback(record)
    if cb is None:
        raise F.FieldError("body", "the callback body is empty (an empty POST reached the callback URL)",
                           "empty_callback")
    checkout = _required(F.text(cb.get("CheckoutRequestID"), "CheckoutRequestID", 200), "CheckoutRequestID")
    code = catalogue.normalise_code(cb.get("ResultCode"))
    if code is None:
        raise F.FieldError("ResultCode", "is required and missing", "missing_field")
    items = _metadata_items(cb)
    received = F.timestamp(wrapper.get("received_at"), "received_at")
    txn_date = F.timestamp(items.get("TransactionDate"), "TransactionDate")
    amount = F.amount_cents(items.get("Amount"), "Amount")
    time, source = _best_time(received, txn_date, checkout)
    shortcode = _shortcode(wrapper.get("shortcode"))
    return Event(
        key=_event_key("callback", checkout, code, cb.get("ResultDesc"), received, items.get("MpesaReceiptNumber")),
        kind="callback",
        status=_status_of(code),
        checkout_request_id=checkout,
        merchant_request_id=F.text(cb.get("MerchantRequestID"), "MerchantRequestID", 200),
        code=code,
        description=F.text(cb.get("ResultDesc"), "ResultDesc"),
        time=time,
        time_source=source,
        shortcode=shortcode,
        amount_cents=amount,
        mpesa_receipt=F.text(items.get("MpesaReceiptNumber"), "MpesaReceiptNumber", 64),
        msisdn=_callback_phone(items.get("PhoneNumber")),
        transaction_date=txn_date,
        raw=record,
    )


def _callback_phone(value) -> str | None:
    """The payer's number, or None when it is unusable: the payment still counts,
    and the raw callback, kept with the event, shows what arrived."""
    try:
        return F.msisdn(value, "PhoneNumber")
    except F.FieldError:
        return None


def _best_time(received, txn_date, checkout) -> tuple[datetime | None, str | None]:
    if received is not None:
        return received, "received_at"
    if txn_date is not None:
        return txn_date, "transaction_date"
    t = F.checkout_request_time(checkout)
    return (t, "checkout_id") if t is not None else (None, None)


def _status_of(code: str) -> str:
    if catalogue.is_pending(code):
        return "pending"
    return "success" if code == "0" else "failed"


def normalise_query(record: dict) -> Event:
    """A status-query answer (ResultCode as text) or an initiation answer (no ResultCode)."""
    lower = {k.lower(): v for k, v in record.items() if isinstance(k, str)}
    checkout = _required(F.text(lower.get("checkoutrequestid"), "CheckoutRequestID", 200), "CheckoutRequestID")
    code = catalogue.normalise_code(lower.get("resultcode"))
    received = F.timestamp(lower.get("received_at", lower.get("receivedat")), "received_at")
    time, source = _best_time(received, None, checkout)
    if code is None:  # initiation answer: the push went out, the result is still to come
        response_code = catalogue.normalise_code(lower.get("responsecode"))
        kind, status, code = "init_response", "pending" if response_code in (None, "0") else "rejected", response_code
        desc = F.text(lower.get("responsedescription"), "ResponseDescription")
    else:
        kind, status = "query", _status_of(code)
        desc = F.text(lower.get("resultdesc"), "ResultDesc")
    return Event(
        key=_event_key(kind, checkout, code, desc, received),
        kind=kind,
        status=status,
        checkout_request_id=checkout,
        merchant_request_id=F.text(lower.get("merchantrequestid"), "MerchantRequestID", 200),
        code=code,
        description=desc,
        time=time,
        time_source=source,
        raw=record,
    )


def normalise_daraja_error(record: dict) -> Event:
    """{"requestId", "errorCode", "errorMessage"}: an error answer to an initiation
    (the request never became a push) or to a status query (requestId is then the
    CheckoutRequestID; 500.001.1001 "being processed" means still pending)."""
    lower = {k.lower(): v for k, v in record.items() if isinstance(k, str)}
    code = _required(F.text(lower.get("errorcode"), "errorCode", 50), "errorCode")
    message = F.text(lower.get("errormessage"), "errorMessage")
    request_id = _required(F.text(lower.get("requestid"), "requestId", 200), "requestId")
    received = F.timestamp(lower.get("received_at", lower.get("receivedat")), "received_at")
    is_query = request_id.startswith("ws_CO_")
    checkout = request_id if is_query else None
    time, source = _best_time(received, None, checkout)
    if is_query:
        kind, status = "query_error", "pending" if catalogue.is_pending(code, message) else "failed"
    else:
        kind, status = "init_error", "rejected"
    return Event(
        key=_event_key(kind, request_id, code, message, received),
        kind=kind,
        status=status,
        checkout_request_id=checkout,
        merchant_request_id=None if is_query else request_id,
        code=code,
        description=message,
        time=time,
        time_source=source,
        request_id=request_id,
        raw=record,
    )


def recognise(record: dict) -> str | None:
    """Which format a record is: "txn", "delivery", "callback", "query", "daraja_error", or None."""
    body_key, plain = _shape(tuple(record))
    if body_key is None:
        return plain
    body = record[body_key]
    return _recognise_shape(tuple(record), isinstance(body, dict), body is not None)


@lru_cache(maxsize=1024)
def _shape(keys: tuple) -> tuple:
    """(the key holding a body, or None; the format when there is no body): one
    cached look-up per record shape."""
    body_key = next((k for k in keys if isinstance(k, str) and k.lower() == "body"), None)
    return body_key, (_recognise_shape(keys, False, False) if body_key is None else None)


@lru_cache(maxsize=1024)
def _recognise_shape(record_keys: tuple, body_is_object: bool, has_body: bool) -> str | None:
    keys = {k.lower() for k in record_keys if isinstance(k, str)}
    if "stkcallback" in keys:
        return "callback"
    delivery_score = len(keys & _DELIVERY_ONLY)
    if body_is_object or (has_body and delivery_score == 0):
        return "callback"
    if "errorcode" in keys and ("requestid" in keys or "errormessage" in keys):
        return "daraja_error"
    has_txn_id = bool(keys & {"id", "transaction_id", "txn_id"})
    if not has_txn_id and "checkoutrequestid" in keys and ("resultcode" in keys or "responsecode" in keys):
        return "query"
    if not (has_txn_id or "delivery_id" in keys):
        return None
    txn_score = len(keys & _TXN_ONLY)
    if delivery_score > txn_score:
        return "delivery"
    if txn_score:
        return "txn"
    return None


_BY_FORMAT = {
    "txn": normalise_txn,
    "delivery": normalise_delivery,
    "callback": normalise_callback,
    "query": normalise_query,
    "daraja_error": normalise_daraja_error,
}


FUTURE_SLACK = timedelta(days=1)  # clocks and time zones differ; a day beyond that is a wrong date
_TIME_FIELD = {Txn: "created_at", Event: "time", Delivery: "sent_at"}


def future_dated(n: Normalised, now: datetime) -> Rejected | None:
    """A Rejected when the record's time lies more than FUTURE_SLACK after `now` (the
    time of loading): a payment from next year is a wrong date, and stored it would
    move every chart and detection run into the future. Pure: the caller gives now."""
    field = _TIME_FIELD.get(n.__class__)  # once per record on the ingest path: kept cheap
    when = None if field is None else getattr(n, field)
    if when is None or when <= now + FUTURE_SLACK:
        return None
    return Rejected(f"{field}: {when.isoformat()} is more than a day after the time of loading "
                    f"({now.isoformat(timespec='seconds')})", field, "future_time")


def _not_a_record(record) -> Rejected | None:
    if not isinstance(record, dict):
        return Rejected(f"expected a JSON object, got {type(record).__name__}", code="not_an_object")
    if not record:
        return Rejected("empty record", code="empty_record")
    return None


def _apply(normaliser, record: dict) -> Normalised:
    try:
        return normaliser(record)
    except F.FieldError as exc:
        return Rejected(exc.message, exc.field, exc.code)


def normalise(record) -> Normalised:
    """One raw record to its typed form, or a Rejected that says which field and why."""
    bad = _not_a_record(record)
    if bad is not None:
        return bad
    kind = recognise(record)
    if kind is None:
        names = ", ".join(sorted(str(k) for k in record)[:8])
        return Rejected(f"record of no known format (fields: {names})", code="unknown_format")
    return _apply(_BY_FORMAT[kind], record)


def normalise_as(record, normaliser) -> Normalised:
    """A record of a format known in advance (a stream of the gateway's log API) through
    its normaliser, rejected the same way `normalise` rejects."""
    bad = _not_a_record(record)
    return bad if bad is not None else _apply(normaliser, record)

"""The code catalogue: coverage of every known code, normalisation, lookup, guides."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from mpesa_ops import catalogue
from mpesa_ops.catalogue import FAMILIES, CodeInfo, all_codes, family_of, is_pending, lookup, normalise_code

SHARED = Path(__file__).resolve().parents[2] / "shared"
SEED = SHARED / "seed/error-codes.txt"
SAMPLES = SHARED / "samples/daraja"
WHO = {"support", "finance", "engineering", "customer", "Safaricom", "gateway"}

RESULT_FAMILIES = {
    "0": "success",
    "4999": "pending",
    **{c: "customer" for c in ("1", "2", "3", "4", "8", "11", "1001", "1019", "1031", "1032", "1036", "1037", "2001", "8006")},
    **{c: "merchant configuration" for c in ("17", "1025", "1101", "1102", "2028", "SFC_IC0003")},
    **{c: "M-Pesa system" for c in ("26", "2026", "9999")},
}
DARAJA = {
    "400.002.02": (400, "gateway validation"),
    "400.002.05": (400, "gateway validation"),
    "404.001.03": (404, "gateway authentication"),
    "404.001.04": (404, "gateway authentication"),
    "500.001.1001": (500, "M-Pesa system"),
    "500.003.01": (500, "M-Pesa system"),
    "500.003.02": (500, "M-Pesa system"),
    "500.003.03": (500, "merchant configuration"),
}
GATEWAY = {
    **{c: (401, "gateway authentication") for c in ("MISSING_HEADERS", "INVALID_API_KEY", "INVALID_LINK_ID", "INACTIVE_SHORTCODE")},
    **{c: (422, "gateway validation") for c in ("VALIDATION_ERROR", "INVALID_MSISDN", "INVALID_AMOUNT", "INVALID_CALLBACK")},
    **{c: (500, "gateway system") for c in ("INTERNAL_ERROR", "STK_PUSH_FAILED", "MPESA_UNAVAILABLE", "TIMEOUT_ERROR")},
}
WEBHOOK_FAILURES = ("timeout", "connection_error", "tls_error", "invalid_signature", "http_error", "not_received")
VERDICTS = (
    "valid", "missing_signature", "malformed_signature", "timestamp_skew", "previous_secret",
    "secret_encoding", "body_reserialized", "encoding_mismatch", "wrong_secret",
)


@pytest.mark.parametrize("code,family", sorted(RESULT_FAMILIES.items()))
def test_result_codes(code, family):
    info = lookup(code)
    assert (info.known, info.kind, info.family, info.code, info.http_status) == (True, "result", family, code, None)
    assert info.is_failure is (code not in ("0", "4999"))
    assert f"M-Pesa result {code}" in info.guide.title


def test_result_code_as_int_and_float():
    assert lookup(1032).code == "1032" and lookup(1032).category == "customer cancelled"
    assert lookup(0).family == "success" and lookup(0.0).family == "success"
    assert lookup("1.0").title == "Insufficient funds"
    assert lookup("sfc_ic0003").code == "SFC_IC0003"


@pytest.mark.parametrize("code,expected", sorted(DARAJA.items()))
def test_daraja_codes(code, expected):
    info = lookup(code)
    assert (info.known, info.kind, info.code, (info.http_status, info.family)) == (True, "daraja", code, expected)
    assert info.is_failure


@pytest.mark.parametrize("code,expected", sorted(GATEWAY.items()))
def test_gateway_codes(code, expected):
    for spelling in (code, code.lower(), f"  {code.title()} "):
        info = lookup(spelling)
        assert (info.known, info.kind, info.code, (info.http_status, info.family)) == (True, "gateway", code, expected)
        assert info.is_failure


@pytest.mark.parametrize("code", WEBHOOK_FAILURES + VERDICTS)
def test_webhook_codes(code):
    info = lookup(code)
    assert (info.known, info.kind, info.family, info.code, info.http_status) == (True, "webhook", "webhook", code, None)
    assert info.is_failure is (code != "valid")
    assert lookup(code.upper()).code == code


def test_gateway_timeout_and_webhook_timeout_are_different():
    assert lookup("TIMEOUT_ERROR").kind == "gateway"
    assert lookup("timeout").kind == "webhook"


def test_seed_wording_is_used():
    assert "Check API key from dashboard" in " ".join(lookup("INVALID_API_KEY").guide.steps)
    assert "Verify tracking code is correct" in " ".join(lookup("INVALID_LINK_ID").guide.steps)
    assert "Include both apikey and linkid headers" in " ".join(lookup("MISSING_HEADERS").guide.steps)
    assert lookup("INVALID_MSISDN").guide.meaning.startswith("Phone number format invalid (must be 254XXXXXXXXX)")
    sig = " ".join(lookup("invalid_signature").guide.check_first)
    for words in ("Check signature generation logic", "Verify secret key is correct", "Ensure raw payload is used for HMAC"):
        assert words in sig
    nr = " ".join(lookup("not_received").guide.check_first)
    for words in ("Check webhook URL is accessible", "Ensure HTTPS for production", "Verify endpoint returns HTTP 200"):
        assert words in nr


def _seed_codes(text: str) -> dict[str, int | None]:
    """Codes named in the seed, with the HTTP status of their section where it has one."""
    codes: dict[str, int | None] = {}
    status = None
    for line in text.splitlines():
        s = line.strip()
        if m := re.search(r"\(HTTP (\d{3})\)", s):
            status = int(m.group(1))
        elif s.startswith(("4. M-Pesa Codes", "M-Pesa Result Codes", "4. Troubleshooting")):
            status = None
        if re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", s):
            codes[s] = status
        elif m := re.match(r"(\d+) - ", s):
            codes[m.group(1)] = None
        for m in re.finditer(r"\(Code (\d+)\)|Problem: ([A-Z_]+)", s):
            codes.setdefault(m.group(1) or m.group(2), None)
    return codes


@pytest.mark.skipif(not SEED.exists(), reason="seed catalogue not present")
def test_every_seed_code_is_known():
    codes = _seed_codes(SEED.read_text(encoding="utf-8"))
    assert sum(1 for c in codes if c.isdigit()) >= 8 and sum(1 for c in codes if not c.isdigit()) == 12
    for code, status in codes.items():
        info = lookup(code)
        assert info.known, code
        if status is not None:
            assert info.http_status == status, code


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="sample payloads not present")
def test_every_sample_payload_code_is_known():
    for path in sorted(SAMPLES.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        cb = doc.get("Body", {}).get("stkCallback", doc)
        code = cb.get("ResultCode", cb.get("errorCode", cb.get("ResponseCode")))
        info = lookup(code, cb.get("errorMessage"))
        assert info.known, path.name
    assert lookup(json.loads((SAMPLES / "25_code_500.001.1001_query_error.json").read_text())["errorCode"],
                  "The transaction is being processed").family == "pending"


@pytest.mark.parametrize(
    "value,expected",
    [
        (0, "0"), (1032, "1032"), ("1032", "1032"), (" 1032 ", "1032"), (1032.0, "1032"),
        ("1032.0", "1032"), ("SFC_IC0003", "SFC_IC0003"), ("400.002.02", "400.002.02"),
        ("500.001.1001", "500.001.1001"), (None, None), ("", None), ("   ", None),
        (True, "True"), (False, "False"), (3.5, "3.5"), (Decimal("17"), "17"), (b"1037", "1037"),
        (float("nan"), None),
    ],
)
def test_normalise_code(value, expected):
    assert normalise_code(value) == expected


def test_unknown_code_is_kept_raw():
    info = lookup("XYZ_42")
    assert (info.code, info.kind, info.family, info.known) == ("XYZ_42", "unknown", "other", False)
    assert "XYZ_42" in info.guide.meaning and "not in the catalogue" in info.guide.meaning
    assert info.guide.check_first
    assert lookup(None).code == "" and lookup(None).family == "other"
    assert lookup(12345).code == "12345" and not lookup(12345).known


@pytest.mark.parametrize(
    "message,family,category,failure",
    [
        ("Merchant does not exist", "merchant configuration", "merchant config", True),
        ("[MerchantValidate] - Wrong credentials", "gateway authentication", "credentials", True),
        ("Unable to lock subscriber, a transaction is already in process", "customer", "customer busy", True),
        ("The transaction is being processed", "pending", "pending", False),
        ("THE TRANSACTION IS BEING PROCESSED", "pending", "pending", False),
        ("Something new", "M-Pesa system", "M-Pesa system", True),
        (None, "M-Pesa system", "M-Pesa system", True),
    ],
)
def test_daraja_500_001_1001_split_by_message(message, family, category, failure):
    info = lookup("500.001.1001", message)
    assert (info.code, info.kind, info.http_status, info.known) == ("500.001.1001", "daraja", 500, True)
    assert (info.family, info.category, info.is_failure) == (family, category, failure)
    assert family_of("500.001.1001", message) == family
    assert is_pending("500.001.1001", message) is (family == "pending")


def test_message_only_matters_for_500_001_1001():
    assert lookup("1001", "The transaction is being processed").family == "customer"
    assert not is_pending("1032", "being processed")


def test_is_pending_and_family_of():
    assert is_pending(4999) and is_pending("4999") and is_pending(" 4999.0 ")
    assert not is_pending(0) and not is_pending("1037") and not is_pending(None)
    assert family_of(1) == "customer" and family_of("nope") == "other"


def test_all_codes_is_complete_and_stable():
    entries = all_codes()
    assert entries == all_codes()
    keys = [(e.code, e.category) for e in entries]
    assert len(keys) == len(set(keys))
    codes = {e.code for e in entries}
    assert set(RESULT_FAMILIES) | set(DARAJA) | set(GATEWAY) | set(WEBHOOK_FAILURES) | set(VERDICTS) <= codes
    assert sum(1 for e in entries if e.code == "500.001.1001") == 5
    for e in entries:
        if e.code == "500.001.1001":
            continue
        assert lookup(e.code) is e


@pytest.mark.parametrize("info", all_codes(), ids=lambda i: f"{i.code}-{i.category}")
def test_every_entry_is_complete(info: CodeInfo):
    g = info.guide
    assert info.known and info.family in FAMILIES and info.kind in catalogue.KINDS
    assert info.title.strip() and info.category.strip()
    assert g.title.strip() and g.meaning.strip() and g.retry.strip()
    assert g.causes and all(c.strip() for c in g.causes)
    assert g.check_first and all(c.strip() for c in g.check_first)
    assert g.who_acts and set(g.who_acts) <= WHO and len(set(g.who_acts)) == len(g.who_acts)
    assert g.tell_customer is None or g.tell_customer.strip()
    assert g.steps == [*g.check_first, g.retry]
    assert (info.http_status is None) is (info.kind in ("result", "webhook", "detector"))
    if info.kind == "result":
        assert g.tell_customer, "support needs words for every M-Pesa result"
    if info.family in ("success", "pending") or info.code == "valid":
        assert not info.is_failure
    else:
        assert info.is_failure


def test_the_conditions_detection_raises_have_their_own_entries():
    pending, volume = lookup("pending"), lookup("volume_drop")
    assert (pending.kind, pending.family, pending.known, pending.is_failure) == ("detector", "pending", True, False)
    assert (volume.kind, volume.family, volume.known, volume.is_failure) == ("detector", "gateway system", True, True)
    assert pending.guide != lookup("4999").guide and "callback" in pending.guide.meaning
    assert "engineering" in volume.guide.who_acts and volume.guide.steps[0].startswith("Check that mpesa-ops")
    assert is_pending("pending") and lookup("PENDING") is pending


def test_customer_words_for_the_common_codes():
    assert "balance" in lookup(1).guide.tell_customer and "another way" in lookup(1).guide.tell_customer
    assert "cancelled" in lookup(1032).guide.tell_customer and "again" in lookup(1032).guide.tell_customer


def test_as_dict_is_json_ready():
    for info in all_codes() + [lookup("XYZ_42")]:
        d = info.guide.as_dict()
        assert set(d) == {"title", "meaning", "causes", "check_first", "who_acts", "tell_customer", "retry", "steps"}
        assert isinstance(d["causes"], list) and isinstance(d["steps"], list)
        assert json.loads(json.dumps(d)) == d
        assert json.loads(json.dumps(info.as_dict()))["guide"] == d


class _Weird:
    def __str__(self):
        raise RuntimeError("no text")


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", 3.5, "x" * 10_000, object(), _Weird(), [], {}, float("inf"), -1, b"\xff\xfe", True],
)
def test_lookup_never_raises(value):
    info = lookup(value)
    assert isinstance(info, CodeInfo) and info.family in FAMILIES
    assert isinstance(lookup("500.001.1001", value), CodeInfo)
    assert len(info.guide.title) < 200
    json.dumps(info.as_dict())


def test_long_unknown_code_kept_raw_but_quoted_short():
    info = lookup("x" * 10_000)
    assert info.code == "x" * 10_000 and not info.known and len(info.guide.meaning) < 400

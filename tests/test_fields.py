"""Single-value parsers: phone numbers, amounts, times, CheckoutRequestID times.

Table-driven cases for the shapes seen in real logs, and property tests that render
one generated value in every common shape and expect one stored form back.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mpesa_ops.ingest import fields as F
from mpesa_ops.ingest.fields import NAIROBI, UTC, FieldError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "daraja"
MINUS5 = timezone(timedelta(hours=-5))

FAST = settings(max_examples=150, deadline=None)


def raises_field_error(func, value, field, **kw):
    with pytest.raises(FieldError) as info:
        func(value, field, **kw)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert field in str(info.value)
    return info.value


# --- phone numbers ---------------------------------------------------------------

valid_msisdns = st.builds(lambda first, rest: f"254{first}{rest}",
                          st.sampled_from("71"), st.text("0123456789", min_size=8, max_size=8))


def phone_shapes(n: str) -> list:
    """One valid 254XXXXXXXXX in every shape seen in logs and spreadsheets."""
    local = n[3:]
    a, b, c = local[:3], local[3:6], local[6:]
    return [
        n, "0" + local, local, "+" + n, "00" + n, int(n), float(n), f"{n}.0",
        f"+254 {a} {b} {c}", f"254 {a} {b} {c}", f"0{a} {b} {c}", f"0{a}-{b}-{c}", f"0{a}.{b}.{c}",
        f"(0{a}) {b}{c}", f"+254 ({a}) {b}-{c}", f"+254-{a}-{b}{c}", f"  0{local}\n", f"\t{n} ",
    ]


@FAST
@given(valid_msisdns)
def test_every_shape_of_a_number_normalises_to_the_same_value(n):
    for shape in phone_shapes(n):
        assert F.msisdn(shape) == n, shape
        assert F.msisdn(shape, "PhoneNumber") == n


@pytest.mark.parametrize("value, expected", [
    ("0712345678", "254712345678"),
    ("0112345678", "254112345678"),
    ("+254 712 345 678", "254712345678"),
    ("254 712 345 678", "254712345678"),
    ("0712-345-678", "254712345678"),
    ("(0712) 345678", "254712345678"),
    ("712345678", "254712345678"),
    ("110345678", "254110345678"),
    (254708374149, "254708374149"),  # sample 02: PhoneNumber as a number
    (254712345678.0, "254712345678"),
    ("254712345678.0", "254712345678"),
    ("00254712345678", "254712345678"),
    (None, None),
    ("", None),
])
def test_phone_table(value, expected):
    assert F.msisdn(value) == expected


@FAST
@given(valid_msisdns, st.data())
def test_broken_numbers_raise_naming_the_field(n, data):
    local = n[3:]
    letter = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwyzABCDEFGHIJKLMNOPQRSTUVWYZ#?!/"))
    pos = data.draw(st.integers(0, 11))
    bad = [
        n[:-1],                      # 11 digits
        "0" + local[:-1],            # 9 digits that start with 0
        local[:-1],                  # 8 digits
        n + "9",                     # 13 digits
        "255" + local,               # Tanzania
        "2546" + local[1:],          # 254 but not a mobile prefix
        "2540" + local[1:],
        "08" + local[1:],
        n[:pos] + letter + n[pos + 1:],
    ]
    for value in bad:
        raises_field_error(F.msisdn, value, "msisdn")
    raises_field_error(F.msisdn, int("2546" + local[1:]), "PhoneNumber")


@pytest.mark.parametrize("value", [
    "abc", "07123abc78", "0712345xyz", "12345", "2547", True, False, 712345678.5,
    float("nan"), float("inf"), [254712345678], {"n": 1}, "０７１２３４５６７８", "254７１２３４５６７８", "2547１２３４５６７８", "2541٢٣٤٥٦٧٨٩", "+",
])
def test_phone_garbage_raises(value):
    raises_field_error(F.msisdn, value, "phone_number")


@pytest.mark.parametrize("value, expected", [
    ("2547****5123", "2547****5123"),
    ("2547XXXXX123", "2547XXXXX123"),
    ("254 7** ***123", "2547*****123"),
    ("07xx xxx 678", "07xxxxx678"),
    ("254712•••678", "254712•••678"),
])
def test_masked_numbers_are_kept(value, expected):
    assert F.msisdn(value) == expected


# --- amounts ---------------------------------------------------------------------

in_band = st.decimals(min_value=Decimal("1"), max_value=Decimal("300000"), places=2,
                      allow_nan=False, allow_infinity=False)


@FAST
@given(in_band)
def test_amounts_roundtrip_exactly_to_cents(d):
    cents = int(d * 100)
    assert F.amount_cents(d) == cents
    assert F.amount_cents(str(d)) == cents
    assert F.amount_cents(f" {d} ") == cents
    assert F.amount_cents(f"KES {d}") == cents
    assert F.amount_cents(f"{d:,}") == cents
    assert F.amount_cents(float(d)) == cents  # float repr is the shortest text, so exact
    assert F.amount_cents(repr(float(d))) == cents
    if d == d.to_integral_value():
        assert F.amount_cents(int(d)) == cents
        assert F.amount_cents(str(int(d))) == cents


@FAST
@given(st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=4,
                   allow_nan=False, allow_infinity=False))
def test_more_than_two_decimals_raise(d):
    assume(d != d.quantize(Decimal("0.01")))
    for value in (d, str(d)):
        raises_field_error(F.amount_cents, value, "amount")
        raises_field_error(F.amount_cents, value, "Amount", strict_range=False)


@pytest.mark.parametrize("value, cents", [
    (1, 100), (1.0, 100), ("1.00", 100), ("1.000", 100), (5, 500), ("0.010E2", 100),
    (300000, 30_000_000), ("300,000.00", 30_000_000), ("KES 1,500", 150_000), ("kes 10.5", 1050),
    (Decimal("99.99"), 9999), (None, None), ("", None), ("  ", None),
])
def test_amount_table(value, cents):
    assert F.amount_cents(value) == cents


@pytest.mark.parametrize("value", [
    "1.001", 1.001, "0.005", "1.00000000000000000000000000001", float("nan"), "NaN", "sNaN",
    float("inf"), float("-inf"), "Infinity", "-inf", "abc", "12abc", "1 000", -5, "-5", "-0.01",
    "300000.01", 300000.01, 300001, 0, "0", 0.99, True, [1], {"a": 1}, "1E+999999999", "1E-999999",
])
def test_amount_errors(value):
    raises_field_error(F.amount_cents, value, "amount")


@pytest.mark.parametrize("value, cents", [
    (0, 0), ("0.00", 0), (500000, 50_000_000), ("500000.50", 50_000_050), (0.5, 50), ("-0", 0),
    (1_000_000_000, 100_000_000_000),
])
def test_amount_without_the_band(value, cents):
    assert F.amount_cents(value, strict_range=False) == cents


@pytest.mark.parametrize("value", [-1, "-0.01", 1_000_000_001, "1e12", "1E+999999999", "abc", "1.001", float("nan")])
def test_amount_without_the_band_still_refuses_garbage(value):
    raises_field_error(F.amount_cents, value, "amount", strict_range=False)


# --- times -----------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2002, 1, 1), max_value=datetime(2099, 12, 30),
                        timezones=st.just(UTC))


@FAST
@given(instants)
def test_any_rendering_of_an_instant_parses_to_it(dt):
    renderings = [
        dt.isoformat().replace("+00:00", "Z"),
        dt.isoformat(),
        dt.astimezone(NAIROBI).isoformat(),
        dt.astimezone(MINUS5).isoformat(),
        dt.astimezone(MINUS5).isoformat(sep=" "),
        dt.astimezone(NAIROBI).replace(tzinfo=None).isoformat(),  # naive = Nairobi
        dt.astimezone(NAIROBI).replace(tzinfo=None).isoformat(sep=" "),
        f"  {dt.isoformat()}\n",
    ]
    for text in renderings:
        got = F.timestamp(text, "created_at")
        assert got == dt, text
        assert got.utcoffset() == timedelta(0)


@FAST
@given(instants)
def test_compact_and_unix_forms(dt):
    dt = dt.replace(microsecond=0)
    compact = dt.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")
    secs = int(dt.timestamp())
    for value in (compact, int(compact), float(int(compact)), str(secs), secs, float(secs),
                  secs * 1000, str(secs * 1000), float(secs * 1000)):
        assert F.timestamp(value, "TransactionDate") == dt, value
    assert F.timestamp(secs + 0.25, "t") == dt + timedelta(seconds=0.25)


@pytest.mark.parametrize("value, expected", [
    (20191219102115, datetime(2019, 12, 19, 7, 21, 15, tzinfo=UTC)),     # sample 02 TransactionDate
    ("20180124144754", datetime(2018, 1, 24, 11, 47, 54, tzinfo=UTC)),   # sample 01
    ("2025-06-01T10:00:00", datetime(2025, 6, 1, 7, 0, tzinfo=UTC)),
    ("2025-06-01T10:00:00Z", datetime(2025, 6, 1, 10, 0, tzinfo=UTC)),
    ("2025-06-01T10:00:00+03:00", datetime(2025, 6, 1, 7, 0, tzinfo=UTC)),
    ("2025-06-01T10:00:00.123456-05:00", datetime(2025, 6, 1, 15, 0, 0, 123456, tzinfo=UTC)),
    ("2025-06-01 00:30:00", datetime(2025, 5, 31, 21, 30, tzinfo=UTC)),  # Nairobi date differs from UTC
    (1750000000, datetime.fromtimestamp(1750000000, UTC)),
    (1750000000123, datetime.fromtimestamp(1750000000.123, UTC)),
    (None, None), ("", None), ("   ", None),
])
def test_time_table(value, expected):
    assert F.timestamp(value, "t") == expected


@pytest.mark.parametrize("value", [
    "2025-02-30", "2025-02-30T10:00:00Z", "2025-13-01T00:00:00", "2025-00-10", "2025-06-01T25:00:00",
    "1970-01-01T00:00:00Z", "1999-06-01T00:00:00+03:00", "3000-01-01T00:00:00Z", "2101-01-01",
    "yesterday", "now", "2025/06/01 10:00", "01-06-2025", "1.5.2025", "12345", "2025-06-01T10:00:00+25:00",
    20250230101010, "20250230101010", "20251301000000", "19991231235959", 0, "0000000000", -1,
    10**20, float("nan"), float("inf"), True, [2025], {"t": 1},
])
def test_impossible_times_raise_naming_the_field(value):
    raises_field_error(F.timestamp, value, "created_at")
    raises_field_error(F.timestamp, value, "sent_at")


def test_local_date_is_the_nairobi_calendar_day():
    assert F.local_date(datetime(2025, 5, 31, 21, 30, tzinfo=UTC)).isoformat() == "2025-06-01"
    assert F.local_date(datetime(2025, 5, 31, 20, 59, tzinfo=UTC)).isoformat() == "2025-05-31"


# --- CheckoutRequestID -----------------------------------------------------------

def nairobi(*args) -> datetime:
    return datetime(*args, tzinfo=NAIROBI).astimezone(UTC)


@pytest.mark.parametrize("cid, expected", [
    ("ws_CO_24012018144725647", nairobi(2018, 1, 24, 14, 47, 25)),
    ("ws_CO_191220191020363925", nairobi(2019, 12, 19, 10, 20, 36)),
    ("ws_CO_20092025115007849757597007", nairobi(2025, 9, 20, 11, 50, 7)),
    ("ws_CO_15022025100126631768579526", nairobi(2025, 2, 15, 10, 1, 26)),
    ("ws_CO_17112022155511840796440427", nairobi(2022, 11, 17, 15, 55, 11)),
    ("ws_CO_27072017151044001", nairobi(2017, 7, 27, 15, 10, 44)),
    ("ws_CO_20022026001154691790370092", nairobi(2026, 2, 20, 0, 11, 54)),
    ("ws_CO_250120221936525017", nairobi(2022, 1, 25, 19, 36, 52)),
    ("ws_CO_1007202409152617172396192", nairobi(2024, 7, 10, 9, 15, 26)),
    ("ws_CO_20022018230142206", nairobi(2018, 2, 20, 23, 1, 42)),
    ("ws_CO_01012000000000", nairobi(2000, 1, 1, 0, 0, 0)),
])
def test_checkout_request_time_of_real_ids(cid, expected):
    got = F.checkout_request_time(cid)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("cid", [
    None, "", "abc", "ws_CO_", "ws_CO_1234", "ws_CO_32122019102036", "ws_CO_19132019102036",
    "ws_CO_19122019252036", "ws_CO_19122019106036", "ws_CO_30022020000000", "ws_CO_01011999000000",
    "ws_CO_01013000000000", "WS_CO_191220191020363925", "xws_CO_191220191020363925", "ws_CO_1912201910203x",
    "ws_CO_１９１２２０１９１０２０３６", "19072-295731-1", "1459-15094918-1", 191220191020363925, 1.5, b"ws_CO_191220191020363925",
])
def test_checkout_request_time_of_garbage_is_none(cid):
    assert F.checkout_request_time(cid) is None


def _sample_ids():
    for path in sorted(SAMPLES.glob("*.json")):
        doc = json.loads(path.read_text())
        cb = doc.get("Body", {}).get("stkCallback", doc)
        cid = cb.get("CheckoutRequestID") or doc.get("requestId")
        items = {i["Name"]: i.get("Value") for i in cb.get("CallbackMetadata", {}).get("Item", [])}
        yield path.name, cid, items.get("TransactionDate")


@pytest.mark.parametrize("name, cid, txn_date", list(_sample_ids()))
def test_checkout_request_time_on_every_sample(name, cid, txn_date):
    got = F.checkout_request_time(cid)
    if not cid.startswith("ws_CO_"):
        assert got is None  # an initiation error's requestId is a MerchantRequestID
        return
    assert got is not None and 2017 <= got.year <= 2026
    if txn_date is not None:  # the payment completes within minutes of the request
        paid = F.timestamp(txn_date, "TransactionDate")
        assert abs(paid - got) < timedelta(minutes=5), (got, paid)


# --- text and integers -----------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("  abc ", "abc"), ("", None), ("   ", None), (None, None), (12, "12"), (12.0, "12"), (1.5, "1.5"),
])
def test_text(value, expected):
    assert F.text(value, "f") == expected


@pytest.mark.parametrize("value", [True, float("nan"), [1], {"a": 1}, "x" * 11])
def test_text_errors(value):
    raises_field_error(F.text, value, "account_reference", max_len=10)


@pytest.mark.parametrize("value, expected", [
    (200, 200), ("200", 200), (" 200 ", 200), (200.0, 200), ("200.0", 200), ("1e3", 1000), ("", None), (None, None),
])
def test_integer(value, expected):
    assert F.integer(value, "http_status") == expected


@pytest.mark.parametrize("value", [True, 1.5, "1.5", "abc", "inf", "nan", [1], float("inf")])
def test_integer_errors(value):
    raises_field_error(F.integer, value, "http_status")


def test_field_error_carries_field_message_and_code():
    exc = FieldError("amount", "is required and missing", "missing_field")
    assert (exc.field, exc.message, exc.code, str(exc)) == ("amount", "is required and missing", "missing_field",
                                                             "amount: is required and missing")
    assert isinstance(exc, ValueError)
    assert FieldError("x", "y").code == "invalid_field"

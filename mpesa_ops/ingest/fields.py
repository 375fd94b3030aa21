"""Parsers for single field values: times, money, phone numbers, integers, text.

Each parser takes the raw value as it arrived (str, int, float, None) and returns
the stored form or raises FieldError naming what was wrong. No I/O.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

NAIROBI = timezone(timedelta(hours=3), "Africa/Nairobi")
UTC = timezone.utc

MIN_YEAR, MAX_YEAR = 2000, 2100
MIN_AMOUNT_CENTS = 100  # KES 1: the least a real payment can be
MAX_AMOUNT_CENTS = 30_000_000  # KES 300,000: the gateway's upper bound for a valid request
ABSURD_AMOUNT_CENTS = 100_000_000_000  # beyond this even a refused request's amount is garbage


class FieldError(ValueError):
    """A value that cannot be stored; `field` names the field, the message says why."""

    def __init__(self, field: str, message: str, code: str = "invalid_field"):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code  # invalid_field | missing_field | empty_callback: stable, for counting reasons


def text(value, field: str, max_len: int = 2000) -> str | None:
    """A trimmed string; empty means absent. Numbers are accepted and written as text."""
    if value.__class__ is str:  # the common case, first
        value = value.strip()
        if len(value) > max_len:
            raise FieldError(field, f"longer than {max_len} characters")
        return value or None
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"expected text, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldError(field, f"expected text, got {value!r}")
        value = repr(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, int):
        value = str(value)
    elif not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        return None
    if len(value) > max_len:
        raise FieldError(field, f"longer than {max_len} characters")
    return value


def integer(value, field: str) -> int | None:
    """An integer from 200, "200", 200.0 or "200.0"; empty means absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                f = math.nan
            if math.isfinite(f) and f.is_integer():
                return int(f)
    raise FieldError(field, f"expected an integer, got {value!r}")


def amount_cents(value, field: str = "amount", *, strict_range: bool = True) -> int | None:
    """KES as exact integer cents. `strict_range` enforces the valid 1..300,000 band;
    a request the gateway refused may carry the very amount it refused, so loaders
    pass strict_range=False there and only garbage is refused."""
    if value.__class__ is int:  # whole shillings: the common case
        cents = value * 100
        if strict_range and not (MIN_AMOUNT_CENTS <= cents <= MAX_AMOUNT_CENTS):
            raise FieldError(field, f"KES {value} is outside 1 to 300,000")
        if cents < 0 or cents > ABSURD_AMOUNT_CENTS:
            raise FieldError(field, f"KES {value} is not a possible amount")
        return cents
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"expected a number of KES, got {value!r}")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidOperation
            d = Decimal(repr(value))
        elif isinstance(value, (int, Decimal)):
            d = Decimal(value)
        elif isinstance(value, str):
            s = value.strip().replace(",", "")
            if s.upper().startswith("KES"):
                s = s[3:].strip()
            if not s:
                return None
            d = Decimal(s)
        else:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise FieldError(field, f"expected a number of KES, got {value!r}") from None
    if not d.is_finite():
        raise FieldError(field, f"expected a number of KES, got {value!r}")
    # Exact integer arithmetic: `d * 100` rounds to the context's 28 digits (so
    # "1.00000000000000000000000000001" passed as 1.00) and overflows on "1E+999999999".
    if not d.is_zero() and d.adjusted() > 15:
        raise FieldError(field, f"KES {value!r} is not a possible amount")
    sign, digits, exp = d.as_tuple()
    n = int("".join(map(str, digits)))
    shift = -2 - exp
    if n == 0:
        cents = 0
    elif shift <= 0:
        cents = n * 10 ** -shift
    elif shift > len(digits) or n % 10**shift:
        raise FieldError(field, f"{value!r} has more than 2 decimal places")
    else:
        cents = n // 10**shift
    if sign:
        cents = -cents
    if strict_range and not (MIN_AMOUNT_CENTS <= cents <= MAX_AMOUNT_CENTS):
        raise FieldError(field, f"KES {d} is outside 1 to 300,000")
    if cents < 0 or cents > ABSURD_AMOUNT_CENTS:
        raise FieldError(field, f"KES {d} is not a possible amount")
    return cents


_PHONE_JUNK = re.compile(r"[\s\-().]")
_MASK_CHARS = set("*•xX")
_DIGITS = set("0123456789")
_SPREADSHEET = re.compile(r"(\+?[0-9]+)\.0+")


def msisdn(value, field: str = "msisdn") -> str | None:
    """254XXXXXXXXX from 07…, 01…, +254…, 254…, 7… (9 digits), with spaces or dashes,
    or a number (callbacks send PhoneNumber as a number). Masked numbers such as
    2547****5123 are kept as they are: they are not errors, only not searchable."""
    if (value.__class__ is str and len(value) == 12 and value.startswith(("2547", "2541"))
            and value.isascii() and value.isdigit()):
        return value  # already canonical: the common case
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"expected a phone number, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError(field, f"expected a phone number, got {value!r}")
        value = str(int(value))
    elif isinstance(value, int):
        value = str(value)
    elif not isinstance(value, str):
        raise FieldError(field, f"expected a phone number, got {type(value).__name__}")
    s = value.strip()
    m = _SPREADSHEET.fullmatch(s)  # spreadsheet exports: "254712345678.0" (before dots count as junk)
    if m:
        s = m.group(1)
    s = _PHONE_JUNK.sub("", s)
    if s.startswith("+"):
        s = s[1:]
    if s.startswith("00254"):
        s = s[2:]
    if (any(c in _MASK_CHARS for c in s) and all(c in _MASK_CHARS or c in _DIGITS for c in s)
            and sum(c in _DIGITS for c in s) >= 4):
        return s
    if not (s.isascii() and s.isdigit()):  # isdigit() alone also takes non-ASCII digits
        raise FieldError(field, f"{value!r} is not a phone number")
    if len(s) == 12 and s.startswith("254"):
        local = s[3:]
    elif len(s) == 10 and s.startswith("0"):
        local = s[1:]
    elif len(s) == 9:
        local = s
    else:
        raise FieldError(field, f"{value!r} is not a Kenyan mobile number (254XXXXXXXXX)")
    if local[0] not in "17":
        raise FieldError(field, f"{value!r} is not a Kenyan mobile number (254 7… or 254 1…)")
    return "254" + local


def _check_year(dt: datetime, field: str, value) -> datetime:
    if not (MIN_YEAR <= dt.year <= MAX_YEAR):
        raise FieldError(field, f"{value!r} is not a plausible date")
    return dt


def _from_compact(s: str, field: str, value) -> datetime:
    """YYYYMMDDHHMMSS in Nairobi time, as M-Pesa's TransactionDate."""
    try:
        dt = datetime(int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise FieldError(field, f"{value!r} is not a valid date and time") from None
    return _check_year(dt.replace(tzinfo=NAIROBI), field, value).astimezone(UTC)


_RECENT_TIMES: dict[str, datetime] = {}  # ISO text with an offset -> its UTC time, for the last texts parsed
_RECENT_TIMES_MAX = 4096  # a payment's rows repeat its times a few lines apart: a small window catches them


def timestamp(value, field: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (offset, Z, or naive = Nairobi),
    YYYYMMDDHHMMSS (number or text), or Unix seconds/milliseconds."""
    if value.__class__ is str and len(value) >= 20 and value[4] == "-":  # ISO with an offset: the common case
        dt = _RECENT_TIMES.get(value)
        if dt is not None:
            return dt
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            dt = None
        if dt is not None and dt.tzinfo is not None and MIN_YEAR <= dt.year <= MAX_YEAR:
            if len(_RECENT_TIMES) >= _RECENT_TIMES_MAX:
                _RECENT_TIMES.clear()
            dt = _RECENT_TIMES[value] = dt.astimezone(UTC)
            return dt
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(field, f"expected a date and time, got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise FieldError(field, f"expected a date and time, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            return _unix(value, field, value)
        n = int(value)
        if 10**13 <= n < 10**14:
            return _from_compact(str(n), field, value)
        return _unix(n, field, value)
    if not isinstance(value, str):
        raise FieldError(field, f"expected a date and time, got {type(value).__name__}")
    s = value.strip()
    if not s:
        return None
    if s.isdigit():
        if len(s) == 14:
            return _from_compact(s, field, value)
        if len(s) in (10, 13):
            return _unix(int(s), field, value)
        raise FieldError(field, f"{value!r} is not a date and time")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise FieldError(field, f"{value!r} is not an ISO 8601 date and time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=NAIROBI)
    return _check_year(dt, field, value).astimezone(UTC)


def _unix(n: float, field: str, value) -> datetime:
    if n > 10**11:  # milliseconds
        n = n / 1000
    try:
        dt = datetime.fromtimestamp(n, UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldError(field, f"{value!r} is not a date and time") from None
    return _check_year(dt, field, value)


_CHECKOUT_TIME = re.compile(r"^ws_CO_([0-9]{2})([0-9]{2})([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})")


def checkout_request_time(checkout_request_id: str | None) -> datetime | None:
    """The request time Safaricom writes into a CheckoutRequestID
    (ws_CO_DDMMYYYYHHMMSS…, Nairobi time), or None when it does not parse."""
    if not checkout_request_id or not isinstance(checkout_request_id, str):
        return None
    m = _CHECKOUT_TIME.match(checkout_request_id)
    if not m:
        return None
    day, month, year, hh, mm, ss = (int(g) for g in m.groups())
    try:
        dt = datetime(year, month, day, hh, mm, ss, tzinfo=NAIROBI)
    except ValueError:
        return None
    if not (MIN_YEAR <= year <= MAX_YEAR):
        return None
    return dt.astimezone(UTC)


def local_date(dt: datetime) -> date:
    """The Nairobi calendar date of an aware datetime."""
    return dt.astimezone(NAIROBI).date()

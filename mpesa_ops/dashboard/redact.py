"""What may be shown of a text or a JSON value: secrets' values hidden for everyone,
phone numbers masked for viewers who may not see them. Pure functions; the pages call
them through context.shown_text / context.shown_json, which know the viewer's role.

Phones hide in more than phone fields: a Daraja CheckoutRequestID ends with the
customer's 9-digit national number, so a number is masked wherever its national part
appears, in every shape (254XXXXXXXXX, 0XXXXXXXXX, the 9 digits inside an id)."""

from __future__ import annotations

import re
from typing import Iterable

HIDDEN = "•••"
DOT = "•"
SECRET_WORDS = ("linkid", "apikey", "secret", "token", "password", "authorization", "authorisation")
PHONE_WORDS = ("msisdn", "phone")
PHONE_KEYS = ("partya",)  # the paying number in an STK Push request (PartyB is the shortcode)

_INTERNATIONAL = re.compile(r"(?<!\d)254[17]\d{8}(?!\d)")  # a Kenyan mobile number standing alone
_LINK_ID = re.compile(r"\blnk_[A-Za-z0-9]+")
_KEY = r"""(?P<q>["']?)(?P<key>(?<![\w-])[\w.-]*?(?:{words})[\w.-]*)(?P=q)"""
_VALUE = r"""(?P<sep>\s*[:=]\s*)(?P<value>"(?:[^"\\\r\n]|\\.)*"|'[^'\r\n]*'|[^\s,&;}\]"]+(?:[ \t]+[^\s,&;}\]"]+)*)"""
_SECRET_PAIR = re.compile(_KEY.format(words=r"link[_-]?id|api[_-]?key|secret|token|password|authori[sz]ation")
                          + _VALUE, re.I)
_PHONE_PAIR = re.compile(_KEY.format(words=r"msisdn|phone|partya") + _VALUE, re.I)


def _normal(key: str) -> str:
    return re.sub(r"[^a-z]", "", str(key).lower())


def is_secret_key(key: str) -> bool:
    """link_id, X-Api-Key, client_secret, access_token, Authorization, … (any case or separator)."""
    return any(word in _normal(key) for word in SECRET_WORDS)


def is_phone_key(key: str) -> bool:
    name = _normal(key)
    return name in PHONE_KEYS or any(word in name for word in PHONE_WORDS)


def mask_phone(msisdn: str | None) -> str:
    """2547•••••123: the first 4 and last 3 digits stay, the rest become dots."""
    if not msisdn:
        return ""
    s = str(msisdn)
    if len(s) <= 7:
        return DOT * len(s)
    return s[:4] + DOT * (len(s) - 7) + s[-3:]


def national(phone: str | None) -> str | None:
    """The 9-digit national part of a Kenyan number in any common shape, else None.
    Broader on purpose than fields.msisdn, which accepts only mobile numbers: what
    is masked must include the numbers a log got wrong."""
    digits = re.sub(r"\D", "", str(phone or ""))
    if len(digits) == 14 and digits.startswith("00254"):
        return digits[5:]
    if len(digits) == 12 and digits.startswith("254"):
        return digits[3:]
    if len(digits) == 10 and digits.startswith("0"):
        return digits[1:]
    return digits if len(digits) == 9 else None


def _mask_digits(text: str) -> str:
    """A phone field's value in whatever shape: its digits masked as mask_phone does."""
    return re.sub(r"\d{5,}", lambda m: mask_phone(m.group(0)), text)


def mask_phones(text: str, phones: Iterable[str | None] = ()) -> str:
    """Every occurrence of the given numbers and of any 2547/2541 number, masked: the
    national 9 digits keep their first and last 3 (254+7•••••123 reads as mask_phone's
    2547•••••123), also inside ids; a number that is no valid Kenyan number is masked
    where it appears whole; a phone field's value is masked whatever its shape."""
    wanted = [str(p) for p in phones if p] + _INTERNATIONAL.findall(text)
    wanted += [m.group("value") for m in _PHONE_PAIR.finditer(text)]
    text = _PHONE_PAIR.sub(lambda m: m.group(0)[:m.start("value") - m.start()] + _mask_digits(m.group("value")),
                           text)
    parts, whole = set(), set()
    for phone in wanted:
        part = national(phone)
        if part:
            parts.add(part)
        elif len(re.sub(r"\D", "", phone)) >= 7:
            whole.add(re.sub(r"\D", "", phone))
    for number in sorted(whole, key=len, reverse=True):
        text = text.replace(number, mask_phone(number))
    for part in sorted(parts):
        text = text.replace(part, part[0] + DOT * 5 + part[-3:])
    return text


def hide_secrets(text: str) -> str:
    """The values of secret-named keys (JSON, headers, key=value) and any link id become •••."""
    def hidden(m: re.Match) -> str:
        value = m.group("value")
        quote = value[0] if value[0] in "\"'" else ""
        return m.group(0)[:m.start("value") - m.start()] + quote + HIDDEN + quote

    return _LINK_ID.sub("lnk_" + HIDDEN, _SECRET_PAIR.sub(hidden, text))


def redact_text(text: str | None, *, phones: Iterable[str | None] = (), hide_phones: bool) -> str:
    """Text as shown: secrets hidden always, phones masked when hide_phones."""
    text = hide_secrets(str(text or ""))
    return mask_phones(text, phones) if hide_phones else text


def _phones_in(value) -> list[str]:
    """The 2547/2541 numbers and the phone-named fields' values anywhere in a JSON value."""
    found: list[str] = []

    def walk(item, key: str | None = None) -> None:
        if isinstance(item, dict):
            for k, v in item.items():
                walk(v, str(k))
        elif isinstance(item, list):
            for v in item:
                walk(v)
        elif isinstance(item, (str, int)) and not isinstance(item, bool):
            found.extend(_INTERNATIONAL.findall(str(item)))
            if key is not None and is_phone_key(key):
                found.append(str(item))

    walk(value)
    return found


def redact_json(value, *, phones: Iterable[str | None] = (), hide_phones: bool):
    """A JSON value as shown: a secret-named key keeps its name with ••• as its value;
    a phone-named key's value is masked (when hide_phones); every string is redacted as text."""
    phones = list(phones)
    if hide_phones:  # the numbers anywhere in the value count for every string in it
        phones += _phones_in(value)

    def walk(item, key: str | None = None):
        if key is not None and is_secret_key(key):
            return HIDDEN
        if isinstance(item, dict):
            return {k: walk(v, str(k)) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if hide_phones and key is not None and is_phone_key(key) and isinstance(item, (str, int)) \
                and not isinstance(item, bool):
            return _mask_digits(str(item))
        if isinstance(item, str):
            return redact_text(item, phones=phones, hide_phones=hide_phones)
        if hide_phones and isinstance(item, int) and not isinstance(item, bool):
            shown = redact_text(str(item), phones=phones, hide_phones=True)
            return item if shown == str(item) else shown
        return item

    return walk(value)

"""Webhook signature verification and diagnosis of failed signatures.

Three HMAC-SHA256 schemes are supported; the scheme is a setting per endpoint:

``gateway``
    The payment gateway's own scheme.  ``X-Signature`` carries the lowercase hex
    HMAC-SHA256 of the **raw body only**, optionally prefixed ``sha256=`` (both forms
    are accepted, neither is a mismatch).  Key = the secret string as UTF-8 bytes.
    ``X-Timestamp`` is optional; when given it is *not* part of the signed content, it
    is only checked for freshness (``|now - timestamp| <= tolerance``, both directions).
``stripe``
    ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>][,v0=<hex>]`` over ``"<ts>." + body``.
    Key = the whole secret string (``whsec_...`` included) as UTF-8, no decoding.
    Only ``v1`` entries count.  The timestamp comes from ``t=``.
``standard``
    Standard Webhooks (Svix): ``webhook-signature`` is a space-separated list of
    ``v1,<base64>`` entries over ``"<webhook-id>.<webhook-timestamp>." + body``.
    Key = base64-decode of the part after ``whsec_`` (unpadded secrets accepted).
    Any matching ``v1`` entry is accepted; other versions (``v1a``, ``v2``) are ignored.

Several secrets can be given at once (current first, then rotated-out ones).  All
digest comparisons use :func:`hmac.compare_digest` on bytes.

Input handling (decisions documented here for the CLI and the pages):

* Anything that comes from the request (signature header, timestamp, webhook-id, body
  bytes) never raises: :func:`verify` returns ``False`` and :func:`diagnose` returns a
  verdict (``missing_signature`` / ``malformed_signature`` for header problems).
* :class:`InputError` (a ``ValueError``) is raised for input the *caller* must fix:
  unknown scheme, an empty secret (``""``, blanks or a bare ``whsec_``), a
  ``standard`` secret that is not base64, a payload that is not bytes, a negative
  tolerance, a bad ``previous_from``.
* Oversized payloads (> ``MAX_PAYLOAD_BYTES``): :func:`diagnose` and :func:`sign` raise
  :class:`InputError` (the CLI shows it as an input message: no verdict would be honest,
  and re-serialising a huge body is too costly); :func:`verify` returns ``False``
  because the body is request input and a receiver must never crash on it.
* Headers longer than ``MAX_HEADER_CHARS`` are ``malformed_signature``.
* ``Diagnosis.valid`` is ``True`` only for the verdict ``valid``.  ``previous_secret``
  means the signature is authentic but made with a secret listed as rotated out
  (``secrets[previous_from:]``), so it is reported as not valid; :func:`verify`, in
  contrast, accepts every secret it is given (pass only the secrets you accept).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass, field

SCHEMES = ("gateway", "stripe", "standard")
VERDICTS = (
    "valid",
    "missing_signature",
    "malformed_signature",
    "timestamp_skew",
    "previous_secret",
    "secret_encoding",
    "body_reserialized",
    "encoding_mismatch",
    "wrong_secret",
)
DEFAULT_TOLERANCE = 300
MAX_PAYLOAD_BYTES = 1_000_000
MAX_HEADER_CHARS = 8192

WHSEC_PREFIX = "whsec_"
_MAX_TS_DIGITS = 15  # seconds; anything longer is not a plausible Unix time
_MS_THRESHOLD = 10**11  # a "seconds" value above this (year 5138+) is most likely milliseconds

SIGNATURE_HEADER = {"gateway": "X-Signature", "stripe": "Stripe-Signature", "standard": "webhook-signature"}
TIMESTAMP_HEADER = {"gateway": "X-Timestamp", "standard": "webhook-timestamp"}  # Stripe's is inside its signature
_TS_NAME = {**TIMESTAMP_HEADER, "stripe": "t="}
_CANON_DESC = {"gateway": "lowercase hex", "stripe": "lowercase hex", "standard": "padded base64"}
_CONTENT_DESC = {
    "gateway": "the raw body",
    "stripe": "'<t>.<raw body>'",
    "standard": "'<webhook-id>.<webhook-timestamp>.<raw body>'",
}
_ALTERED_DESC = {
    "gateway": "the body was altered",
    "stripe": "the body or t= was altered",
    "standard": "the body, webhook-id or webhook-timestamp was altered",
}

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_B64_STD = re.compile(r"[A-Za-z0-9+/]{43}=?")
_B64_URL = re.compile(r"[A-Za-z0-9_\-]{43}=?")
_PREFIXED = re.compile(r"([A-Za-z0-9_.\-]{1,32})[=:](.+)", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+")

_FORM_DESC = {
    "hex": "lowercase hex",
    "uppercase_hex": "uppercase hex",
    "base64": "base64",
    "base64_unpadded": "base64 without '=' padding",
    "base64url": "URL-safe base64",
    "noncanonical_base64": "base64 with non-zero padding bits",
}


class InputError(ValueError):
    """Bad input the caller must fix (empty secret, oversized payload, unknown scheme...).

    The message says what is wrong and where (which secret, which argument)."""


@dataclass(frozen=True)
class Diagnosis:
    verdict: str  # one of VERDICTS
    valid: bool  # True only for verdict "valid"
    scheme: str
    skew_seconds: int | None  # now - timestamp (positive: timestamp in the past), when one was parsed
    matched_secret: int | None  # index into secrets of the secret that matched (0 = current)
    detail: str  # one specific sentence
    variant: str | None  # for encoding_mismatch / secret_encoding / body_reserialized
    computed_variant: str | None  # when computed= was given: what the engineer's endpoint computed

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- validation


def _check_scheme(scheme) -> str:
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return scheme


def _as_bytes(payload) -> bytes:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise InputError(
        f"payload must be the raw request body as bytes, got {type(payload).__name__}"
    )


def _cap(body: bytes) -> bytes:
    if len(body) > MAX_PAYLOAD_BYTES:
        raise InputError(
            f"payload is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes"
        )
    return body


def _utf8(text: str, what: str) -> bytes:
    try:
        # surrogateescape gives back the original bytes of command-line arguments
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise InputError(f"{what} contains characters that cannot be encoded as UTF-8") from None


def _check_secret(secret, what: str) -> str:
    if not isinstance(secret, str):
        raise InputError(f"{what} must be a string, got {type(secret).__name__}")
    if not secret.strip():
        raise InputError(f"{what} is empty")
    if secret.strip() == WHSEC_PREFIX:
        raise InputError(f"{what} is only the 'whsec_' prefix; the key after it is missing")
    return secret


def _check_secrets(secrets) -> list[str]:
    if isinstance(secrets, (str, bytes)) or not isinstance(secrets, (list, tuple)):
        raise InputError("secrets must be a list of strings, current secret first")
    if not secrets:
        raise InputError("no secret given; at least the current secret is needed")
    return [_check_secret(s, f"secret #{i + 1}") for i, s in enumerate(secrets)]


def _check_int(value, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_now(now) -> int:
    if now is None:
        return int(time.time())
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise InputError(f"now must be a Unix time in seconds, got {now!r}")
    return int(now)


def _check_text_arg(value, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise InputError(f"{what} must be a string, got {type(value).__name__}")


# --------------------------------------------------------------------------- keys


def _b64_key(secret: str) -> bytes | None:
    """base64-decode the part after ``whsec_`` (padding optional); None if not base64."""
    s = secret[len(WHSEC_PREFIX):] if secret.startswith(WHSEC_PREFIX) else secret
    s = s.strip()
    if not s or len(s.rstrip("=")) % 4 == 1:
        return None
    padded = s.rstrip("=") + "=" * (-len(s.rstrip("=")) % 4)
    for altchars in (None, b"-_"):
        try:
            key = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if key:
            return key
    return None


def _primary_key(scheme: str, secret: str, what: str) -> bytes:
    if scheme == "standard":
        key = _b64_key(secret)
        if key is None:
            raise InputError(
                f"{what} is not base64 after 'whsec_'; Standard Webhooks secrets are "
                "'whsec_' followed by the base64 of the key"
            )
        return key
    return _utf8(secret, what)


def _alt_keys(scheme: str, secret: str, primary: bytes) -> list[tuple[str, bytes]]:
    """The secret decoded "the other way" (for the secret_encoding verdict)."""
    rest = secret[len(WHSEC_PREFIX):] if secret.startswith(WHSEC_PREFIX) else None
    alts: list[tuple[str, bytes | None]] = []
    if scheme == "standard":
        alts.append(("secret_raw", secret.encode("utf-8", "surrogateescape")))
        if rest:
            alts.append(("secret_raw_without_prefix", rest.encode("utf-8", "surrogateescape")))
    else:
        alts.append(("secret_base64_decoded", _b64_key(secret)))
        core = (rest if rest is not None else secret).strip()
        if len(core) >= 2 and len(core) % 2 == 0 and re.fullmatch(r"[0-9A-Fa-f]+", core):
            alts.append(("secret_hex_decoded", bytes.fromhex(core)))
        if rest:
            alts.append(("secret_without_prefix", rest.encode("utf-8", "surrogateescape")))
    out: list[tuple[str, bytes]] = []
    seen = {primary}
    for name, key in alts:
        if key and key not in seen:
            seen.add(key)
            out.append((name, key))
    return out


def _mac(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def _matches(candidates, mac: bytes, want=lambda label: True):
    """First candidate label (None = canonical) equal to mac, or False. Constant-time compare."""
    found = False
    for digest, label in candidates:
        if want(label) and hmac.compare_digest(digest, mac) and found is False:
            found = label
    return found


# --------------------------------------------------------------------------- header parsing


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _decode_digest(value: str) -> tuple[bytes, str] | None:
    """A 32-byte digest from hex or base64 text, with the form it was written in."""
    if _HEX64.fullmatch(value):
        return bytes.fromhex(value), ("hex" if value == value.lower() else "uppercase_hex")
    if _B64_STD.fullmatch(value):
        digest = base64.b64decode(value.rstrip("=") + "=")
        if not value.endswith("="):
            return digest, "base64_unpadded"
        if base64.b64encode(digest).decode("ascii") != value:
            return digest, "noncanonical_base64"
        return digest, "base64"
    if _B64_URL.fullmatch(value):
        return base64.urlsafe_b64decode(value.rstrip("=") + "="), "base64url"
    return None


def _describe_bad(value: str) -> str:
    if not value:
        return "is empty"
    if re.fullmatch(r"[0-9A-Fa-f]+", value):
        if len(value) == 40:
            return "is 40 hex characters, which looks like HMAC-SHA1; HMAC-SHA256 hex is 64"
        return f"is {len(value)} hex characters; HMAC-SHA256 hex is 64"
    if re.fullmatch(r"[A-Za-z0-9+/_\-]+={0,2}", value):
        core = value.rstrip("=")
        if len(core) % 4 != 1:
            n = len(core) * 3 // 4
            return f"decodes to {n} byte{'s' if n != 1 else ''} as base64; HMAC-SHA256 is 32"
        return "is neither valid hex nor valid base64"
    return "contains characters that are neither hex nor base64"


def _unprefixed(token: str):
    m = _PREFIXED.fullmatch(token)
    if m:
        return m.group(2), _decode_digest(m.group(2))
    return token, None


@dataclass
class _Header:
    candidates: list = field(default_factory=list)  # (digest bytes, label or None if canonical)
    problems: list = field(default_factory=list)  # unusable entries, described
    ignored: list = field(default_factory=list)  # entries of other versions (v0, v1a, v2...)
    t_values: list = field(default_factory=list)  # stripe: raw t= values


def _hex_label(form: str) -> str | None:
    return None if form == "hex" else form


def _parse_gateway(sig: str) -> _Header:
    h = _Header()
    for tok in re.split(r"[\s,]+", sig.strip()):
        if not tok:
            continue
        if tok.startswith("sha256="):
            value = tok[len("sha256="):]
            dec = _decode_digest(value)
            if dec:
                h.candidates.append((dec[0], _hex_label(dec[1])))
            else:
                h.problems.append(f"sha256={_show(value)} {_describe_bad(value)}")
            continue
        dec = _decode_digest(tok)
        if dec:
            h.candidates.append((dec[0], _hex_label(dec[1])))
            continue
        value, dec = _unprefixed(tok)
        if dec:
            h.candidates.append((dec[0], _hex_label(dec[1]) or "other_prefix"))
        else:
            h.problems.append(f"{_show(value)} {_describe_bad(value)}")
    return h


def _parse_stripe(sig: str) -> _Header:
    h = _Header()
    for item in sig.split(","):
        item = item.strip()
        if not item:
            continue
        dec = _decode_digest(item)
        if dec:  # a bare signature, without v1=
            h.candidates.append((dec[0], "no_prefix"))
            continue
        if "=" not in item:
            h.problems.append(f"{_show(item)} {_describe_bad(item)}")
            continue
        key, value = (part.strip() for part in item.split("=", 1))
        if key == "t":
            h.t_values.append(value)
        elif key == "v1":
            dec = _decode_digest(value)
            if dec:
                h.candidates.append((dec[0], _hex_label(dec[1])))
            else:
                h.problems.append(f"v1={_show(value)} {_describe_bad(value)}")
        else:
            h.ignored.append(key + "=")
    return h


def _parse_standard(sig: str) -> _Header:
    h = _Header()
    for tok in sig.split():
        if "," in tok:
            version, value = tok.split(",", 1)
            if version != "v1":
                h.ignored.append(version)
                continue
            dec = _decode_digest(value)
            if dec is None:
                h.problems.append(f"v1 entry {_show(value)} {_describe_bad(value)}")
            else:
                h.candidates.append((dec[0], None if dec[1] == "base64" else dec[1]))
            continue
        dec = _decode_digest(tok)
        if dec:
            h.candidates.append((dec[0], "no_prefix"))
            continue
        value, dec = _unprefixed(tok)
        if dec:
            h.candidates.append((dec[0], "other_prefix"))
        else:
            h.problems.append(f"{_show(value)} {_describe_bad(value)}")
    return h


def _scheme_hint(scheme: str, sig: str) -> str | None:
    s = sig.strip()
    looks_stripe = bool(re.search(r"(^|,)\s*t=", s)) and "v1=" in s
    looks_standard = bool(re.search(r"(^|\s)v1,", s))
    looks_gateway = s.startswith("sha256=") or bool(_HEX64.fullmatch(s))
    if scheme != "stripe" and looks_stripe:
        return "it looks like a Stripe-style header (t=...,v1=...): is this endpoint's scheme 'stripe'?"
    if scheme != "standard" and looks_standard:
        return "it looks like a Standard Webhooks signature (v1,<base64>): is this endpoint's scheme 'standard'?"
    if scheme != "gateway" and looks_gateway and not looks_stripe:
        return "it looks like a bare hex signature as the gateway sends: is this endpoint's scheme 'gateway'?"
    return None


def _parse_ts(value, name: str) -> tuple[int | None, str | None]:
    """(seconds, None) or (None, problem). Never raises for strings."""
    if isinstance(value, bool) or not isinstance(value, (int, str, bytes, bytearray)):
        raise InputError(f"timestamp must be an int or a string of digits, got {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            return None, f"{name} {value} is negative"
        return value, None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    text = value.strip()
    if len(text) > _MAX_TS_DIGITS or not _DIGITS.fullmatch(text):
        if _DIGITS.fullmatch(text):
            return None, f"{name} {_show(text)} has {len(text)} digits, too many for Unix seconds"
        return None, f"{name} {_show(text)} is not a whole number of seconds"
    return int(text), None


def _blank(value) -> bool:
    return value is None or (isinstance(value, (str, bytes, bytearray)) and not value.strip())


@dataclass
class _Prepared:
    verdict: str | None = None  # missing_signature / malformed_signature, or None when usable
    detail: str = ""
    candidates: list = field(default_factory=list)
    prefix: bytes | None = None  # signed content = prefix + body (None when unknown)
    ts: int | None = None
    header: _Header | None = None


def _prepare(scheme: str, signature, timestamp, msg_id) -> _Prepared:
    p = _Prepared()
    sig_name = SIGNATURE_HEADER[scheme]
    sig_not_utf8 = False
    if isinstance(signature, (bytes, bytearray)):
        try:
            signature = bytes(signature).decode("utf-8")
        except UnicodeDecodeError:
            signature, sig_not_utf8 = bytes(signature).decode("utf-8", "replace"), True
    elif signature is not None and not isinstance(signature, str):
        raise InputError(f"signature must be a string, got {type(signature).__name__}")
    msg_id = _check_text_arg(msg_id, "msg_id")

    ts_problem = None
    if scheme in ("gateway", "standard") and not _blank(timestamp):
        p.ts, ts_problem = _parse_ts(timestamp, _TS_NAME[scheme])
    id_problem = None
    if scheme == "standard" and p.ts is not None and not _blank(msg_id):
        try:
            p.prefix = f"{msg_id}.{p.ts}.".encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            id_problem = "webhook-id cannot be encoded as UTF-8"
    elif scheme == "gateway":
        p.prefix = b""

    def fail(verdict, detail):
        p.verdict, p.detail = verdict, detail
        return p

    # --- missing
    if _blank(signature):
        if scheme == "stripe" and not _blank(timestamp):
            p.ts, _ = _parse_ts(timestamp, "timestamp")
            if p.ts is not None:
                p.prefix = f"{p.ts}.".encode("ascii")
        return fail("missing_signature", f"no {sig_name} header (or it is empty)")
    if scheme == "standard":
        if _blank(msg_id):
            return fail("missing_signature", "no webhook-id header (or it is empty); Standard Webhooks signs it")
        if _blank(timestamp):
            return fail("missing_signature", "no webhook-timestamp header (or it is empty); Standard Webhooks signs it")

    # --- malformed
    if len(signature) > MAX_HEADER_CHARS:
        return fail(
            "malformed_signature",
            f"{sig_name} header is {len(signature)} characters; the limit is {MAX_HEADER_CHARS}",
        )
    if sig_not_utf8:
        return fail("malformed_signature", f"{sig_name} header is not valid UTF-8 text")
    if ts_problem:
        return fail("malformed_signature", ts_problem)
    if scheme == "standard" and len(msg_id) > MAX_HEADER_CHARS:
        p.prefix = None
        return fail(
            "malformed_signature",
            f"webhook-id is {len(msg_id)} characters; the limit is {MAX_HEADER_CHARS}",
        )
    if id_problem:
        return fail("malformed_signature", id_problem)

    h = {"gateway": _parse_gateway, "stripe": _parse_stripe, "standard": _parse_standard}[scheme](signature)
    p.header = h

    if scheme == "stripe":
        distinct = sorted(set(h.t_values))
        if len(distinct) > 1:
            return fail("malformed_signature", f"Stripe-Signature has {len(distinct)} different t= values")
        if distinct:
            p.ts, problem = _parse_ts(distinct[0], "t=")
            if problem:
                return fail("malformed_signature", problem)
        elif not _blank(timestamp) and h.candidates:
            # Header without t=: use the timestamp argument, but the header itself is
            # not what Stripe sends, so no candidate counts as an exact match.
            p.ts, problem = _parse_ts(timestamp, "timestamp")
            if problem:
                return fail("malformed_signature", problem)
            h.candidates = [(d, "no_prefix") for d, _ in h.candidates]
        else:
            hint = _scheme_hint(scheme, signature)
            return fail(
                "malformed_signature",
                "Stripe-Signature has no t= timestamp; it must look like t=<seconds>,v1=<hex>"
                + (f"; {hint}" if hint else ""),
            )
        p.prefix = f"{p.ts}.".encode("ascii")

    if not h.candidates:
        if h.problems:
            detail = f"{sig_name} has no usable signature: {h.problems[0]}"
        elif h.ignored:
            want = "v1=" if scheme == "stripe" else "v1"
            found = ", ".join(dict.fromkeys(h.ignored))
            detail = f"{sig_name} has no {want} signature (found {found}); only {want} counts"
        else:
            detail = f"{sig_name} has no signature"
        hint = _scheme_hint(scheme, signature)
        return fail("malformed_signature", detail + (f"; {hint}" if hint else ""))
    p.candidates = h.candidates
    return p


# --------------------------------------------------------------------------- body variants

_LAYOUTS = (
    ("compact", {"separators": (",", ":")}),
    ("spaced", {"separators": (", ", ": ")}),
    ("pretty", {"indent": 2}),
    ("pretty_indent4", {"indent": 4}),
)
_PART_DESC = {
    "compact": "compactly (no spaces)",
    "spaced": "with ', ' and ': ' separators (Python's json.dumps default)",
    "pretty": "pretty-printed with indent 2",
    "pretty_indent4": "pretty-printed with indent 4",
    "sorted_keys": "with sorted keys",
    "ascii_escaped": "with non-ASCII characters escaped as \\uXXXX",
    "unescaped_unicode": "with \\uXXXX escapes written out as UTF-8",
    "trailing_newline": "with a trailing newline added",
    "no_trailing_newline": "with the trailing newline removed",
}
_NOT_JSON = object()


def _parse_json(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _NOT_JSON


def _body_variants(body: bytes) -> list[tuple[str, bytes]]:
    """Other byte forms of the same body, each named by what differs from the body.

    Trailing-newline variants apply to any body; the re-serialisations only when the
    body parses as JSON.  When the body is itself one of the re-serialisations, names
    say what differs from it (e.g. "sorted_keys"); otherwise a name starts with the
    layout (e.g. "compact+sorted_keys")."""
    items: list[tuple[tuple[str, ...], bytes]] = [(("trailing_newline",), body + b"\n")]
    if body.endswith(b"\n"):
        items.append((("no_trailing_newline",), body[:-2] if body.endswith(b"\r\n") else body[:-1]))
    obj = _parse_json(body)
    if obj is not _NOT_JSON:
        combos: dict[tuple, bytes] = {}
        for layout, kwargs in _LAYOUTS:
            for sort in (False, True):
                for ascii_ in (False, True):
                    try:
                        text = json.dumps(obj, sort_keys=sort, ensure_ascii=ascii_, **kwargs)
                        dumped = text.encode("utf-8")
                    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
                        continue
                    combos[(layout, sort, ascii_, False)] = dumped
                    combos[(layout, sort, ascii_, True)] = dumped + b"\n"
        original = next((c for c, b in combos.items() if b == body), None)

        def parts(combo):
            layout, sort, ascii_, newline = combo
            if original is None:
                return (layout,) + (("sorted_keys",) if sort else ()) + (
                    ("ascii_escaped",) if ascii_ else ()) + (("trailing_newline",) if newline else ())
            o_layout, o_sort, o_ascii, o_newline = original
            out = []
            if layout != o_layout:
                out.append(layout)
            if sort != o_sort:
                out.append("sorted_keys" if sort else "unsorted_keys")
            if ascii_ != o_ascii:
                out.append("ascii_escaped" if ascii_ else "unescaped_unicode")
            if newline != o_newline:
                out.append("trailing_newline" if newline else "no_trailing_newline")
            return tuple(out)

        items.extend((parts(c), b) for c, b in combos.items())
    items.sort(key=lambda item: len(item[0]))  # stable: fewest differences first
    seen = {body}
    out = []
    for name_parts, data in items:
        if data not in seen:
            seen.add(data)
            out.append(("+".join(name_parts), data))
    return out


def _variant_phrase(name: str) -> str:
    parts = name.split("+")
    phrase = ", ".join(_PART_DESC.get(p, p) for p in parts)
    json_parts = [p for p in parts if p not in ("trailing_newline", "no_trailing_newline")]
    return ("re-serialised " if json_parts else "") + phrase


# --------------------------------------------------------------------------- public API


def sign(
    scheme: str,
    payload: bytes,
    secret: str,
    timestamp: int | None = None,
    msg_id: str | None = None,
) -> str:
    """The header value a sender would send.

    gateway -> ``"sha256=<hex>"`` (timestamp not signed); stripe -> ``"t=<ts>,v1=<hex>"``;
    standard -> ``"v1,<base64>"`` (needs msg_id).  ``timestamp`` defaults to now for
    stripe/standard; a non-integer or negative timestamp raises :class:`InputError`."""
    _check_scheme(scheme)
    body = _cap(_as_bytes(payload))
    _check_secret(secret, "secret")
    key = _primary_key(scheme, secret, "secret")
    if scheme == "gateway":
        return "sha256=" + _mac(key, body).hex()
    if timestamp is None:
        ts = int(time.time())
    else:
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, str)):
            raise InputError(f"timestamp must be an int or a string of digits, got {timestamp!r}")
        ts, problem = _parse_ts(timestamp, "timestamp")
        if problem:
            raise InputError(problem)
    if scheme == "stripe":
        return f"t={ts},v1=" + _mac(key, f"{ts}.".encode("ascii") + body).hex()
    msg_id = _check_text_arg(msg_id, "msg_id")
    if _blank(msg_id):
        raise InputError("msg_id (webhook-id) is required for the standard scheme")
    mac = _mac(key, _utf8(f"{msg_id}.{ts}.", "msg_id") + body)
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(
    scheme: str,
    payload: bytes,
    signature: str | None,
    secrets: list[str],
    timestamp: str | int | None = None,
    msg_id: str | None = None,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Strict check: True only when a canonically encoded signature matches one of the
    secrets (any of them, as during a rotation) and the timestamp, if any, is within
    ``tolerance`` seconds of ``now`` in either direction.

    Request input (header, timestamp, id, body, including an oversized body) never
    raises; caller configuration errors raise :class:`InputError`."""
    _check_scheme(scheme)
    body = _as_bytes(payload)
    secrets = _check_secrets(secrets)
    keys = [_primary_key(scheme, s, f"secret #{i + 1}") for i, s in enumerate(secrets)]
    tolerance = _check_int(tolerance, "tolerance")
    now = _check_now(now)
    if len(body) > MAX_PAYLOAD_BYTES:
        return False
    p = _prepare(scheme, signature, timestamp, msg_id)
    if p.verdict is not None or p.prefix is None:
        return False
    # Both directions: Stripe's own libraries only reject old timestamps; the issue
    # requires rejecting timestamps too far in the future as well.
    in_window = p.ts is None or abs(now - p.ts) <= tolerance
    content = p.prefix + body
    matched = False
    for key in keys:  # no early exit
        if _matches(p.candidates, _mac(key, content), want=lambda label: label is None) is None:
            matched = True
    return matched and in_window


def _loose_candidates(text: str) -> list[tuple[bytes, str]]:
    """Digests in an engineer-supplied signature, whatever its form or prefix."""
    if len(text) > MAX_HEADER_CHARS:
        return []
    out = []
    for tok in re.split(r"[\s,]+", text.strip()):
        dec = _decode_digest(tok) or _unprefixed(tok)[1] if tok else None
        if dec:
            out.append(dec)
    return out


def diagnose(
    scheme: str,
    payload: bytes,
    signature: str | None,
    secrets: list[str],
    timestamp: str | int | None = None,
    msg_id: str | None = None,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    computed: str | None = None,
    previous_from: int = 1,
) -> Diagnosis:
    """One verdict from VERDICTS explaining why a signature does (not) verify.

    ``secrets[:previous_from]`` are current, ``secrets[previous_from:]`` rotated out.
    Checks, in order: missing -> malformed -> exact match (valid / previous_secret, then
    timestamp_skew if outside tolerance) -> encoding_mismatch -> secret_encoding ->
    body_reserialized -> wrong_secret.  ``computed`` is the signature the engineer's own
    endpoint computed; ``computed_variant`` tells what it computed ("raw_body" = right).

    Raises :class:`InputError` only for caller errors (see the module docstring),
    including a payload over ``MAX_PAYLOAD_BYTES``."""
    _check_scheme(scheme)
    body = _cap(_as_bytes(payload))
    secrets = _check_secrets(secrets)
    keys = [_primary_key(scheme, s, f"secret #{i + 1}") for i, s in enumerate(secrets)]
    tolerance = _check_int(tolerance, "tolerance")
    now = _check_now(now)
    previous_from = _check_int(previous_from, "previous_from")
    if previous_from > len(secrets):
        raise InputError(f"previous_from is {previous_from} but only {len(secrets)} secret(s) were given")
    computed = _check_text_arg(computed, "computed")

    p = _prepare(scheme, signature, timestamp, msg_id)
    skew = None if p.ts is None else now - p.ts
    cache: dict = {}

    def variants():
        if "v" not in cache:
            cache["v"] = _body_variants(body)
        return cache["v"]

    def alt_keys(i):
        if i not in cache:
            cache[i] = _alt_keys(scheme, secrets[i], keys[i])
        return cache[i]

    computed_variant = None
    if computed is not None:
        computed_variant = _computed_variant(
            scheme, computed, body, keys, previous_from, p, variants, alt_keys
        )

    def result(verdict, detail, matched=None, variant=None):
        return Diagnosis(verdict, verdict == "valid", scheme, skew, matched, detail, variant, computed_variant)

    if p.verdict is not None:
        return result(p.verdict, p.detail)

    def secret_note(i):
        return f" (with rotated-out secret #{i + 1})" if i >= previous_from else ""

    def skew_text():
        ms = "; it looks like milliseconds, the scheme uses seconds" if p.ts > _MS_THRESHOLD else ""
        if skew >= 0:
            return f"timestamp is {skew} s old (tolerance {tolerance} s){ms}"
        return f"timestamp is {-skew} s in the future (tolerance {tolerance} s){ms}"

    outside = skew is not None and abs(skew) > tolerance
    also_skew = f"; also, the {skew_text()}" if outside else ""
    content = p.prefix + body
    macs = [_mac(k, content) for k in keys]

    # exact match
    for i, mac in enumerate(macs):
        if _matches(p.candidates, mac, want=lambda label: label is None) is None:
            if outside:
                return result("timestamp_skew", skew_text() + secret_note(i), matched=i)
            if i < previous_from:
                where = "" if i == 0 else f" (secret #{i + 1})"
                within = f"; timestamp within {tolerance} s" if skew is not None else ""
                return result(
                    "valid",
                    f"signature matches {_CONTENT_DESC[scheme]} with the current secret{where}{within}",
                    matched=i,
                )
            return result(
                "previous_secret",
                f"signature matches rotated-out secret #{i + 1}, not the current one: "
                "the sender still signs with the old secret",
                matched=i,
            )

    def encoding_note(label):
        if not label:
            return ""
        return f", and the signature is {_label_desc(scheme, label)} where this scheme sends {_CANON_DESC[scheme]}"

    # encoding mismatch
    for i, mac in enumerate(macs):
        label = _matches(p.candidates, mac, want=lambda label: label is not None)
        if label:
            return result(
                "encoding_mismatch",
                f"signature is {_label_desc(scheme, label)}; this scheme sends {_CANON_DESC[scheme]} "
                f"(it matches once decoded){secret_note(i)}{also_skew}",
                matched=i,
                variant=label,
            )

    # secret decoded the other way
    for i in range(len(keys)):
        for name, key in alt_keys(i):
            label = _matches(p.candidates, _mac(key, content))
            if label is not False:
                return result(
                    "secret_encoding",
                    f"signature matches {_SECRET_DESC[name]}; {_SECRET_EXPECTED[scheme]}"
                    f"{secret_note(i)}{encoding_note(label)}{also_skew}",
                    matched=i,
                    variant=name,
                )

    # body re-serialised
    for name, data in variants():
        for i, key in enumerate(keys):
            label = _matches(p.candidates, _mac(key, p.prefix + data))
            if label is not False:
                return result(
                    "body_reserialized",
                    f"signature matches the body {_variant_phrase(name)}{secret_note(i)}: "
                    f"verify the raw request bytes, not re-serialised JSON{encoding_note(label)}{also_skew}",
                    matched=i,
                    variant=name,
                )

    # wrong secret
    notes = []
    if not body:
        notes.append("the payload is empty: was the raw body captured?")
    elif _parse_json(body) is _NOT_JSON:
        try:
            body.decode("utf-8")
            notes.append("the body is not JSON, so only trailing-newline variants were tried")
        except UnicodeDecodeError:
            notes.append("the body is not UTF-8, so only trailing-newline variants were tried")
    spaced = [str(i + 1) for i, s in enumerate(secrets) if s != s.strip()]
    if spaced:
        notes.append(f"secret #{', #'.join(spaced)} has leading or trailing whitespace")
    labels = {label for _, label in p.candidates if label}
    if labels and not any(label is None for _, label in p.candidates):
        notes.append(f"the signature is {_label_desc(scheme, sorted(labels)[0])} where this scheme sends {_CANON_DESC[scheme]}")
    hint = _scheme_hint(scheme, signature if isinstance(signature, str) else "")
    if hint:
        notes.append(hint)
    if outside:
        notes.append(skew_text())
    tried = len(secrets)
    detail = (
        f"signature matches no secret ({tried} tried), secret decoding or body re-serialisation: "
        f"the secret differs or {_ALTERED_DESC[scheme]}"
    )
    return result("wrong_secret", detail + "".join(f"; {n}" for n in notes))


_SECRET_DESC = {
    "secret_base64_decoded": "the secret base64-decoded (after any 'whsec_' prefix)",
    "secret_hex_decoded": "the secret hex-decoded",
    "secret_without_prefix": "the secret without its 'whsec_' prefix",
    "secret_raw": "the whole secret string used as raw UTF-8 (as Stripe does)",
    "secret_raw_without_prefix": "the part after 'whsec_' used as raw UTF-8, not base64-decoded",
}
_SECRET_EXPECTED = {
    "gateway": "this scheme uses the secret string as-is (UTF-8)",
    "stripe": "this scheme uses the whole secret string as-is (UTF-8)",
    "standard": "this scheme base64-decodes the part after 'whsec_'",
}


def _label_desc(scheme: str, label: str) -> str:
    if label == "no_prefix":
        return "a bare signature without 't=...,v1=...'" if scheme == "stripe" else "missing the 'v1,' prefix"
    if label == "other_prefix":
        return "prefixed with something other than " + ("'sha256='" if scheme == "gateway" else "'v1,'")
    return _FORM_DESC.get(label, label)


def _computed_variant(scheme, computed, body, keys, previous_from, p, variants, alt_keys) -> str:
    """What the engineer's own endpoint computed: "raw_body" (correct), an encoding
    label, "previous_secret", a secret-encoding or body variant name, "body_only",
    "timestamp_dot_body", or "unknown"."""
    cands = _loose_candidates(computed)
    if not cands:
        return "unknown"
    canonical = "base64" if scheme == "standard" else "hex"

    def hit(mac):
        form = False
        for digest, f in cands:
            if hmac.compare_digest(digest, mac) and form is False:
                form = f
        return form

    if p.prefix is not None:
        content = p.prefix + body
        for i, key in enumerate(keys):
            form = hit(_mac(key, content))
            if form is not False:
                if i >= previous_from:
                    return "previous_secret"
                return "raw_body" if form == canonical else form
        for i in range(len(keys)):
            for name, key in alt_keys(i):
                if hit(_mac(key, content)) is not False:
                    return name
        for name, data in variants():
            for key in keys:
                if hit(_mac(key, p.prefix + data)) is not False:
                    return name
    structural = []
    if scheme != "gateway":
        structural.append(("body_only", body))
    if p.ts is not None and (scheme != "stripe"):
        structural.append(("timestamp_dot_body", f"{p.ts}.".encode("ascii") + body))
    for name, data in structural:
        for key in keys:
            if hit(_mac(key, data)) is not False:
                return name
    return "unknown"

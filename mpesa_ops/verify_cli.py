"""`mpesa-ops verify`: check one webhook signature and say why it fails."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mpesa_ops import catalogue
from mpesa_ops.signatures import DEFAULT_TOLERANCE, SCHEMES, InputError, diagnose

SECRET_ENV = "MPESA_OPS_WEBHOOK_SECRET"
PREVIOUS_SECRET_ENV = "MPESA_OPS_WEBHOOK_PREVIOUS_SECRET"


class UsageError(ValueError):
    """Wrong arguments: exit status 2 with this message."""


def resolve_secrets(given: list[str] | None) -> list[str]:
    """--secret values (current first); `env:NAME` reads the variable NAME, so the
    secret stays out of the shell history and the process list. Without --secret,
    MPESA_OPS_WEBHOOK_SECRET and then MPESA_OPS_WEBHOOK_PREVIOUS_SECRET."""
    if not given:
        secrets = [os.environ.get(SECRET_ENV), os.environ.get(PREVIOUS_SECRET_ENV)]
        secrets = [s for s in secrets if s]
        if not secrets:
            raise UsageError(f"give --secret (or env:NAME), or set {SECRET_ENV}")
        return secrets
    out = []
    for value in given:
        if value.startswith("env:"):
            name = value[4:]
            if not os.environ.get(name):
                raise UsageError(f"--secret env:{name}: the environment variable {name} is not set or empty")
            out.append(os.environ[name])
        else:
            out.append(value)
    return out


def read_payload(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"--payload {path}: {exc.strerror or exc}") from None


def run(args) -> tuple[int, dict]:
    """(exit status, result) for parsed arguments; raises UsageError for wrong ones."""
    payload = read_payload(args.payload)
    secrets = resolve_secrets(args.secret)
    now = args.now if args.now is not None else int(time.time())
    try:
        d = diagnose(args.scheme, payload, args.signature, secrets, timestamp=args.timestamp, msg_id=args.id,
                     now=now, tolerance=args.tolerance, computed=args.computed)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    guide = catalogue.lookup(d.verdict).guide
    result = {
        "valid": d.valid,
        "verdict": d.verdict,
        "explanation": f"{guide.meaning} ({d.detail})" if d.detail else guide.meaning,
        "steps": guide.steps,
        "scheme": d.scheme,
        "detail": d.detail,
        "variant": d.variant,
        "computed_variant": d.computed_variant,
        "matched_secret": d.matched_secret,  # an index into the secrets given, never the secret
    }
    if d.skew_seconds is not None:
        result["skew_seconds"] = d.skew_seconds
    return (0 if d.valid else 1), result


def print_text(result: dict) -> None:
    print("VALID" if result["valid"] else f"INVALID: {result['verdict']}")
    print(result["explanation"])
    if "skew_seconds" in result:
        print(f"clock skew: {result['skew_seconds']} s")
    if result.get("computed_variant"):
        print(f"your endpoint computed: {result['computed_variant']}")
    if not result["valid"]:
        for step in result["steps"]:
            print(f"  - {step}")


def add_parser(sub) -> None:
    v = sub.add_parser("verify", help="check a webhook signature and diagnose why it fails")
    v.add_argument("--payload", required=True, help="file with the exact body bytes that were signed (- for stdin)")
    v.add_argument("--signature", required=True, help="the signature header as sent, e.g. sha256=<hex>")
    v.add_argument("--timestamp", help="the timestamp header (X-Timestamp, webhook-timestamp)")
    v.add_argument("--id", help="the message id (webhook-id), for the standard scheme")
    v.add_argument("--secret", action="append", metavar="S",
                   help="a secret, current first, then previous ones; env:NAME reads it from the environment "
                        f"(default: ${SECRET_ENV} and ${PREVIOUS_SECRET_ENV})")
    v.add_argument("--scheme", choices=SCHEMES, default="gateway", help="signature scheme (default gateway)")
    v.add_argument("--computed", help="the signature your own endpoint computed: tells which variant it used")
    v.add_argument("--now", type=int, help="the time to check against, Unix seconds (default: now)")
    v.add_argument("--tolerance", type=int, default=DEFAULT_TOLERANCE,
                   help=f"allowed clock skew in seconds, both directions (default {DEFAULT_TOLERANCE})")
    v.add_argument("--json", action="store_true", help="print one JSON object")

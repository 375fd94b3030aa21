"""Command-line parsers for `mpesa-ops detect` (a detection run over the whole store,
then the due notifications) and `mpesa-ops alerts` (what it found)."""

from __future__ import annotations

import sys

from mpesa_ops.cli_args import aware_time, positive_int
from mpesa_ops.formatting import pct


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def cmd_detect(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from mpesa_ops.cli import Failure, _print_json, _store
    from mpesa_ops.config import ConfigError
    from mpesa_ops.ingest.db import error_reason, redact
    from mpesa_ops.ingest.detect.run import detect
    from mpesa_ops.ingest.detect.settings import load_settings
    from mpesa_ops.ingest.notify import NotifyReport, send_pending

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise Failure(f"{exc}; fix the secrets file (see README, 'How detection decides')") from None
    engine = _store(args.db, must_exist=True)
    try:
        report = detect(engine, now=args.now, since=args.since, settings=settings)
    except SQLAlchemyError as exc:
        raise Failure(f"detection stopped: the store at {redact(str(engine.url))} failed: {error_reason(exc)}; "
                      "alerts are as before, run it again") from None
    notified = NotifyReport()
    note = None
    if not args.no_notify:
        try:
            notified = send_pending(engine)
        except ConfigError as exc:
            note = f"notifications not sent: {exc}"
    if args.json:
        _print_json({"opened": report.opened, "resolved": report.resolved, "firing": report.firing,
                     "pending": report.pending, "queued": report.notifications, "sent": notified.sent,
                     "retrying": notified.retrying, "notify_failed": notified.failed, "message": report.message,
                     "data_from": _iso(report.data_from), "data_to": _iso(report.data_to)})
    else:
        print(report.message)
        if notified.sent or notified.retrying or notified.failed:
            print(f"notifications: {notified.sent} sent, {notified.retrying} to retry, {notified.failed} given up")
    for line in notified.errors + ([note] if note else []):
        print(f"mpesa-ops detect: {line}", file=sys.stderr)
    return 0


def _pct(value) -> str:
    return pct(value, missing="")


def readable(alert: dict) -> dict:
    """An alert as `alerts --json` prints it: the stored fields with the figures that
    read right for its detector (see ALERTS_JSON) and the window its counts cover."""
    from mpesa_ops.alert_figures import figures
    from mpesa_ops.ingest.fields import NAIROBI

    fig = figures(alert)
    return {**alert, **fig, "counted_from": fig["counted_from"].astimezone(NAIROBI).isoformat(),
            "counted_to": fig["counted_to"].astimezone(NAIROBI).isoformat()}


def print_alerts(items: list[dict]) -> None:
    if not items:
        print("no alerts")
        return
    print(f"{'id':>5}  {'status':<8} {'severity':<8} {'detector':<9} {'code':<18} {'shortcode':<9} "
          f"{'started (Nairobi)':<16}  {'observed':>8} {'normal':>8}  title")
    for a in items:
        fig = readable(a)
        if a["detector"] == "volume":  # payments that came against those expected
            seen, normal = f"{fig['observed']:,}", f"~{fig['expected']:,}"
        else:
            seen, normal = _pct(fig["observed_rate"]), _pct(fig["baseline_rate"])
        mark = " (acknowledged by " + a["acknowledged_by"] + ")" if a["acknowledged_by"] else ""
        mark += " (silenced)" if a["silenced"] else ""
        print(f"{a['id']:>5}  {a['status']:<8} {a['severity']:<8} {a['detector']:<9} {a['code'][:18]:<18} "
              f"{a['shortcode'] or 'all':<9} {a['started_at'][:16].replace('T', ' '):<16}  {seen:>8} {normal:>8}  "
              f"{a['title']}{mark}")


def cmd_alerts(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from mpesa_ops.cli import Failure, _print_json, _store
    from mpesa_ops.ingest.db import error_reason, redact
    from mpesa_ops.ingest.detect.alerts import list_alerts

    engine = _store(args.db, must_exist=True)
    try:
        items = list_alerts(engine, include_resolved=args.all, limit=args.limit)
    except SQLAlchemyError as exc:
        raise Failure(f"cannot read alerts from {redact(str(engine.url))}: {error_reason(exc)}") from None
    if args.json:
        _print_json([readable(a) for a in items])
    else:
        print_alerts(items)
    return 0


ALERTS_JSON = (
    "print one JSON array of alert objects. Per detector: rate, pending and slow_burn count "
    "failures (for pending: payments still pending) of attempts in the window counted_from..counted_to "
    "(slow_burn: its peak 6 hours); observed is the failures, expected attempts x baseline_rate, "
    "observed_rate the share failing and baseline_rate the normal share. volume: observed is the "
    "payments that came in the window, expected the payments normally seen then, observed_rate "
    "observed/expected, baseline_rate 1 (normal), failures null")


def add_parsers(sub, db_help: str) -> None:
    """Register this module's commands on the `mpesa-ops` subparsers."""
    d = sub.add_parser("detect", help="find failure spikes over all stored history, update alerts, notify")
    d.add_argument("--db", help=db_help)
    d.add_argument("--since", type=aware_time, help="only recompute from this time (ISO 8601 with offset); "
                                               "default: everything stored")
    d.add_argument("--now", type=aware_time, help="the time to judge at (default: the end of the newest data)")
    d.add_argument("--no-notify", action="store_true", help="queue notifications but do not send them now")
    d.add_argument("--json", action="store_true", help="print one JSON object: opened, resolved, firing, "
                                                       "pending, queued, sent, retrying, notify_failed, message")
    d.set_defaults(func=cmd_detect)

    a = sub.add_parser("alerts", help="list alerts: open ones and those resolved in the last 24 hours")
    a.add_argument("--db", help=db_help)
    a.add_argument("--all", action="store_true", help="every alert ever raised, not only open and recent ones")
    a.add_argument("--limit", type=positive_int, help="at most this many alerts")
    a.add_argument("--json", action="store_true", help=ALERTS_JSON)
    a.set_defaults(func=cmd_alerts)

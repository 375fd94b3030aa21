"""Notifications when an alert fires or resolves: Slack incoming webhooks and plain
JSON webhooks, configured in secrets.toml::

    [notify]
    timeout_seconds = 5        # per HTTP request
    retries = 2                # immediate retries of a 429, a 5xx or a transport error
    max_attempts = 6           # sends before a notification is given up ("failed")
    backoff_minutes = 1        # wait before the next send: 1, 2, 4, 8 ... minutes

    [notify.targets.ops-slack]
    type = "slack"             # or "json"
    url = "https://hooks.slack.com/services/..."
    min_severity = "warning"   # or "critical"

Detection queues one row per (alert, event, target) in ``alert_notifications``;
``send_pending`` sends the due ones. A send that fails is recorded with its reason and
retried later; nothing here raises into a load. Target URLs are secrets: they are
never printed, logged or stored (rows name the target).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import and_, select, update

from mpesa_ops.config import ConfigError, section
from mpesa_ops.formatting import pct
from mpesa_ops.ingest.schema import alert_notifications, alerts

SEVERITY_RANK = {"warning": 1, "critical": 2}
TYPES = ("slack", "json")
BUDGET_SECONDS = 30.0  # one send_pending call stops starting sends after this long


@dataclass(frozen=True)
class Target:
    name: str
    type: str
    url: str = field(repr=False)
    min_severity: str = "warning"

    def wants(self, severity: str) -> bool:
        return SEVERITY_RANK.get(severity, 2) >= SEVERITY_RANK[self.min_severity]


@dataclass(frozen=True)
class NotifySettings:
    timeout_seconds: float = 5.0
    retries: int = 2
    max_attempts: int = 6
    backoff_minutes: float = 1.0


@dataclass
class NotifyReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0  # given up
    errors: list[str] = field(default_factory=list)  # one line per failed send, no URL


def _number(table: dict, key: str, default, kind):
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"[notify] {key}: expected a number >= 0")
    return kind(value)


def load_config(secrets: dict | None = None) -> tuple[NotifySettings, list[Target]]:
    """The [notify] settings and targets; a bad entry is a ConfigError naming it (never its URL)."""
    table = section("notify", secrets)
    settings = NotifySettings(
        timeout_seconds=_number(table, "timeout_seconds", 5.0, float) or 5.0,
        retries=_number(table, "retries", 2, int),
        max_attempts=max(_number(table, "max_attempts", 6, int), 1),
        backoff_minutes=_number(table, "backoff_minutes", 1.0, float),
    )
    targets = []
    for name, spec in sorted((table.get("targets") or {}).items()):
        where = f"[notify.targets.{name}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a table with type and url")
        kind, url, level = spec.get("type"), spec.get("url"), spec.get("min_severity", "warning")
        if kind not in TYPES:
            raise ConfigError(f"{where} type: expected one of {', '.join(TYPES)}")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ConfigError(f"{where} url: expected an http(s) URL")
        if level not in SEVERITY_RANK:
            raise ConfigError(f"{where} min_severity: expected warning or critical")
        targets.append(Target(name, kind, url, level))
    return settings, targets


def queue(conn, alert_id: int, event: str, severity: str, targets: list[Target], now: datetime) -> int:
    """Queue ``event`` ("fired" or "resolved") of an alert for every target that wants
    its severity, once: a (alert, event, target) already queued is not queued again."""
    have = set(conn.execute(select(alert_notifications.c.target).where(and_(
        alert_notifications.c.alert_id == alert_id, alert_notifications.c.event == event))).scalars())
    rows = [{"alert_id": alert_id, "event": event, "target": t.name, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now} for t in targets if t.wants(severity) and t.name not in have]
    if rows:
        conn.execute(alert_notifications.insert(), rows)
    return len(rows)


def _pct(value) -> str:
    return pct(value, digits=2, missing="?")


def message_text(event: str, alert: dict) -> str:
    """One line a person reads in Slack."""
    where = f"shortcode {alert['shortcode']}" if alert["shortcode"] else "all shortcodes"
    head = "RESOLVED" if event == "resolved" else f"FIRING {alert['severity'].upper()}"
    if alert["detector"] == "volume":
        what = f"payment requests down to {_pct(alert['observed_rate'])} of normal"
    else:
        what = (f"{_pct(alert['observed_rate'])} vs baseline {_pct(alert['baseline_rate'])} "
                f"({alert['failures']:,}/{alert['attempts']:,} in {alert['window_minutes']} min)")
    steps = alert["guide"]["steps"][:2]
    return (f"{head}: {alert['guide']['title']} on {where} since {alert['started_at']}: {what}."
            + (f" First: {' '.join(steps)}" if event == "fired" and steps else ""))


def payload(target: Target, event: str, alert: dict) -> dict:
    if target.type == "slack":
        return {"text": message_text(event, alert)}
    body = {k: v for k, v in alert.items() if k != "details"}
    return {"event": event, "alert": body}


def _post(client: httpx.Client, target: Target, body: dict, settings: NotifySettings) -> str | None:
    """None when delivered, else the reason (without the URL)."""
    reason = None
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
        try:
            response = client.post(target.url, json=body, timeout=settings.timeout_seconds)
        except httpx.TimeoutException:
            reason = f"no answer within {settings.timeout_seconds:g} s"
            continue
        except httpx.HTTPError as exc:
            reason = f"could not connect ({type(exc).__name__})"
            continue
        if response.is_success:
            return None
        reason = f"HTTP {response.status_code}"
        if response.status_code != 429 and response.status_code < 500:
            return reason  # the target refuses it: retrying now will not help
    return reason


def send_pending(engine, *, now: datetime | None = None, client: httpx.Client | None = None,
                 secrets: dict | None = None) -> NotifyReport:
    """Send the queued notifications that are due. Never raises for a target that
    fails: the row records the reason, and the next call retries it after a backoff."""
    from mpesa_ops.ingest.detect.alerts import as_dict

    now = now or datetime.now(timezone.utc)
    report = NotifyReport()
    settings, targets = load_config(secrets)
    by_name = {t.name: t for t in targets}
    with engine.connect() as conn:
        due = [dict(r) for r in conn.execute(
            select(alert_notifications).where(and_(alert_notifications.c.status == "pending",
                                                   alert_notifications.c.next_attempt_at <= now))
            .order_by(alert_notifications.c.id)).mappings()]
    if not due:
        return report
    with engine.connect() as conn:
        alert_rows = {r["id"]: dict(r) for r in conn.execute(
            select(alerts).where(alerts.c.id.in_({row["alert_id"] for row in due}))).mappings()}
    own = client is None
    client = client or httpx.Client(follow_redirects=False)
    started = time.monotonic()
    try:
        for row in due:
            if time.monotonic() - started > BUDGET_SECONDS:
                break
            target = by_name.get(row["target"])
            alert_row = alert_rows.get(row["alert_id"])
            if target is None or alert_row is None:
                reason = "target no longer configured" if target is None else "alert no longer stored"
                _record(engine, row, None, reason, now, settings, give_up=True)
                report.failed += 1
                continue
            alert = as_dict(alert_row, now)
            reason = _post(client, target, payload(target, row["event"], alert), settings)
            status = _record(engine, row, target, reason, now, settings)
            if status == "sent":
                report.sent += 1
            else:
                report.failed += status == "failed"
                report.retrying += status == "pending"
                report.errors.append(f"notification {row['id']} to {target.name}: {reason}")
    finally:
        if own:
            client.close()
    return report


def _record(engine, row: dict, target: Target | None, reason: str | None, now: datetime,
            settings: NotifySettings, give_up: bool = False) -> str:
    attempts = row["attempts"] + 1
    if reason is None:
        values = {"status": "sent", "attempts": attempts, "sent_at": now, "last_error": None, "next_attempt_at": None}
    elif give_up or attempts >= settings.max_attempts:
        values = {"status": "failed", "attempts": attempts, "last_error": reason, "next_attempt_at": None}
    else:
        wait = timedelta(minutes=settings.backoff_minutes * 2 ** (attempts - 1))
        values = {"status": "pending", "attempts": attempts, "last_error": reason, "next_attempt_at": now + wait}
    with engine.begin() as conn:
        conn.execute(update(alert_notifications).where(alert_notifications.c.id == row["id"]).values(**values))
    return values["status"]

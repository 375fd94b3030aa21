"""The alert store: one row per episode, at most one open (pending or firing) per key
(detector|code|shortcode). Detection reconciles what it computed with what is stored,
so a re-run updates alerts in place (keeping their id, acknowledgement and silence)
instead of adding new ones; people acknowledge and silence through this module."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import and_, case, delete, func, or_, select, update

from mpesa_ops import catalogue
from mpesa_ops.ingest.fields import NAIROBI
from mpesa_ops.ingest.schema import alert_notifications, alerts, detection_runs

OPEN = ("pending", "firing")
RECENT = timedelta(hours=24)
COMPUTED = ("key", "detector", "code", "family", "shortcode", "severity", "status", "started_at", "ended_at",
            "last_seen_at", "window_minutes", "failures", "attempts", "observed_rate", "baseline_rate", "score",
            "top_shortcodes", "details")


class AlertError(ValueError):
    """An acknowledge or silence that cannot be done; the message says why."""


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def _overlaps(a_start, a_last, b_start, b_last, quiet: timedelta) -> bool:
    return a_start <= b_last + quiet and b_start <= a_last + quiet


def reconcile(conn, computed: list[dict], *, scope_from: datetime, quiet: timedelta, wall: datetime):
    """Make the stored alerts from ``scope_from`` on match ``computed`` (dicts of the
    COMPUTED columns). Returns [(alert_id, old_status or None, new row dict)], the
    ids deleted, and how many were opened and resolved."""
    stored = [dict(r) for r in conn.execute(
        select(alerts).where(or_(alerts.c.last_seen_at >= scope_from - quiet, alerts.c.status.in_(OPEN)))
        .order_by(alerts.c.id)).mappings()]
    by_key: dict[str, list[dict]] = {}
    for row in stored:
        by_key.setdefault(row["key"], []).append(row)
    matched: set[int] = set()
    changes, opened, resolved = [], 0, 0
    for new in computed:
        same = [r for r in by_key.get(new["key"], []) if r["id"] not in matched
                and _overlaps(r["started_at"], r["last_seen_at"], new["started_at"], new["last_seen_at"], quiet)]
        if same:
            old = same[0]
            matched.update(r["id"] for r in same)
            values = dict(new, started_at=min(old["started_at"], new["started_at"]), updated_at=wall)
            if any(old[k] != values[k] for k in COMPUTED):
                conn.execute(update(alerts).where(alerts.c.id == old["id"]).values(**values))
            for extra in same[1:]:  # late data joined two episodes into one
                _delete(conn, [extra["id"]])
            resolved += old["status"] != "resolved" and new["status"] == "resolved"
            changes.append((old["id"], old["status"], values))
        else:
            alert_id = conn.execute(alerts.insert().values(**new, created_at=wall, updated_at=wall)
                                    .returning(alerts.c.id)).scalar_one()
            opened += 1
            resolved += new["status"] == "resolved"
            changes.append((alert_id, None, new))
    gone = []  # stored in the recomputed span, no longer anomalous: late data explained them away
    for row in stored:
        if row["id"] in matched:
            continue
        if row["started_at"] >= scope_from or row["status"] == "resolved":
            gone.append(row["id"])
        else:  # began before the recomputed span and is no longer anomalous in it
            conn.execute(update(alerts).where(alerts.c.id == row["id"]).values(
                status="resolved", ended_at=row["last_seen_at"] + timedelta(minutes=5), updated_at=wall))
            resolved += 1
    _delete(conn, gone)
    return changes, opened, resolved


def _delete(conn, ids: list[int]) -> None:
    if ids:
        conn.execute(delete(alert_notifications).where(alert_notifications.c.alert_id.in_(ids)))
        conn.execute(delete(alerts).where(alerts.c.id.in_(ids)))


def _get(conn, alert_id: int) -> dict:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    if row is None:
        raise AlertError(f"no alert with id {alert_id}; list them with: mpesa-ops alerts --all")
    return dict(row)


def acknowledge(engine, alert_id: int, *, by: str, comment: str, now: datetime | None = None) -> None:
    """Record who owns the alert and what they said; detection runs keep it."""
    if not (by or "").strip():
        raise AlertError("acknowledge needs the name of who takes the alert")
    when = _now(now)
    with engine.begin() as conn:
        _get(conn, alert_id)
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
            acknowledged_by=by.strip(), acknowledged_at=when, ack_comment=comment, updated_at=when))


def silence(engine, alert_id: int, *, until: datetime, by: str, comment: str, now: datetime | None = None) -> None:
    """No notifications for this alert until ``until``; detection runs keep it."""
    when = _now(now)
    if until.tzinfo is None:
        raise AlertError("silence needs an aware time (with its offset) to silence until")
    if until <= when:
        raise AlertError(f"silence until {until.isoformat()} is not in the future")
    if not (by or "").strip():
        raise AlertError("silence needs the name of who silences the alert")
    with engine.begin() as conn:
        _get(conn, alert_id)
        conn.execute(update(alerts).where(alerts.c.id == alert_id).values(
            silenced_until=until, silenced_by=by.strip(), silence_comment=comment, updated_at=when))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(NAIROBI).isoformat()


def as_dict(row: dict, now: datetime) -> dict:
    """An alert as the CLI's --json and the dashboard see it."""
    info = catalogue.lookup(row["code"])
    guide = info.guide.as_dict()
    details = orjson.loads(row["details"]) if row["details"] else {}
    return {
        "id": row["id"], "key": row["key"], "detector": row["detector"], "code": row["code"],
        "family": row["family"], "title": info.title, "severity": row["severity"], "status": row["status"],
        "shortcode": row["shortcode"], "started_at": _iso(row["started_at"]), "ended_at": _iso(row["ended_at"]),
        "last_seen_at": _iso(row["last_seen_at"]),
        "fired_at": _iso(datetime.fromisoformat(details["fired_at"])) if details.get("fired_at") else None,
        "window_minutes": row["window_minutes"], "failures": row["failures"], "attempts": row["attempts"],
        "observed_rate": row["observed_rate"], "baseline_rate": row["baseline_rate"], "score": row["score"],
        "top_shortcodes": orjson.loads(row["top_shortcodes"]) if row["top_shortcodes"] else [],
        "guide": guide,
        "acknowledged_by": row["acknowledged_by"], "acknowledged_at": _iso(row["acknowledged_at"]),
        "ack_comment": row["ack_comment"],
        "silenced": bool(row["silenced_until"] and row["silenced_until"] > now),
        "silenced_until": _iso(row["silenced_until"]), "silenced_by": row["silenced_by"],
        "silence_comment": row["silence_comment"],
        "details": details,
    }


def data_clock(conn) -> datetime | None:
    """The end of the data the latest successful detection examined."""
    return conn.execute(select(func.max(detection_runs.c.data_to)).where(detection_runs.c.status == "ok")).scalar()


def list_alerts(engine, *, include_resolved: bool, limit: int | None = None, now: datetime | None = None) -> list[dict]:
    """Alerts, firing first, then pending, then resolved; most recent first within each.

    Without ``include_resolved``: the open ones plus those resolved within 24 hours of
    the end of the data last examined (the data's clock, so old demo data still shows
    its last day)."""
    wall = _now(now)
    rank = case((alerts.c.status == "firing", 0), (alerts.c.status == "pending", 1), else_=2)
    q = select(alerts).order_by(rank, alerts.c.started_at.desc(), alerts.c.id.desc())
    with engine.connect() as conn:
        if not include_resolved:
            clock = data_clock(conn)
            if isinstance(clock, str):
                clock = datetime.fromisoformat(clock).replace(tzinfo=timezone.utc)
            recent = (clock or wall) - RECENT
            q = q.where(or_(alerts.c.status.in_(OPEN), and_(alerts.c.status == "resolved", alerts.c.ended_at >= recent)))
        if limit is not None:
            q = q.limit(limit)
        return [as_dict(dict(r), wall) for r in conn.execute(q).mappings()]

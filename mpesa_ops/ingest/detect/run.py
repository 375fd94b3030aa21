"""One detection run over the store: after each load (``since`` = the earliest time the
load touched) or as a full backfill (``since=None``). Deterministic: the same rollups
give the same alerts, and a re-run updates them in place.

``now`` defaults to the end of the newest data (the data's own clock), so replaying old
logs behaves as it did live; a live caller (``pull --watch``) passes the wall clock so
that silence after the last payment counts as a volume drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
from sqlalchemy import or_, select, update

from mpesa_ops import catalogue
from mpesa_ops.config import ConfigError
from mpesa_ops.ingest.detect import alerts as store
from mpesa_ops.ingest.detect.detectors import RateModel, rate_flags, slow_burn_flags, volume_flags
from mpesa_ops.ingest.detect.episodes import Episode, episodes_of
from mpesa_ops.ingest.detect.series import ALL, Series, bucket_of, first_and_last, read_series, time_of
from mpesa_ops.ingest.detect.settings import DetectSettings, load_settings
from mpesa_ops.ingest.fields import NAIROBI
from mpesa_ops.ingest.schema import alert_notifications, alerts, detection_runs

MAX_POINTS = 288  # points of the chart kept in an alert's details


@dataclass
class DetectReport:
    run_id: int | None = None
    opened: int = 0
    resolved: int = 0
    firing: int = 0
    pending: int = 0
    notifications: int = 0
    data_from: datetime | None = None
    data_to: datetime | None = None
    message: str = ""
    keys: list[str] = field(default_factory=list)  # keys of the alerts open after the run


def _hours(delta: timedelta) -> str:
    h = delta.total_seconds() / 3600
    return f"{h:.0f} hour{'' if round(h) == 1 else 's'}" if h >= 1 else f"{delta.total_seconds() / 60:.0f} minutes"


def detect(engine, *, now: datetime | None = None, since: datetime | None = None,
           settings: DetectSettings | None = None) -> DetectReport:
    """Find anomalies, reconcile the alerts, queue their notifications; records a
    ``detection_runs`` row. See the module docstring for ``now`` and ``since``."""
    cfg = settings or load_settings()
    wall = datetime.now(timezone.utc)
    with engine.begin() as conn:
        run_id = conn.execute(detection_runs.insert().values(started_at=wall, status="running", opened=0, resolved=0)
                              .returning(detection_runs.c.id)).scalar_one()
    report = DetectReport(run_id=run_id)
    try:
        _detect(engine, cfg, now, since, wall, report)
    except BaseException as exc:
        with engine.begin() as conn:
            conn.execute(update(detection_runs).where(detection_runs.c.id == run_id).values(
                status="failed", finished_at=datetime.now(timezone.utc), message=f"{type(exc).__name__}: {exc}"[:500]))
        raise
    with engine.begin() as conn:
        conn.execute(update(detection_runs).where(detection_runs.c.id == run_id).values(
            status="ok", finished_at=datetime.now(timezone.utc), data_from=report.data_from, data_to=report.data_to,
            opened=report.opened, resolved=report.resolved, message=report.message))
    return report


def _detect(engine, cfg: DetectSettings, now, since, wall, report: DetectReport) -> None:
    first, last = first_and_last(engine)
    if first is None:
        report.message = "no data yet: the store holds no payments or webhook deliveries"
        return
    now = now or (last + timedelta(minutes=1))
    report.data_from, report.data_to = first, now
    need = timedelta(hours=cfg.baseline_hours, minutes=cfg.baseline_gap_minutes)
    span = time_of(bucket_of(now - timedelta(microseconds=1)) + 1) - time_of(bucket_of(first))  # whole buckets
    if span < need:
        report.message = (f"no baseline yet: {_hours(span)} of data, detection needs "
                          f"{_hours(timedelta(hours=cfg.baseline_hours))}")
        return
    quiet = timedelta(minutes=cfg.quiet_minutes)
    start = max(since or first, first)
    with engine.connect() as conn:  # recompute open or touching alerts whole
        earliest = conn.execute(select(alerts.c.started_at).where(or_(
            alerts.c.status.in_(store.OPEN), alerts.c.last_seen_at >= start - quiet))
            .order_by(alerts.c.started_at).limit(1)).scalar()
    if earliest is not None and since is not None:
        start = max(min(start, earliest), first)
    history = max(timedelta(hours=cfg.baseline_hours, minutes=cfg.baseline_gap_minutes + 120),
                  timedelta(days=cfg.slow_reference_days, hours=cfg.slow_reference_lag_hours + 12),
                  timedelta(days=8, minutes=cfg.volume_window_minutes))
    lo = max(start - history, first)
    s = read_series(engine, lo, now, max_shortcodes=cfg.max_shortcodes)
    first_t, from_t = bucket_of(first) - s.t0, bucket_of(start) - s.t0
    now_t = bucket_of(now) - s.t0
    pending_until_t = bucket_of(now - timedelta(minutes=cfg.pending_after_minutes)) - s.t0

    rate, model, spikes = rate_flags(s, cfg, first_t=first_t, from_t=from_t, pending_until_t=pending_until_t)
    flags = rate + slow_burn_flags(s, cfg, first_t=first_t, from_t=from_t, spikes=spikes) \
        + volume_flags(s, cfg, from_t=from_t, complete_until_t=now_t)
    computed = []
    for f in flags:
        for ep in episodes_of(f, cfg, t0=s.t0, now_t=now_t):
            computed.append(_alert_values(ep, s, model))
    computed.sort(key=lambda v: (v["key"], v["started_at"]))

    try:
        from mpesa_ops.ingest.notify import load_config

        _nsettings, targets = load_config()
        note = ""
    except ConfigError as exc:
        targets, note = [], f"; notifications not queued: {exc}"
    with engine.begin() as conn:
        changes, report.opened, report.resolved = store.reconcile(
            conn, computed, scope_from=time_of(s.t0 + max(from_t - 12, 0)), quiet=quiet, wall=wall)
        report.notifications = _queue(conn, changes, targets, now=now, wall=wall,
                                      max_age=timedelta(minutes=cfg.notify_max_age_minutes))
        open_rows = conn.execute(select(alerts.c.key, alerts.c.status).where(alerts.c.status.in_(store.OPEN))
                                 .order_by(alerts.c.key)).all()
    report.firing = sum(1 for _k, st in open_rows if st == "firing")
    report.pending = sum(1 for _k, st in open_rows if st == "pending")
    report.keys = [k for k, _st in open_rows]
    shown = "%Y-%m-%d %H:%M"  # Nairobi time, as the alerts and the dashboard show times
    report.message = (f"examined {time_of(s.t0 + max(from_t, 0)).astimezone(NAIROBI):{shown}} to "
                      f"{now.astimezone(NAIROBI):{shown}} Nairobi time: "
                      f"{report.opened} alerts opened, {report.resolved} resolved, {report.firing} firing, "
                      f"{report.pending} pending{note}")


def _queue(conn, changes, targets, *, now, wall, max_age) -> int:
    """Queue fired and resolved events of recent transitions (not of a backfill's past)."""
    if not targets or not changes:
        return 0
    from mpesa_ops.ingest.notify import queue

    ids = [c[0] for c in changes]
    silenced = {r.id: r.silenced_until for r in conn.execute(
        select(alerts.c.id, alerts.c.silenced_until).where(alerts.c.id.in_(ids)))}
    was_fired = set(conn.execute(select(alert_notifications.c.alert_id).distinct().where(
        alert_notifications.c.alert_id.in_(ids), alert_notifications.c.event == "fired")).scalars())
    queued = 0
    for alert_id, _old, values in changes:
        until = silenced.get(alert_id)
        if until is not None and until > wall:
            continue
        fired_at = orjson.loads(values["details"]).get("fired_at")
        fired_at = datetime.fromisoformat(fired_at) if fired_at else None
        if values["status"] in ("firing", "resolved") and fired_at and now - fired_at <= max_age:
            fired = queue(conn, alert_id, "fired", values["severity"], targets, wall)
            queued += fired
            if fired:
                was_fired.add(alert_id)
        if values["status"] == "resolved" and values["ended_at"] and now - values["ended_at"] <= max_age \
                and alert_id in was_fired:  # a resolution is news only to whoever heard it fire
            queued += queue(conn, alert_id, "resolved", values["severity"], targets, wall)
    return queued


def _alert_values(ep: Episode, s: Series, model: RateModel) -> dict:
    f, i = ep.flags, ep.peak
    info = catalogue.lookup(f.code)
    t_peak = int(f.t[i])
    return {
        "key": f.key, "detector": f.detector, "code": f.code, "family": info.family, "shortcode": f.shortcode,
        "severity": ep.severity, "status": ep.status, "started_at": ep.started_at, "ended_at": ep.ended_at,
        "last_seen_at": ep.last_seen_at, "window_minutes": int(f.window[i]), "failures": int(round(f.x[i])),
        "attempts": int(round(f.n[i])), "observed_rate": round(float(f.observed[i]), 6),
        "baseline_rate": round(float(f.baseline[i]), 6), "score": round(float(f.score[i]), 3),
        "top_shortcodes": orjson.dumps(_top_shortcodes(f, s, model, t_peak, int(f.window[i]))).decode(),
        "details": orjson.dumps({
            "fired_at": ep.fired_at.isoformat() if ep.fired_at else None,
            "peak_at": time_of(s.t0 + t_peak).isoformat(),
            **_chart(ep, s, model),
        }).decode(),
    }


def _top_shortcodes(f, s: Series, model: RateModel, t: int, window: int) -> list[dict]:
    """Shortcodes by excess failures (failures minus attempts x their baseline) in the peak window."""
    if f.detector not in ("rate", "pending"):
        return []
    rows = [r for r in s.rows(f.code) if s.shortcodes[r] != ALL and (f.shortcode == ALL or s.shortcodes[r] == f.shortcode)]
    if not rows:
        return []
    rs = np.asarray(rows)
    x, n, p, _ok, _bn = model.window(rs, np.full(rs.size, t), max(window // 5, 1))
    excess = x - n * p
    order = np.argsort(-excess, kind="stable")[:3]
    return [{"shortcode": s.shortcodes[rows[j]], "failures": int(x[j]), "attempts": int(n[j]),
             "excess": round(float(excess[j]), 1)} for j in order if excess[j] > 0]


def _chart(ep: Episode, s: Series, model: RateModel) -> dict:
    """What the dashboard draws: the key's 5-minute failures, attempts and baseline rate
    from an hour before the alert to 15 minutes after it (hourly for slow burns)."""
    f = ep.flags
    step = 12 if f.detector == "slow_burn" else 1
    a = max(int(f.t[ep.first]) - 12 * step, 0)
    b = min(int(f.t[ep.last]) + 4 * step, s.T)
    a = max(a, b - MAX_POINTS * step)
    a -= (s.t0 + a) % step
    a = max(a, 0)
    ts = np.arange(a, b, step)
    if f.detector == "volume":
        cn = np.concatenate(([0.0], np.cumsum(s.n[f.row])))
        n = cn[np.minimum(ts + step, s.T)] - cn[ts]
        points = [[time_of(s.t0 + int(t)).isoformat(), None, int(v), None] for t, v in zip(ts, n)]
    else:
        rows = np.full(ts.size, f.row)
        x, n, _p, _ok, _bn = model.window(rows, np.minimum(ts + step - 1, s.T - 1), step)
        _x1, _n1, p, ok, _bn1 = model.window(rows, np.minimum(ts + step - 1, s.T - 1), 1)
        points = [[time_of(s.t0 + int(t)).isoformat(), int(xv), int(nv), round(float(pv), 6) if okv else None]
                  for t, xv, nv, pv, okv in zip(ts, x, n, p, ok)]
    return {"bucket_minutes": 5 * step, "series": points,
            "series_columns": ["bucket_start", "failures", "attempts", "baseline_rate"]}

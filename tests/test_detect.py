"""Detection over the rollups: no data, no baseline yet, quiet nights, injected
incidents found with their code, shortcode and guide, the same input giving the same
alerts, and late rows recomputing what they touch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import select

from mpesa_ops import catalogue
from mpesa_ops.ingest.detect.alerts import list_alerts
from mpesa_ops.ingest.detect.run import detect
from mpesa_ops.ingest.detect.settings import load_settings
from mpesa_ops.ingest.schema import alerts, detection_runs, txn_rollup_minute

EAT = timezone(timedelta(hours=3))
START = datetime(2026, 3, 2, 0, 0, tzinfo=EAT)  # a Monday, Nairobi midnight
RATES = {"0": 0.80, "1032": 0.09, "1037": 0.07, "1": 0.04}
SHORTCODES = ("174379", "600977")


def load_traffic(engine, *, hours: float, per_bucket: int = 80, incidents=(), extra=(), seed: int = 1,
                 start: datetime = START) -> None:
    """Rollup rows at 5-minute steps: per_bucket payments by day (a fifth of it from
    00:00 to 06:00 Nairobi), split over two shortcodes, outcomes drawn from RATES.
    ``incidents``: (code, shortcode or None, from, to, rate) replacing the code's rate;
    ``extra``: (time, shortcode, outcome, attempts) rows added as they are."""
    rng = np.random.default_rng(seed)
    codes = list(RATES) + sorted({inc[0] for inc in incidents} - set(RATES))
    base = np.array([RATES.get(c, 0.0) for c in codes])
    rows = {}
    for b in range(int(hours * 12)):
        when = start + timedelta(minutes=5 * b)
        n_all = rng.poisson(per_bucket * (0.2 if when.astimezone(EAT).hour < 6 else 1.0))
        for i, sc in enumerate(SHORTCODES):
            p = base.copy()
            for code, where, t0, t1, rate in incidents:
                if t0 <= when < t1 and where in (None, sc):
                    p[codes.index(code)] = rate
            p[0] = 1 - p[1:].sum()  # success takes what the failures leave
            counts = rng.multinomial(n_all // 2 + (i and n_all % 2), p)
            for code, k in zip(codes, counts):
                if k:
                    rows[(when, sc, code)] = rows.get((when, sc, code), 0) + int(k)
    for when, sc, code, k in extra:
        rows[(when, sc, code)] = rows.get((when, sc, code), 0) + k
    _insert(engine, rows)


def _insert(engine, rows: dict) -> None:
    with engine.begin() as conn:
        existing = {(r.bucket, r.shortcode, r.outcome): r.attempts for r in conn.execute(select(txn_rollup_minute))}
        conn.execute(txn_rollup_minute.delete())
        for key, k in rows.items():
            key = (key[0].astimezone(timezone.utc), key[1], key[2])
            existing[key] = existing.get(key, 0) + k
        conn.execute(txn_rollup_minute.insert(), [
            {"bucket": when, "shortcode": sc, "status": "success" if code == "0" else "failed", "outcome": code,
             "attempts": k, "amount_cents": 100 * k} for (when, sc, code), k in sorted(existing.items())])


def content(engine) -> list[tuple]:
    """The alerts without the bookkeeping times."""
    return [tuple(a[k] for k in ("key", "status", "severity", "started_at", "ended_at", "failures", "attempts",
                                 "observed_rate", "baseline_rate", "top_shortcodes", "fired_at"))
            for a in list_alerts(engine, include_resolved=True)]


def test_empty_store_says_so_and_records_the_run(engine):
    report = detect(engine)
    assert report.message.startswith("no data yet")
    assert (report.opened, report.firing) == (0, 0)
    with engine.connect() as conn:
        run = conn.execute(select(detection_runs)).mappings().one()
    assert run["status"] == "ok" and run["message"] == report.message


def test_one_hour_of_data_has_no_baseline_and_no_alerts(engine):
    load_traffic(engine, hours=1, incidents=[("9999", None, START, START + timedelta(hours=1), 0.5)])
    report = detect(engine)
    assert report.message == "no baseline yet: 1 hour of data, detection needs 24 hours"
    assert list_alerts(engine, include_resolved=True) == []


def test_a_quiet_night_bucket_with_two_failures_raises_nothing(engine):
    night = START + timedelta(days=1, hours=3)
    load_traffic(engine, hours=30, per_bucket=50, extra=[(night, "174379", "9999", 2)])  # a code never seen before, twice
    with engine.connect() as conn:  # the premise: a bucket of < 20 attempts holding 2 failures of 9999
        rows = conn.execute(select(txn_rollup_minute).where(
            txn_rollup_minute.c.bucket == night.astimezone(timezone.utc))).mappings().all()
    assert sum(r["attempts"] for r in rows) < 20
    assert sum(r["attempts"] for r in rows if r["outcome"] == "9999") == 2
    detect(engine)
    assert list_alerts(engine, include_resolved=True) == []


def test_surge_on_one_shortcode_is_found_with_its_code_shortcode_and_guide(engine):
    t0 = START + timedelta(days=1, hours=11)
    load_traffic(engine, hours=40, incidents=[("1037", "600977", t0, t0 + timedelta(minutes=40), 0.30)])
    report = detect(engine)
    found = [a for a in list_alerts(engine, include_resolved=True) if a["code"] == "1037"]
    assert [a["key"] for a in found] == ["rate|1037|600977"]
    alert = found[0]
    assert report.opened >= 1
    assert alert["status"] == "resolved" and alert["family"] == catalogue.lookup("1037").family
    assert alert["guide"]["title"] == catalogue.lookup("1037").guide.title
    assert alert["guide"]["steps"] == catalogue.lookup("1037").guide.steps
    assert t0 <= datetime.fromisoformat(alert["started_at"]) <= t0 + timedelta(minutes=15)
    assert datetime.fromisoformat(alert["fired_at"]) <= t0 + timedelta(minutes=15)
    assert alert["observed_rate"] > 2 * alert["baseline_rate"]
    assert alert["top_shortcodes"][0]["shortcode"] == "600977"
    assert alert["started_at"].endswith("+03:00")
    series = alert["details"]["series"]
    assert series and len(series[0]) == len(alert["details"]["series_columns"])


def test_outage_on_every_shortcode_is_one_alert_for_all(engine):
    t0 = START + timedelta(days=1, hours=14)
    load_traffic(engine, hours=40, incidents=[("9999", None, t0, t0 + timedelta(minutes=30), 0.10)])
    detect(engine)
    found = [a for a in list_alerts(engine, include_resolved=True) if a["code"] == "9999"]
    assert [(a["key"], a["status"]) for a in found] == [("rate|9999|", "resolved")]
    assert {s["shortcode"] for s in found[0]["top_shortcodes"]} == set(SHORTCODES)


def test_unknown_code_gets_the_other_family_and_guide(engine):
    t0 = START + timedelta(days=1, hours=12)
    load_traffic(engine, hours=40, incidents=[("XQ_NEW_9", None, t0, t0 + timedelta(minutes=20), 0.08)])
    detect(engine)
    found = [a for a in list_alerts(engine, include_resolved=True) if a["code"] == "XQ_NEW_9"]
    assert len(found) == 1
    assert found[0]["family"] == "other"
    assert found[0]["guide"]["title"] == catalogue.lookup("XQ_NEW_9").guide.title


def test_open_alert_at_the_end_of_the_data_stays_open(engine):
    t0 = START + timedelta(days=1, hours=12)
    load_traffic(engine, hours=36 + 1 / 3, incidents=[("9999", None, t0, START + timedelta(days=2), 0.10)])
    report = detect(engine)
    assert report.firing == 1 and report.keys == ["rate|9999|"]
    assert list_alerts(engine, include_resolved=False)[0]["ended_at"] is None


def test_same_input_same_alerts_and_no_duplicates(engine):
    t0 = START + timedelta(days=1, hours=11)
    load_traffic(engine, hours=40, incidents=[("1037", "600977", t0, t0 + timedelta(minutes=40), 0.30),
                                              ("9999", None, t0 + timedelta(hours=3), t0 + timedelta(hours=4), 0.1)])
    detect(engine)
    first = content(engine)
    again = detect(engine)
    assert content(engine) == first and len(first) >= 2
    assert (again.opened, again.resolved) == (0, 0)
    with engine.connect() as conn:
        assert len(conn.execute(select(alerts.c.id)).all()) == len(first)


def test_late_rows_recompute_the_buckets_they_touch(engine):
    t0 = START + timedelta(days=1, hours=13)
    load_traffic(engine, hours=40)
    detect(engine)
    assert not [a for a in list_alerts(engine, include_resolved=True) if a["code"] == "2001"]
    late = [(t0 + timedelta(minutes=5 * i), "174379", "2001", 9) for i in range(6)]
    load_traffic(engine, hours=0, extra=late)  # rows for old buckets arrive after the first run
    detect(engine, since=t0)
    found = [a for a in list_alerts(engine, include_resolved=True) if a["code"] == "2001"]
    assert [a["key"] for a in found] == ["rate|2001|174379"]
    assert datetime.fromisoformat(found[0]["started_at"]) == t0


def test_night_surge_on_one_shortcode_is_found_on_its_own_series(engine):
    t0 = START + timedelta(days=1, hours=2)  # about 8 payments a bucket on each shortcode
    load_traffic(engine, hours=30, incidents=[("1037", "174379", t0, t0 + timedelta(minutes=60), 0.35)])
    detect(engine)
    found = [a for a in list_alerts(engine, include_resolved=True) if a["code"] == "1037"]
    assert found and {a["key"] for a in found} == {"rate|1037|174379"}
    assert t0 <= min(datetime.fromisoformat(a["fired_at"]) for a in found) <= t0 + timedelta(minutes=30)


def test_a_spike_two_windows_agree_on_fires_in_its_first_bucket(engine):
    """confirm_windows: the 5- and 15-minute windows both anomalous in one bucket fire it
    at once; without the rule the same episode waits for its second bucket."""
    t0 = START + timedelta(days=1, hours=12)
    load_traffic(engine, hours=40, incidents=[("9999", None, t0, t0 + timedelta(minutes=30), 0.10)])
    fired = {}
    for windows in (2, 0):
        detect(engine, settings=load_settings({"confirm_windows": windows, "crit_p": 1e-300}))
        alert = next(a for a in list_alerts(engine, include_resolved=True) if a["code"] == "9999")
        started = datetime.fromisoformat(alert["started_at"])
        fired[windows] = datetime.fromisoformat(alert["fired_at"]) - started
    assert fired == {2: timedelta(minutes=5), 0: timedelta(minutes=10)}


def test_payments_left_pending_carry_their_own_guide(engine):
    t0 = START + timedelta(days=1, hours=12)
    load_traffic(engine, hours=40, incidents=[("pending", None, t0, t0 + timedelta(minutes=40), 0.25)])
    detect(engine)
    found = [a for a in list_alerts(engine, include_resolved=True) if a["detector"] == "pending"]
    assert [a["key"] for a in found] == ["pending|pending|"]
    assert found[0]["family"] == "pending"
    assert found[0]["guide"] == catalogue.lookup("pending").guide.as_dict()
    assert found[0]["guide"]["title"] != catalogue.lookup("4999").guide.title


def _volume_alerts(engine) -> list[dict]:
    return [a for a in list_alerts(engine, include_resolved=True) if a["detector"] == "volume"]


def test_traffic_that_stops_is_a_volume_drop_once_there_is_a_week_of_history(engine):
    hours = 8 * 24 + 14  # a Tuesday 14:00, with last Tuesday to compare with
    load_traffic(engine, hours=hours - 1)  # then an hour with no payments at all
    detect(engine, now=START + timedelta(hours=hours))
    found = _volume_alerts(engine)
    assert [a["code"] for a in found] == ["volume_drop"] and found[0]["status"] in ("pending", "firing")
    assert catalogue.lookup("volume_drop").known


def test_a_quiet_sunday_in_the_first_week_is_no_volume_drop(engine):
    quiet_sunday = (START + timedelta(days=6), START + timedelta(days=6, hours=14))
    load_traffic(engine, hours=6 * 24 + 14)
    with engine.begin() as conn:  # Sunday morning: a tenth of a weekday's payments
        rows = conn.execute(select(txn_rollup_minute)).mappings().all()
        conn.execute(txn_rollup_minute.delete())
        conn.execute(txn_rollup_minute.insert(), [
            {**r, "attempts": max(1, r["attempts"] // 10) if quiet_sunday[0] <= r["bucket"] < quiet_sunday[1]
             else r["attempts"]} for r in rows])
    detect(engine, now=START + timedelta(days=6, hours=14))
    assert _volume_alerts(engine) == []


def test_a_slow_rise_is_found_and_its_hours_start_on_the_clock(engine):
    """Data that starts 20 minutes past an hour: the slow-burn detector's hours must
    still be clock hours (its flags and the alert's counted window start on the hour)."""
    start = START + timedelta(minutes=20)
    rise = (start + timedelta(days=9), start + timedelta(days=11))
    load_traffic(engine, hours=11 * 24, start=start, incidents=(("1", None, *rise, 0.08),))
    detect(engine, now=start + timedelta(days=11))
    burns = [a for a in list_alerts(engine, include_resolved=True) if a["detector"] == "slow_burn"]
    assert [a["code"] for a in burns] == ["1"]
    started = datetime.fromisoformat(burns[0]["started_at"])
    assert rise[0] <= started and started.minute == 0


def test_a_long_spike_is_one_rate_alert_not_also_a_slow_burn(engine):
    """An hour of 1037 at four times its rate on every shortcode is a spike: the
    rate detector's alert, without a slow-burn alert for the same incident."""
    t0 = START + timedelta(days=9, hours=12)
    load_traffic(engine, hours=9 * 24 + 20, incidents=(("1037", None, t0, t0 + timedelta(hours=1), 0.28),))
    detect(engine)
    found = [(a["detector"], a["code"]) for a in list_alerts(engine, include_resolved=True) if a["code"] == "1037"]
    assert found == [("rate", "1037")]


def test_a_run_after_a_load_agrees_with_a_backfill_about_an_earlier_spike(engine):
    """A run from `since` (after a load) sees the spikes before it as a backfill does:
    an hour-long 1037 spike that ended before `since` opens no slow-burn alert."""
    t0 = START + timedelta(days=9, hours=12)
    load_traffic(engine, hours=9 * 24 + 20, incidents=(("1037", None, t0, t0 + timedelta(hours=1), 0.28),))
    detect(engine, now=t0 + timedelta(hours=2))
    detect(engine, since=t0 + timedelta(hours=2))
    found = [(a["detector"], a["code"]) for a in list_alerts(engine, include_resolved=True) if a["code"] == "1037"]
    assert found == [("rate", "1037")]

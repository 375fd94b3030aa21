"""The alert store: acknowledge and silence survive detection, listing and its order,
and the `detect` and `alerts` commands."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import select

from mpesa_ops.cli import main
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.detect.alerts import AlertError, acknowledge, list_alerts, silence
from mpesa_ops.ingest.detect.run import detect
from mpesa_ops.ingest.schema import alerts
from test_detect import START, load_traffic

T0 = START + timedelta(days=1, hours=11)
WALL = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc)


def two_alerts(engine, *, open_end: bool = False) -> None:
    """A resolved 1037 surge on 600977 and a 9999 outage (still going when the data ends, if open_end)."""
    hours = 38.5 if open_end else 40  # open_end: the data stops 30 minutes into the outage
    outage_end = START + timedelta(days=2) if open_end else T0 + timedelta(hours=4)
    load_traffic(engine, hours=hours, incidents=[("1037", "600977", T0, T0 + timedelta(minutes=40), 0.30),
                                                 ("9999", None, T0 + timedelta(hours=3), outage_end, 0.10)])
    detect(engine)


def test_acknowledge_and_silence_survive_a_new_detection_run(engine):
    two_alerts(engine)
    alert = next(a for a in list_alerts(engine, include_resolved=True) if a["code"] == "1037")
    acknowledge(engine, alert["id"], by="wanjiru", comment="checking with Safaricom", now=WALL)
    silence(engine, alert["id"], until=WALL + timedelta(hours=2), by="otieno", comment="known", now=WALL)
    detect(engine)
    load_traffic(engine, hours=0, extra=[(T0, "174379", "1037", 1)])  # the data changed a little
    detect(engine, since=T0)
    again = next(a for a in list_alerts(engine, include_resolved=True, now=WALL) if a["code"] == "1037")
    assert again["id"] == alert["id"]
    assert (again["acknowledged_by"], again["ack_comment"]) == ("wanjiru", "checking with Safaricom")
    assert again["silenced_by"] == "otieno" and again["silenced"] is True
    assert datetime.fromisoformat(again["silenced_until"]) == WALL + timedelta(hours=2)


def test_acknowledge_and_silence_refuse_what_cannot_be_done(engine):
    two_alerts(engine)
    alert_id = list_alerts(engine, include_resolved=True)[0]["id"]
    with pytest.raises(AlertError, match="no alert with id 999"):
        acknowledge(engine, 999, by="a", comment="")
    with pytest.raises(AlertError, match="not in the future"):
        silence(engine, alert_id, until=WALL - timedelta(minutes=1), by="a", comment="", now=WALL)
    with pytest.raises(AlertError, match="name of who"):
        acknowledge(engine, alert_id, by="  ", comment="")


def test_firing_first_then_most_recent_and_recent_only_without_all(engine):
    two_alerts(engine, open_end=True)
    items = list_alerts(engine, include_resolved=True)
    assert [a["status"] for a in items][:1] == ["firing"]
    resolved = [a for a in items if a["status"] == "resolved"]
    assert resolved == sorted(resolved, key=lambda a: a["started_at"], reverse=True)
    with engine.begin() as conn:  # an old episode, resolved days before the data ends
        conn.execute(alerts.insert().values(
            key="rate|26|", detector="rate", code="26", family="M-Pesa system", shortcode="", severity="warning",
            status="resolved", started_at=START - timedelta(days=5), ended_at=START - timedelta(days=5),
            last_seen_at=START - timedelta(days=5), failures=5, attempts=50, created_at=WALL, updated_at=WALL))
    assert "26" in {a["code"] for a in list_alerts(engine, include_resolved=True)}
    recent = list_alerts(engine, include_resolved=False)
    assert "26" not in {a["code"] for a in recent} and {"1037", "9999"} <= {a["code"] for a in recent}
    assert len(list_alerts(engine, include_resolved=True, limit=1)) == 1


def test_alerts_json_is_one_array_with_the_documented_keys(db_url, capsys):
    from mpesa_ops.ingest.db import open_store

    engine = open_store(db_url)
    two_alerts(engine)
    assert main(["detect", "--db", db_url, "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["opened"] == 0 and "message" in report
    assert main(["alerts", "--db", db_url, "--json", "--all"]) == 0
    items = orjson.loads(capsys.readouterr().out)
    assert isinstance(items, list) and len(items) >= 2
    for item in items:
        for key in ("code", "family", "severity", "status", "shortcode", "started_at", "ended_at", "failures",
                    "attempts", "observed_rate", "baseline_rate"):
            assert key in item
        assert set(item["guide"]) >= {"title", "steps"}
        assert datetime.fromisoformat(item["started_at"]).utcoffset() is not None
    assert main(["alerts", "--db", db_url]) == 0
    assert "DS timeout" in capsys.readouterr().out
    with engine.connect() as conn:
        assert len(conn.execute(select(alerts.c.id)).all()) == len(items)
    engine.dispose()


def test_detect_command_on_an_empty_store_says_there_is_no_data(db_url, capsys):
    open_store(db_url).dispose()  # an empty store, migrated
    assert main(["detect", "--db", db_url]) == 0
    assert "no data yet" in capsys.readouterr().out
    assert main(["alerts", "--db", db_url]) == 0
    assert capsys.readouterr().out.strip() == "no alerts"


def test_detect_and_alerts_refuse_a_sqlite_store_that_does_not_exist(tmp_path, capsys):
    for command in ("detect", "alerts"):
        assert main([command, "--db", str(tmp_path / "typo.db")]) == 1
        assert capsys.readouterr().err.startswith(f"mpesa-ops {command}: no store at ")
    assert not (tmp_path / "typo.db").exists()


def test_detect_setting_of_the_wrong_type_fails_with_one_line(db_url, tmp_path, monkeypatch, capsys):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[detect]\nwarn_p = "often"\n')
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(secrets))
    assert main(["detect", "--db", db_url]) == 1
    err = capsys.readouterr().err
    assert "[detect] warn_p" in err and len(err.strip().splitlines()) == 1


def test_alerts_table_and_json_read_a_volume_drop_as_payments_against_expected(db_url, capsys):
    from mpesa_ops.ingest.db import open_store

    engine = open_store(db_url)
    with engine.begin() as conn:  # as the volume detector stores it: failures = the shortfall
        conn.execute(alerts.insert().values(
            key="volume|volume_drop|", detector="volume", code="volume_drop", family="gateway system", shortcode="",
            severity="warning", status="firing", started_at=T0, last_seen_at=T0 + timedelta(minutes=10),
            window_minutes=30, failures=38, attempts=12, observed_rate=0.242424, baseline_rate=1.0, score=0.76,
            details=orjson.dumps({"peak_at": (T0 + timedelta(minutes=10)).isoformat()}).decode(),
            created_at=WALL, updated_at=WALL))
    engine.dispose()
    assert main(["alerts", "--db", db_url]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "volume_drop" in line)
    assert " 12 " in row and "~50" in row and "-38" not in row
    assert main(["alerts", "--db", db_url, "--json"]) == 0
    item = orjson.loads(capsys.readouterr().out)[0]
    assert (item["observed"], item["expected"], item["failures"], item["attempts"]) == (12, 50, None, 12)
    assert item["observed_rate"] == pytest.approx(0.242424) and item["baseline_rate"] == 1.0
    assert datetime.fromisoformat(item["counted_to"]) == T0 + timedelta(minutes=15)
    assert datetime.fromisoformat(item["counted_from"]) == T0 - timedelta(minutes=15)

"""The Alerts page's figures per detector and their drill-down windows, the link past an
empty range, and the Finance page's money lost (impossible amounts left out), its
partial previous period, its shortcode table and customer tags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pandas as pd
import pytest
from sqlalchemy import case, func, select

from dashboardhelpers import page
from mpesa_ops.alert_figures import counted_window, figures
from mpesa_ops.dashboard import context, queries
from mpesa_ops.dashboard.views import alerts as alerts_view
from mpesa_ops.dashboard.views import finance
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.detect.alerts import list_alerts
from mpesa_ops.ingest.schema import alerts, transactions, txn_rollup_minute

UTC = timezone.utc
PEAK = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


def stored_alert(detector: str, code: str, failures: int, attempts: int, observed: float, baseline: float,
                 window: int, **extra) -> dict:
    return {"id": 1, "detector": detector, "code": code, "family": "customer", "shortcode": "",
            "started_at": PEAK - timedelta(minutes=10), "ended_at": PEAK + timedelta(minutes=20),
            "last_seen_at": PEAK + timedelta(minutes=15), "window_minutes": window, "failures": failures,
            "attempts": attempts, "observed_rate": observed, "baseline_rate": baseline,
            "details": {"peak_at": (PEAK + timedelta(minutes=extra.pop("peak_offset", 0))).isoformat()}, **extra}


# --- what the figures mean ---

def test_volume_figures_are_payments_against_expected_not_failures():
    fig = figures(stored_alert("volume", "volume_drop", 38, 12, 0.242424, 1.0, 30))
    assert (fig["observed"], fig["expected"], fig["failures"]) == (12, 50, None)
    assert fig["observed_rate"] == pytest.approx(0.242424) and fig["baseline_rate"] == 1.0
    assert (fig["counted_from"], fig["counted_to"]) == (PEAK - timedelta(minutes=25), PEAK + timedelta(minutes=5))
    line = alerts_view.figures_line(stored_alert("volume", "volume_drop", 38, 12, 0.242424, 1.0, 30), "UTC")
    assert "12 payments in the last 30 minutes" in line and "about 50 expected (24% of normal)" in line
    assert "of 12" not in line


def test_slow_burn_counts_its_peak_hour_and_the_five_before():
    alert = stored_alert("slow_burn", "1", 69, 504, 0.137, 0.056, 360)
    assert counted_window(alert) == (PEAK - timedelta(hours=5), PEAK + timedelta(hours=1))
    line = alerts_view.figures_line(alert, "UTC")
    assert line.startswith("in its peak 6 hours (02 Mar 00:00–06:00)") and "69 of 504" in line


def test_pending_line_names_the_stuck_payments():
    line = alerts_view.figures_line(stored_alert("pending", "pending", 9, 40, 0.225, 0.01, 15), "UTC")
    assert line.startswith("9 of 40 payments requested") and "still pending after 10 minutes" in line


def test_counted_window_holds_exactly_the_payments_the_alert_counted(demo_url):
    engine = open_store(demo_url)
    items = list_alerts(engine, include_resolved=True)
    burn = next(a for a in items if a["detector"] == "slow_burn")
    start, end = counted_window(burn)
    t = transactions.c
    with engine.connect() as conn:
        hit, total = conn.execute(select(func.sum(case((t.outcome == burn["code"], 1), else_=0)), func.count())
                                  .where(t.created_at >= start, t.created_at < end)).one()
    assert (hit, total) == (burn["failures"], burn["attempts"])
    count = queries.payments_count(engine, start=start, end=end, shortcode=None, codes=[burn["code"]], search="",
                                   failures_only=True, cap=10_000)
    assert count == burn["failures"]  # what the drill-down link opens
    engine.dispose()


# --- the link past an empty range ---

def test_earlier_link_counts_what_its_window_shows():
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    stored = [{"id": i, "code": "1", "status": "resolved", "severity": "warning", "started_at": base - timedelta(hours=7 * i),
               "ended_at": base - timedelta(hours=7 * i - 1), "last_seen_at": base - timedelta(hours=7 * i - 1)}
              for i in range(1, 26)]
    f = context.Filters(base + timedelta(days=2), base + timedelta(days=3), "Africa/Nairobi", None)
    label, start = alerts_view.earlier_link(stored, f.tz)
    assert label.startswith("25 earlier alerts; the latest 1 (Insufficient funds)") and "Show the latest 20" in label
    shown = alerts_view.ordered(stored, context.Filters(start, f.end, f.tz, None))
    assert [a["id"] for a in shown] == list(range(1, 21))
    label, start = alerts_view.earlier_link(stored[:3], f.tz)
    assert "3 earlier alerts" in label and "Show them" in label
    assert len(alerts_view.ordered(stored[:3], context.Filters(start, f.end, f.tz, None))) == 3


# --- the Alerts page with a volume drop ---

def test_alerts_page_reads_a_volume_drop_as_traffic(demo_url, app, tmp_path):
    url = f"sqlite:///{tmp_path / 'vol.db'}"
    Path(tmp_path / "vol.db").write_bytes(Path(demo_url.removeprefix("sqlite:///")).read_bytes())
    engine = open_store(url)
    peak = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    peak -= timedelta(minutes=peak.minute % 5)
    series = [[(peak - timedelta(minutes=5 * k)).isoformat(), None, 2, None] for k in range(12, -1, -1)]
    with engine.begin() as conn:
        conn.execute(alerts.insert().values(
            key="volume|volume_drop|", detector="volume", code="volume_drop", family="gateway system", shortcode="",
            severity="critical", status="firing", started_at=peak - timedelta(minutes=10), ended_at=None,
            last_seen_at=peak, window_minutes=30, failures=38, attempts=12, observed_rate=0.24, baseline_rate=1.0,
            score=0.76, details=orjson.dumps({"peak_at": peak.isoformat(), "bucket_minutes": 5, "series": series,
                                              "series_columns": ["bucket_start", "failures", "attempts",
                                                                 "baseline_rate"]}).decode(),
            created_at=peak, updated_at=peak))
    engine.dispose()
    at = page(app(url), "alerts")
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(c.value for c in at.caption)
    assert "12 payments in the last 30 minutes" in text and "about 50 expected" in text
    assert "38 of 12" not in text
    series_df = alerts_view.volume_series({"window_minutes": 30, "details": orjson.loads(orjson.dumps(
        {"bucket_minutes": 5, "series": series, "series_columns": ["bucket_start", "failures", "attempts",
                                                                   "baseline_rate"]}))})
    assert len(series_df) == 8 and set(series_df["payments"]) == {12.0}


# --- finance ---

def _txn(i: int, status: str, outcome: str, cents: int, when: datetime) -> dict:
    return {"id": f"t{i}", "origin": "log", "created_at": when, "updated_at": when, "status": status,
            "outcome": outcome, "amount_cents": cents, "shortcode": "174379", "record_hash": f"h{i}",
            "load_run_id": 1, "source": "test"}


def test_impossible_amounts_are_only_refused_requests_outside_the_band(engine):
    when = datetime(2026, 3, 1, 10, tzinfo=UTC)
    rows = [_txn(1, "rejected", "INVALID_AMOUNT", 0, when), _txn(2, "rejected", "INVALID_AMOUNT", 50_000_000_00, when),
            _txn(3, "rejected", "INVALID_AMOUNT", 30_000_000, when), _txn(4, "failed", "1", 5_000, when),
            _txn(5, "rejected", "INVALID_AMOUNT", 99, when + timedelta(days=2))]
    with engine.begin() as conn:
        conn.execute(transactions.insert(), rows)
        conn.execute(txn_rollup_minute.insert().values(bucket=when, shortcode="174379", status="failed", outcome="1",
                                                       attempts=1, amount_cents=5_000))
    df = queries.impossible_amounts(engine, when, when + timedelta(days=1))
    assert df.to_dict("records") == [{"status": "rejected", "outcome": "INVALID_AMOUNT", "attempts": 2,
                                      "amount_cents": 50_000_000_00}]
    assert queries.impossible_amounts(engine, when, when + timedelta(days=1), "600000").empty
    assert queries.first_payment(engine) == when


def test_money_lost_leaves_out_impossible_amounts():
    now = pd.DataFrame({"status": ["success", "rejected", "failed"], "outcome": ["0", "INVALID_AMOUNT", "1"],
                        "family": ["success", "gateway validation", "customer"], "attempts": [10, 4, 3],
                        "amount_cents": [100_000, 2_200_000_000, 30_000]})
    impossible = pd.DataFrame({"status": ["rejected"], "outcome": ["INVALID_AMOUNT"], "attempts": [3],
                               "amount_cents": [2_199_990_000]})
    fam = finance.lost_by_family(now, impossible).set_index("family")
    assert fam.loc["gateway validation", "amount_cents"] == 10_000
    assert fam.loc["customer", "amount_cents"] == 30_000 and fam.loc["success", "amount_cents"] == 100_000


def test_previous_period_before_the_first_payment_is_partial():
    first = datetime(2026, 3, 1, tzinfo=UTC)
    f = context.Filters(first + timedelta(days=5), first + timedelta(days=35), "UTC", None)
    assert finance.previous_is_partial(f, first)
    assert not finance.previous_is_partial(context.Filters(first + timedelta(days=2), first + timedelta(days=3),
                                                           "UTC", None), first)
    assert finance.previous_is_partial(f, None)


def test_shortcode_table_has_the_previous_period_and_customer_tags_differ():
    def per(code_hits: int) -> pd.DataFrame:
        return pd.DataFrame({"shortcode": ["174379", "174379", ""], "status": ["failed", "success", "failed"],
                             "outcome": ["1", "0", "1"], "attempts": [code_hits, 10, 1],
                             "amount_cents": [code_hits * 100_00, 0, 500]})
    table = finance.shortcode_table(per(5), per(2)).set_index("shortcode")
    assert table.loc["174379", "share"] == pytest.approx(5 / 15)
    assert table.loc["174379", "share before"] == pytest.approx(2 / 12)
    assert table.loc["174379", "KES before"] == 200 and "unknown" in table.index
    salt = b"s" * 16
    a, b = finance.customer_tag("254712000123", salt), finance.customer_tag("254799000123", salt)
    assert a != b and len(a) == 6 and a == finance.customer_tag("254712000123", salt)
    assert finance.customer_tag("254712000123", b"t" * 16) != a


def test_finance_page_flags_a_partial_previous_period(demo_url, app):
    at = page(app(demo_url), "finance", range="30d")
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(c.value for c in at.caption)
    assert "previous period is only partly in the store" in text
    assert all(m.delta is None or m.delta == "" for m in at.metric)
    at = page(app(demo_url), "finance", range="24h")
    assert "only partly" not in " ".join(c.value for c in at.caption)

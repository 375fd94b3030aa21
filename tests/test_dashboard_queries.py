"""The dashboard's reads on SQLite and Postgres: rollup charts agree with the rows,
row views page in the database, search takes a phone in any shape, a payment's
timeline, customers who hit a code repeatedly."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import select

from mpesa_ops.dashboard import queries
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.schema import result_events, transactions, txn_rollup_hour, txn_rollup_minute, webhook_deliveries
from mpesa_ops.ingest.simulate import simulate

START = dt.date(2026, 10, 1)
T0 = dt.datetime(2026, 9, 30, 21, tzinfo=dt.timezone.utc)  # midnight in Nairobi


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs")
    simulate(folder, days=2, seed=5, per_day=250, start=START)
    return str(folder)


@pytest.fixture
def store(engine, logs):
    ingest_paths(engine, [logs])
    return engine


def rows(engine, *cols, where=None):
    stmt = select(*cols)
    if where is not None:
        stmt = stmt.where(where)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def test_rollup_table_and_chart_step_follow_the_range():
    hour = dt.timedelta(hours=1)
    assert queries.rollup_for(T0, T0 + 12 * hour) is txn_rollup_minute
    assert queries.rollup_for(T0, T0 + 13 * hour) is txn_rollup_hour
    assert queries.grain(T0, T0 + hour) == dt.timedelta(minutes=1)
    assert queries.grain(T0, T0 + 6 * hour) == dt.timedelta(minutes=5)
    assert queries.grain(T0, T0 + 24 * hour) == dt.timedelta(hours=1)
    assert queries.grain(T0, T0 + 7 * 24 * hour) == dt.timedelta(hours=3)
    assert queries.grain(T0, T0 + 30 * 24 * hour) == dt.timedelta(days=1)


@pytest.mark.parametrize("span", [dt.timedelta(hours=7), dt.timedelta(days=2)])
def test_outcomes_from_the_rollups_match_a_count_of_the_rows(store, span):
    start, end = T0 + dt.timedelta(hours=3), T0 + dt.timedelta(hours=3) + span
    t = transactions.c
    truth = Counter((s, o) for s, o in rows(store, t.status, t.outcome,
                                             where=(t.created_at >= start) & (t.created_at < end)))
    df = queries.outcomes(store, start, end)
    got = df.groupby(["status", "outcome"])["attempts"].sum()
    assert {k: int(v) for k, v in got.items()} == dict(truth)
    assert set(df.loc[df["outcome"] == "1", "family"]) == {"customer"}
    totals = queries.totals(df)
    assert totals["payments"] == sum(truth.values())
    assert totals["succeeded"] == truth[("success", "0")]


def test_outcomes_of_one_shortcode_and_by_shortcode(store):
    end = T0 + dt.timedelta(days=2)
    t = transactions.c
    truth = Counter(sc or "" for (sc,) in rows(store, t.shortcode))
    per = queries.by_shortcode(store, T0, end).groupby("shortcode")["attempts"].sum()
    assert {k: int(v) for k, v in per.items()} == dict(truth)
    code = queries.shortcodes(store)[0]
    assert int(queries.outcomes(store, T0, end, code)["attempts"].sum()) == truth[code]


def test_code_rate_counts_the_code_among_completed_payments(store):
    end = T0 + dt.timedelta(days=2)
    df = queries.code_rate(store, "1", T0, end)
    t = transactions.c
    statuses = [s for (s,) in rows(store, t.status)]
    assert int(df["failures"].sum()) == len(rows(store, t.id, where=t.outcome == "1"))
    assert int(df["attempts"].sum()) == sum(s != "pending" for s in statuses)


def test_failures_page_through_the_database_newest_first(store):
    end = T0 + dt.timedelta(days=2)
    total = queries.payments_count(store, start=T0, end=end)
    first = queries.payments_page(store, start=T0, end=end, limit=20)
    second = queries.payments_page(store, start=T0, end=end, limit=20, offset=20)
    assert total > 40 and len(first) == len(second) == 20
    assert not set(first["id"]) & set(second["id"])
    times = list(first["created_at"]) + list(second["created_at"])
    assert times == sorted(times, reverse=True)
    assert set(first["status"]) <= {"failed", "rejected"}
    only = queries.payments_page(store, start=T0, end=end, codes=["1"], limit=500)
    assert len(only) == queries.payments_count(store, start=T0, end=end, codes=["1"]) and set(only["outcome"]) == {"1"}
    assert queries.payments_count(store, start=T0, end=end, cap=7) == 7


def test_search_finds_a_phone_in_any_common_shape_and_the_ids(store):
    t = transactions.c
    txn_id, msisdn, checkout = rows(store, t.id, t.msisdn, t.checkout_request_id,
                                    where=(t.outcome == "1") & t.msisdn.is_not(None))[0]
    expected = {i for (i,) in rows(store, t.id, where=(t.msisdn == msisdn) & t.status.in_(["failed", "rejected"]))}
    local = msisdn[3:]
    for shape in (msisdn, "+" + msisdn, "0" + local, local, f"0{local[:3]} {local[3:6]} {local[6:]}"):
        assert set(queries.payments_page(store, search=shape)["id"]) == expected, shape
    assert list(queries.payments_page(store, search=checkout)["id"]) == [txn_id]
    assert list(queries.payments_page(store, search=txn_id)["id"]) == [txn_id]
    receipt_id, receipt = rows(store, t.id, t.mpesa_receipt, where=t.mpesa_receipt.is_not(None))[0]
    assert list(queries.payments_page(store, search=receipt.lower(), failures_only=False)["id"]) == [receipt_id]
    assert queries.payments_page(store, search="no such thing").empty


def test_a_payments_timeline_holds_its_request_events_and_deliveries(store):
    w = webhook_deliveries.c
    txn_id = rows(store, w.transaction_id, where=w.transaction_id.is_not(None))[0][0]
    events = len(rows(store, result_events.c.key, where=result_events.c.transaction_id == txn_id))
    deliveries = len(rows(store, w.id, where=w.transaction_id == txn_id))
    steps = queries.timeline(store, txn_id)
    assert list(steps["what"]).count("request") == 1
    assert (steps["what"] == "webhook").sum() == deliveries and len(steps) == 1 + events + deliveries
    assert steps["what"].iloc[0] == "request"
    assert queries.payment(store, txn_id)["id"] == txn_id and queries.payment(store, "nope") is None


def test_the_request_row_shows_what_was_asked_and_the_results_come_after(store):
    t = transactions.c
    txn_id, cents, account, desc = rows(store, t.id, t.amount_cents, t.account_reference, t.result_desc,
                                        where=(t.status == "failed") & (t.origin == "log"))[0]
    steps = queries.timeline(store, txn_id)
    request = steps[steps["what"] == "request"].iloc[0]
    assert request["status"] == "pending" and request["code"] == ""
    assert f"KES {cents / 100:,.2f}" in request["detail"] and account in request["detail"]
    assert desc not in request["detail"]  # the result is not known at request time
    result = steps[steps["what"] == "callback"].iloc[-1]
    assert result["status"] == "failed" and result["detail"] == desc and result["time"] > request["time"]

    txn_id, error, refusal = rows(store, t.id, t.error_code, t.result_desc, where=t.status == "rejected")[0]
    request = queries.timeline(store, txn_id).iloc[0]
    assert (request["what"], request["status"], request["code"]) == ("request", "rejected", error)
    assert refusal in request["detail"]


def test_repeat_customers_are_numbers_that_hit_the_code_again(store):
    t = transactions.c
    end = T0 + dt.timedelta(days=2)
    hits = Counter(m for (m,) in rows(store, t.msisdn, where=(t.outcome == "1") & t.msisdn.is_not(None)))
    expected = {m: n for m, n in hits.items() if n >= 2}
    df = queries.repeat_customers(store, "1", T0, end)
    assert dict(zip(df["msisdn"], df["hits"])) == expected
    assert list(df["hits"]) == sorted(df["hits"], reverse=True)
    newest = sorted(rows(store, t.created_at, t.msisdn, where=t.outcome == "1"), reverse=True)[:10]
    in_newest = Counter(m for _, m in newest if m is not None)
    bounded = queries.repeat_customers(store, "1", T0, end, scan=10)  # reads only the newest 10
    assert dict(zip(bounded["msisdn"], bounded["hits"])) == {m: n for m, n in in_newest.items() if n >= 2}


def test_an_empty_store_has_no_payments_and_no_latest_time(engine):
    assert not queries.has_payments(engine)
    assert queries.latest_bucket(engine) is None and queries.shortcodes(engine) == []
    assert queries.outcomes(engine, T0, T0 + dt.timedelta(hours=1)).empty
    assert queries.freshness(engine)["load"] is None


def test_last_24_hours_covers_the_whole_24_hours_in_whole_hours():
    from datetime import datetime, timezone

    from mpesa_ops.dashboard.context import _window

    now = datetime(2026, 11, 29, 19, 2, 30, tzinfo=timezone.utc)  # 22:02 in Nairobi
    start, end, note = _window({"range": "24h", "tz": "Africa/Nairobi"}, now, latest=now)
    assert (start, end, note) == (datetime(2026, 11, 28, 19, 0, tzinfo=timezone.utc),
                                  datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc), None)
    start, end, _ = _window({"range": "1h", "tz": "Africa/Nairobi"}, now, latest=now)
    assert end - start == dt.timedelta(hours=1) and end == datetime(2026, 11, 29, 19, 3, tzinfo=timezone.utc)

"""The dashboard through Streamlit's AppTest: every page for every role on an empty and
on a demo store, roles and login, phone masking in tables and exports, filters and
drill-down through the URL's query parameters, acting on an alert."""

from __future__ import annotations

import datetime as dt
import io
import re

import pandas as pd
import pytest
import streamlit
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from dashboardhelpers import page
from mpesa_ops.dashboard import nav
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.schema import alerts, transactions

MASKED = re.compile(r"^\d{4}•+\d{3}$")
FULL = re.compile(r"^254\d{9}$")


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def assert_forbidden(at: AppTest, name: str, role: str) -> None:
    """The router does not register the page; even run directly (the page folder is not
    Streamlit's automatic pages/ folder, so only a test can do that), it shows nothing
    but a refusal."""
    try:
        at.switch_page(nav.page_path(name)).run()
    except ValueError as exc:  # not registered: AppTest cannot even open it
        assert "navigation page" in str(exc)
        return
    assert [e.value for e in at.error] == [f"This page is not available to the {role} role."]
    assert not at.metric and not at.dataframe and not at.get("plotly_chart") and not at.exception


def table(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page that has this column."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


@pytest.mark.parametrize("role", nav.ROLES)
def test_every_page_of_a_role_renders_on_the_demo_store_and_no_other_page_exists(app, demo_url, role):
    at = app(demo_url, role)
    for pdef in nav.PAGES:
        if role not in pdef.roles:
            assert_forbidden(at, pdef.name, role)
            continue
        page(at, pdef.name)
        no_errors(at)
        assert at.title and at.title[0].value, pdef.name
        assert not [i for i in at.info if "holds no payments" in i.value], pdef.name


@pytest.mark.parametrize("role", nav.ROLES)
def test_every_page_on_an_empty_store_says_how_to_load_data(app, empty_url, role):
    at = app(empty_url, role)
    for pdef in nav.pages_for(role):
        page(at, pdef.name)
        assert not at.exception, (pdef.name, [e.value for e in at.exception])
        if pdef.name != "webhooks":  # the webhook page (its own helper) says it in its own words
            assert any("holds no payments" in i.value for i in at.info), pdef.name
            assert any("mpesa-ops ingest" in c.value for c in at.code), pdef.name
        assert not at.get("plotly_chart"), pdef.name


def test_local_mode_shows_a_banner_with_the_role(app, demo_url):
    at = app(demo_url, "finance")
    assert any("Local mode" in w.value and "finance" in w.value for w in at.sidebar.warning)


def test_local_mode_defaults_to_admin_and_reads_the_secrets_file(app, demo_url):
    at = app(demo_url, None)
    assert any("**admin**" in w.value for w in at.sidebar.warning)
    at = app(demo_url, None, secrets_text='[dashboard]\nrole = "support"\n')
    assert any("**support**" in w.value for w in at.sidebar.warning)
    assert_forbidden(at, "finance", "support")


def test_an_unknown_role_is_one_clear_error(app, demo_url):
    at = app(demo_url, "boss")
    assert not at.exception
    assert "'boss' is not one of support, finance, engineer, admin" in at.error[0].value


AUTH = """
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "not-a-real-secret"
client_id = "example-client"
client_secret = "not-a-real-secret"
server_metadata_url = "https://accounts.example.com/.well-known/openid-configuration"

[roles]
"ops@shop.example" = "engineer"
"finance-team" = "finance"
"""


def test_with_auth_a_visitor_must_log_in_and_sees_no_page(app, demo_url):
    at = app(demo_url, "admin", secrets_text=AUTH, user={"is_logged_in": False})
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.metric and not at.dataframe
    assert "not-a-real-secret" not in str(at._tree)  # secrets never reach the page


def test_with_auth_the_role_comes_from_the_email_or_a_group(app, demo_url):
    at = app(demo_url, "admin", secrets_text=AUTH, user={"is_logged_in": True, "email": "ops@shop.example"})
    assert any("ops@shop.example · engineer" in c.value for c in at.sidebar.caption)
    page(at, "gateway_errors")
    no_errors(at)
    assert_forbidden(at, "finance", "engineer")
    at = app(demo_url, None, secrets_text=AUTH,
             user={"is_logged_in": True, "email": "amina@shop.example", "groups": ["finance-team"]})
    page(at, "finance")
    no_errors(at)


def test_with_auth_an_unknown_user_is_told_they_have_no_role(app, demo_url):
    at = app(demo_url, "admin", secrets_text=AUTH, user={"is_logged_in": True, "email": "stranger@example.com"})
    assert "stranger@example.com" in at.error[0].value and "[roles]" in at.error[0].value
    assert not at.metric


@pytest.fixture
def exports(monkeypatch):
    """What each st.download_button on the page would hand the browser."""
    seen: dict[str, bytes] = {}
    real = streamlit.download_button

    def recording(label, data, *args, **kwargs):
        seen[kwargs.get("file_name") or label] = data
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording)
    return seen


@pytest.mark.parametrize("role, pattern", [("engineer", MASKED), ("support", FULL), ("admin", FULL)])
def test_phones_are_masked_unless_the_role_may_see_them_in_the_table_and_the_csv(app, demo_url, exports,
                                                                                role, pattern):
    at = page(app(demo_url, role), "failures", range="7d")
    no_errors(at)
    phones = table(at, "phone")["phone"]
    known = phones[phones != ""]  # a refused request may carry no number
    assert len(known) > 40 and known.map(lambda p: bool(pattern.match(p))).all(), list(known[~known.map(lambda p: bool(pattern.match(p)))])
    csv = pd.read_csv(io.BytesIO(exports["payments-page-1.csv"]), dtype=str, keep_default_na=False)
    assert list(csv["phone"]) == list(phones)


def test_finance_sees_repeat_customers_masked_in_the_table_and_the_csv(app, demo_url, exports):
    at = page(app(demo_url, "finance"), "finance", range="7d")
    no_errors(at)
    phones = table(at, "times")["phone"]
    assert len(phones) and phones.map(lambda p: bool(MASKED.match(p))).all()
    body = exports["insufficient-funds-repeat-customers.csv"].decode()
    assert not re.search(r"254\d{9}", body) and "•" in body
    asked = pd.read_csv(io.StringIO(body), dtype=str)["KES asked"]
    assert asked.str.fullmatch(r"\d+\.\d\d").all()  # exact amounts, not floats like 420.0


def page_text(at: AppTest) -> str:
    """Everything the page holds: every element's message (a table's cells included)."""
    parts = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts + [frame.value.to_csv() for frame in at.dataframe])


def msisdns_of(url: str, ids) -> dict[str, str]:
    engine = open_store(url)
    with engine.connect() as conn:
        found = dict(conn.execute(select(transactions.c.id, transactions.c.msisdn)
                                  .where(transactions.c.id.in_(list(ids)), transactions.c.msisdn.is_not(None))).all())
    engine.dispose()
    return found


@pytest.mark.parametrize("role", ["engineer", "support"])
def test_no_masked_phone_leaks_through_ids_the_timeline_or_the_csv(app, demo_url, exports, role):
    """A CheckoutRequestID ends with the customer's 9-digit number: for a role that may
    not see phones it must be masked there too, on screen and in the export."""
    at = page(app(demo_url, role), "failures", range="7d")
    ids = list(table(at, "gateway id")["gateway id"])
    opened = next(i for i in ids if msisdns_of(demo_url, [i]))
    at = page(at, "failures", txn=opened)
    no_errors(at)
    assert "request" in set(table(at, "what")["what"])
    nationals = {phone[3:] for phone in msisdns_of(demo_url, ids).values() if len(phone) == 12}
    assert len(nationals) > 20
    shown = page_text(at) + exports["payments-page-1.csv"].decode()
    leaked = {n for n in nationals if n in shown}
    if role == "engineer":
        assert not leaked
        assert any(re.search(r"ws_CO_\d+•{5}\d{3}$", c) for c in table(at, "CheckoutRequestID")["CheckoutRequestID"])
    else:  # support sees the numbers: the check above can fail
        assert leaked == nationals


def test_the_csv_has_exact_amounts_and_times_with_their_offset(app, demo_url, exports):
    at = page(app(demo_url, "support"), "failures", range="7d")
    no_errors(at)
    csv = pd.read_csv(io.BytesIO(exports["payments-page-1.csv"]), dtype=str, keep_default_na=False)
    assert csv["amount KES"].str.fullmatch(r"\d+\.\d{2}").all()
    assert csv["time"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+03:00").all()
    on_screen = table(at, "amount KES")["amount KES"]
    assert [f"{v:.2f}" for v in on_screen] == list(csv["amount KES"])


def test_a_receipt_search_finds_the_paid_payment_whatever_the_status_filter(app, demo_url):
    engine = open_store(demo_url)
    with engine.connect() as conn:
        txn_id, receipt = conn.execute(select(transactions.c.id, transactions.c.mpesa_receipt)
                                       .where(transactions.c.mpesa_receipt.is_not(None)).limit(1)).one()
    engine.dispose()
    at = page(app(demo_url, "support"), "failures", q=receipt.lower())
    no_errors(at)
    rows = table(at, "receipt")
    assert list(rows["gateway id"]) == [txn_id] and list(rows["status"]) == ["success"]
    assert any("**1** payment ·" in m.value for m in at.markdown)
    assert any("every status" in c.value for c in at.caption)


def _window_of_failures(url: str, code: str) -> tuple[dt.datetime, dt.datetime, int]:
    engine = open_store(url)
    with engine.connect() as conn:
        times = [r[0] for r in conn.execute(select(transactions.c.created_at).where(transactions.c.outcome == code))]
    engine.dispose()
    times.sort()
    start, end = times[len(times) // 4], times[3 * len(times) // 4]
    return start, end, sum(start <= t < end for t in times)


def test_a_drill_down_link_opens_the_failures_of_its_code_and_window(app, demo_url):
    start, end, expected = _window_of_failures(demo_url, "1")
    at = app(demo_url, "support")
    at = page(at, "failures", range="window", **{"from": start.isoformat(), "to": end.isoformat()}, code="1")
    no_errors(at)
    rows = table(at, "code")
    assert set(rows["code"]) == {"1"}
    assert f"**{expected:,}** payments" in at.markdown[0].value or any(
        f"**{expected:,}** payments" in m.value for m in at.markdown)
    assert at.sidebar.selectbox(key="f_range").value == "window"
    assert at.query_params["code"] == "1" and at.query_params["range"] == "window"


def test_filters_follow_the_viewer_across_pages_and_into_the_url(app, demo_url):
    at = app(demo_url, "admin")
    assert at.query_params["tz"] == "Africa/Nairobi" and at.query_params["range"] == "24h"
    at.sidebar.selectbox(key="f_tz").set_value("UTC").run()
    at.sidebar.selectbox(key="f_range").set_value("7d").run()
    assert at.query_params["tz"] == "UTC" and at.query_params["range"] == "7d"
    page(at, "finance")
    assert at.sidebar.selectbox(key="f_tz").value == "UTC"
    assert at.sidebar.selectbox(key="f_range").value == "7d"


def test_a_shared_link_opens_the_same_view(app, demo_url):
    at = app(demo_url, "admin", query={"range": "30d", "tz": "Europe/London", "shortcode": "174379"})
    no_errors(at)
    assert at.sidebar.selectbox(key="f_range").value == "30d"
    assert at.sidebar.selectbox(key="f_tz").value == "Europe/London"
    assert at.sidebar.selectbox(key="f_shortcode").value == "174379"


def test_support_finds_a_payment_by_phone_in_any_shape_and_reads_its_timeline(app, demo_url):
    engine = open_store(demo_url)
    with engine.connect() as conn:
        txn_id, msisdn = conn.execute(select(transactions.c.id, transactions.c.msisdn)
                                      .where(transactions.c.outcome == "1").limit(1)).one()
    engine.dispose()
    at = app(demo_url, "support")
    found = None
    for shape in ("0" + msisdn[3:], "+" + msisdn, msisdn[3:6] + " " + msisdn[6:]):
        at = page(at, "failures", q=shape)
        no_errors(at)
        ids = set(table(at, "gateway id")["gateway id"])
        assert txn_id in ids and found in (None, ids)
        found = ids
    at = page(at, "failures", txn=txn_id)
    no_errors(at)
    assert any(txn_id in h.value for h in at.subheader)
    assert "request" in set(table(at, "what")["what"])
    assert any("Tell the customer" in i.value and "top up" in i.value for i in at.info)


def test_engineers_acknowledge_and_silence_an_alert_finance_only_reads(app, demo_url):
    at = page(app(demo_url, "finance"), "alerts", range="7d")
    no_errors(at)
    assert not [b for b in at.button if b.label in ("Acknowledge", "Silence")]
    engine = open_store(demo_url)
    with engine.begin() as conn:  # make one alert open so it can be acted on
        alert_id = conn.execute(select(alerts.c.id).order_by(alerts.c.id).limit(1)).scalar_one()
        conn.execute(alerts.update().where(alerts.c.id == alert_id).values(status="firing", ended_at=None))
    streamlit.cache_data.clear()  # the page caches alerts for a few seconds
    at = page(app(demo_url, "engineer"), "alerts", range="7d")
    no_errors(at)
    at.text_input(key=f"ack_comment_{alert_id}").input("on it")
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    no_errors(at)
    at.text_input(key=f"silence_comment_{alert_id}").input("known incident")
    next(b for b in at.button if b.label == "Silence").click().run()
    no_errors(at)
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
    engine.dispose()
    assert row.acknowledged_by == "local engineer" and row.ack_comment == "on it"
    assert row.silenced_by == "local engineer" and row.silence_comment == "known incident"
    assert row.silenced_until > dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=59)


def test_an_empty_range_points_to_the_earlier_alerts(app, demo_url, tmp_path):
    import sqlite3
    from datetime import datetime, timedelta, timezone

    copy = tmp_path / "copy.db"
    with sqlite3.connect(demo_url.removeprefix("sqlite:///")) as src:
        src.execute("VACUUM INTO ?", (str(copy),))
    url = f"sqlite:///{copy}"
    engine = open_store(url)
    t = datetime(2026, 1, 5, 7, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(alerts.delete())
        conn.execute(alerts.insert().values(
            key="rate|1037|", detector="rate", code="1037", family="customer", shortcode="", severity="warning",
            status="resolved", started_at=t, ended_at=t + timedelta(minutes=30), last_seen_at=t + timedelta(minutes=15),
            failures=9, attempts=40, created_at=t, updated_at=t))
    engine.dispose()
    at = page(app(url, "support"), "alerts", range="24h")
    no_errors(at)
    labels = [el.proto.label for el in at.get("page_link")]
    assert any("1037 (DS timeout" in label and "05 Jan 10:00" in label for label in labels), labels  # Nairobi time

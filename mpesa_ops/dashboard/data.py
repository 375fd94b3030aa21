"""The queries as the pages call them, and the one place that caches them: per store
URL with a ttl (short for the live parts), so a rerun or a second viewer does not hit
the database again."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from mpesa_ops.dashboard import context, queries, webhook_queries

TTL = 120  # seconds: charts over a range
TTL_LIVE = 20  # seconds: what the live fragments show
TTL_ROWS = 30  # seconds: a page of payments
TTL_STORE = 30  # seconds: whether the store holds payments, and its newest minute
TTL_SHORTCODES = 300  # seconds: the shortcodes the sidebar offers


def url() -> str:
    return str(context.engine().url)


# --- the store as a whole (the sidebar and the empty-store notice) ---

@st.cache_data(ttl=TTL_STORE, show_spinner=False)
def _has_payments(store: str) -> bool:
    return queries.has_payments(context.engine())


def has_payments() -> bool:
    return _has_payments(url())


@st.cache_data(ttl=TTL_STORE, show_spinner=False)
def _latest_bucket(store: str) -> datetime | None:
    return queries.latest_bucket(context.engine())


def latest_bucket() -> datetime | None:
    return _latest_bucket(url())


@st.cache_data(ttl=TTL_SHORTCODES, show_spinner=False)
def _shortcodes(store: str) -> list[str]:
    return queries.shortcodes(context.engine())


def shortcodes() -> list[str]:
    return _shortcodes(url())


# --- payments ---

@st.cache_data(ttl=TTL, show_spinner=False)
def _outcomes(store: str, start: datetime, end: datetime, shortcode: str | None) -> pd.DataFrame:
    return queries.outcomes(context.engine(), start, end, shortcode)


def outcomes(f: context.Filters, *, previous: bool = False) -> pd.DataFrame:
    f = f.previous() if previous else f
    return _outcomes(url(), f.start, f.end, f.shortcode)


@st.cache_data(ttl=TTL, show_spinner=False)
def _by_shortcode(store: str, start: datetime, end: datetime) -> pd.DataFrame:
    return queries.by_shortcode(context.engine(), start, end)


def by_shortcode(f: context.Filters, *, previous: bool = False) -> pd.DataFrame:
    f = f.previous() if previous else f
    return _by_shortcode(url(), f.start, f.end)


@st.cache_data(ttl=TTL, show_spinner=False)
def _impossible_amounts(store: str, start: datetime, end: datetime, shortcode: str | None) -> pd.DataFrame:
    return queries.impossible_amounts(context.engine(), start, end, shortcode)


def impossible_amounts(f: context.Filters) -> pd.DataFrame:
    return _impossible_amounts(url(), f.start, f.end, f.shortcode)


@st.cache_data(ttl=TTL, show_spinner=False)
def _first_payment(store: str) -> datetime | None:
    return queries.first_payment(context.engine())


def first_payment() -> datetime | None:
    return _first_payment(url())


@st.cache_data(ttl=TTL_LIVE, show_spinner=False)
def _freshness(store: str) -> dict:
    return queries.freshness(context.engine())


def freshness() -> dict:
    return _freshness(url())


@st.cache_data(ttl=TTL, show_spinner=False)
def _code_rate(store: str, code: str, start: datetime, end: datetime, shortcode: str | None) -> pd.DataFrame:
    return queries.code_rate(context.engine(), code, start, end, shortcode)


def code_rate(code: str, start: datetime, end: datetime, shortcode: str | None) -> pd.DataFrame:
    return _code_rate(url(), code, start, end, shortcode)


@st.cache_data(ttl=TTL, show_spinner=False)
def _repeat_customers(store: str, code: str, start: datetime, end: datetime, shortcode: str | None) -> pd.DataFrame:
    return queries.repeat_customers(context.engine(), code, start, end, shortcode)


def repeat_customers(code: str, f: context.Filters) -> pd.DataFrame:
    return _repeat_customers(url(), code, f.start, f.end, f.shortcode)


@st.cache_data(ttl=TTL_ROWS, show_spinner=False)
def _payments(store: str, start: datetime, end: datetime, shortcode: str | None, codes: tuple[str, ...] | None,
              search: str, failures_only: bool, limit: int, offset: int, cap: int) -> tuple[pd.DataFrame, int]:
    engine = context.engine()
    kwargs = dict(start=start, end=end, shortcode=shortcode, codes=None if codes is None else list(codes),
                  search=search, failures_only=failures_only)
    return (queries.payments_page(engine, limit=limit, offset=offset, **kwargs),
            queries.payments_count(engine, cap=cap, **kwargs))


def payments(f: context.Filters, codes: tuple[str, ...] | None, search: str, failures_only: bool, *,
             limit: int, offset: int, cap: int) -> tuple[pd.DataFrame, int]:
    """One page of payments (queries.payments_page) and how many there are, counted up to cap."""
    return _payments(url(), f.start, f.end, f.shortcode, codes, search, failures_only, limit, offset, cap)


# --- webhook deliveries (per endpoint: no shortcode) ---

@st.cache_data(ttl=TTL, show_spinner=False)
def _endpoints(store: str) -> list[str]:
    return webhook_queries.endpoints(context.engine())


def endpoints() -> list[str]:
    return _endpoints(url())


@st.cache_data(ttl=TTL, show_spinner=False)
def _delivery_outcomes(store: str, start: datetime, end: datetime, endpoint: str | None) -> pd.DataFrame:
    return webhook_queries.delivery_outcomes(context.engine(), start, end, endpoint)


def delivery_outcomes(f: context.Filters, endpoint: str | None) -> pd.DataFrame:
    return _delivery_outcomes(url(), f.start, f.end, endpoint)


@st.cache_data(ttl=TTL, show_spinner=False)
def _signature_failures(store: str, start: datetime, end: datetime, endpoint: str | None) -> pd.DataFrame:
    return webhook_queries.signature_failures(context.engine(), start, end, endpoint)


def signature_failures(f: context.Filters, endpoint: str | None) -> pd.DataFrame:
    return _signature_failures(url(), f.start, f.end, endpoint)


@st.cache_data(ttl=TTL, show_spinner=False)
def _failure_list(store: str, start: datetime, end: datetime, endpoint: str | None,
                  verdict: str | None) -> pd.DataFrame:
    return webhook_queries.failure_list(context.engine(), start, end, endpoint, verdict)


def failure_list(f: context.Filters, endpoint: str | None, verdict: str | None) -> pd.DataFrame:
    return _failure_list(url(), f.start, f.end, endpoint, verdict)


@st.cache_data(ttl=TTL_LIVE, show_spinner=False)
def _alerts(store: str, limit: int) -> list[dict]:
    from mpesa_ops.ingest.detect.alerts import list_alerts

    return [_alert_dict(a) for a in list_alerts(context.engine(), include_resolved=True, limit=limit)]


def alerts(limit: int = 200) -> list[dict]:
    """Alerts newest first as dicts (the alerts table's columns)."""
    return _alerts(url(), limit)


_ALERT_TIMES = ("started_at", "ended_at", "last_seen_at", "acknowledged_at", "silenced_until")


def _alert_dict(alert: dict) -> dict:
    """list_alerts gives ISO times (for JSON); pages compare and convert datetimes."""
    alert = dict(alert)
    for name in _ALERT_TIMES:
        if isinstance(alert.get(name), str):
            alert[name] = datetime.fromisoformat(alert[name])
    return alert


def clear() -> None:
    """Forget cached reads (after an acknowledgement or a silence)."""
    _alerts.clear()

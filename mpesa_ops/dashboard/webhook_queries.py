"""The Webhooks page's reads and the pure helpers it draws with. SQL → DataFrames (every
value bound), no Streamlit here.

Delivery charts read ``delivery_rollup_minute`` for ranges up to MINUTE_ROLLUP_MAX
(12 hours) and ``delivery_rollup_hour`` beyond. Signature failures are few (a refused delivery is not
retried for ever), so they are read as rows and counted here.
"""

from __future__ import annotations

import difflib
import json
import re
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, and_, func, select

from mpesa_ops.dashboard.queries import _frame, _rollup_where, rollup_for
from mpesa_ops.ingest.schema import delivery_rollup_hour, delivery_rollup_minute
from mpesa_ops.ingest.schema import webhook_deliveries as wd
from mpesa_ops.ingest.verdicts import SIGNATURE_FAILURE
from mpesa_ops.signatures import _body_variants  # the same byte forms the diagnosis tried

UNDIAGNOSED = "undiagnosed"  # a signature failure with no stored verdict
DELIVERED = "delivered"
PAGE_SIZE = 200
DELIVERY_ROLLUPS = (delivery_rollup_minute, delivery_rollup_hour)


# --- delivery health (rollups) ---

def endpoints(engine: Engine) -> list[str]:
    """Every endpoint URL that has deliveries ("" = unknown is left out)."""
    t = delivery_rollup_hour
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.c.url).where(t.c.url != "").distinct().order_by(t.c.url))]


def delivery_outcomes(engine: Engine, start: datetime, end: datetime, url: str | None = None) -> pd.DataFrame:
    """Deliveries per bucket, endpoint and outcome in [start, end). Columns: bucket (UTC),
    url, outcome ("delivered" or the error class), deliveries, retries, latency_ms_sum."""
    t = rollup_for(start, end, DELIVERY_ROLLUPS)
    stmt = (select(t.c.bucket, t.c.url, t.c.outcome, func.sum(t.c.deliveries), func.sum(t.c.retries),
                   func.sum(t.c.latency_ms_sum))
            .where(_rollup_where(t, start, end, url=url))
            .group_by(t.c.bucket, t.c.url, t.c.outcome).order_by(t.c.bucket))
    df = _frame(engine, stmt, ["bucket", "url", "outcome", "deliveries", "retries", "latency_ms_sum"])
    df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    df["deliveries"] = df["deliveries"].astype("int64")
    df["retries"] = df["retries"].astype("int64")
    df["latency_ms_sum"] = df["latency_ms_sum"].astype("float64")
    return df


def health_totals(df: pd.DataFrame) -> dict:
    """Deliveries, delivered share, retries and mean latency of a delivery_outcomes() frame."""
    deliveries = int(df["deliveries"].sum())
    delivered = int(df.loc[df["outcome"] == DELIVERED, "deliveries"].sum())
    return {"deliveries": deliveries, "delivered": delivered,
            "delivered_rate": delivered / deliveries if deliveries else None,
            "retries": int(df["retries"].sum()),
            "mean_latency_ms": float(df["latency_ms_sum"].sum()) / deliveries if deliveries else None}


def by_endpoint(df: pd.DataFrame) -> pd.DataFrame:
    """One row per endpoint: deliveries, delivered, failed, delivered share, retries, mean
    latency and its most frequent failure class, busiest first."""
    rows = []
    for url, part in df.groupby("url", sort=False):
        t = health_totals(part)
        failed = part[part["outcome"] != DELIVERED].groupby("outcome")["deliveries"].sum()
        rows.append({"endpoint": url, "deliveries": t["deliveries"], "delivered": t["delivered"],
                     "failed": t["deliveries"] - t["delivered"], "delivered share": t["delivered_rate"],
                     "retries": t["retries"], "mean latency ms": t["mean_latency_ms"],
                     "top failure": failed.idxmax() if len(failed) else ""})
    columns = ["endpoint", "deliveries", "delivered", "failed", "delivered share", "retries", "mean latency ms",
               "top failure"]
    return pd.DataFrame(rows, columns=columns).sort_values("deliveries", ascending=False, ignore_index=True)


def per_chart_bucket(df: pd.DataFrame, buckets: pd.Series, by: str) -> pd.DataFrame:
    """Sum deliveries, retries and latency per chart bucket and ``by``; adds mean_latency_ms."""
    out = (df.assign(chart_bucket=buckets).groupby(["chart_bucket", by], as_index=False)
           [["deliveries", "retries", "latency_ms_sum"]].sum())
    out["mean_latency_ms"] = out["latency_ms_sum"] / out["deliveries"].where(out["deliveries"] > 0)
    return out


# --- signature failures (rows) ---

def _failures_where(start: datetime, end: datetime, url: str | None, verdict: str | None = None):
    cond = [SIGNATURE_FAILURE, wd.c.sent_at >= start, wd.c.sent_at < end]
    if url is not None:
        cond.append(wd.c.url == url)
    if verdict == UNDIAGNOSED:
        cond.append(wd.c.signature_verdict.is_(None))
    elif verdict is not None:
        cond.append(wd.c.signature_verdict == verdict)
    return and_(*cond)


def signature_failures(engine: Engine, start: datetime, end: datetime, url: str | None = None) -> pd.DataFrame:
    """Every signature failure sent in [start, end). Columns: sent_at (UTC), url, verdict
    ("undiagnosed" when none is stored), verdict_secrets."""
    stmt = (select(wd.c.sent_at, wd.c.url, wd.c.signature_verdict, wd.c.verdict_secrets)
            .where(_failures_where(start, end, url)).order_by(wd.c.sent_at))
    df = _frame(engine, stmt, ["sent_at", "url", "verdict", "verdict_secrets"])
    df["sent_at"] = pd.to_datetime(df["sent_at"], utc=True)
    df["url"] = df["url"].fillna("")
    df["verdict"] = df["verdict"].fillna(UNDIAGNOSED)
    return df


def failure_onsets(failures: pd.DataFrame) -> pd.DataFrame:
    """When each verdict started and stopped on each endpoint: first, last, deliveries,
    newest onset first. A rotation the sender missed shows as one block of previous_secret."""
    if failures.empty:
        return pd.DataFrame(columns=["verdict", "url", "first", "last", "deliveries"])
    out = (failures.groupby(["verdict", "url"], as_index=False)
           .agg(first=("sent_at", "min"), last=("sent_at", "max"), deliveries=("sent_at", "size")))
    return out.sort_values("first", ascending=False, ignore_index=True)


def stale_verdicts(failures: pd.DataFrame, fingerprint: str | None) -> int:
    """How many failures have no verdict yet or one reached with other secrets."""
    if fingerprint is None or failures.empty:
        return 0
    return int((failures["verdict_secrets"] != fingerprint).sum())


def failure_list(engine: Engine, start: datetime, end: datetime, url: str | None = None, verdict: str | None = None,
                 *, limit: int = PAGE_SIZE) -> pd.DataFrame:
    """The newest signature failures in [start, end) to pick one from. Columns: id,
    sent_at (UTC), url, attempt, status_code, verdict, skew_seconds."""
    stmt = (select(wd.c.id, wd.c.sent_at, wd.c.url, wd.c.attempt, wd.c.status_code, wd.c.signature_verdict,
                   wd.c.signature_skew_seconds)
            .where(_failures_where(start, end, url, verdict)).order_by(wd.c.sent_at.desc(), wd.c.id).limit(limit))
    df = _frame(engine, stmt, ["id", "sent_at", "url", "attempt", "status_code", "verdict", "skew_seconds"])
    df["sent_at"] = pd.to_datetime(df["sent_at"], utc=True)
    df["verdict"] = df["verdict"].fillna(UNDIAGNOSED)
    return df


def delivery(engine: Engine, delivery_id: str) -> dict | None:
    """One stored delivery, every column."""
    with engine.connect() as conn:
        row = conn.execute(select(wd).where(wd.c.id == delivery_id)).mappings().first()
    return dict(row) if row else None


# --- showing one delivery ---

def headers_of(row: dict) -> dict:
    """The stored request headers as an object ({} when the log kept none)."""
    try:
        value = json.loads(row.get("headers") or "{}")
    except ValueError:
        return {"(unreadable)": row["headers"]}
    return value if isinstance(value, dict) else {"(not an object)": value}


def pretty_payload(payload: str) -> tuple[str, str]:
    """(text, language) for display: JSON indented when it parses, else the text as is."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return payload, "text"


def reserialized_form(payload: str, variant: str) -> str | None:
    """The body re-serialised the way a body_reserialized verdict's ``variant`` names
    (as the diagnosis built it), or None when that form cannot be rebuilt."""
    body = payload.encode("utf-8", "surrogateescape")
    for name, data in _body_variants(body):
        if name == variant:
            return data.decode("utf-8", "replace")
    return None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_JSON = object()


def _ordered(text: str):
    """The JSON value with objects as lists of (key, value) pairs (their order kept), or _NOT_JSON."""
    try:
        return json.loads(text, object_pairs_hook=list)
    except ValueError:
        return _NOT_JSON


def _plain(value):
    """An _ordered value with its objects as dicts (order no longer counts)."""
    if isinstance(value, list) and all(isinstance(i, tuple) and len(i) == 2 for i in value) and value:
        return {k: _plain(v) for k, v in value}
    return [_plain(v) for v in value] if isinstance(value, list) else value


def _pretty(value) -> str:
    """An _ordered value printed indented, keys in their own order, characters unescaped."""
    def back(item):
        if isinstance(item, list) and item and all(isinstance(i, tuple) and len(i) == 2 for i in item):
            return {k: back(v) for k, v in item}
        return [back(v) for v in item] if isinstance(item, list) else item

    return json.dumps(back(value), indent=2, ensure_ascii=False)


def _layout(text: str) -> tuple[int, int]:
    """Line breaks and other blanks outside JSON strings."""
    outside = _STRING.sub("", text.rstrip("\n"))
    return outside.count("\n"), sum(outside.count(c) for c in " \t\r")


def body_differences(raw: str, other: str) -> list[str]:
    """What differs between the raw body and another form of it, in words: whitespace
    between tokens, key order, escaping, the trailing newline, or the content itself."""
    notes = []
    a, b = _ordered(raw), _ordered(other)
    if a is _NOT_JSON or b is _NOT_JSON:
        notes.append("the body is not JSON: its bytes differ" if raw.rstrip("\n") != other.rstrip("\n") else "")
    elif _plain(a) != _plain(b):
        notes.append("the content differs: some values are not the same")
    else:
        (raw_breaks, raw_blanks), (other_breaks, other_blanks) = _layout(raw), _layout(other)
        if (raw_breaks, raw_blanks) != (other_breaks, other_blanks):
            notes.append(f"whitespace outside strings differs: the raw body has {raw_breaks:,} line breaks and "
                         f"{raw_blanks:,} spaces outside strings, the signed form {other_breaks:,} and "
                         f"{other_blanks:,}")
        if _pretty(a) != _pretty(b):
            notes.append("key order: some objects list their keys in another order (the diff below shows "
                         "the keys that moved)")
        raw_strings, other_strings = _STRING.findall(raw), _STRING.findall(other)
        if sorted(raw_strings) != sorted(other_strings):
            changed = sum(1 for x, y in zip(sorted(raw_strings), sorted(other_strings)) if x != y)
            written = "string is" if changed == 1 else "strings are"
            notes.append(f"escaping: {changed:,} {written} written differently (for example non-ASCII "
                         "characters as \\uXXXX escapes in one form and as UTF-8 in the other)")
    if raw.endswith("\n") != other.endswith("\n"):
        notes.append("trailing newline: " + ("the raw body ends with one, the signed form does not"
                                              if raw.endswith("\n") else
                                              "the signed form ends with one, the raw body does not"))
    return [note for note in notes if note]


def body_diff(raw: str, other: str) -> tuple[str, str]:
    """(text, language): the raw body against another form of it, both printed the same
    way first (indented, keys in their own order), so only real differences show: a
    unified diff when content or key order differ, else the bytes around the first
    difference (whitespace, escaping or the trailing newline)."""
    a, b = _ordered(raw), _ordered(other)
    if a is not _NOT_JSON and b is not _NOT_JSON:
        left, right = _pretty(a), _pretty(b)
    else:
        left, right = raw, other
    if left != right:
        lines = [text.splitlines(keepends=True) for text in (left, right)]
        for seq in lines:
            if seq and not seq[-1].endswith("\n"):
                seq[-1] += "\n"
        return "".join(difflib.unified_diff(*lines, "raw body (as sent), indented",
                                            "the form the signature matches, indented", n=1)), "diff"
    at = next((i for i, (x, y) in enumerate(zip(raw, other)) if x != y), min(len(raw), len(other)))
    start = max(0, at - 10)
    return (f"Same JSON, same key order; the bytes first differ at character {at:,}:\n"
            f"  raw body (as sent)       : {raw[start:at + 30]!r}\n"
            f"  form the signature matches: {other[start:at + 30]!r}\n"), "text"

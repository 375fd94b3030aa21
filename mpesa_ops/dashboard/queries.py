"""The dashboard's reads: SQL (SQLAlchemy Core, every value bound) → DataFrames.

Charts read the rollups, so their cost follows the range, not the number of stored
payments: minute rows for ranges up to 12 hours (charted by the minute or 5 minutes),
hour rows from a day on (charted by the hour or coarser). At busy stores a minute holds
about one payment per shortcode and outcome, so only hour rows are much smaller than
the payments themselves. Row views read the
transactions table a page at a time. No Streamlit here: the pages cache these."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, String, and_, bindparam, case, cast, func, literal, or_, select, text, union_all

from mpesa_ops import catalogue
from mpesa_ops.ingest import fields
from mpesa_ops.ingest.schema import (IMPOSSIBLE_AMOUNT, UtcDateTime, alerts, detection_runs, load_runs, result_events, transactions,
                                     txn_rollup_hour, txn_rollup_minute, webhook_deliveries)

MINUTE_ROLLUP_MAX = timedelta(hours=12)  # longer ranges chart hours or days: they read hour rows
FAILED = ("failed", "rejected")  # a result code that failed, or a request the gateway refused
PAYMENT_ROLLUPS = (txn_rollup_minute, txn_rollup_hour)


def rollup_for(start: datetime, end: datetime, rollups=PAYMENT_ROLLUPS):
    """The table of rollups (minute, hour) a chart of [start, end) reads."""
    minute, hour = rollups
    return minute if end - start <= MINUTE_ROLLUP_MAX else hour


def grain(start: datetime, end: datetime) -> timedelta:
    """The chart step for a range: minutes for an hour, up to days for months."""
    span = end - start
    for limit, step in ((timedelta(hours=2), timedelta(minutes=1)), (MINUTE_ROLLUP_MAX, timedelta(minutes=5)),
                        (timedelta(days=2), timedelta(hours=1)), (timedelta(days=8), timedelta(hours=3))):
        if span <= limit:
            return step
    return timedelta(days=1)


def _frame(engine: Engine, stmt, columns: list[str]) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def _times(df: pd.DataFrame, *names: str) -> pd.DataFrame:
    for name in names:
        df[name] = pd.to_datetime(df[name], utc=True)
    return df


# --- the store as a whole ---

def has_payments(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(literal(1)).select_from(transactions).limit(1)).first() is not None


def latest_bucket(engine: Engine) -> datetime | None:
    """The newest minute that holds a payment."""
    with engine.connect() as conn:
        return conn.execute(select(func.max(txn_rollup_minute.c.bucket))).scalar()


SHORTCODES_SEEN = timedelta(days=30)


def shortcodes(engine: Engine) -> list[str]:
    """The shortcodes with payments in the 30 days up to the newest data ("" = unknown
    is left out): a scan bounded by time, not by the size of the store."""
    t = txn_rollup_hour
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(t.c.bucket))).scalar()
        if latest is None:
            return []
        rows = conn.execute(select(t.c.shortcode).where(t.c.bucket >= latest - SHORTCODES_SEEN, t.c.shortcode != "")
                            .distinct().order_by(t.c.shortcode))
        return [r[0] for r in rows]


def freshness(engine: Engine) -> dict:
    """The newest data, the last load run and the last detection run."""
    with engine.connect() as conn:
        load = conn.execute(select(load_runs.c.command, load_runs.c.status, load_runs.c.started_at,
                                   load_runs.c.finished_at, load_runs.c.loaded)
                            .order_by(load_runs.c.id.desc()).limit(1)).first()
        detect = conn.execute(select(detection_runs.c.status, detection_runs.c.finished_at)
                              .order_by(detection_runs.c.id.desc()).limit(1)).first()
    return {"latest_data": latest_bucket(engine),
            "load": dict(load._mapping) if load else None,
            "detection": dict(detect._mapping) if detect else None}


# --- rollup reads (charts) ---

def _rollup_where(t, start: datetime, end: datetime, **equal: str | None):
    """Buckets in [start, end) whose named columns hold the given values (None: any value)."""
    cond = [t.c.bucket >= start, t.c.bucket < end]
    cond += [t.c[name] == value for name, value in equal.items() if value is not None]
    return and_(*cond)


def outcomes(engine: Engine, start: datetime, end: datetime, shortcode: str | None = None) -> pd.DataFrame:
    """Attempts and amounts per bucket, status and outcome in [start, end), with each
    outcome's family. Columns: bucket, status, outcome, family, attempts, amount_cents."""
    t = rollup_for(start, end)
    stmt = (select(t.c.bucket, t.c.status, t.c.outcome, func.sum(t.c.attempts), func.sum(t.c.amount_cents))
            .where(_rollup_where(t, start, end, shortcode=shortcode)).group_by(t.c.bucket, t.c.status, t.c.outcome))
    df = _times(_frame(engine, stmt, ["bucket", "status", "outcome", "attempts", "amount_cents"]), "bucket")
    df["attempts"] = df["attempts"].astype("int64")
    df["amount_cents"] = df["amount_cents"].fillna(0).astype("int64")
    df["family"] = [family(code, status) for code, status in zip(df["outcome"], df["status"])]
    return df


def by_shortcode(engine: Engine, start: datetime, end: datetime) -> pd.DataFrame:
    """Attempts and amounts per shortcode, status and outcome over [start, end)."""
    t = rollup_for(start, end)
    stmt = (select(t.c.shortcode, t.c.status, t.c.outcome, func.sum(t.c.attempts), func.sum(t.c.amount_cents))
            .where(_rollup_where(t, start, end)).group_by(t.c.shortcode, t.c.status, t.c.outcome))
    df = _frame(engine, stmt, ["shortcode", "status", "outcome", "attempts", "amount_cents"])
    df["attempts"] = df["attempts"].astype("int64")
    df["amount_cents"] = df["amount_cents"].fillna(0).astype("int64")
    return df


def family(outcome: str, status: str) -> str:
    if status == "pending" or outcome == "pending":
        return "pending"
    if outcome == "unknown":
        return "other"
    return catalogue.lookup(outcome).family


def totals(df: pd.DataFrame) -> dict:
    """Payments, completed, succeeded, success rate and KES collected of an outcomes() frame."""
    payments = int(df["attempts"].sum()) if len(df) else 0
    done = df[df["status"] != "pending"] if len(df) else df
    completed = int(done["attempts"].sum()) if len(done) else 0
    ok = done[done["status"] == "success"] if len(done) else done
    succeeded = int(ok["attempts"].sum()) if len(ok) else 0
    return {"payments": payments, "completed": completed, "succeeded": succeeded,
            "success_rate": succeeded / completed if completed else None,
            "collected_cents": int(ok["amount_cents"].sum()) if len(ok) else 0}


def rebucket(df: pd.DataFrame, step: timedelta, tz: str) -> pd.Series:
    """Each row's chart bucket: the start of its step in the viewer's zone (days are local days)."""
    local = df["bucket"].dt.tz_convert(tz)
    if step >= timedelta(days=1):
        return local.dt.normalize()
    return local.dt.floor(pd.Timedelta(step), ambiguous="NaT", nonexistent="shift_forward")


def code_rate(engine: Engine, code: str, start: datetime, end: datetime, shortcode: str | None = None) -> pd.DataFrame:
    """Per minute of [start, end): attempts that completed, and those that ended in code.
    Columns: bucket, attempts, failures (what an alert's rate is made of)."""
    t = txn_rollup_minute
    hit = func.sum(case((t.c.outcome == code, t.c.attempts), else_=0))
    stmt = (select(t.c.bucket, func.sum(t.c.attempts), hit)
            .where(_rollup_where(t, start, end, shortcode=shortcode or None), t.c.status != "pending")
            .group_by(t.c.bucket).order_by(t.c.bucket))
    df = _times(_frame(engine, stmt, ["bucket", "attempts", "failures"]), "bucket")
    return df.astype({"attempts": "int64", "failures": "int64"})


# --- rows (paged) ---

ROW_COLUMNS = ["created_at", "id", "status", "outcome", "shortcode", "msisdn", "amount_cents", "result_desc",
               "error_code", "http_status", "mpesa_receipt", "checkout_request_id"]


def search_condition(text: str):
    """Whatever support typed: a phone number in any common shape, an M-Pesa receipt, a
    CheckoutRequestID or the gateway's id. None when the text is empty."""
    text = (text or "").strip()
    if not text:
        return None
    t = transactions.c
    options = [t.id == text, t.checkout_request_id == text, t.mpesa_receipt == text.upper(),
               t.merchant_request_id == text]
    try:
        phone = fields.msisdn(text)
    except fields.FieldError:
        phone = None
    if phone:
        options.append(t.msisdn == phone)
    return or_(*options)


def _row_filter(*, start: datetime | None, end: datetime | None, shortcode: str | None,
                codes: list[str] | None, search: str | None, failures_only: bool):
    t = transactions.c
    cond = []
    found = search_condition(search or "")
    if found is not None:
        cond.append(found)  # a search looks at all time: the customer's payment may be older than the range
    else:
        cond += [t.created_at >= start, t.created_at < end]
    if failures_only:
        cond.append(t.status.in_(FAILED))
    if codes is not None:
        cond.append(t.outcome.in_(codes))
    if shortcode is not None:
        cond.append(t.shortcode == shortcode)
    return and_(*cond)


def payments_page(engine: Engine, *, start: datetime | None = None, end: datetime | None = None,
                  shortcode: str | None = None, codes: list[str] | None = None, search: str | None = None,
                  failures_only: bool = True, limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """One page of payments, newest first. codes=None means any outcome; [] none."""
    cols = [getattr(transactions.c, name) for name in ROW_COLUMNS]
    stmt = (select(*cols).where(_row_filter(start=start, end=end, shortcode=shortcode, codes=codes, search=search,
                                            failures_only=failures_only))
            .order_by(transactions.c.created_at.desc(), transactions.c.id.desc()).limit(limit).offset(offset))
    return _times(_frame(engine, stmt, ROW_COLUMNS), "created_at")


def payments_count(engine: Engine, *, start: datetime | None = None, end: datetime | None = None,
                   shortcode: str | None = None, codes: list[str] | None = None, search: str | None = None,
                   failures_only: bool = True, cap: int = 10_000) -> int:
    """How many rows payments_page pages through, counted up to cap (a bounded count)."""
    inner = (select(literal(1)).select_from(transactions)
             .where(_row_filter(start=start, end=end, shortcode=shortcode, codes=codes, search=search,
                                failures_only=failures_only)).limit(cap).subquery())
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inner)).scalar())


def payment(engine: Engine, txn_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(transactions).where(transactions.c.id == txn_id)).first()
    return dict(row._mapping) if row else None


def request_step(txn: dict) -> dict:
    """The timeline's request row: what was asked for (amount, phone, shortcode, account
    reference) and the state it started in: pending, or the gateway's refusal for a
    rejected request. Results come later, from result_events."""
    asked = [f"KES {txn['amount_cents'] / 100:,.2f}" if txn.get("amount_cents") is not None else "",
             txn.get("msisdn") or "", f"shortcode {txn['shortcode']}" if txn.get("shortcode") else "",
             f"account {txn['account_reference']}" if txn.get("account_reference") else ""]
    detail = " · ".join(part for part in asked if part)
    if txn["status"] == "rejected":
        http = f"HTTP {txn['http_status']}: " if txn.get("http_status") else ""
        refusal = f"refused: {http}{txn.get('result_desc') or txn.get('error_code') or 'no reason given'}"
        return {"time": txn["created_at"], "what": "request", "status": "rejected",
                "code": txn.get("error_code") or "", "detail": f"{detail} · {refusal}" if detail else refusal}
    if txn.get("origin") == "callback":  # the log holds no request; the result named this payment
        detail = f"{detail} · not in the gateway's log: known from its result" if detail else \
            "not in the gateway's log: known from its result"
        return {"time": txn["created_at"], "what": "request", "status": "unknown", "code": "", "detail": detail}
    return {"time": txn["created_at"], "what": "request", "status": "pending", "code": "", "detail": detail}


def timeline(engine: Engine, txn_id: str) -> pd.DataFrame:
    """The request as it was made (request_step), its result events and its webhook
    deliveries in time order. Columns: time, what, status, code, detail."""
    columns = ["time", "what", "status", "code", "detail"]
    txn = payment(engine, txn_id)
    r, w = result_events.c, webhook_deliveries.c
    events = select(r.time, r.kind, r.status, func.coalesce(r.code, literal("")),
                    func.coalesce(r.description, literal(""))).where(r.transaction_id == txn_id)
    deliveries = select(w.sent_at, literal("webhook"), func.coalesce(w.error, literal("delivered")),
                        func.coalesce(cast(w.status_code, String), literal("")),
                        func.coalesce(w.url, literal(""))).where(w.transaction_id == txn_id)
    later = _frame(engine, union_all(events, deliveries), columns)
    first = pd.DataFrame([request_step(txn)] if txn else [], columns=columns)
    df = _times(pd.concat([first, later], ignore_index=True) if len(later) else first, "time")
    return df.sort_values("time", kind="stable", na_position="last").reset_index(drop=True)


REPEAT_SCAN = 20_000  # the newest payments of the code that repeat_customers reads


def repeat_customers(engine: Engine, code: str, start: datetime, end: datetime, shortcode: str | None = None,
                     *, min_hits: int = 2, limit: int = 50, scan: int = REPEAT_SCAN) -> pd.DataFrame:
    """Numbers that ended in code at least min_hits times among the newest `scan`
    payments of that code in [start, end), most first. A bounded read of
    ix_transactions_outcome_created. Columns: msisdn, hits, amount_cents, first, last."""
    t = transactions.c
    cond = [t.outcome == code, t.created_at >= start, t.created_at < end]
    if shortcode is not None:
        cond.append(t.shortcode == shortcode)
    newest = (select(t.msisdn, t.amount_cents, t.created_at).where(and_(*cond))
              .order_by(t.created_at.desc()).limit(scan).subquery())
    n = newest.c
    hits = func.count()
    stmt = (select(n.msisdn, hits, func.sum(n.amount_cents), func.min(n.created_at), func.max(n.created_at))
            .where(n.msisdn.is_not(None)).group_by(n.msisdn).having(hits >= min_hits)
            .order_by(hits.desc(), n.msisdn).limit(limit))
    df = _frame(engine, stmt, ["msisdn", "hits", "amount_cents", "first", "last"])
    df["amount_cents"] = df["amount_cents"].fillna(0).astype("int64")
    return _times(df, "first", "last")


def impossible_amounts(engine: Engine, start: datetime, end: datetime, shortcode: str | None = None) -> pd.DataFrame:
    """Refused requests in [start, end) whose amount no payment can have (outside KES 1
    to 300,000: INVALID_AMOUNT's 0 or millions), per status and outcome, so money-lost
    figures can leave them out. Only refused requests can hold them (the loader enforces
    the band on the rest). A read of the partial index ix_transactions_impossible_amount,
    whose condition (schema.IMPOSSIBLE_AMOUNT) the query states word for word; SQLite is
    told to use it (INDEXED BY), as without statistics it picks an index that reads every
    refusal of the range.
    Columns: status, outcome, attempts, amount_cents."""
    hint = " INDEXED BY ix_transactions_impossible_amount" if engine.dialect.name == "sqlite" else ""
    stmt = text(f"SELECT status, outcome, count(*), sum(amount_cents) FROM transactions{hint} "
                f"WHERE {IMPOSSIBLE_AMOUNT} AND created_at >= :start AND created_at < :end"
                + (" AND shortcode = :shortcode" if shortcode is not None else "")
                + " GROUP BY status, outcome")
    params = [bindparam("start", start, type_=UtcDateTime), bindparam("end", end, type_=UtcDateTime)]
    if shortcode is not None:
        params.append(bindparam("shortcode", shortcode))
    df = _frame(engine, stmt.bindparams(*params), ["status", "outcome", "attempts", "amount_cents"])
    return df.astype({"attempts": "int64", "amount_cents": "int64"})


def first_payment(engine: Engine) -> datetime | None:
    """The first stored minute holding a payment (what a comparison period can reach back to)."""
    with engine.connect() as conn:
        return conn.execute(select(func.min(txn_rollup_minute.c.bucket))).scalar()


# --- alerts (read-only here; acting goes through mpesa_ops.ingest.detect.alerts) ---

def firing_alert_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(alerts).where(alerts.c.status == "firing")).scalar())

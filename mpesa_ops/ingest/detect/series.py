"""5-minute series read from the store: failures x of each code out of attempts n.

Three sources, one grouped query each (the database does the summing):

- ``txn_rollup_minute``: attempts per bucket, shortcode and outcome (the result or error
  code; "0" is success, "pending" a payment with no result yet). n is every payment
  requested in the bucket, whatever became of it.
- ``delivery_rollup_minute``: first delivery attempts per bucket and outcome
  ("delivered" or the failure class): deliveries minus retries, since a failing
  endpoint's retries repeat one failure and would look like a cluster. n is every
  first attempt in the bucket.
- ``webhook_deliveries.signature_verdict``: first attempts per bucket and verdict;
  every verdict but "valid" counts as a webhook failure class, out of the same n.

Buckets are numbered as UTC epoch seconds // 300; Nairobi (UTC+3) has the same boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Integer, and_, cast, extract, func, or_, select

from mpesa_ops.ingest.detect.settings import BUCKET_SECONDS
from mpesa_ops.ingest.schema import delivery_rollup_minute, txn_rollup_minute, webhook_deliveries

ALL = ""  # the shortcode of a series over all shortcodes together
TXN, WEBHOOK = "txn", "webhook"
NOT_FAILURES = frozenset(("0", "delivered", "valid"))


def bucket_of(when: datetime) -> int:
    return int(when.timestamp()) // BUCKET_SECONDS


def time_of(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * BUCKET_SECONDS, timezone.utc)


def _bucket_expr(column, dialect: str):
    """The 5-minute bucket number of a time column, in SQL."""
    if dialect == "sqlite":
        # integer division (//): "/" divides as floats in SQLAlchemy 2, and grouping a
        # backfill's million rows by a float took a quarter longer
        return cast(func.strftime("%s", column), Integer) // BUCKET_SECONDS
    return cast(func.floor(extract("epoch", column) / BUCKET_SECONDS), BigInteger)


@dataclass
class Series:
    """Dense 5-minute counts from bucket ``t0`` for ``T`` buckets.

    Row i of ``x`` is the failures of ``codes[i]`` on ``shortcodes[i]`` (ALL for every
    shortcode together) from ``sources[i]``; its attempts are row ``den[i]`` of ``n``,
    whose rows are named by ``n_keys`` ((source, shortcode) pairs)."""

    t0: int
    T: int
    codes: list[str]
    shortcodes: list[str]
    sources: list[str]
    x: np.ndarray  # (P, T) float64
    den: np.ndarray  # (P,) int: row of n for each series
    n_keys: list[tuple[str, str]]
    n: np.ndarray  # (D, T) float64

    def rows(self, code: str) -> list[int]:
        return [i for i, c in enumerate(self.codes) if c == code]

    def n_row(self, source: str, shortcode: str) -> int:
        return self.n_keys.index((source, shortcode))


def first_and_last(engine) -> tuple[datetime | None, datetime | None]:
    """The first and the last minute holding any payment or delivery."""
    with engine.connect() as conn:
        t = conn.execute(select(func.min(txn_rollup_minute.c.bucket), func.max(txn_rollup_minute.c.bucket))).one()
        d = conn.execute(select(func.min(delivery_rollup_minute.c.bucket),
                                func.max(delivery_rollup_minute.c.bucket))).one()
    firsts = [v for v in (t[0], d[0]) if v is not None]
    lasts = [v for v in (t[1], d[1]) if v is not None]
    first = min(firsts) if firsts else None
    last = max(lasts) if lasts else None
    if isinstance(first, str):  # SQLite's MIN over a DateTime column comes back as text
        first = datetime.fromisoformat(first).replace(tzinfo=timezone.utc)
    if isinstance(last, str):
        last = datetime.fromisoformat(last).replace(tzinfo=timezone.utc)
    return first, last


def _grouped(conn, table, time_col, label_col, count_expr, lo, hi, extra=(), by_shortcode=False) -> pd.DataFrame:
    """(b, label[, shortcode], count) rows of one grouped query, as a frame. The rows
    come straight from the driver's cursor: a backfill of months returns a million of
    them, and building a Row object for each would cost more than the query."""
    b = _bucket_expr(time_col, conn.dialect.name).label("b")
    keys = [b, label_col] + ([table.c.shortcode] if by_shortcode else [])
    q = select(*keys, count_expr).where(and_(time_col >= lo, time_col < hi, *extra)).group_by(*keys)
    result = conn.execute(q)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    names = ["b", "label"] + (["shortcode"] if by_shortcode else []) + ["count"]
    return pd.DataFrame.from_records(rows, columns=names, nrows=len(rows))


def read_series(engine, lo: datetime, hi: datetime, *, max_shortcodes: int) -> Series:
    """Counts for the buckets from ``lo`` up to ``hi`` (exclusive)."""
    t0, t1 = bucket_of(lo), -(-int(hi.timestamp()) // BUCKET_SECONDS)
    T = max(t1 - t0, 0)
    lo, hi = time_of(t0), time_of(t1)
    with engine.connect() as conn:
        txn = _grouped(conn, txn_rollup_minute, txn_rollup_minute.c.bucket, txn_rollup_minute.c.outcome,
                       func.sum(txn_rollup_minute.c.attempts), lo, hi, by_shortcode=True)
        d = delivery_rollup_minute
        dlv = _grouped(conn, d, d.c.bucket, d.c.outcome, func.sum(d.c.deliveries - d.c.retries), lo, hi)
        wd = webhook_deliveries
        ver = _grouped(conn, wd, wd.c.sent_at, wd.c.signature_verdict, func.count(), lo, hi,
                       extra=(wd.c.signature_verdict.is_not(None), wd.c.signature_verdict != "valid",
                              or_(wd.c.attempt.is_(None), wd.c.attempt <= 1)))
    return _assemble(t0, T, txn, dlv, ver, max_shortcodes)


class _Builder:
    def __init__(self, T: int):
        self.T = T
        self.codes: list[str] = []
        self.shortcodes: list[str] = []
        self.sources: list[str] = []
        self.den: list[int] = []
        self.x: list[np.ndarray] = []
        self.n_keys: list[tuple[str, str]] = []
        self.n: list[np.ndarray] = []

    def add_n(self, source: str, shortcode: str, counts: np.ndarray) -> int:
        self.n_keys.append((source, shortcode))
        self.n.append(counts)
        return len(self.n_keys) - 1

    def add_x(self, code: str, shortcode: str, source: str, den: int, counts: np.ndarray) -> None:
        self.codes.append(code), self.shortcodes.append(shortcode), self.sources.append(source)
        self.den.append(den), self.x.append(counts)

    def series(self, t0: int) -> Series:
        T = self.T
        return Series(t0, T, self.codes, self.shortcodes, self.sources,
                      np.vstack(self.x) if self.x else np.zeros((0, T)), np.asarray(self.den, dtype=np.int64),
                      self.n_keys, np.vstack(self.n) if self.n else np.zeros((0, T)))


def _dense(b: np.ndarray, group: np.ndarray, groups: int, counts: np.ndarray, T: int) -> np.ndarray:
    """(groups, T) sums of counts by group and bucket offset, in one bincount."""
    return np.bincount(group * T + b, weights=counts, minlength=groups * T).reshape(groups, T)


def _assemble(t0: int, T: int, txn: pd.DataFrame, deliveries: pd.DataFrame, verdicts: pd.DataFrame,
              max_shortcodes: int) -> Series:
    out = _Builder(T)
    if len(txn):
        b = txn["b"].to_numpy(np.int64) - t0
        cnt = txn["count"].to_numpy(np.float64)
        code_i, code_names = pd.factorize(txn["label"].astype(str), sort=True)
        sc_i, sc_names = pd.factorize(txn["shortcode"].fillna(ALL).astype(str), sort=True)
        volume = np.bincount(sc_i, weights=cnt, minlength=len(sc_names))
        busiest = sorted((j for j, name in enumerate(sc_names) if name != ALL),
                         key=lambda j: (-volume[j], sc_names[j]))[:max_shortcodes]
        slot = np.full(len(sc_names), len(busiest))  # the rest: only in the total
        slot[busiest] = np.arange(len(busiest))
        S = len(busiest) + 1
        per = _dense(b, code_i * S + slot[sc_i], len(code_names) * S, cnt, T).reshape(len(code_names), S, T)
        n_sc = per.sum(0)
        all_row = out.add_n(TXN, ALL, n_sc.sum(0))
        rows = [out.add_n(TXN, sc_names[j], n_sc[k]) for k, j in enumerate(busiest)]
        for c, code in enumerate(code_names):
            if code in NOT_FAILURES:
                continue
            out.add_x(code, ALL, TXN, all_row, per[c].sum(0))
            for k, j in enumerate(busiest):
                if per[c, k].any():
                    out.add_x(code, sc_names[j], TXN, rows[k], per[c, k])
    if len(deliveries):
        b = deliveries["b"].to_numpy(np.int64) - t0
        row = out.add_n(WEBHOOK, ALL, np.bincount(b, weights=deliveries["count"].to_numpy(np.float64), minlength=T))
        # verdicts re-count deliveries the rollup already holds: numerators only
        for frame in (deliveries, verdicts):
            if not len(frame):
                continue
            code_i, code_names = pd.factorize(frame["label"].astype(str), sort=True)
            per = _dense(frame["b"].to_numpy(np.int64) - t0, code_i, len(code_names),
                         frame["count"].to_numpy(np.float64), T)
            for c, code in enumerate(code_names):
                if code not in NOT_FAILURES:
                    out.add_x(code, ALL, WEBHOOK, row, per[c])
    return out.series(t0)

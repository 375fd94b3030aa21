"""The loader: normalised records into the store, exactly once.

A batch is one database transaction. Before writing, the loader reads the current
state of every payment, event and delivery the batch names, applies the batch's
records to that state in order (so where batches are cut never changes the
outcome), then writes the changed rows, the new events and rejects, and the rollup
deltas (new contribution minus old) in that same transaction.

Every record read lands in exactly one count: loaded (a new row or event),
updated (it changed a stored payment or delivery), duplicate (nothing new, or an
older state than the stored one), rejected (kept with its reason).

Which state wins: a final state (success, failed, rejected) is never replaced by a
pending one; otherwise the newer time wins. A different final result for a payment
that already had one sets `conflicting_results` and keeps both events.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import operator
from dataclasses import asdict, dataclass, fields as dc_fields
from datetime import datetime, timezone
from typing import Iterable, Iterator

import orjson
from sqlalchemy import Boolean, Connection, Engine, bindparam, delete, insert, text, update
from sqlalchemy.dialects import postgresql, sqlite

from mpesa_ops.ingest import fields as F
from mpesa_ops.ingest.normalise import Delivery, Event, Normalised, Rejected, Txn
from mpesa_ops.ingest.readers import raw_text
from mpesa_ops.ingest.schema import (UtcDateTime, delivery_rollup_hour, delivery_rollup_minute, load_runs,
                                     rejected_records, result_events, transactions, txn_rollup_hour,
                                     txn_rollup_minute, webhook_deliveries)

BATCH_SIZE = 10_000  # measured: 16% faster than 5,000 at a million rows (more pending/final pairs meet in one batch)
GC_EVERY = 20  # batches between cyclic garbage collections during a streamed load
HANDED_MAX = 2  # batches handed to the writer and not yet committed: one more evens out uneven batches
FINAL = frozenset(("success", "failed", "rejected"))
_IN_CHUNK = 900  # bound parameters per IN (...) list, under SQLite's limits


@dataclass
class Counts:
    read: int = 0
    loaded: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0

    def add(self, other: "Counts") -> None:
        for f in dc_fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        return asdict(self)

    def balanced(self) -> bool:
        return self.read == self.loaded + self.updated + self.duplicates + self.rejected


@dataclass(slots=True)
class Item:
    """One record read: where it came from and what it normalised to."""

    source: str
    line: int | None
    record: Normalised
    raw: bytes | str | None = None  # kept for rejects


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _dumps(value) -> bytes:
    """JSON bytes of any parsed record; values orjson refuses (lone surrogates,
    integers past 64 bits) go through the standard library, escaped."""
    try:
        return orjson.dumps(value, default=str)
    except (orjson.JSONEncodeError, TypeError):
        import json

        return json.dumps(value, default=str, ensure_ascii=True).encode()


def _hash(*values) -> str:
    return hashlib.blake2b(_dumps(values), digest_size=16).hexdigest()


def _json(value) -> str | None:
    return None if value is None else _dumps(value).decode()


def outcome_of(status: str, result_code: str | None, error_code: str | None, http_status: int | None = None) -> str:
    """The code a payment counts under in rollups and detection."""
    if status == "success":
        return "0"
    if status == "pending":
        return "pending"
    if status == "failed":
        return result_code or error_code or "unknown"
    return error_code or (f"HTTP {http_status}" if http_status else "unknown")


def _minute(dt: datetime) -> datetime:
    return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, 0, 0, dt.tzinfo)  # replace(): 3x the time


def _hour(dt: datetime) -> datetime:
    return datetime(dt.year, dt.month, dt.day, dt.hour, 0, 0, 0, dt.tzinfo)


def _txn_contribution(row: dict) -> tuple:
    return (_minute(row["created_at"]), row["shortcode"] or "", row["status"], row["outcome"])


def _delivery_outcome(row: dict) -> str:
    if row["error"]:
        return row["error"]
    code = row["status_code"]
    return "delivered" if code is None or 200 <= code < 300 else "http_error"


def _delivery_contribution(row: dict) -> tuple:
    return (_minute(row["sent_at"]), (row["url"] or "")[:500], _delivery_outcome(row))


TXN_COLUMNS = [c.name for c in transactions.columns]
DELIVERY_COLUMNS = [c.name for c in webhook_deliveries.columns]
_FILLABLE = ("shortcode", "link_id", "msisdn", "amount_cents", "account_reference", "http_status",
             "merchant_request_id", "checkout_request_id", "mpesa_receipt", "completed_at", "result_desc", "extra")
_PROVENANCE = ("load_run_id", "source", "source_line")
# What makes a payment's state: not where it was read from, not its hash, and not
# updated_at alone (a later copy of the same state changes nothing).
_STATE = operator.itemgetter(*(c for c in TXN_COLUMNS
                               if c not in _PROVENANCE and c not in ("record_hash", "updated_at")))
# A pending state that lost to a result may still tell who paid and how much, not how it ended.
_FILL_FROM_PENDING = tuple(c for c in _FILLABLE if c not in ("completed_at", "result_desc", "mpesa_receipt"))
_HASHED = operator.itemgetter(*(c for c in TXN_COLUMNS
                                if c not in _PROVENANCE and c not in ("record_hash", "conflicting_results")))


def _same_state(a: dict, b: dict) -> bool:
    """Equal but for where the row was last read from."""
    return a["status"] == b["status"] and _STATE(a) == _STATE(b)  # most often the status tells at once


def _rank(status: str) -> int:
    return 1 if status in FINAL else 0


def _state_time(row: dict) -> datetime:
    """When a row's state came about: a result's own time, else the row's last update."""
    return (row["completed_at"] or row["updated_at"]) if row["status"] in FINAL else row["updated_at"]


def _supersedes(new: dict, cur: dict) -> bool:
    """Whether a state replaces the current one: a final beats a pending; otherwise
    the strictly newer one. On a tie the current state stays, so the outcome does
    not depend on the order the records were read in."""
    if _rank(new["status"]) != _rank(cur["status"]):
        return _rank(new["status"]) > _rank(cur["status"])
    return _state_time(new) > _state_time(cur)


_IN_QUERIES: dict = {}


def _select_in(conn: Connection, table, key: str, keys: set, names: tuple[str, ...] | None = None) -> Iterator[dict]:
    """The rows of `table` whose column `key` is one of `keys`, as dicts of Python values
    (the columns' own types). Plain SQL through the driver: SQLAlchemy's per-statement
    work on an IN list of hundreds of values costs more than the look-up."""
    names = names or tuple(c.name for c in table.columns)
    keys = list(keys)
    for i in range(0, len(keys), _IN_CHUNK):
        part = tuple(keys[i:i + _IN_CHUNK])
        sql, convert = _in_query(conn.dialect, table, key, names, len(part))
        for values in conn.exec_driver_sql(sql, part):
            yield {n: v if f is None or v is None else f(v) for n, f, v in zip(names, convert, values)}


def _in_query(dialect, table, key: str, names: tuple[str, ...], n: int) -> tuple[str, list]:
    """SELECT names FROM table WHERE key IN (n markers), and each column's result processor."""
    cache_key = (dialect.name, table.name, key, names, n)
    found = _IN_QUERIES.get(cache_key)
    if found is None:
        quote = dialect.identifier_preparer.quote
        marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * n)
        sql = f"SELECT {', '.join(map(quote, names))} FROM {quote(table.name)} WHERE {quote(key)} IN ({marks})"
        convert = [_result_processor(table.c[name], dialect) for name in names]
        found = _IN_QUERIES[cache_key] = (sql, convert)
    return found


def _result_processor(column, dialect):
    """What turns a column's driver value into its Python value: times and booleans
    need one (SQLite keeps them as text and integers); the other types arrive as they are."""
    if isinstance(column.type, (UtcDateTime, Boolean)):
        return column.type.dialect_impl(dialect).result_processor(dialect, None)
    return None


class _InFlight:
    """What batches that are applied but not yet committed did, so the next batch's
    reads see it: the database does not have it yet. Newest batch last; each is
    dropped once it has committed."""

    def __init__(self):
        self.batches: dict[int, _Batch] = {}

    def record(self, batch: "_Batch", no: int) -> None:
        batch.items = []  # what it read is done with; what it did stays
        self.batches[no] = batch

    def committed(self, no: int) -> None:
        """Batches up to `no` are in the database: forget what they did."""
        for k in [k for k in self.batches if k <= no]:
            del self.batches[k]

    def txn(self, tid: str) -> tuple[bool, dict | None]:
        """(whether a batch in flight wrote payment `tid`, its latest state there; None = deleted)."""
        for batch in reversed(self.batches.values()):
            if tid in batch.touched:
                return True, batch.txns[tid]
            if tid in batch.deleted:
                return True, None
        return False, None

    def txn_by_checkout(self, checkout: str) -> str | None:
        """The payment a batch in flight last wrote with this CheckoutRequestID."""
        for batch in reversed(self.batches.values()):
            tid = batch.by_checkout.get(checkout)
            if tid is not None and tid in batch.touched:
                return tid
        return None

    def has_event(self, key: str) -> bool:
        return any(key in batch.event_keys for batch in self.batches.values())

    def delivery(self, did: str) -> dict | None:
        for batch in reversed(self.batches.values()):
            if did in batch.touched_deliveries:
                return batch.deliveries[did]
        return None


class _Batch:
    """The in-memory state of everything one batch touches, and what it will write."""

    def __init__(self, items: list[Item], run_id: int, in_flight: _InFlight | None = None):
        self.items, self.run_id = items, run_id
        self.in_flight = in_flight or _InFlight()
        self.counts = Counts()
        self.txns: dict[str, dict] = {}
        self.txn_before: dict[str, tuple] = {}  # id -> rollup contribution stored before this batch
        self.txn_amount_before: dict[str, int] = {}
        self.by_checkout: dict[str, str] = {}
        self.touched: set[str] = set()
        self.deleted: set[str] = set()
        self.moved: dict[str, str] = {}  # events of payment old id now belong to new id
        self.event_keys: set[str] = set()
        self.new_events: list[dict] = []
        self.deliveries: dict[str, dict] = {}
        self.delivery_before: dict[str, dict] = {}
        self.touched_deliveries: set[str] = set()
        self.rejects: list[dict] = []

    # --- reading the state the batch needs ---

    def prefetch(self, conn: Connection) -> None:
        """The stored state of every key the batch names: the database's, overlaid
        with what batches still in flight did to it."""
        ids, checkouts, event_keys, delivery_ids = set(), set(), set(), set()
        for item in self.items:
            r = item.record
            if isinstance(r, Txn):
                ids.add(r.id)
                if r.checkout_request_id:
                    checkouts.add(r.checkout_request_id)
            elif isinstance(r, Event):
                event_keys.add(r.key)
                if r.checkout_request_id:
                    checkouts.add(r.checkout_request_id)
                    ids.add(r.checkout_request_id)
                if r.request_id:
                    ids.add(r.request_id)
            elif isinstance(r, Delivery):
                delivery_ids.add(r.id)
        fly = self.in_flight
        rows = {r["id"]: r for r in _select_in(conn, transactions, "id", ids)}
        for r in _select_in(conn, transactions, "checkout_request_id", checkouts):
            rows.setdefault(r["id"], r)
        if fly.batches:
            for tid in [tid for tid in rows if fly.txn(tid)[0]]:
                del rows[tid]
            in_flight = [fly.txn(tid)[1] for tid in ids]
            in_flight += [fly.txn(tid)[1] for tid in map(fly.txn_by_checkout, checkouts) if tid is not None]
            rows.update((state["id"], dict(state)) for state in in_flight if state is not None)
        for row in rows.values():
            self.txns[row["id"]] = row
            self.txn_before[row["id"]] = _txn_contribution(row)
            self.txn_amount_before[row["id"]] = row["amount_cents"] or 0
            if row["checkout_request_id"]:
                self.by_checkout.setdefault(row["checkout_request_id"], row["id"])
        self.event_keys = {r["key"] for r in _select_in(conn, result_events, "key", event_keys, ("key",))}
        self.event_keys.update(k for k in event_keys if fly.has_event(k))
        found = {r["id"]: r for r in _select_in(conn, webhook_deliveries, "id", delivery_ids)}
        found.update((d, dict(row)) for d, row in zip(delivery_ids, map(fly.delivery, delivery_ids))
                     if row is not None)
        for did, row in found.items():
            self.deliveries[did] = row
            self.delivery_before[did] = row

    # --- applying records in order ---

    def apply(self) -> None:
        for item in self.items:
            self.counts.read += 1
            r = item.record
            if isinstance(r, Txn):
                self._apply_txn(r, item)
            elif isinstance(r, Event):
                self._apply_event(r, item)
            elif isinstance(r, Delivery):
                self._apply_delivery(r, item)
            else:
                self._reject(r, item)

    def _reject(self, r: Rejected, item: Item) -> None:
        self.counts.rejected += 1
        raw = raw_text(item.raw if item.raw is not None else "")
        self.rejects.append({
            "key": _hash(item.source, item.line, raw)[:32],
            "load_run_id": self.run_id,
            "source": item.source,
            "line": item.line,
            "field": r.field,
            "reason_code": r.code,
            "reason": r.reason,
            "raw": raw,
            "rejected_at": now_utc(),
        })

    def _row_from_txn(self, t: Txn, item: Item) -> dict:
        row = {
            "id": t.id, "origin": "log", "created_at": t.created_at, "updated_at": t.updated_at,
            "completed_at": t.completed_at, "status": t.status,
            "outcome": outcome_of(t.status, t.result_code, t.error_code, t.http_status),
            "shortcode": t.shortcode, "link_id": t.link_id, "msisdn": t.msisdn, "amount_cents": t.amount_cents,
            "account_reference": t.account_reference, "http_status": t.http_status, "error_code": t.error_code,
            "merchant_request_id": t.merchant_request_id, "checkout_request_id": t.checkout_request_id,
            "result_code": t.result_code, "result_desc": t.result_desc, "mpesa_receipt": t.mpesa_receipt,
            "conflicting_results": False, "extra": None if t.extra is None else _json(t.extra),
            "load_run_id": self.run_id, "source": item.source, "source_line": item.line,
        }
        return row  # record_hash is set when the batch is planned: one hash per stored state

    def _apply_txn(self, t: Txn, item: Item) -> None:
        new = self._row_from_txn(t, item)
        cur = self.txns.get(t.id)
        orphan_id = self.by_checkout.get(t.checkout_request_id) if t.checkout_request_id else None
        if orphan_id is not None and orphan_id != t.id and self.txns[orphan_id]["origin"] != "log":
            # A result arrived before its request row carried the CheckoutRequestID: the
            # request row takes over that stand-alone payment and its events.
            orphan = self._take_over(orphan_id, t.id)
            if cur is None:
                merged = self._merge(new, orphan)
                merged.update(origin="log", **{c: new[c] for c in _PROVENANCE})
                self._store_txn(merged)
                self.counts.loaded += 1
                return
            cur = self._merge(cur, orphan)
            cur.update(origin="log")
            merged = self._merge(new, cur)
            self._store_txn(merged)
            self.counts.updated += 1
            return
        if cur is None:
            self._store_txn(new)
            self.counts.loaded += 1
            return
        merged = self._merge(new, cur)
        if _same_state(merged, cur):
            self.counts.duplicates += 1
            return
        self._store_txn(merged)
        self.counts.updated += 1

    def _take_over(self, orphan_id: str, new_id: str) -> dict:
        """Remove the stand-alone payment `orphan_id`; its events move to `new_id`."""
        orphan = self.txns.pop(orphan_id)
        self.deleted.add(orphan_id)
        self.touched.discard(orphan_id)
        self.moved[orphan_id] = new_id
        for old, target in self.moved.items():
            if target == orphan_id:
                self.moved[old] = new_id
        return orphan

    def _merge(self, new: dict, cur: dict) -> dict:
        """The state after `new` meets `cur`: the superseding one decides; the other fills gaps."""
        conflict = cur["conflicting_results"] or (
            cur["status"] in FINAL and new["status"] in FINAL and cur["outcome"] != new["outcome"])
        if _supersedes(new, cur):
            winner, other = dict(new), cur
        else:
            winner, other = dict(cur), new
        for col in _FILLABLE if other["status"] in FINAL or winner["status"] not in FINAL else _FILL_FROM_PENDING:
            if winner[col] is None and other[col] is not None:
                winner[col] = other[col]
        # The request row's time is the gateway's own; an event's is a best guess.
        if new["origin"] == "log":
            winner["created_at"] = new["created_at"]
        elif cur["origin"] != "log":
            winner["created_at"] = min(cur["created_at"], new["created_at"])
        else:
            winner["created_at"] = cur["created_at"]
        winner["updated_at"] = max(cur["updated_at"], new["updated_at"])
        winner["conflicting_results"] = conflict
        winner["id"] = new["id"] if new["origin"] == "log" else cur["id"]
        return winner

    def _store_txn(self, row: dict) -> None:
        self.txns[row["id"]] = row
        self.touched.add(row["id"])
        if row["checkout_request_id"]:
            self.by_checkout[row["checkout_request_id"]] = row["id"]

    def _apply_event(self, e: Event, item: Item) -> None:
        if e.key in self.event_keys:
            self.counts.duplicates += 1
            return
        self.event_keys.add(e.key)
        target = self.by_checkout.get(e.checkout_request_id) if e.checkout_request_id else None
        if target is None:
            target = e.checkout_request_id or e.request_id
        cur = self.txns.get(target)
        new = self._row_from_event(e, target, item)
        if cur is None:
            self._store_txn(new)
            self.counts.loaded += 1
        else:
            merged = self._merge(new, cur)
            merged["id"] = cur["id"]
            merged["origin"] = cur["origin"]
            if merged["origin"] == "log":  # the request row keeps its own source; the event has its own
                merged.update(load_run_id=cur["load_run_id"], source=cur["source"], source_line=cur["source_line"])
            if _same_state(merged, cur):
                self.counts.loaded += 1  # a new event row; the payment it names is unchanged
            else:
                self._store_txn(merged)
                self.counts.updated += 1
        self.new_events.append({
            "key": e.key, "transaction_id": target, "kind": e.kind, "status": e.status, "code": e.code,
            "description": e.description, "time": e.time, "time_source": e.time_source,
            "checkout_request_id": e.checkout_request_id, "merchant_request_id": e.merchant_request_id,
            "request_id": e.request_id, "shortcode": e.shortcode, "amount_cents": e.amount_cents,
            "mpesa_receipt": e.mpesa_receipt, "msisdn": e.msisdn, "transaction_date": e.transaction_date,
            "raw": _json(e.raw), "load_run_id": self.run_id, "source": item.source, "source_line": item.line,
        })

    def _row_from_event(self, e: Event, txn_id: str, item: Item) -> dict:
        """The payment as this one event tells it (used alone, or merged into the stored state)."""
        created = F.checkout_request_time(e.checkout_request_id) or e.time or now_utc()
        when = e.time or created
        is_error = e.kind in ("init_error", "query_error")
        result_code = None if is_error or e.status == "pending" else e.code
        error_code = e.code if is_error and e.status != "pending" else None
        http_status = int(e.code[:3]) if error_code and e.code[:3].isdigit() else None
        row = {
            "id": txn_id, "origin": "daraja" if e.kind == "init_error" else "callback",
            "created_at": created, "updated_at": when,
            "completed_at": when if e.status in FINAL else None, "status": e.status,
            "outcome": outcome_of(e.status, result_code, error_code, http_status),
            "shortcode": e.shortcode, "link_id": None, "msisdn": e.msisdn, "amount_cents": e.amount_cents,
            "account_reference": None, "http_status": http_status, "error_code": error_code,
            "merchant_request_id": e.merchant_request_id, "checkout_request_id": e.checkout_request_id,
            "result_code": result_code, "result_desc": e.description, "mpesa_receipt": e.mpesa_receipt,
            "conflicting_results": False, "extra": None,
            "load_run_id": self.run_id, "source": item.source, "source_line": item.line,
        }
        return row

    def _apply_delivery(self, d: Delivery, item: Item) -> None:
        row = {f.name: getattr(d, f.name) for f in dc_fields(d)}
        row["headers"] = _json(d.headers)
        row["extra"] = _json(d.extra)
        row["record_hash"] = _hash(*(row[c] for c in DELIVERY_COLUMNS if c in row))
        row.update(load_run_id=self.run_id, source=item.source, source_line=item.line)
        cur = self.deliveries.get(d.id)
        if cur is not None and cur["record_hash"] == row["record_hash"]:
            self.counts.duplicates += 1
            return
        if cur is None:
            self.counts.loaded += 1
        else:
            self.counts.updated += 1
        self.deliveries[d.id] = row
        self.touched_deliveries.add(d.id)

    # --- handing over ---

    def changes(self, run_counts: Counts) -> "Changes":
        """What this batch writes, with the run's counts so far (they commit with it)."""
        before = self.txn_before
        return Changes(
            run_id=self.run_id, run_counts=run_counts.as_dict(), deleted=sorted(self.deleted),
            moved=sorted(self.moved.items()), txns=[self.txns[i] for i in sorted(self.touched)],
            txn_before=[(before[i], self.txn_amount_before[i]) for i in self.touched | self.deleted if i in before],
            events=self.new_events,
            deliveries=[(self.delivery_before.get(i), self.deliveries[i]) for i in sorted(self.touched_deliveries)],
            rejects=self.rejects)


@dataclass(slots=True)
class Changes:
    """What one applied batch writes, planned into statements by whoever commits it
    (this process for a single batch, the writer process for a stream)."""

    run_id: int
    run_counts: dict
    deleted: list[str]
    moved: list[tuple[str, str]]  # (old id, new id): that payment's events move over
    txns: list[dict]  # the new state of each payment the batch changed, by id
    txn_before: list[tuple[tuple, int]]  # (rollup contribution, amount) of each stored state it replaced
    events: list[dict]
    deliveries: list[tuple[dict | None, dict]]  # (stored before, new) of each delivery it changed
    rejects: list[dict]


def plan(changes: Changes, dialect) -> list["Op"]:
    """What a batch writes, as compiled statements with their parameters, in order."""
    plan = _Plan(dialect)
    ins = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    if changes.deleted:
        plan.add("delete_txn", lambda: delete(transactions).where(transactions.c.id == bindparam("b_id")),
                 [{"b_id": i} for i in changes.deleted])
    if changes.moved:
        plan.add("move_events", lambda: update(result_events)
                 .where(result_events.c.transaction_id == bindparam("b_old"))
                 .values(transaction_id=bindparam("b_new")),
                 [{"b_old": old, "b_new": new} for old, new in changes.moved])
        moved = dict(changes.moved)
        for event in changes.events:  # events read earlier in the batch follow their payment's new id
            event["transaction_id"] = moved.get(event["transaction_id"], event["transaction_id"])
    if changes.txns:
        def upsert_txns():
            stmt = ins(transactions)
            return stmt.on_conflict_do_update(
                index_elements=[transactions.c.id],
                set_={c: stmt.excluded[c] for c in TXN_COLUMNS if c != "id"},
                where=transactions.c.updated_at <= stmt.excluded.updated_at,  # never back in time
            )
        for row in changes.txns:
            row["record_hash"] = _hash(*_HASHED(row))  # of the state stored: a re-read compares equal
        plan.add("upsert_txns", upsert_txns, changes.txns)
    if changes.events:
        plan.add("insert_events", lambda: ins(result_events).on_conflict_do_nothing(index_elements=["key"]),
                 changes.events)
    if changes.deliveries:
        def upsert_deliveries():
            stmt = ins(webhook_deliveries)
            return stmt.on_conflict_do_update(index_elements=[webhook_deliveries.c.id],
                                              set_={c: stmt.excluded[c] for c in DELIVERY_COLUMNS if c != "id"})
        plan.add("upsert_deliveries", upsert_deliveries, [new for _, new in changes.deliveries])
    if changes.rejects:
        plan.add("insert_rejects", lambda: ins(rejected_records).on_conflict_do_nothing(index_elements=["key"]),
                 changes.rejects)
    _plan_rollups(plan, ins, changes)
    plan.add("update_run", lambda: update(load_runs).where(load_runs.c.id == bindparam("b_run"))
             .values(**{c: bindparam(f"b_{c}") for c in changes.run_counts}),
             [{"b_run": changes.run_id, **{f"b_{c}": n for c, n in changes.run_counts.items()}}])
    return plan.ops


def _plan_rollups(plan: "_Plan", ins, changes: Changes) -> None:
    deltas: dict[tuple, list[int]] = {}
    for key, n, amount in itertools.chain(
            ((key, -1, -amount) for key, amount in changes.txn_before),
            ((_txn_contribution(row), 1, row["amount_cents"] or 0) for row in changes.txns)):
        d = deltas.get(key)
        if d is None:
            deltas[key] = [n, amount]
        else:
            d[0] += n
            d[1] += amount
    for table in (txn_rollup_minute, txn_rollup_hour):
        rows = [{"bucket": k[0], "shortcode": k[1], "status": k[2], "outcome": k[3], "attempts": n,
                 "amount_cents": a} for k, (n, a) in sorted(deltas.items()) if n or a]
        _plan_rollup_table(plan, ins, table, ("shortcode", "status", "outcome"), rows, "attempts")
        deltas = _to_hours(deltas)

    ddeltas: dict[tuple, list] = {}
    for before, new in changes.deliveries:
        for row, sign in ((before, -1), (new, 1)):
            if row is None:
                continue
            d = ddeltas.setdefault(_delivery_contribution(row), [0, 0, 0.0])
            d[0] += sign
            d[1] += sign * (1 if (row["attempt"] or 1) > 1 else 0)
            d[2] += sign * (row["latency_ms"] or 0.0)
    for table in (delivery_rollup_minute, delivery_rollup_hour):
        drows = [{"bucket": k[0], "url": k[1], "outcome": k[2], "deliveries": n, "retries": r,
                  "latency_ms_sum": lat} for k, (n, r, lat) in sorted(ddeltas.items()) if n or r or lat]
        _plan_rollup_table(plan, ins, table, ("url", "outcome"), drows, "deliveries")
        ddeltas = _to_hours(ddeltas)


def write(conn: Connection, changes: Changes) -> None:
    """Plan a batch's writes and run them on `conn` (its transaction is the caller's)."""
    run_ops(conn, plan(changes, conn.dialect))


def _to_hours(deltas: dict[tuple, list]) -> dict[tuple, list]:
    """Minute deltas summed into hour deltas (the bucket is the key's first element)."""
    hours: dict[tuple, list] = {}
    hour_of: dict[datetime, datetime] = {}  # a minute's hour, once per minute
    for key, values in deltas.items():
        hour = hour_of.get(key[0])
        if hour is None:
            hour = hour_of[key[0]] = _hour(key[0])
        hkey = (hour,) + key[1:]
        acc = hours.get(hkey)
        if acc is None:
            hours[hkey] = list(values)
        else:
            for i, v in enumerate(values):
                acc[i] += v
    return hours


def _plan_rollup_table(plan: "_Plan", ins, table, keys: tuple[str, ...], rows: list[dict], count: str) -> None:
    """Add the deltas to a rollup table, then drop the keys they counted down to zero
    (only those can have reached it)."""
    if not rows:
        return
    name = table.name

    def add():
        stmt = ins(table)
        values = [c.name for c in table.columns if not c.primary_key]
        return stmt.on_conflict_do_update(index_elements=["bucket", *keys],
                                          set_={v: table.c[v] + stmt.excluded[v] for v in values})
    plan.add(f"add_{name}", add, rows)
    emptied = [{"bucket": r["bucket"], **{k: r[k] for k in keys}, "b_zero": 0} for r in rows if r[count] < 0]
    if emptied:
        plan.add(f"drop_empty_{name}", lambda: delete(table).where(
            table.c.bucket == bindparam("bucket"), *(table.c[k] == bindparam(k) for k in keys),
            table.c[count] <= bindparam("b_zero")), emptied)


class Loader:
    """Loads items in batches under one load run; `counts` is the running total.

    One loader at a time per store: each batch is applied against the stored state
    it read, so two loaders interleaving could count a change twice in the rollups.
    The lock is held by whoever writes: this process for single batches, the
    writer process for a stream.
    """

    def __init__(self, engine: Engine, command: str, sources: str, batch_size: int = BATCH_SIZE):
        self.engine, self.batch_size = engine, batch_size
        self.counts = Counts()  # applied so far
        self.committed = Counts()  # of those, committed: what a failed run records
        self._lock: StoreLock | None = None
        with engine.begin() as conn:
            self.run_id = conn.execute(insert(load_runs).values(
                command=command, sources=sources[:10_000], started_at=now_utc(), status="running",
                read=0, loaded=0, updated=0, duplicates=0, rejected=0)).inserted_primary_key[0]

    def _prepare(self, items: list[Item], in_flight: _InFlight | None = None) -> tuple["_Batch", Changes]:
        """Read the state and apply the items: the batch, and what it writes (the run's counts included)."""
        batch = _Batch(items, self.run_id, in_flight)
        with self.engine.connect() as conn:
            batch.prefetch(conn)
        batch.apply()
        self.counts.add(batch.counts)
        return batch, batch.changes(self.counts)

    def load_batch(self, items: list[Item], extra_writes=None) -> Counts:
        """Load one batch and commit it before returning, with `extra_writes(conn)` in
        the same transaction (the pull saves its cursor there); the batch's counts."""
        if self._lock is None:
            self._lock = StoreLock(self.engine)
        batch, changes = self._prepare(items)
        with self.engine.begin() as conn:
            write(conn, changes)
            if extra_writes is not None:
                extra_writes(conn)
        self.committed = Counts(**self.counts.as_dict())
        return batch.counts

    def load(self, items: Iterable[Item]) -> Counts:
        """Load a stream of items. One batch is committed here; more go to a writer
        process that plans and commits batch N while this process reads and applies N+1."""
        chunks = chunked(items, self.batch_size)
        first = next(chunks, None)
        if first is None:
            return self.counts
        second = next(chunks, None)
        if second is None:
            self.load_batch(first)
            return self.counts
        from mpesa_ops.ingest.writer import WriterProcess

        writer = WriterProcess(self.engine.url.render_as_string(hide_password=False))
        in_flight = _InFlight()
        handed: dict[int, Counts] = {}  # batches handed to the writer, with the run's counts at each
        # The records are acyclic dicts that reference counting frees; the cyclic
        # collector's automatic passes over a batch's live state cost ~8% of a large
        # load, so it runs every GC_EVERY batches instead (tracebacks of rejected
        # records and driver objects do form cycles).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for no, chunk in enumerate(itertools.chain((first, second), chunks)):
                batch, changes = self._prepare(chunk, in_flight)
                in_flight.record(batch, no)
                if no % GC_EVERY == GC_EVERY - 1:
                    gc.collect()
                while len(handed) >= HANDED_MAX:
                    self._acknowledge(writer, handed, in_flight)
                writer.submit(no, changes)
                handed[no] = Counts(**self.counts.as_dict())
            while handed:
                self._acknowledge(writer, handed, in_flight)
        finally:
            try:  # stopping early: the batches handed over commit (or fail) before we leave
                while handed:
                    self._acknowledge(writer, handed, in_flight, timeout=120)
            except Exception:
                pass
            writer.close()
            if gc_was_enabled:
                gc.enable()
        return self.counts

    def _acknowledge(self, writer, handed: dict, in_flight: "_InFlight", timeout: float | None = None) -> None:
        no = writer.committed(timeout)
        self.committed = handed.pop(no)
        in_flight.committed(no)

    def finish(self, status: str = "ok", message: str | None = None) -> None:
        try:
            counts = self.counts if status == "ok" else self.committed
            with self.engine.begin() as conn:
                conn.execute(update(load_runs).where(load_runs.c.id == self.run_id).values(
                    status=status, finished_at=now_utc(), message=message, **counts.as_dict()))
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None


class StoreLock:
    """Held while a loader runs: a Postgres advisory lock, or an flock beside a SQLite file."""

    KEY = 0x6D70_6573_615F_6F70 & 0x7FFF_FFFF_FFFF_FFFF  # "mpesa_op"

    def __init__(self, engine: Engine):
        self._conn = self._file = None
        if engine.dialect.name == "postgresql":
            self._conn = engine.connect()
            self._conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self.KEY})
            self._conn.commit()
        elif engine.url.database and engine.url.database != ":memory:":
            import fcntl

            self._file = open(f"{engine.url.database}.lock", "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.KEY})
            self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


Op = tuple[str, list | None, frozenset, list]  # compiled SQL, positional order (None: named), time columns, rows
_COMPILED: dict = {}


class _Plan:
    """Statements for one dialect, each compiled once by SQLAlchemy (dialect-aware,
    every value a bound parameter), with rows turned into driver parameters. The
    rows skip SQLAlchemy's per-row processing, which costs more than the database's
    own work on a large load. Rows stay dicts until run_ops turns them into driver
    parameters, which a writer process does on its own core."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.ops: list[Op] = []

    def add(self, name: str, build, rows: list[dict]) -> None:
        key = (self.dialect.name, name, tuple(rows[0]))
        entry = _COMPILED.get(key)
        if entry is None:
            stmt = build()
            compiled = stmt.compile(dialect=self.dialect, column_keys=list(rows[0]))
            order = list(compiled.positiontup) if compiled.positional else None
            times = {c.name for c in stmt.table.columns if isinstance(c.type, UtcDateTime)}
            entry = _COMPILED[key] = (str(compiled), order, times)
        sql, order, times = entry
        self.ops.append((sql, order, frozenset(times), rows))


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite storage format for our UTC times."""
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def run_ops(conn: Connection, ops: list[Op]) -> None:
    as_text: dict[datetime, str] = {}  # each time once: a payment's times recur in its row and rollups
    for sql, order, times, rows in ops:
        if order is None:  # named parameters (Postgres): aware datetimes go as they are
            conn.exec_driver_sql(sql, rows)
            continue
        values = operator.itemgetter(*order) if len(order) > 1 else lambda row, k=order[0]: (row[k],)
        at = [i for i, k in enumerate(order) if k in times]
        if not at:
            conn.exec_driver_sql(sql, [values(r) for r in rows])
            continue
        params = []
        for row in rows:
            param = list(values(row))
            for i in at:
                t = param[i]
                if t is not None:
                    text = as_text.get(t)
                    if text is None:
                        text = as_text[t] = _sqlite_time(t)
                    param[i] = text
            params.append(tuple(param))
        conn.exec_driver_sql(sql, params)


def chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

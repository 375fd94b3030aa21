"""Reading a store back for comparisons in tests."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from mpesa_ops.ingest.loader import outcome_of
from mpesa_ops.ingest.schema import (delivery_rollup_hour, delivery_rollup_minute, rejected_records,
                                     result_events, transactions, txn_rollup_hour, txn_rollup_minute,
                                     webhook_deliveries)

PROVENANCE = {"load_run_id", "source", "source_line", "rejected_at", "id_reject"}


def rows(engine, table, drop=PROVENANCE) -> list[tuple]:
    with engine.connect() as conn:
        out = []
        for r in conn.execute(select(table)).mappings():
            out.append(tuple(sorted((k, v) for k, v in r.items() if k not in drop)))
        return sorted(out, key=repr)


def snapshot(engine) -> dict:
    """Everything the store holds but the provenance of rows (which run, which line)."""
    return {
        "transactions": rows(engine, transactions),
        "result_events": rows(engine, result_events),
        "webhook_deliveries": rows(engine, webhook_deliveries),
        "rejected": rows(engine, rejected_records, PROVENANCE | {"id"}),
        "txn_rollup": rows(engine, txn_rollup_minute),
        "delivery_rollup": rows(engine, delivery_rollup_minute),
        "txn_rollup_hour": rows(engine, txn_rollup_hour),
        "delivery_rollup_hour": rows(engine, delivery_rollup_hour),
    }


def rollup_from_rows(engine, hours: bool = False) -> Counter:
    """The minute (or hour) rollup recomputed from the transactions themselves."""
    expected = Counter()
    with engine.connect() as conn:
        for r in conn.execute(select(transactions)).mappings():
            bucket = r["created_at"].replace(second=0, microsecond=0)
            key = (bucket.replace(minute=0) if hours else bucket, r["shortcode"] or "", r["status"],
                   outcome_of(r["status"], r["result_code"], r["error_code"], r["http_status"]))
            expected[key + ("n",)] += 1
            expected[key + ("kes",)] += r["amount_cents"] or 0
    return +expected


def rollup_stored(engine, hours: bool = False) -> Counter:
    got = Counter()
    with engine.connect() as conn:
        for r in conn.execute(select(txn_rollup_hour if hours else txn_rollup_minute)).mappings():
            key = (r["bucket"], r["shortcode"], r["status"], r["outcome"])
            got[key + ("n",)] += r["attempts"]
            got[key + ("kes",)] += r["amount_cents"]
    return +got

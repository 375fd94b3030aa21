"""What the store holds: totals by status, code, delivery outcome and reject reason."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from mpesa_ops.ingest.schema import rejected_records, transactions, webhook_deliveries


def _grouped(conn, column, table, *, null_key: str | None = None) -> dict[str, int]:
    rows = conn.execute(select(column, func.count()).select_from(table).group_by(column)).all()
    out = {}
    for value, n in rows:
        if value is None:
            if null_key is None:
                continue
            value = null_key
        out[str(value)] = out.get(str(value), 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def summary(engine: Engine) -> dict:
    t, d, r = transactions.c, webhook_deliveries.c, rejected_records.c
    with engine.connect() as conn:
        reasons: dict[str, int] = {}
        for code, field, n in conn.execute(select(r.reason_code, r.field, func.count())
                                           .group_by(r.reason_code, r.field)).all():
            key = f"{code}:{field}" if field else code
            reasons[key] = reasons.get(key, 0) + n
        return {
            "transactions": conn.execute(select(func.count()).select_from(transactions)).scalar_one(),
            "by_status": _grouped(conn, t.status, transactions),
            "by_result_code": _grouped(conn, t.result_code, transactions),
            "by_error_code": _grouped(conn, t.error_code, transactions),
            "amount_kes_by_status": {
                status: int(cents or 0) / 100  # Postgres sums bigint to Decimal: JSON wants a number
                for status, cents in conn.execute(select(t.status, func.sum(t.amount_cents)).group_by(t.status))
            },
            "conflicting_results": conn.execute(select(func.count()).select_from(transactions)
                                                .where(t.conflicting_results.is_(True))).scalar_one(),
            "deliveries": conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one(),
            "deliveries_by_error": _grouped(conn, d.error, webhook_deliveries, null_key="none"),
            "rejected": conn.execute(select(func.count()).select_from(rejected_records)).scalar_one(),
            "rejected_by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        }

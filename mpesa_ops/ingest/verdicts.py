"""Stored signature verdicts: why each delivery refused on its signature was refused.

A delivery counts as a signature failure when its ``error`` is ``invalid_signature``,
or when the endpoint answered 401 or 403 with a body that mentions a signature (a log
that classed such a refusal as a plain ``http_error``). A 401 that does not mention a
signature (a missing API token, say) is not one.

For each such delivery whose ``verdict_secrets`` is not the fingerprint of the current
configuration, :func:`refresh_verdicts` diagnoses the stored payload, signature,
timestamp and headers as of the delivery's ``sent_at`` (so ``timestamp_skew`` is judged
against when it was sent) and stores ``signature_verdict``, ``signature_skew_seconds``
and ``verdict_secrets``. A delivery that cannot be diagnosed (no payload in the log, no
secret for its endpoint, a payload over the size limit) is stored with no verdict and
the fingerprint, so it is tried again only when the secrets change. The loader's upsert
resets the three columns when a delivery changes, so a changed delivery is redone.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update

from mpesa_ops.ingest.schema import webhook_deliveries as wd
from mpesa_ops.ingest.webhook_secrets import WebhookConfig, load_config
from mpesa_ops.signatures import (MAX_PAYLOAD_BYTES, SIGNATURE_HEADER, TIMESTAMP_HEADER, Diagnosis, InputError,
                                  diagnose)

BATCH_SIZE = 500

SIGNATURE_FAILURE = or_(
    wd.c.error == "invalid_signature",
    and_(wd.c.status_code.in_((401, 403)), func.lower(wd.c.response_body).like("%signature%")),
)

_COLUMNS = (wd.c.id, wd.c.record_hash, wd.c.url, wd.c.sent_at, wd.c.signature, wd.c.signature_timestamp,
            wd.c.headers, wd.c.payload)


class CannotDiagnose(ValueError):
    """The delivery lacks what a diagnosis needs; the message says what."""


@dataclass
class VerdictReport:
    configured: bool
    fingerprint: str | None = None
    examined: int = 0  # signature failures whose verdict was missing or stale
    diagnosed: int = 0
    by_verdict: dict[str, int] = field(default_factory=dict)
    not_diagnosable: dict[str, int] = field(default_factory=dict)  # reason -> deliveries
    seconds: float = 0.0

    @property
    def message(self) -> str:
        """One line for the command line."""
        if not self.configured:
            return ("no webhook secrets configured, so refused signatures get no verdict: set "
                    "MPESA_OPS_WEBHOOK_SECRETS_FILE, [webhooks] in secrets.toml or MPESA_OPS_WEBHOOK_SECRET")
        if not self.examined:
            return "signature verdicts are up to date"
        counts = ", ".join(f"{v} {n:,}" for v, n in sorted(self.by_verdict.items(), key=lambda kv: -kv[1]))
        skipped = sum(self.not_diagnosable.values())
        return (f"signature verdicts for {self.diagnosed:,} refused deliveries" + (f": {counts}" if counts else "")
                + (f"; {skipped:,} could not be diagnosed ({', '.join(sorted(self.not_diagnosable))})"
                   if skipped else ""))


def _headers(text: str | None) -> dict[str, str]:
    """The stored headers, names lower-cased; {} when absent or unreadable."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k).lower(): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def diagnose_delivery(row: Mapping, config: WebhookConfig) -> Diagnosis:
    """The diagnosis of one stored delivery (a mapping of webhook_deliveries columns) as
    of its sent_at. Raises CannotDiagnose when its log or the configuration lacks what is needed."""
    endpoint = config.for_url(row["url"])
    if endpoint is None:
        raise CannotDiagnose("no secret configured for its endpoint")
    if row["payload"] is None:
        raise CannotDiagnose("the log kept no payload")
    headers = _headers(row["headers"])
    scheme = endpoint.scheme
    signature = row["signature"]
    if signature is None:
        signature = headers.get(SIGNATURE_HEADER[scheme].lower())
    timestamp = row["signature_timestamp"]
    if timestamp is None and scheme in TIMESTAMP_HEADER:
        timestamp = headers.get(TIMESTAMP_HEADER[scheme].lower())
    sent_at: datetime = row["sent_at"]
    body = row["payload"].encode("utf-8", "surrogateescape")
    if len(body) > MAX_PAYLOAD_BYTES:
        raise CannotDiagnose("payload over the size limit")
    try:
        return diagnose(scheme, body, signature, list(endpoint.secrets),
                        timestamp=timestamp, msg_id=headers.get("webhook-id"), now=int(sent_at.timestamp()),
                        tolerance=endpoint.tolerance, previous_from=endpoint.previous_from(sent_at))
    except InputError as exc:  # the configuration was checked when it was loaded
        raise CannotDiagnose(str(exc)) from None


def _verdict_row(row: Mapping, config: WebhookConfig, report: VerdictReport) -> dict:
    try:
        d = diagnose_delivery(row, config)
    except CannotDiagnose as exc:
        reason = str(exc)
        report.not_diagnosable[reason] = report.not_diagnosable.get(reason, 0) + 1
        verdict, skew = None, None
    else:
        report.diagnosed += 1
        report.by_verdict[d.verdict] = report.by_verdict.get(d.verdict, 0) + 1
        verdict, skew = d.verdict, d.skew_seconds
    return {"b_id": row["id"], "b_hash": row["record_hash"], "b_verdict": verdict,
            "b_skew": None if skew is None else float(skew)}


def refresh_verdicts(engine: Engine, config: WebhookConfig | None = None, *,
                     batch_size: int = BATCH_SIZE) -> VerdictReport:
    """Diagnose every signature failure whose stored verdict is missing or was reached with
    other secrets; one transaction per batch. ``config`` defaults to :func:`load_config`
    (which raises ConfigError for a bad configuration). With nothing configured it
    changes nothing and says so in the report."""
    started = time.perf_counter()
    config = load_config() if config is None else config
    if config.empty:
        return VerdictReport(configured=False)
    fingerprint = config.fingerprint()
    report = VerdictReport(configured=True, fingerprint=fingerprint)
    stale = and_(SIGNATURE_FAILURE, or_(wd.c.verdict_secrets.is_(None), wd.c.verdict_secrets != fingerprint))
    store = (update(wd)
             .where(wd.c.id == bindparam("b_id"), wd.c.record_hash == bindparam("b_hash"))
             .values(signature_verdict=bindparam("b_verdict"), signature_skew_seconds=bindparam("b_skew"),
                     verdict_secrets=fingerprint))
    after = None
    while True:
        query = select(*_COLUMNS).where(stale).order_by(wd.c.id).limit(batch_size)
        if after is not None:
            query = query.where(wd.c.id > after)
        with engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            break
        after = rows[-1]["id"]
        report.examined += len(rows)
        params = [_verdict_row(row, config, report) for row in rows]
        with engine.begin() as conn:
            # a row changed by a load meanwhile (another record_hash) is left for the next refresh
            conn.execute(store, params)
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class VerdictCount:
    bucket: datetime  # the UTC minute (or hour) of sent_at
    url: str
    verdict: str  # a signatures.VERDICTS entry, or "undiagnosed" when there is none stored
    deliveries: int


def verdict_counts(engine: Engine, start: datetime, end: datetime, *, hours: bool = False) -> list[VerdictCount]:
    """Signature failures sent in [start, end) per minute (or hour), endpoint and stored
    verdict, in time order: what detection and the Webhooks page count."""
    query = (select(wd.c.sent_at, wd.c.url, wd.c.signature_verdict)
             .where(SIGNATURE_FAILURE, wd.c.sent_at >= start, wd.c.sent_at < end))
    counts: Counter = Counter()
    with engine.connect() as conn:
        for sent_at, url, verdict in conn.execute(query):
            bucket = sent_at.replace(second=0, microsecond=0)
            if hours:
                bucket = bucket.replace(minute=0)
            counts[(bucket, url or "", verdict or "undiagnosed")] += 1
    return [VerdictCount(b, u, v, n) for (b, u, v), n in sorted(counts.items())]

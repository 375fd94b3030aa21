"""The pull: each stream's pages through the ingest loader, each page committed with
its cursor in one database transaction.

Per stream, `pull_cursors` holds the cursor to ask for next (None once a walk reached
its last page), the newest updated time seen (high water) and the `updated_since` of
the walk in progress. A walk that was stopped (or killed) resumes at its cursor with
its own `updated_since`; a new walk starts at high water minus the lag, so updates the
gateway records late are read again. Reading is at-least-once; the loader's keys make
the result exactly-once.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import orjson
from sqlalchemy import Connection, Engine, insert, select, update

from mpesa_ops.ingest import fields as F
from mpesa_ops.ingest.loader import Counts, Item, Loader, now_utc
from mpesa_ops.ingest.normalise import Rejected, future_dated, normalise_as
from mpesa_ops.ingest.pull.client import GatewayClient, GatewayError, Stopped
from mpesa_ops.ingest.pull.paginator import BadPage, Page, PaginationLoop, pages
from mpesa_ops.ingest.pull.sources import FORMATS, GatewaySettings, Stream
from mpesa_ops.ingest.schema import pull_cursors


class PullError(Exception):
    """The pull stopped; the message is one line. `transient`: a later round may succeed
    unchanged (the gateway was down or slow), as opposed to a setting or the gateway's
    data being wrong."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@dataclass
class StreamReport:
    name: str
    counts: Counts = field(default_factory=Counts)
    pages: int = 0
    resumed: bool = False  # continued a walk a stopped or killed pull left
    since: datetime | None = None
    high_water: datetime | None = None

    def as_dict(self) -> dict:
        return {**self.counts.as_dict(), "pages": self.pages, "resumed": self.resumed,
                "since": None if self.since is None else self.since.isoformat(),
                "high_water": None if self.high_water is None else self.high_water.isoformat()}


@dataclass
class PullReport:
    streams: list[StreamReport]
    run_id: int | None = None
    stopped: bool = False  # a stop was asked for; what was committed is kept
    retries: int = 0  # requests repeated after a 429, a 5xx, a timeout or a lost connection

    @property
    def counts(self) -> Counts:
        total = Counts()
        for s in self.streams:
            total.add(s.counts)
        return total

    def as_dict(self) -> dict:
        return {**self.counts.as_dict(), "pages": sum(s.pages for s in self.streams), "stopped": self.stopped,
                "retries": self.retries, "run_id": self.run_id,
                "streams": {s.name: s.as_dict() for s in self.streams}}


def read_cursor(conn: Connection, stream: str) -> dict | None:
    row = conn.execute(select(pull_cursors).where(pull_cursors.c.stream == stream)).mappings().first()
    return None if row is None else dict(row)


def _save_cursor(stream: str, values: dict) -> Callable[[Connection], None]:
    """Writes the stream's cursor row; runs inside the transaction of its page."""

    def write(conn: Connection) -> None:
        values["updated_at"] = now_utc()
        done = conn.execute(update(pull_cursors).where(pull_cursors.c.stream == stream).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(pull_cursors).values(stream=stream, **values))

    return write


def page_items(stream: Stream, page: Page) -> tuple[list[Item], datetime | None]:
    """A page's records as loader items (source: the request, line: the place in the
    page, from 1), and the newest updated time among them."""
    normaliser, time_attr = FORMATS[stream.format]
    items, newest, now = [], None, now_utc()
    for line, record in enumerate(page.records, 1):
        if stream.primary_key != "id" and isinstance(record, dict) and stream.primary_key in record:
            record = {**record, "id": record[stream.primary_key]}
        normalised = normalise_as(record, normaliser)
        normalised = future_dated(normalised, now) or normalised
        if normalised.__class__ is Rejected:
            items.append(Item(page.source, line, normalised, _text(record)))
            continue
        items.append(Item(page.source, line, normalised))
        when = _updated(record, stream.updated_field) or getattr(normalised, time_attr)
        if newest is None or when > newest:
            newest = when
    return items, newest


def _updated(record: dict, name: str) -> datetime | None:
    try:
        return F.timestamp(record.get(name), name)
    except F.FieldError:
        return None


def _text(value) -> bytes:
    return orjson.dumps(value, default=str)


def _walk_start(row: dict | None, lag: timedelta) -> tuple[datetime | None, str | None, bool]:
    """(updated_since, cursor, resumed) for the stream's next walk."""
    if row is not None and row["cursor"] is not None:
        state = orjson.loads(row["state"]) if row["state"] else {}
        since = F.timestamp(state.get("since"), "since") if state.get("since") else None
        return since, row["cursor"], True
    if row is None or row["high_water"] is None:
        return None, None, False
    return row["high_water"] - lag, None, False


def pull_stream(loader: Loader, client: GatewayClient, stream: Stream, lag: timedelta,
                stop: threading.Event) -> StreamReport:
    """One walk of one stream, page by page, until its last page or a stop."""
    with loader.engine.connect() as conn:
        row = read_cursor(conn, stream.name)
    since, cursor, resumed = _walk_start(row, lag)
    report = StreamReport(stream.name, resumed=resumed, since=since,
                          high_water=None if row is None else row["high_water"])
    total_pages, total_records = (0, 0) if row is None else (row["pages"], row["records"])
    state = orjson.dumps({"since": None if since is None else since.isoformat()}).decode()
    try:
        for page in pages(client, stream, since, cursor):
            items, newest = page_items(stream, page)
            if newest is not None and (report.high_water is None or newest > report.high_water):
                report.high_water = newest
            total_pages, total_records = total_pages + 1, total_records + len(page.records)
            report.counts.add(loader.load_batch(items, extra_writes=_save_cursor(stream.name, {
                "cursor": page.next_cursor, "high_water": report.high_water, "pages": total_pages,
                "records": total_records, "state": state, "load_run_id": loader.run_id})))
            report.pages += 1
            if stop.is_set():
                break
    except Stopped:
        pass  # asked to stop while waiting to retry a page: the pages before it are committed
    except BadPage as bad:
        reject = Item(bad.source, None, Rejected(bad.reason, None, bad.code), bad.body)
        report.counts.add(loader.load_batch([reject]))
        raise PullError(f"{bad}; the cursor of {stream.name} stays where it was and the page is kept as a "
                        "rejected record (mpesa-ops summary); run the pull again") from None
    except PaginationLoop as loop:
        raise PullError(str(loop)) from None
    return report


def pull_once(engine: Engine, settings: GatewaySettings, *, client: GatewayClient | None = None,
              stop: threading.Event | None = None) -> PullReport:
    """One round: every stream from its cursor to its last page, under
    one load run. A stop asked for (`stop` set) ends the round after the page in flight
    is committed. The gateway's errors, a bad page or a pagination loop raise PullError
    after the run is recorded as failed."""
    stop = stop or threading.Event()
    own_client = client is None
    client = client or GatewayClient(settings, wait=stop.wait)
    loader = Loader(engine, "pull", " ".join(f"{settings.base_url}{s.path}" for s in settings.streams))
    report = PullReport([], loader.run_id)
    lag = timedelta(seconds=settings.lag_seconds)
    retries_before = client.retries
    try:
        for stream in settings.streams:
            report.streams.append(pull_stream(loader, client, stream, lag, stop))
            if stop.is_set():  # set by a signal, or a wait to retry that was cut short
                report.stopped = True
                break
    except GatewayError as exc:
        _finish_failed(loader, str(exc))
        raise PullError(str(exc), transient=exc.status is None or exc.status == 429 or exc.status >= 500) from None
    except PullError as exc:
        _finish_failed(loader, str(exc))
        raise
    except BaseException as exc:
        _finish_failed(loader, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        report.retries = client.retries - retries_before
        if own_client:
            client.close()
    loader.finish("ok", "stopped on request" if report.stopped else None)
    return report


def _finish_failed(loader: Loader, message: str) -> None:
    try:
        loader.finish("failed", message[:2000])
    except Exception:
        pass  # the store itself failed; the caller reports the original error


def watch(engine: Engine, settings: GatewaySettings, every: float, *, stop: threading.Event,
          after_round: Callable[[Engine], object] | None = None,
          on_round: Callable[[PullReport], object] | None = None,
          on_error: Callable[[PullError], object] | None = None) -> None:
    """Pull round after round, `every` seconds apart, until `stop` is set. After each
    round, `after_round(engine)` (detection) runs. A round the gateway failed for a
    while (5xx, 429, timeouts past the retry budget) is reported to `on_error` and the
    next round tries again; any other failure ends the watch by raising PullError."""
    with GatewayClient(settings, wait=stop.wait) as client:
        while not stop.is_set():
            try:
                report = pull_once(engine, settings, client=client, stop=stop)
            except PullError as exc:
                if not exc.transient or on_error is None:
                    raise
                on_error(exc)
            else:
                if on_round is not None:
                    on_round(report)
                if report.stopped:
                    return
                if after_round is not None:
                    after_round(engine)
            stop.wait(every)


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGINT and SIGTERM set `stop` (the page in flight still commits); a second
    SIGINT interrupts at once. Returns a function that puts the old handlers back."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, _frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    for sig in old:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore

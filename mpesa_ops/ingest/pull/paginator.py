"""Walk the pages of one stream: each page checked for shape, each next cursor
checked against the cursors already followed (a gateway that hands back a cursor
twice would loop forever), the next page fetched while the caller loads this one."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator
from urllib.parse import urlencode

import orjson

from mpesa_ops.ingest.pull.client import GatewayClient
from mpesa_ops.ingest.pull.sources import Stream


class BadPage(Exception):
    """A 2xx answer that is not a page of this stream; `body` is kept as a rejected record."""

    def __init__(self, reason: str, source: str, body: bytes, code: str = "wrong_shape"):
        super().__init__(f"{source}: {reason}")
        self.reason, self.source, self.body = reason, source, body
        self.code = code  # the rejected record's reason code: truncated, invalid_json or wrong_shape


class PaginationLoop(Exception):
    """The gateway handed back a cursor already followed in this round."""


@dataclass
class Page:
    number: int  # 1 for the first page of this walk
    source: str  # the request, e.g. GET /v1/transactions?updated_since=…&limit=1000&cursor=…
    cursor: str | None  # the cursor this page was asked with
    records: list
    next_cursor: str | None


def since_text(since: datetime | None) -> str | None:
    return None if since is None else since.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def request_of(stream: Stream, since: datetime | None, cursor: str | None) -> tuple[dict, str]:
    """(query parameters, the request as text) for one page."""
    params = {stream.limit_param: stream.page_size}
    if since is not None:
        params[stream.since_param] = since_text(since)
    if cursor is not None:
        params[stream.cursor_param] = cursor
    return params, f"GET {stream.path}?{urlencode(params)}"


def parse_page(stream: Stream, body: bytes, source: str) -> tuple[list, str | None]:
    """(records, next cursor) of a page body, or BadPage saying what is wrong with it."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if body.lstrip()[:1] in (b"{", b"[") and not body.rstrip().endswith((b"}", b"]")):
            raise BadPage(f"the page is cut short ({len(body):,} bytes): {exc}", source, body, "truncated") from None
        raise BadPage(f"the page is not JSON: {exc}", source, body, "invalid_json") from None
    if not isinstance(value, dict):
        raise BadPage(f"the page is a JSON {type(value).__name__}, expected an object with "
                      f"{stream.data_key!r} and {stream.next_key!r}", source, body)
    records = value.get(stream.data_key)
    if not isinstance(records, list):
        found = ", ".join(sorted(map(str, value))[:8]) or "none"
        raise BadPage(f"the page has no list under {stream.data_key!r} (keys: {found}); if this gateway names it "
                      f"otherwise, set data_key in [gateway.streams.{stream.name}]", source, body)
    next_cursor = value.get(stream.next_key)
    if next_cursor is not None and not isinstance(next_cursor, (str, int)) or next_cursor == "":
        raise BadPage(f"the page's {stream.next_key!r} is {next_cursor!r}, expected a cursor or null", source, body)
    return records, None if next_cursor is None else str(next_cursor)


def pages(client: GatewayClient, stream: Stream, since: datetime | None, cursor: str | None) -> Iterator[Page]:
    """The pages of one walk from `cursor` (None: the first page) to the last one (no
    next cursor). The next page is requested while the caller still holds this one;
    a walk stopped early drops the page fetched ahead without waiting for it."""
    seen: set[str] = set() if cursor is None else {cursor}

    def fetch(at: str | None) -> tuple[str, bytes]:
        params, source = request_of(stream, since, at)
        return source, client.get(stream.path, params, source)

    pool = ThreadPoolExecutor(1, thread_name_prefix=f"pull-{stream.name}")
    try:
        ahead: Future = pool.submit(fetch, cursor)
        number = 0
        while True:
            source, body = ahead.result()
            records, next_cursor = parse_page(stream, body, source)
            number += 1
            if next_cursor is not None:
                if next_cursor in seen:
                    raise PaginationLoop(f"{source}: the gateway answered with a next cursor already followed in "
                                         f"this walk ({len(seen)} pages in): a pagination loop; the pull stopped "
                                         "here, report it to the gateway")
                seen.add(next_cursor)
                ahead = pool.submit(fetch, next_cursor)
            yield Page(number, source, cursor, records, next_cursor)
            if next_cursor is None:
                return
            cursor = next_cursor
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

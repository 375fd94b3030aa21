"""A gateway simulator: serves the logs `simulate` wrote over the log API of section D
of formats.md, on 127.0.0.1, with the gateway's errors and faults on request.

    sim = GatewaySim.from_dir(folder)          # transactions.jsonl, webhook_deliveries.jsonl
    with sim.running() as url:                 # port 0: a free port; the server runs in a thread
        sim.faults.rate_limit = 2              # the next two calls answer 429 with Retry-After
        sim.add("transactions", [record, ...]) # new records appear at the gateway

Records are served in (updated time, arrival) order; a cursor is an opaque token of
the last record served, so records that arrive while a pull runs are served after
it, as a real keyset-paginated API does. The control endpoint `POST /_sim/faults`
(a JSON object of Faults fields), `POST /_sim/records/STREAM` (a JSON array) and
`GET /_sim/stats` let another process steer a running simulator.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import socket
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import orjson

from mpesa_ops import catalogue
from mpesa_ops.ingest import fields as F
from mpesa_ops.ingest.readers import read_records

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LOG_FILES = {"transactions": "transactions.jsonl", "deliveries": "webhook_deliveries.jsonl"}
TIME_FIELDS = {"transactions": ("updated_at", "completed_at", "created_at", "timestamp"),
               "deliveries": ("updated_at", "sent_at", "timestamp")}
_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc) - EPOCH


@dataclass
class Api:
    """The names the simulated API uses: section D's by default; change them to act
    as a gateway that differs."""

    paths: dict = field(default_factory=lambda: {"/v1/transactions": "transactions",
                                                 "/v1/webhooks/deliveries": "deliveries"})
    since_param: str = "updated_since"
    cursor_param: str = "cursor"
    limit_param: str = "limit"
    data_key: str = "data"
    next_key: str = "next_cursor"
    apikey_header: str = "apikey"
    linkid_header: str = "linkid"
    max_limit: int = 5000
    default_limit: int = 100


@dataclass
class Faults:
    """Faults to inject. Counts are "the next N page requests" and go down as used."""

    rate_limit: int = 0  # answer 429 with Retry-After
    retry_after: str = "1"  # the Retry-After header sent with a 429 (seconds, or an HTTP date)
    server_errors: int = 0  # answer 500 INTERNAL_ERROR
    stall: int = 0  # hold the answer stall_seconds (longer than a client's timeout)
    stall_seconds: float = 5.0
    delay: float = 0.0  # seconds added to every page answer (a slow gateway)
    truncated: int = 0  # cut the page's JSON in half
    not_json: int = 0  # answer 200 with an HTML error page
    wrong_shape: int = 0  # answer 200 with JSON that is not a page (records not a list)
    loop: bool = False  # every next cursor repeats the cursor asked with (a pagination loop)
    error: str | None = None  # answer every page request with this gateway error code
    add_after_pages: int = 0  # with pending_records: add them once this many more pages are served
    pending_records: dict = field(default_factory=dict)  # stream -> records to add mid-pull

    def take(self, name: str) -> bool:
        """Use up one of a counted fault; whether it applies to this request."""
        left = getattr(self, name)
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False


class _Log:
    """One stream's records as JSON bytes, in (updated time in µs, arrival number) order."""

    def __init__(self, stream: str):
        self.stream, self.keys, self.bodies, self.arrivals = stream, [], [], 0

    def add(self, record) -> None:
        key = (_updated_us(self.stream, record), self.arrivals)
        self.arrivals += 1
        at = bisect.bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.bodies.insert(at, orjson.dumps(record))

    def page(self, since_us: int | None, after: tuple | None, limit: int) -> tuple[list[bytes], tuple | None]:
        start = 0 if since_us is None else bisect.bisect_left(self.keys, (since_us, -1))
        if after is not None:
            start = max(start, bisect.bisect_right(self.keys, after))
        end = min(start + limit, len(self.keys))
        return self.bodies[start:end], (self.keys[end - 1] if end < len(self.keys) else None)


def _updated_us(stream: str, record) -> int:
    if isinstance(record, dict):
        for name in TIME_FIELDS[stream]:
            try:
                when = F.timestamp(record.get(name), name)
            except F.FieldError:
                continue
            if when is not None:
                return (when - EPOCH) // _MICRO
    return 0


def encode_cursor(key: tuple) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}.{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple:
    try:
        ts, seq = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().split(".")
        return int(ts), int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(f"cursor {text[:40]!r} is not one this gateway issued") from None


class GatewaySim:
    """The simulated gateway's state: its logs, accepted credentials, faults, counters."""

    def __init__(self, *, api_keys=("sim-api-key",), link_ids=("sim-link-id",), inactive_link_ids=(),
                 api: Api | None = None):
        self.api = api or Api()
        self.api_keys, self.link_ids = frozenset(api_keys), frozenset(link_ids)
        self.inactive = frozenset(inactive_link_ids)
        self.logs = {name: _Log(name) for name in LOG_FILES}
        self.faults = Faults()
        self.stats = {"requests": 0, "pages": 0, "records": 0, "errors": 0}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @classmethod
    def from_dir(cls, folder: Path | str, **kwargs) -> "GatewaySim":
        """A simulator serving the logs in `folder` (simulate's output; .gz accepted)."""
        sim = cls(**kwargs)
        folder = Path(folder)
        for stream, name in LOG_FILES.items():
            path = next((p for p in (folder / name, folder / f"{name}.gz") if p.exists()), None)
            if path is None:
                raise FileNotFoundError(f"{folder / name}: no such file (make the logs with mpesa-ops simulate)")
            sim.add(stream, (rec.value for rec in read_records(path) if rec.error is None))
        return sim

    def add(self, stream: str, records) -> int:
        """New records appear at the gateway; how many."""
        with self.lock:
            log, n = self.logs[stream], 0
            for record in records:
                log.add(record)
                n += 1
            return n

    def count(self, stream: str) -> int:
        return len(self.logs[stream].keys)

    # --- serving ---

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve in a background thread; the base URL."""
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="gateway-sim", daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextlib.contextmanager
    def running(self, port: int = 0) -> Iterator[str]:
        url = self.start(port)
        try:
            yield url
        finally:
            self.stop()

    # --- answering ---

    def answer(self, path: str, query: dict, headers) -> tuple[int, dict, bytes, float]:
        """(status, headers, body, seconds to wait before answering) for a GET."""
        api = self.api
        stream = api.paths.get(path)
        if stream is None:
            return _error(404, "NOT_FOUND", f"no such endpoint: {path}")
        key, link = headers.get(api.apikey_header), headers.get(api.linkid_header)
        with self.lock:
            self.stats["requests"] += 1
            faults = self.faults
            code = ("MISSING_HEADERS" if not key or not link else "INVALID_API_KEY" if key not in self.api_keys
                    else "INVALID_LINK_ID" if link not in self.link_ids | self.inactive
                    else "INACTIVE_SHORTCODE" if link in self.inactive else faults.error)
            if code:
                self.stats["errors"] += 1
                return _gateway_error(code)
            if faults.take("rate_limit"):
                status, extra, body, wait = _error(429, "RATE_LIMITED", "too many requests")
                return status, {**extra, "Retry-After": faults.retry_after}, body, 0.0
            if faults.take("server_errors"):
                return _gateway_error("INTERNAL_ERROR")
            wait = faults.delay + (faults.stall_seconds if faults.take("stall") else 0.0)
            try:
                limit, since_us, after = self._page_query(query)
            except ValueError as exc:
                return _error(422, "VALIDATION_ERROR", str(exc))
            bodies, last = self.logs[stream].page(since_us, after, limit)
            cursor = encode_cursor(last) if last is not None else None
            if faults.loop and cursor is not None and after is not None:
                cursor = query[api.cursor_param][0]
            body = (b'{"' + api.data_key.encode() + b'":[' + b",".join(bodies) + b'],"' + api.next_key.encode()
                    + b'":' + orjson.dumps(cursor) + b"}")
            self.stats["pages"] += 1
            self.stats["records"] += len(bodies)
            if faults.pending_records:
                faults.add_after_pages -= 1
                if faults.add_after_pages <= 0:
                    for name, records in faults.pending_records.items():
                        for record in records:
                            self.logs[name].add(record)
                    faults.pending_records = {}
            if faults.take("truncated"):
                body = body[: len(body) // 2]
            elif faults.take("not_json"):
                body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            elif faults.take("wrong_shape"):
                body = orjson.dumps({api.data_key: {"records": len(bodies)}, api.next_key: cursor})
        return 200, {"Content-Type": "application/json"}, body, wait

    def _page_query(self, query: dict) -> tuple[int, int | None, tuple | None]:
        api = self.api

        def one(name):
            values = query.get(name)
            return values[-1] if values else None

        limit_text = one(api.limit_param)
        try:
            limit = int(limit_text) if limit_text is not None else api.default_limit
        except ValueError:
            raise ValueError(f"{api.limit_param} must be a whole number, got {limit_text!r}") from None
        if not 1 <= limit <= api.max_limit:
            raise ValueError(f"{api.limit_param} must be between 1 and {api.max_limit}, got {limit}")
        since_text = one(api.since_param)
        since_us = None
        if since_text is not None:
            try:
                since = F.timestamp(since_text, api.since_param)
            except F.FieldError as exc:
                raise ValueError(f"{api.since_param}: {exc.message}") from None
            since_us = None if since is None else (since - EPOCH) // _MICRO
        cursor = one(api.cursor_param)
        return limit, since_us, None if cursor is None else decode_cursor(cursor)

    def control(self, method: str, path: str, body: bytes) -> tuple[int, dict, bytes, float]:
        """The control endpoint under /_sim/."""
        if method == "GET" and path == "/_sim/stats":
            with self.lock:
                stats = {**self.stats, **{f"{name}_records": len(log.keys) for name, log in self.logs.items()}}
            return 200, {"Content-Type": "application/json"}, orjson.dumps(stats), 0.0
        try:
            value = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return _error(400, "VALIDATION_ERROR", "the body is not JSON")
        if method == "POST" and path == "/_sim/faults" and isinstance(value, dict):
            known = {f.name for f in fields(Faults)}
            unknown = sorted(set(value) - known)
            if unknown:
                return _error(400, "VALIDATION_ERROR", f"unknown faults: {', '.join(unknown)}")
            with self.lock:
                for name, v in value.items():
                    setattr(self.faults, name, v)
                current = asdict(self.faults)
            return 200, {"Content-Type": "application/json"}, orjson.dumps(current), 0.0
        stream = path.removeprefix("/_sim/records/")
        if method == "POST" and stream in self.logs and isinstance(value, list):
            added = self.add(stream, value)
            return 200, {"Content-Type": "application/json"}, orjson.dumps({"added": added}), 0.0
        return _error(404, "NOT_FOUND", f"no such control: {method} {path}")


def _error(status: int, code: str, message: str) -> tuple[int, dict, bytes, float]:
    return status, {"Content-Type": "application/json"}, orjson.dumps({"error": {"code": code, "message": message}}), 0.0


def _gateway_error(code: str) -> tuple[int, dict, bytes, float]:
    """A seed error with the seed's HTTP status and its words as the message."""
    info = catalogue.lookup(code)
    return _error(info.http_status or 500, info.code, info.guide.meaning.split(": ")[0])


def _handler(sim: GatewaySim):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a pull reuses one connection
        server_version = "mpesa-ops-gateway-sim"

        def setup(self):
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold every answer ~40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            parts = urlsplit(self.path)
            if parts.path.startswith("/_sim/"):
                self._send(*sim.control("GET", parts.path, b""))
            else:
                self._send(*sim.answer(parts.path, parse_qs(parts.query), self.headers))

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self._send(*sim.control("POST", urlsplit(self.path).path, self.rfile.read(length)))

        def _send(self, status: int, headers: dict, body: bytes, wait: float) -> None:
            if wait:
                time.sleep(wait)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a timeout): nothing to answer

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            return None  # quiet: tests and the benchmark read nothing from it

    return Handler

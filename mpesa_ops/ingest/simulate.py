"""Realistic simulated gateway logs for the demo, the tests and the benchmarks.

``simulate()`` writes, into one directory, what a business collecting money through
M-Pesa STK Push via a payment gateway would have after ``days`` days of trading:

- ``transactions.jsonl``        format A: the gateway's transaction log export
  (a ``pending`` row per request, then its final row; ``rejected`` rows for
  requests the gateway refused; ~1% of rows repeated as exports do);
- ``callbacks.jsonl``           format B: the merchant's own log of raw STK
  callback bodies, shaped like the real Daraja samples;
- ``webhook_deliveries.jsonl``  format C: one record per webhook delivery attempt,
  HMAC-SHA256 signed, with retries;
- ``webhook-secrets.json``      demo-only fake secrets, derived from the seed;
- ``incidents.json``            the ground truth of the injected incidents.

Everything is drawn from ``random.Random`` instances seeded from ``seed`` (one per
simulated hour, one for the incident plan; no wall clock, no set or dict-order
hazards), so the same arguments give byte-identical files. Generation streams hour
by hour with a small carry-over buffer for events that land after the current hour
(late results, webhook retries), so memory does not grow with ``days``.

Webhook signatures are ``sha256=`` + hex HMAC-SHA256 of the exact ``payload`` bytes,
keyed with the UTF-8 bytes of the endpoint's secret string in ``webhook-secrets.json``
(the secret in force at the time: ``previous`` before ``rotated_at``).

All times are Africa/Nairobi local time (UTC+3, no DST) and written as ISO 8601
with a ``+03:00`` offset. Internally a time is an integer number of milliseconds
since 00:00 Nairobi time of the first simulated day.
"""

from __future__ import annotations

import base64
import bisect
import calendar
import datetime
import gc
import gzip as _gzip
import hashlib
import math
import operator
import queue
import random
import threading
from pathlib import Path

import orjson

__all__ = ["DEFAULT_START", "simulate"]

DEFAULT_START = datetime.date(2026, 10, 1)

TRANSACTIONS_FILE = "transactions.jsonl"
CALLBACKS_FILE = "callbacks.jsonl"
DELIVERIES_FILE = "webhook_deliveries.jsonl"
SECRETS_FILE = "webhook-secrets.json"
INCIDENTS_FILE = "incidents.json"

# generation unit: one hour of requests (own random stream, own id range), flushed in order
_UNIT_HOURS = 1
_UNITS_PER_DAY = 24 // _UNIT_HOURS

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_MIN_MS = 60_000
_NAIROBI_OFFSET_S = 3 * 3600

# --------------------------------------------------------------------------------------
# Merchant set-up: four shortcodes with different shares, businesses and amounts.
# --------------------------------------------------------------------------------------

# (shortcode, share of traffic, amount log-median KES, amount log-sigma, account style, endpoint)
_SHOP_URL = "https://shop.example.co.ke/mpesa/webhook"
_BILLS_URL = "https://api.bills.example.co.ke/webhooks/payments"
_SCHOOL_URL = "https://fees.school.example.ac.ke/hooks/mpesa"
_SHORTCODES = (
    ("174379", 0.42, 650.0, 1.0, "order", _SHOP_URL),
    ("600977", 0.26, 1200.0, 0.8, "account", _BILLS_URL),
    ("4071233", 0.12, 4500.0, 0.85, "admission", _SCHOOL_URL),
    ("888880", 0.20, 220.0, 0.7, "pos", _SHOP_URL),
)
_ENDPOINTS = tuple(sorted({s[5] for s in _SHORTCODES}))
# per endpoint: median latency (ms) and the body it answers on success
_ENDPOINT_STYLE = {
    _SHOP_URL: (140.0, '{"status":"ok"}'),
    _BILLS_URL: (320.0, "OK"),
    _SCHOOL_URL: (750.0, '{"received":true}'),
}


_ENDPOINT_LOG_STYLE = {url: (math.log(lat), body) for url, (lat, body) in _ENDPOINT_STYLE.items()}


def _link_id(shortcode: str) -> str:
    """The gateway's tracking code for a shortcode (stable, not secret)."""
    return "lnk_" + hashlib.sha256(f"link-{shortcode}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------
# Outcome mix of STK pushes (share in %), texts as real callbacks carry them.
# --------------------------------------------------------------------------------------

_OUTCOMES = (
    (0, 75.2),
    (1032, 9.0),
    (1037, 7.0),
    (1, 5.0),
    (2001, 1.5),
    (17, 0.4),
    (1001, 0.5),
    (1025, 0.3),
    (26, 0.2),
    (9999, 0.25),
    (2028, 0.15),
    (1019, 0.2),
    (1036, 0.15),
    (11, 0.15),
)
_OUT_CODES = tuple(c for c, _ in _OUTCOMES)
_OUT_CUM: list[float] = []
_acc = 0.0
for _c, _w in _OUTCOMES:
    _acc += _w / 100.0
    _OUT_CUM.append(_acc)
_OUT_CUM[-1] = 1.0
_BASE_SHARE = {c: w / 100.0 for c, w in _OUTCOMES}

_DESCS = {
    0: ("The service request is processed successfully.",),
    1: (
        "The balance is insufficient for the transaction.",
        "The balance is insufficient for the transaction",
    ),
    11: ("The DebitParty is in an invalid state.",),
    17: ("Rule limited.",),
    26: ("System busy. The service request is rejected.",),
    1001: (
        "Unable to lock subscriber, a transaction is already in process for the current subscriber",
        "[STK_CB - ]Unable to lock subscriber, a transaction is already in process for the current subscriber",
    ),
    1019: ("Transaction has expired.", "Transaction has expired"),
    1025: ("An error occurred while sending a push request.",),
    1032: (
        "Request cancelled by user",
        "Request Cancelled by user.",
        "[STK_CB - ]Request cancelled by user",
    ),
    1036: ("SMSC ACK timeout.",),
    1037: ("DS timeout.", "DS timeout user cannot be reached.", "No response from user."),
    2001: ("The initiator information is invalid.",),
    2028: ("The request is not permitted according to product assignment.",),
    9999: ("An error occurred while processing the request.", "[STK_CB - ]System error occurred."),
}
# weights of the texts above (same order); missing -> uniform
_DESC_WEIGHTS = {
    1: (0.7, 0.3),
    1001: (0.6, 0.4),
    1019: (0.6, 0.4),
    1032: (0.45, 0.45, 0.10),
    1037: (0.45, 0.35, 0.20),
    9999: (0.7, 0.3),
}

# Gateway refusals (status "rejected"): (error_code, http_status, message, weight)
_REJECTS = (
    ("INVALID_MSISDN", 422, "Phone number format invalid (must be 254XXXXXXXXX)", 32),
    ("INVALID_AMOUNT", 422, "Amount must be between 1 and 300,000", 14),
    ("VALIDATION_ERROR", 422, "Request parameters failed validation", 14),
    ("INVALID_CALLBACK", 422, "Callback URL invalid or not accessible", 3),
    ("INVALID_API_KEY", 401, "API key not found or invalid", 4),
    ("INACTIVE_SHORTCODE", 401, "Shortcode has been deactivated", 3),
    ("INVALID_LINK_ID", 401, "Shortcode tracking code not found or invalid", 2),
    ("MISSING_HEADERS", 401, "Required headers (apikey, linkid) not provided", 2),
    ("STK_PUSH_FAILED", 500, "M-Pesa STK Push initiation failed", 11),
    ("MPESA_UNAVAILABLE", 500, "M-Pesa services temporarily unavailable", 7),
    ("TIMEOUT_ERROR", 500, "Request timeout or processing delay", 5),
    ("INTERNAL_ERROR", 500, "Internal system error occurred", 3),
)
_REJECT_CUM: list[float] = []
_acc = 0.0
_tot = sum(r[3] for r in _REJECTS)
for _r in _REJECTS:
    _acc += _r[3] / _tot
    _REJECT_CUM.append(_acc)
_REJECT_CUM[-1] = 1.0

_REJECT_RATE = 0.015
_FOREVER_PENDING_RATE = 0.005
_DUPLICATE_ROW_RATE = 0.01
_EMPTY_CALLBACK_RATE = 0.002
_DOUBLE_CALLBACK_RATE = 0.01  # of 1037 outcomes: a 1019 callback first, then the 1037
# customers who push again after a failure: code -> probability
_CUSTOMER_RETRY = {1032: 0.25, 1037: 0.35, 1: 0.15, 2001: 0.45, 1001: 0.5, 1019: 0.3, 26: 0.3, 9999: 0.3}
_RETRY_VOLUME = 0.07  # expected extra requests from those retries (keeps per_day honest)

# --------------------------------------------------------------------------------------
# Daily rhythm (Nairobi time): relative volume per hour of day.
# --------------------------------------------------------------------------------------

_HOURLY_WEEKDAY = (1.2, 0.8, 0.6, 0.5, 0.7, 1.5, 3.0, 4.5, 5.5, 6.0, 6.2, 6.8,
                   8.2, 8.0, 6.5, 6.0, 6.2, 7.6, 8.6, 8.0, 6.0, 4.2, 2.8, 1.8)
_HOURLY_SATURDAY = (1.6, 1.1, 0.8, 0.6, 0.6, 1.0, 1.8, 2.8, 4.0, 5.2, 6.2, 7.0,
                    7.8, 7.8, 7.2, 6.8, 6.8, 7.2, 7.6, 7.4, 6.2, 4.8, 3.4, 2.3)
_HOURLY_SUNDAY = (1.8, 1.2, 0.8, 0.6, 0.5, 0.7, 1.2, 2.0, 3.0, 4.0, 5.0, 5.8,
                  6.6, 7.0, 6.8, 6.6, 6.6, 6.8, 7.0, 6.6, 5.6, 4.2, 3.0, 2.0)
# Mon..Sun volume factors (relative; a run is scaled so that per_day is its daily mean)
_DOW_FACTOR = (1.0, 0.98, 1.0, 1.02, 1.08, 0.95, 0.75)
# Kenyan public holidays with a fixed date (month, day): traded like a Sunday
_HOLIDAYS = {(1, 1), (5, 1), (6, 1), (10, 10), (10, 20), (12, 12), (12, 25), (12, 26)}


def _minute_shares(hourly: tuple[float, ...]) -> list[float]:
    """Per-minute share of a day's volume, linearly interpolated between hour centres."""
    w = []
    for m in range(1440):
        x = (m + 0.5) / 60.0 - 0.5
        h0 = math.floor(x)
        f = x - h0
        w.append(hourly[h0 % 24] * (1.0 - f) + hourly[(h0 + 1) % 24] * f)
    tot = sum(w)
    return [v / tot for v in w]


def _payday_factor(d: datetime.date) -> float:
    """Month-end payday (25th to 5th) trades more."""
    if d.day >= 25 or d.day <= 5:
        return 1.16 if (d.day >= 27 or d.day <= 2) else 1.10
    return 0.92


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

_M80 = (1 << 80) - 1
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_B36_2 = [a + b for a in _B36 for b in _B36]
_B36_3 = [a + b for a in _B36 for b in _B36_2]
_RECEIPT_MOD = 36 ** 7
_RECEIPT_MUL = 48_271_219_777  # coprime to 36: the counter -> 7-char map is a bijection


def _mix80(n: int, k: int) -> int:
    """Bijective scramble of an 80-bit counter (so ids look random yet never repeat)."""
    x = ((n + k) * 0x9E3779B97F4A7C15F39D) & _M80
    return x ^ (x >> 41)


_first = operator.itemgetter(0)


class _HmacSha256:
    """HMAC-SHA256 with a fixed key (RFC 2104), pads hashed once: ~3x faster than
    ``hmac.digest`` per small message. Same bytes as ``hmac.new(key, msg, sha256)``."""

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, msg: bytes) -> bytes:
        i = self.inner.copy()
        i.update(msg)
        o = self.outer.copy()
        o.update(i.digest())
        return o.digest()


def _ri(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi]; much cheaper than ``Random.randint``."""
    return lo + int(rng.random() * (hi - lo + 1))


def _lognorm(rng: random.Random, mu: float, sigma: float) -> float:
    """Log-normal draw (``gauss`` is cheaper than ``lognormvariate``)."""
    return math.exp(mu + sigma * rng.gauss(0.0, 1.0))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0.0:
        return 0
    if lam < 30.0:
        limit = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))


def _pick_desc(rng: random.Random, code: int) -> str:
    texts = _DESCS[code]
    if len(texts) == 1:
        return texts[0]
    weights = _DESC_WEIGHTS.get(code)
    if weights is None:
        return texts[int(rng.random() * len(texts))]
    r = rng.random()
    acc = 0.0
    for t, w in zip(texts, weights):
        acc += w
        if r < acc:
            return t
    return texts[-1]


def _completion_delay_ms(rng: random.Random, code: int) -> int:
    """Request -> result, by code (seconds to ~2 minutes; 1037 after ~60-90 s).

    Never under a second, so a final row's updated_at is always later than its pending row's."""
    if code == 0 or code == 1:
        s = 5.0 + _lognorm(rng, math.log(12.0), 0.55)
        return int(min(s, 115.0) * 1000)
    if code == 1032:
        return int(min(2.0 + _lognorm(rng, math.log(8.0), 0.6), 100.0) * 1000)
    if code == 1037:
        if rng.random() < 0.06:
            return _ri(rng, 90_000, 120_000)
        return _ri(rng, 60_000, 90_000)
    if code == 2001:
        return _ri(rng, 10_000, 60_000)
    if code == 1019:
        return _ri(rng, 60_000, 120_000)
    if code == 1036:
        return _ri(rng, 30_000, 70_000)
    if code == 9999:
        return _ri(rng, 1_000, 30_000)
    if code == 1025:
        return _ri(rng, 1_000, 8_000)
    return _ri(rng, 1_000, 4_000)  # 11, 17, 26, 1001, 2028: answered at once


class _Writer:
    """Writes (file, bytes) jobs in order on a background thread.

    ``write`` and zlib release the GIL, so the disk (and gzip) work overlaps the
    generation instead of stalling it. The queue is bounded: memory stays flat.
    """

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.failed = False
        self.thread = threading.Thread(target=self._run, name="mpesa-ops-simulate-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.error is None and not self.failed:
                try:
                    job[0].write(job[1])
                except BaseException as exc:  # reported to the caller by put() / close()
                    self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            self.failed = True
            raise error

    def put(self, fh, data: bytes) -> None:
        self._raise()
        if not self.failed:
            self.queue.put((fh, data))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()


class _Sink:
    """One output file: merges time-sorted batches of (time_ms, line) and writes them in order.

    Each line ends with its "\n" (``orjson.dumps(...) + b"\n"`` also makes a right-sized
    copy: orjson's own result keeps a several-KB buffer, which would bloat the buffers).

    The sort is stable on the time only: lines with the same time keep the order they
    were generated in (earlier units first), so the output is deterministic and a
    repeated row stays next to itself.
    """

    __slots__ = ("fh", "gz", "raw", "carry", "count", "writer")

    def __init__(self, path: Path, gzip: bool, writer: _Writer):
        self.writer = writer
        self.raw = open(path, "wb")
        if gzip:
            # no file name and mtime=0 in the header: the bytes depend on the content only
            self.gz = _gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=6)
            self.fh = self.gz
        else:
            self.gz = None
            self.fh = self.raw
        self.carry: list = []
        self.count = 0

    def add(self, items: list, boundary_ms: int | None) -> None:
        """Take a batch, write every buffered line before ``boundary_ms`` (all when None)."""
        if self.carry:
            items = self.carry + items
            items.sort(key=_first)  # two sorted runs: a linear merge
        if boundary_ms is None:
            cut = len(items)
        else:
            cut = bisect.bisect_left(items, boundary_ms, key=_first)
        if cut:
            self.writer.put(self.fh, b"".join([it[1] for it in items[:cut]]))
            self.count += cut
        self.carry = items[cut:]

    def close(self) -> None:
        if self.gz is not None:
            self.gz.close()
        self.raw.close()


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------

_TIME_TABLES: tuple[list[str], list[str]] | None = None


def _time_tables() -> tuple[list[str], list[str]]:
    """"THH:MM:SS+03:00" and "HHMMSS" for every second of a day, built once per process."""
    global _TIME_TABLES
    if _TIME_TABLES is None:
        hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        _TIME_TABLES = (["T" + x + "+03:00" for x in hms], [x.replace(":", "") for x in hms])
    return _TIME_TABLES


class _Simulator:
    """Everything needed to generate any unit (a block of hours) on its own.

    A unit draws from its own ``random.Random`` and numbers its ids in its own range,
    so a unit does not depend on the ones before it (and could be generated apart).
    """

    def __init__(self, days: int, seed: int, per_day: int, start: datetime.date):
        self.days = days
        self.seed = seed
        self.per_day = per_day
        self.start = start
        self.n_units = days * _UNITS_PER_DAY
        # local midnight of the first day, as unix seconds
        self.epoch0 = calendar.timegm(start.timetuple()) - _NAIROBI_OFFSET_S
        kb = hashlib.sha256(f"mpesa-ops-ids-{seed}".encode()).digest()
        self.k_txn = int.from_bytes(kb[0:10], "big")
        self.k_evt = int.from_bytes(kb[10:20], "big")
        self.k_dlv = int.from_bytes(kb[20:30], "big")
        self.k_rcpt = int.from_bytes(kb[30:32], "big") * 7919
        self.phone_off = int.from_bytes(kb[0:4], "big") % 10_000_000
        self.n_customers = max(2000, per_day * 4)
        # time formatting tables (second of day -> text)
        self._hms, self._hms_compact = _time_tables()
        self._dates: list[str] = []
        self._ddmmyyyy: list[str] = []
        self._yyyymmdd: list[int] = []
        self._receipt_prefix: list[str] = []
        # events trail their request by at most a few hours (webhook retries): two spare days
        self._extend_dates(days + 2)
        self.minute_shares = {
            "weekday": _minute_shares(_HOURLY_WEEKDAY),
            "saturday": _minute_shares(_HOURLY_SATURDAY),
            "sunday": _minute_shares(_HOURLY_SUNDAY),
        }
        self.sc_cum = []
        acc = 0.0
        for s in _SHORTCODES:
            acc += s[1]
            self.sc_cum.append(acc)
        self.sc_cum[-1] = 1.0
        self.link_ids = {s[0]: _link_id(s[0]) for s in _SHORTCODES}
        self._day_totals: tuple = (-1, None)  # (day, (minute shares, expected requests))
        # per_day is the mean over the span: the days keep their relative shape
        self.span_factor = sum(self._day_shape(d)[1] for d in range(days)) / days
        self._plan()

    # ---- time formatting -------------------------------------------------------------

    def _extend_dates(self, n: int) -> None:
        while len(self._dates) < n:
            d = self.start + datetime.timedelta(days=len(self._dates))
            self._dates.append(d.isoformat())
            self._ddmmyyyy.append(f"{d.day:02d}{d.month:02d}{d.year:04d}")
            self._yyyymmdd.append((d.year * 10000 + d.month * 100 + d.day) * 1_000_000)
            year_letter = chr(ord("A") + (d.year - 2006) % 26)  # 2018 -> M, 2025 -> T, 2026 -> U
            self._receipt_prefix.append(year_letter + _B36[10 + d.month - 1] + _B36[d.day])

    def iso(self, ms: int) -> str:
        d, r = divmod(ms // 1000, 86400)
        if d >= len(self._dates):
            self._extend_dates(d + 1)
        return self._dates[d] + self._hms[r]

    def checkout_id(self, ms: int, msisdn: str) -> str:
        d, r = divmod(ms // 1000, 86400)
        if d >= len(self._dates):
            self._extend_dates(d + 1)
        return f"ws_CO_{self._ddmmyyyy[d]}{self._hms_compact[r]}{ms % 1000:03d}{msisdn[3:]}"

    def transaction_date(self, ms: int) -> int:
        d, r = divmod(ms // 1000, 86400)
        if d >= len(self._dates):
            self._extend_dates(d + 1)
        return self._yyyymmdd[d] + int(self._hms_compact[r])

    # ---- incident plan ---------------------------------------------------------------

    def _plan(self) -> None:
        prng = random.Random(f"mpesa-ops-incidents-{self.seed}")
        days = self.days
        order = list(range(days))
        prng.shuffle(order)
        slot = [0]

        def next_day() -> int:
            d = order[slot[0] % days]
            slot[0] += 1
            return d

        def place(day: int, lo_h: int, hi_h: int, dur_min: int) -> tuple[int, int]:
            start_min = prng.randint(lo_h * 60, hi_h * 60 - dur_min)
            s = day * _DAY_MS + start_min * _MIN_MS
            return s, s + dur_min * _MIN_MS

        incidents: list[dict] = []
        # 1037 surges, by day, one shortcode each
        for _ in range(1 + days // 7):
            dur = prng.randint(30, 60)
            s, e = place(next_day(), 9, 20, dur)
            sc = _SHORTCODES[prng.randrange(len(_SHORTCODES))][0]
            mult = round(prng.uniform(2.5, 5.0), 2)
            incidents.append({
                "kind": "result_code_surge", "code": "1037", "shortcode": sc, "start_ms": s, "end_ms": e,
                "description": f"Code 1037 (customer unreachable / no response) at {mult}x its baseline rate "
                               f"on shortcode {sc} for {dur} minutes.",
                "multiplier": mult, "baseline_rate": _BASE_SHARE[1037],
                "rate": round(min(0.6, mult * _BASE_SHARE[1037]), 4),
            })
        # 9999 outages on all shortcodes; with a week or more, the first one at night
        for i in range(1 + days // 14):
            dur = prng.randint(15, 45)
            if days >= 7 and i == 0:
                s, e = place(next_day(), 0, 5, dur)
            else:
                s, e = place(next_day(), 9, 20, dur)
            rate = round(prng.uniform(0.05, 0.15), 3)
            incidents.append({
                "kind": "result_code_outage", "code": "9999", "shortcode": None, "start_ms": s, "end_ms": e,
                "description": f"M-Pesa general system error (9999) on {round(rate * 100, 1)}% of STK pushes "
                               f"on all shortcodes for {dur} minutes.",
                "rate": rate, "baseline_rate": _BASE_SHARE[9999],
            })
        # webhook secret rotation that the gateway did not pick up (single-shortcode endpoint)
        single = [url for url in _ENDPOINTS if sum(1 for s in _SHORTCODES if s[5] == url) == 1]
        url = single[prng.randrange(len(single))]
        sc = next(s[0] for s in _SHORTCODES if s[5] == url)
        dur = prng.randint(60, 180)
        rot_start, rot_end = place(next_day(), 9, 20, dur)
        incidents.append({
            "kind": "signature_rotation", "code": "invalid_signature", "shortcode": sc,
            "start_ms": rot_start, "end_ms": rot_end,
            "description": f"The merchant rotated the webhook secret of {url} but the gateway kept signing with "
                           f"the previous secret for {dur} minutes: deliveries refused with 401 Invalid Signature.",
            "url": url, "status_code": 401,
        })
        self.rotation = (url, rot_start, rot_end)
        # insufficient funds rising before month-end (the 25th)
        rises = []
        for d in range(days + 1):
            date = self.start + datetime.timedelta(days=d)
            if date.day == 25:
                n = prng.randint(3, 5)
                if d - n >= 0:
                    rises.append(((d - n) * _DAY_MS, d * _DAY_MS, n, f"the {n} days before month-end (the 25th)"))
        if not rises:
            n = min(3, days)
            rises.append(((days - n) * _DAY_MS, days * _DAY_MS, n,
                          f"the last {n} days of the span (no month-end in it)"))
        for rs, re_, n, when in rises:
            incidents.append({
                "kind": "insufficient_funds_rise", "code": "1", "shortcode": None, "start_ms": rs, "end_ms": re_,
                "description": f"Insufficient funds (code 1) share rising gradually from 6% to 15% of STK pushes "
                               f"over {when}.",
                "rate_from": 0.06, "rate_to": 0.15, "baseline_rate": _BASE_SHARE[1],
            })
        incidents.sort(key=lambda x: (x["start_ms"], x["kind"]))
        self.incidents = incidents

        # secrets: deterministic from the seed, never literal
        def secret(endpoint: str, n: int) -> str:
            return hashlib.sha256(f"mpesa-ops-demo-{seed}-{endpoint}-{n}".encode()).hexdigest()

        seed = self.seed
        self.secrets: dict[str, dict] = {}
        for ep in _ENDPOINTS:
            if ep == url:
                self.secrets[ep] = {"current": secret(ep, 2), "previous": secret(ep, 1),
                                    "rotated_at": self.iso(rot_start)}
            else:
                self.secrets[ep] = {"current": secret(ep, 1), "previous": None, "rotated_at": None}
        self.signers = {
            ep: (_HmacSha256(sec["current"].encode()),
                 _HmacSha256(sec["previous"].encode()) if sec["previous"] is not None else None)
            for ep, sec in self.secrets.items()
        }

    def add_outage_at(self, at_ms: int, rate: float = 0.4, before_min: int = 40, after_min: int = 20) -> None:
        """A 9999 outage on every shortcode under way at ``at_ms`` (the end of a demo's
        logs), so the demo opens on a firing alert as a live incident would."""
        self.incidents.append({
            "kind": "result_code_outage", "code": "9999", "shortcode": None,
            "start_ms": at_ms - before_min * _MIN_MS, "end_ms": at_ms + after_min * _MIN_MS,
            "description": f"M-Pesa general system error (9999) on {round(rate * 100, 1)}% of STK pushes on all "
                           f"shortcodes, under way when the logs end ({before_min} minutes in).",
            "rate": rate, "baseline_rate": _BASE_SHARE[9999],
        })
        self.incidents.sort(key=lambda x: (x["start_ms"], x["kind"]))

    def _incident_effects(self, lo_ms: int, hi_ms: int) -> list:
        """(kind, start, end, shortcode, params) of outcome-changing incidents touching [lo, hi)."""
        out = []
        for inc in self.incidents:
            if inc["end_ms"] <= lo_ms or inc["start_ms"] >= hi_ms:
                continue
            k = inc["kind"]
            if k == "result_code_surge":
                b = _BASE_SHARE[1037]
                out.append((1037, inc["start_ms"], inc["end_ms"], inc["shortcode"], (inc["rate"] - b) / (1 - b), None))
            elif k == "result_code_outage":
                b = _BASE_SHARE[9999]
                out.append((9999, inc["start_ms"], inc["end_ms"], None, (inc["rate"] - b) / (1 - b), None))
            elif k == "insufficient_funds_rise":
                out.append((1, inc["start_ms"], inc["end_ms"], None, inc["rate_from"], inc["rate_to"]))
        return out

    # ---- units ---------------------------------------------------------------------

    def _day_volume(self, day: int) -> tuple[list[float], float]:
        """Minute shares and expected request count of one day (its own noise draw)."""
        if self._day_totals[0] == day:
            return self._day_totals[1]
        shares, factor = self._day_shape(day)
        noise = min(1.25, max(0.75, random.Random(f"mpesa-ops-day-{self.seed}-{day}").gauss(1.0, 0.07)))
        total = self.per_day * factor / self.span_factor * noise / (1.0 + _RETRY_VOLUME)
        self._day_totals = (day, (shares, total))
        return shares, total

    def _day_shape(self, day: int) -> tuple[list[float], float]:
        """Minute shares and relative volume of a day (weekday, holiday, month-end payday)."""
        date = self.start + datetime.timedelta(days=day)
        dow = date.weekday()
        if (date.month, date.day) in _HOLIDAYS or dow == 6:
            shares = self.minute_shares["sunday"]
            dow_f = _DOW_FACTOR[6] if dow == 6 else 0.8
        elif dow == 5:
            shares = self.minute_shares["saturday"]
            dow_f = _DOW_FACTOR[5]
        else:
            shares = self.minute_shares["weekday"]
            dow_f = _DOW_FACTOR[dow]
        return shares, dow_f * _payday_factor(date)

    def gen_unit(self, unit: int) -> tuple[list, list, list, int]:
        """Generate the requests of one block of hours and everything that follows from them.

        Returns the (time_ms, line) items of the three logs, each sorted by time (stable),
        and the number of requests. Items may lie after the block (late results, retries).
        """
        self.rng = rng = random.Random(f"mpesa-ops-sim-{self.seed}-{unit}")
        base = unit << 24
        self.n_txn = self.n_event = self.n_delivery = base
        self.n_receipt = unit << 20
        self.out_tx, self.out_cb, self.out_dl = [], [], []
        day, block = divmod(unit, _UNITS_PER_DAY)
        shares, total = self._day_volume(day)
        for hour in range(block * _UNIT_HOURS, (block + 1) * _UNIT_HOURS):
            h0 = day * _DAY_MS + hour * _HOUR_MS
            self.effects = self._incident_effects(h0, h0 + 3 * _HOUR_MS)
            base_min = hour * 60
            for m in range(60):
                n = _poisson(rng, total * shares[base_min + m])
                if not n:
                    continue
                t0 = h0 + m * _MIN_MS
                for t in sorted([t0 + int(rng.random() * _MIN_MS) for _ in range(n)]):
                    self._request(t)
        for items in (self.out_tx, self.out_cb, self.out_dl):
            items.sort(key=_first)
        return self.out_tx, self.out_cb, self.out_dl, self.n_txn - base

    def unit_end(self, unit: int) -> int:
        return (unit + 1) * _UNIT_HOURS * _HOUR_MS

    def incidents_doc(self) -> list[dict]:
        doc = []
        for i, inc in enumerate(self.incidents, 1):
            rec = {"id": f"inc-{i:03d}", "kind": inc["kind"], "code": inc["code"], "shortcode": inc["shortcode"],
                   "start": self.iso(inc["start_ms"]), "end": self.iso(inc["end_ms"]),
                   "description": inc["description"]}
            for k, v in inc.items():
                if k not in rec and k not in ("start_ms", "end_ms"):
                    rec[k] = v
            doc.append(rec)
        return doc

    def secrets_doc(self) -> dict:
        return {"endpoints": {ep: self.secrets[ep] for ep in _ENDPOINTS}}

    # ---- one request and everything that follows from it ---------------------------

    def _tx_row(self, t_ms: int, row: dict) -> bytes:
        """Emit a transaction row; returns its compact JSON (without the newline)."""
        data = orjson.dumps(row)
        item = (t_ms, data + b"\n")
        pending = self.out_tx
        pending.append(item)
        if self.rng.random() < _DUPLICATE_ROW_RATE:
            pending.append(item)  # exports repeat a line now and then
        return data

    def _customer(self) -> tuple[int, str]:
        idx = int(self.n_customers * self.rng.random() ** 1.7)
        prefix = ("70", "71", "72", "79", "74", "11", "70", "72", "11", "79")[idx % 10]
        x = (idx * 7_654_321 + self.phone_off) % 10_000_000
        x = (x % 10_000) * 1_000 + x // 10_000  # rotate the digits (still a bijection)
        digits = (x * 3_141_593 + 2_718_281) % 10_000_000
        return idx, f"254{prefix}{digits:07d}"

    def _amount(self, sc_info: tuple) -> int | float:
        rng = self.rng
        if rng.random() < 0.002:  # the rare big one (fees, stock, rent)
            a = _lognorm(rng, math.log(30000.0), 0.8)
        else:
            a = _lognorm(rng, math.log(sc_info[2]), sc_info[3])
        a = max(1.0, min(150_000.0, a))
        r = rng.random()
        if r < 0.02 and a < 20000:
            return round(int(a) + (0.5, 0.25, 0.75, 0.99, 0.5)[int(r * 250) % 5], 2)
        if a < 100:
            return int(a) if a >= 10 else max(1, int(a))
        if sc_info[4] == "admission":
            step = 500 if a >= 5000 else 100
        elif a >= 1000:
            step = 50 if r < 0.6 else 1
        else:
            step = 10 if r < 0.6 else 1
        return max(1, int(round(a / step)) * step)

    def _account_reference(self, sc_info: tuple, idx: int) -> str:
        style = sc_info[4]
        if style == "order":
            return f"ORD-{_ri(self.rng, 100000, 999999)}"
        if style == "account":
            return f"ACC{(idx * 37_813 + 104_729) % 900_000 + 100_000}"
        if style == "admission":
            return f"ADM{(idx * 613 + 71) % 9000 + 1000}"
        return f"POS{_ri(self.rng, 1, 12):02d}"

    def _merchant_request_id(self) -> str:
        rng = self.rng
        if rng.random() < 0.18:
            return f"{_ri(rng, 1000, 99999)}-{_ri(rng, 100000, 99999999)}-{1 if rng.random() < 0.9 else 2}"
        h = f"{rng.getrandbits(96):024x}"
        return f"{h[0:4]}-{h[4:8]}-{h[8:12]}-{h[12:24]}{_ri(rng, 1000, 9999999)}"

    def _receipt(self, t_ms: int) -> str:
        d = t_ms // _DAY_MS
        if d >= len(self._dates):
            self._extend_dates(d + 1)
        self.n_receipt += 1
        x = (self.n_receipt * _RECEIPT_MUL + self.k_rcpt) % _RECEIPT_MOD
        return self._receipt_prefix[d] + _B36_3[x % 46656] + _B36_2[(x // 46656) % 1296] + _B36_2[x // 60466176]

    def _draw_outcome(self, t_ms: int, sc: str) -> int:
        rng = self.rng
        code = _OUT_CODES[bisect.bisect_right(_OUT_CUM, rng.random())]
        for target, s, e, isc, q, q2 in self.effects:
            if s <= t_ms < e and (isc is None or isc == sc) and code != target:
                if q2 is not None:  # gradual rise from q to q2
                    p = q + (q2 - q) * (t_ms - s) / (e - s)
                    b = _BASE_SHARE[target]
                    q_eff = (p - b) / (1 - b)
                else:
                    q_eff = q
                if rng.random() < q_eff:
                    code = target
        return code

    def _request(self, t: int, retry_of: tuple | None = None, depth: int = 0) -> None:
        rng = self.rng
        self.n_txn += 1
        txn_id = f"txn_{_mix80(self.n_txn, self.k_txn):020x}"
        if retry_of is None:
            sc_info = _SHORTCODES[bisect.bisect_right(self.sc_cum, rng.random())]
            idx, msisdn = self._customer()
            amount = self._amount(sc_info)
            acct = self._account_reference(sc_info, idx)
        else:
            sc_info, idx, msisdn, amount, acct, _prev_t = retry_of
        sc = sc_info[0]
        created = self.iso(t)

        if retry_of is None and rng.random() < _REJECT_RATE:
            err, http, msg, _w = _REJECTS[bisect.bisect_right(_REJECT_CUM, rng.random())]
            if err == "INVALID_MSISDN":
                msisdn = (msisdn[:-2], msisdn + "1", "0" + msisdn[3:], "2547" + msisdn[5:])[int(rng.random() * 4)]
            elif err == "INVALID_AMOUNT":
                amount = (0, -amount, 300000 + int(amount) * 10, 350000)[int(rng.random() * 4)]
            self._tx_row(t, {
                "id": txn_id, "created_at": created, "updated_at": created, "shortcode": sc,
                "link_id": self.link_ids[sc], "msisdn": msisdn, "amount": amount, "account_reference": acct,
                "status": "rejected", "http_status": http, "error_code": err, "merchant_request_id": None,
                "checkout_request_id": None, "result_code": None, "result_desc": msg, "mpesa_receipt": None,
                "completed_at": None,
            })
            return

        mrid = self._merchant_request_id()
        coid = self.checkout_id(t, msisdn)
        row = {
            "id": txn_id, "created_at": created, "updated_at": created, "shortcode": sc,
            "link_id": self.link_ids[sc], "msisdn": msisdn, "amount": amount, "account_reference": acct,
            "status": "pending", "http_status": 200, "error_code": None, "merchant_request_id": mrid,
            "checkout_request_id": coid, "result_code": None, "result_desc": None, "mpesa_receipt": None,
            "completed_at": None,
        }
        self._tx_row(t, row)
        if rng.random() < _FOREVER_PENDING_RATE:
            return  # the callback never came

        if retry_of is not None and t - retry_of[5] < 120_000 and rng.random() < 0.15:
            code = 17  # same amount to the same customer within ~2 minutes
        else:
            code = self._draw_outcome(t, sc)
        t_done = t + _completion_delay_ms(rng, code)

        results = []
        if code == 1037 and rng.random() < _DOUBLE_CALLBACK_RATE:
            t_first = t + _ri(rng, 45_000, 58_000)
            results.append((1019, t_first))
        results.append((code, t_done))

        for rc, tc in results:
            desc = _pick_desc(rng, rc)
            completed = self.iso(tc)
            row["updated_at"] = completed
            row["completed_at"] = completed
            row["result_code"] = rc
            row["result_desc"] = desc
            if rc == 0:
                row["status"] = "success"
                receipt = self._receipt(tc)
                row["mpesa_receipt"] = receipt
            else:
                row["status"] = "failed"
                receipt = None
            row_json = self._tx_row(tc, row)
            self._callback(tc, sc, mrid, coid, rc, desc, amount, receipt, msisdn, t)
            self._webhook_event(tc, txn_id, rc == 0, completed, row_json, sc_info[5])

        if depth < 2 and code in _CUSTOMER_RETRY and rng.random() < _CUSTOMER_RETRY[code]:
            t_retry = t_done + _ri(rng, 15_000, 240_000)
            self._request(t_retry, (sc_info, idx, msisdn, amount, acct, t_done), depth + 1)

    def _callback(self, tc: int, sc: str, mrid: str, coid: str, rc: int, desc: str,
                  amount, receipt: str | None, msisdn: str, t_req: int) -> None:
        rng = self.rng
        t_recv = tc + _ri(rng, 50, 2500)
        cb = {"MerchantRequestID": mrid, "CheckoutRequestID": coid, "ResultCode": rc, "ResultDesc": desc}
        if rc == 0:
            # older-style ids ("29115-34620561-1") come with Amount as 1.00-like floats
            amt = float(amount) if (mrid.count("-") == 2 or rng.random() < 0.3) else amount
            items = [{"Name": "Amount", "Value": amt}, {"Name": "MpesaReceiptNumber", "Value": receipt}]
            r = rng.random()
            if r < 0.5:
                items.append({"Name": "Balance"})
            elif r < 0.65:
                items.append({"Name": "Balance", "Value": 0})
            # TransactionDate: M-Pesa's clock, a few seconds before the result, sometimes
            # earlier than the request itself (up to two minutes)
            tx_ms = tc - _ri(rng, 0, 8000)
            if rng.random() < 0.03:
                tx_ms = t_req - _ri(rng, 5_000, 120_000)
            items.append({"Name": "TransactionDate", "Value": self.transaction_date(max(0, tx_ms))})
            items.append({"Name": "PhoneNumber", "Value": int(msisdn)})
            cb["CallbackMetadata"] = {"Item": items}
        received = self.iso(t_recv)
        self.out_cb.append((t_recv, orjson.dumps(
            {"received_at": received, "shortcode": sc, "body": {"Body": {"stkCallback": cb}}}) + b"\n"))
        if rng.random() < _EMPTY_CALLBACK_RATE:
            t_empty = t_recv + _ri(rng, 1_000, 300_000)
            empty = {"received_at": self.iso(t_empty), "shortcode": sc, "body": {}}
            self.out_cb.append((t_empty, orjson.dumps(empty) + b"\n"))

    # ---- webhooks --------------------------------------------------------------------

    def _signer(self, url: str, t_ms: int) -> tuple[_HmacSha256, bool]:
        """The key the gateway signs with at t, and whether the merchant will refuse it."""
        current, previous = self.signers[url]
        if previous is None:
            return current, False
        _url, r_start, r_end = self.rotation
        if t_ms < r_start:
            return previous, False  # before the rotation it was the secret in use
        if t_ms < r_end:
            return previous, True  # the gateway has not picked up the new one
        return current, False

    def _webhook_event(self, tc: int, txn_id: str, success: bool, completed: str, row_json: bytes,
                       url: str) -> None:
        """The gateway's payment.* event for a final row, with its delivery attempts.

        The payload is ``{"event", "event_id", "created_at", "data": <the transaction
        record as in the log>}``, compact JSON, built from the row's own bytes."""
        rng = self.rng
        self.n_event += 1
        event_id = f"evt_{_mix80(self.n_event, self.k_evt):020x}"
        event_type = "payment.success" if success else "payment.failed"
        payload_text = (f'{{"event":"{event_type}","event_id":"{event_id}","created_at":"{completed}","data":'
                        + row_json.decode() + "}")
        payload = payload_text.encode()
        log_latency, ok_body = _ENDPOINT_LOG_STYLE[url]
        dates, hms, epoch0 = self._dates, self._hms, self.epoch0
        t = tc + _ri(rng, 200, 3000)
        # one-off signature glitch not caused by an incident (retry then goes through)
        glitch = None
        if rng.random() < 0.0004:
            glitch = ("pretty", "base64", "timestamp")[int(rng.random() * 3)]
        prev_err = None
        for attempt in range(1, 6):
            signer, refused = self._signer(url, t)
            mac = signer.digest(payload)
            signature = "sha256=" + mac.hex()
            sec = t // 1000
            ts = epoch0 + sec
            body_text = payload_text
            if refused:
                status, error, latency = 401, "invalid_signature", _ri(rng, 15, 150)
                resp = '{"error":"Invalid Signature"}'
            elif glitch is not None and attempt == 1:
                status, error, latency = 401, "invalid_signature", _ri(rng, 15, 150)
                resp = '{"error":"Invalid Signature"}'
                if glitch == "pretty":
                    body_text = orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2).decode()
                elif glitch == "base64":
                    signature = "sha256=" + base64.b64encode(mac).decode()
                else:
                    ts += 600 if rng.random() < 0.5 else -600
            elif attempt == 1 and rng.random() >= 0.03:  # the usual case: delivered first time
                status = 200 if rng.random() < 0.97 else 202
                error = None
                latency = int(min(9000.0, math.exp(log_latency + 0.5 * rng.gauss(0.0, 1.0)))) + 5
                resp = ok_body
            else:
                status, error, latency, resp = self._delivery_outcome(attempt, prev_err, log_latency, ok_body)
            self.n_delivery += 1
            ts_s = str(ts)
            rec = {
                "id": f"dlv_{_mix80(self.n_delivery, self.k_dlv):020x}", "event_id": event_id,
                "transaction_id": txn_id, "event_type": event_type, "url": url, "attempt": attempt,
                "sent_at": dates[sec // 86400] + hms[sec % 86400], "status_code": status,
                "latency_ms": latency, "error": error,
                "signature": signature, "signature_timestamp": ts_s,
                "headers": {"Content-Type": "application/json", "X-Signature": signature, "X-Timestamp": ts_s},
                "payload": body_text, "response_body": resp,
            }
            self.out_dl.append((t, orjson.dumps(rec) + b"\n"))
            if error is None or attempt == 5:
                return
            prev_err = error
            backoff = (60_000, 300_000, 1_800_000, 7_200_000)[attempt - 1]
            t = t + latency + int(backoff * (0.9 + 0.2 * rng.random()))

    def _delivery_outcome(self, attempt: int, prev_err: str | None, log_latency: float, ok_body: str):
        rng = self.rng
        # attempt 1 only comes here when it failed (3%, drawn by the caller): r < fail_p then
        fail_p = 0.03 if attempt == 1 else 0.25
        r = rng.random() * (fail_p if attempt == 1 else 1.0)
        if r >= fail_p:
            latency = int(min(9000.0, _lognorm(rng, log_latency, 0.5))) + 5
            return (200 if rng.random() < 0.97 else 202), None, latency, ok_body
        # a failure: on a retry it is mostly the same trouble again
        if prev_err is not None and prev_err != "invalid_signature" and rng.random() < 0.7:
            kind = prev_err
        else:
            x = r / fail_p
            if x < 0.40:
                kind = "timeout"
            elif x < 0.82:
                kind = "http_error"
            else:
                kind = "connection_error" if x < 0.96 else "tls_error"
        if kind == "timeout":
            return None, "timeout", (10000, 15000, 30000)[int(rng.random() * 3)] + _ri(rng, 0, 40), None
        if kind == "http_error":
            code = (500, 502, 503, 504, 500, 502)[int(rng.random() * 6)]
            body = {
                500: '{"error":"Internal Server Error"}',
                502: "<html><head><title>502 Bad Gateway</title></head><body>",
                503: "Service Unavailable",
                504: "<html><head><title>504 Gateway Time-out</title></head>",
            }[code]
            return code, "http_error", _ri(rng, 30, 2500), body
        if kind == "connection_error":
            return None, "connection_error", _ri(rng, 1, 3000), None
        return None, "tls_error", _ri(rng, 40, 400), None


def simulate(out_dir: Path, days: int, seed: int, per_day: int = 2000,
             start: datetime.date = DEFAULT_START, gzip: bool = False,
             until: datetime.datetime | None = None, outage_at_until: bool = False) -> dict:
    """Write simulated gateway logs for ``days`` days into ``out_dir`` and return a summary.

    Same arguments give byte-identical files. Returns
    ``{"transactions", "transaction_rows", "callbacks", "deliveries", "incidents", "files"}``.
    ``until`` (aware) ends the logs at that moment, as a live gateway's would end now:
    rows, callbacks and deliveries after it are left out (a payment requested just
    before it may stay pending). ``transactions`` then counts the requests of every
    block of hours generated, the last one's later requests included.
    ``outage_at_until`` adds a 9999 outage under way at ``until`` (see add_outage_at).
    """
    if until is not None and until.tzinfo is None:
        raise ValueError(f"until must be an aware datetime, got {until!r}")
    if outage_at_until and until is None:
        raise ValueError("outage_at_until needs until")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be an integer >= 1, got {days!r}")
    if isinstance(per_day, bool) or not isinstance(per_day, int) or per_day < 1:
        raise ValueError(f"per_day must be an integer >= 1, got {per_day!r}")
    if not isinstance(start, datetime.date) or isinstance(start, datetime.datetime):
        raise ValueError(f"start must be a datetime.date, got {start!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = _Simulator(days, int(seed), per_day, start)
    until_ms = None if until is None else int((until.timestamp() - sim.epoch0) * 1000)  # the simulator's clock
    if outage_at_until:
        sim.add_outage_at(until_ms)
    ext = ".gz" if gzip else ""
    names = [TRANSACTIONS_FILE + ext, CALLBACKS_FILE + ext, DELIVERIES_FILE + ext, SECRETS_FILE, INCIDENTS_FILE]
    writer = _Writer()
    sinks = []
    n_txn = 0
    # nothing generated here forms reference cycles: the cyclic GC would only keep
    # rescanning the buffers (10-20% of the run time), so it is paused meanwhile
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name in names[:3]:
            sinks.append(_Sink(out / name, gzip, writer))
        for unit in range(sim.n_units):
            if until_ms is not None and sim.unit_end(unit - 1) > until_ms:
                break  # this block starts after the end
            tx, cb, dl, n = sim.gen_unit(unit)
            if until_ms is not None:
                tx, cb, dl = ([item for item in log if item[0] <= until_ms] for log in (tx, cb, dl))
            n_txn += n
            boundary = sim.unit_end(unit)
            sinks[0].add(tx, boundary)
            sinks[1].add(cb, boundary)
            sinks[2].add(dl, boundary)
        for sink in sinks:
            sink.add([], None)
    finally:
        if gc_was_enabled:
            gc.enable()
        try:
            writer.close()
        finally:
            for sink in sinks:
                sink.close()
    (out / SECRETS_FILE).write_bytes(orjson.dumps(sim.secrets_doc(), option=orjson.OPT_INDENT_2) + b"\n")
    incidents = sim.incidents_doc()
    (out / INCIDENTS_FILE).write_bytes(orjson.dumps(incidents, option=orjson.OPT_INDENT_2) + b"\n")
    return {
        "transactions": n_txn,
        "transaction_rows": sinks[0].count,
        "callbacks": sinks[1].count,
        "deliveries": sinks[2].count,
        "incidents": len(incidents),
        "files": names,
    }

"""HTTP calls to the gateway: one keep-alive connection, timeouts, and retries.

429 waits as long as `Retry-After` says; 5xx answers, timeouts and connection errors
retry with exponential backoff and full jitter; both within a budget of wall time
and a number of tries. Any other answer that is not 2xx ends the run at once with
the gateway's code, its meaning and what to fix, from the catalogue. The API key and
link id travel only as headers and never appear in a message.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Callable

import httpx
import orjson

from mpesa_ops import catalogue
from mpesa_ops.ingest.pull.sources import GatewaySettings

BACKOFF_BASE = 0.5  # seconds before the second try; doubles each try, capped
BACKOFF_CAP = 30.0

# Where each credential comes from, for the errors that mean one is wrong.
WHERE_TO_FIX = {
    "MISSING_HEADERS": "the pull sends them under the names set by apikey_header and linkid_header in [gateway] "
                       "(default apikey, linkid)",
    "INVALID_API_KEY": "the key comes from --api-key, MPESA_OPS_API_KEY or api_key in [gateway] of "
                       ".streamlit/secrets.toml",
    "INVALID_LINK_ID": "the link id comes from --link-id, MPESA_OPS_LINK_ID or link_id in [gateway] of "
                       ".streamlit/secrets.toml",
}


class GatewayError(Exception):
    """The gateway cannot be read now; the message is one line and holds no secret."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code, self.status = code, status


class Stopped(Exception):
    """A stop was asked for while waiting to try again."""


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def error_code_of(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) of a gateway error body `{"error": {"code", "message"}}` (or a flat variant)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(value, dict):
        return None, None
    err = value.get("error", value)
    if isinstance(err, str):
        return err, value.get("message") if isinstance(value.get("message"), str) else None
    if isinstance(err, dict):
        code, message = err.get("code"), err.get("message")
        return (code if isinstance(code, str) else None), (message if isinstance(message, str) else None)
    return None, None


def explain(code: str | None, status: int, message: str | None, request: str, secrets: tuple[str, ...]) -> str:
    """One line: the gateway's code, what it means and what to do (the catalogue's
    words), or the HTTP status and the gateway's own message when the code is unknown."""
    info = catalogue.lookup(code) if code else None
    if info is not None and info.known and info.kind == "gateway":
        meaning = info.guide.meaning.split(": ")[0]  # the seed's own words
        fix = info.guide.check_first[0].rstrip(".")
        line = f"{info.code}: {meaning} (HTTP {status}); {fix[0].lower()}{fix[1:]}"
        where = WHERE_TO_FIX.get(info.code)
        return f"{line}; {where}" if where else line
    said = f": {redact(message, secrets)[:200]}" if message else ""
    named = f" {code}" if code else ""
    return f"the gateway answered HTTP {status}{named} to {request}{said}"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def sleep_unless_stopped(seconds: float) -> bool:
    """The default wait: sleep; never asked to stop."""
    time.sleep(seconds)
    return False


class GatewayClient:
    """GETs against the gateway's base URL; `get` returns the body of a 2xx answer."""

    def __init__(self, settings: GatewaySettings, *, wait: Callable[[float], bool] = sleep_unless_stopped,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._wait, self._rng, self._clock = wait, rng or random.Random(), clock
        self._secrets = settings.secrets()
        timeout = settings.timeout_seconds
        self._http = httpx.Client(
            base_url=settings.base_url,
            headers={settings.apikey_header: settings.api_key, settings.linkid_header: settings.link_id,
                     "accept": "application/json", "user-agent": "mpesa-ops-pull"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
        )
        self.retries = 0  # tries that had to be repeated, over the client's life

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GatewayClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, path: str, params: dict, request: str) -> bytes:
        """The body of a 2xx answer to GET path?params; `request` names the call in messages."""
        s = self.settings
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            backoff = self._rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
            try:
                response = self._http.get(path, params=params)
            except httpx.TimeoutException:
                problem, delay = f"no answer within {s.timeout_seconds:g} s", backoff
            except httpx.TransportError as exc:
                problem, delay = f"cannot reach the gateway at {s.base_url} ({type(exc).__name__})", backoff
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response.content
                code, message = error_code_of(response.content)
                if status == 429:
                    asked = retry_after_seconds(response.headers.get("retry-after"))
                    problem = "rate limited (HTTP 429)" + (f", asked to wait {asked:g} s" if asked is not None else "")
                    delay = backoff if asked is None else asked
                elif status >= 500:
                    problem, delay = explain(code, status, message, request, self._secrets), backoff
                else:
                    raise GatewayError(explain(code, status, message, request, self._secrets), code, status)
            spent = self._clock() - started
            if attempt == s.max_attempts or spent + delay > s.retry_budget_seconds:
                raise GatewayError(f"{problem}; gave up on {request} after {attempt} "
                                   f"{'try' if attempt == 1 else 'tries'} in {spent:.1f} s (retry budget "
                                   f"{s.retry_budget_seconds:g} s, at most {s.max_attempts} tries)")
            self.retries += 1
            if self._wait(delay):
                raise Stopped()

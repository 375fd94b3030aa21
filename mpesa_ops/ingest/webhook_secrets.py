"""Per-endpoint webhook signature settings: scheme, secrets, rotation time, tolerance.

Sources, first match wins for an endpoint URL:

1. a JSON file: the ``secrets_file`` argument, else ``MPESA_OPS_WEBHOOK_SECRETS_FILE``,
   else ``[webhooks] secrets_file`` in secrets.toml. Its shape is what ``simulate``
   writes to ``webhook-secrets.json``::

       {"endpoints": {"<url>": {"current": "...", "previous": "..." | [...] | null,
                                "rotated_at": "<ISO 8601 with offset>" | null,
                                "scheme": "gateway", "tolerance": 300}}}

   (``scheme`` and ``tolerance`` are optional);
2. secrets.toml tables ``[webhooks.endpoints.<name>]`` with ``url``, ``scheme``,
   ``secret``, ``previous_secret`` (a string or a list), ``rotated_at``, ``tolerance``;
3. the default for every other endpoint: ``MPESA_OPS_WEBHOOK_SECRET`` /
   ``MPESA_OPS_WEBHOOK_PREVIOUS_SECRET`` (else ``secret`` / ``previous_secret`` of
   ``[webhooks]`` in secrets.toml), with ``scheme``, ``tolerance`` and ``rotated_at``
   of ``[webhooks]``.

``rotated_at`` is when the current secret replaced the previous one(s). A delivery sent
before it was signed, rightly, with a previous secret, so those count as current then;
after it a match with a previous secret is the verdict ``previous_secret``.

Secrets never appear in reprs, messages or exceptions: errors name the file, the
endpoint and the field. :meth:`WebhookConfig.fingerprint` tells configurations apart
without revealing them (a slow salted hash, so a weak secret cannot be guessed back).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from mpesa_ops import config
from mpesa_ops.config import ConfigError
from mpesa_ops.signatures import DEFAULT_TOLERANCE, SCHEMES, InputError, sign

SECRETS_FILE_ENV = "MPESA_OPS_WEBHOOK_SECRETS_FILE"
SECRET_ENV = "MPESA_OPS_WEBHOOK_SECRET"
PREVIOUS_SECRET_ENV = "MPESA_OPS_WEBHOOK_PREVIOUS_SECRET"
TABLE = "webhooks"

# Part of the fingerprint: change it when the diagnosis changes, so stored verdicts are redone.
_FINGERPRINT_VERSION = "webhook-verdicts-1"
_FINGERPRINT_SALT = b"mpesa-ops webhook secrets fingerprint"
_FINGERPRINT_ROUNDS = 50_000


@dataclass(frozen=True)
class EndpointSecrets:
    """How one endpoint's signatures are checked. ``secrets``: current first."""

    url: str | None  # None: the default for every endpoint not configured on its own
    scheme: str
    secrets: tuple[str, ...] = field(repr=False)
    rotated_at: datetime | None
    tolerance: int
    source: str  # where it was configured, for messages

    def previous_from(self, sent_at: datetime | None) -> int:
        """How many of ``secrets`` counted as current at ``sent_at`` (see the module doc)."""
        if self.rotated_at is not None and sent_at is not None and sent_at < self.rotated_at:
            return len(self.secrets)
        return 1

    def canonical(self) -> list:
        rotated = self.rotated_at.astimezone(timezone.utc).isoformat() if self.rotated_at else None
        return [self.url, self.scheme, list(self.secrets), rotated, self.tolerance]


@dataclass(frozen=True)
class WebhookConfig:
    endpoints: dict[str, EndpointSecrets] = field(default_factory=dict)  # by loosely compared URL
    default: EndpointSecrets | None = None

    @property
    def empty(self) -> bool:
        return not self.endpoints and self.default is None

    def for_url(self, url: str | None) -> EndpointSecrets | None:
        """The endpoint's own settings, else the default, else None."""
        if url:
            found = self.endpoints.get(_url_key(url))
            if found is not None:
                return found
        return self.default

    def sources(self) -> list[str]:
        """Where the settings came from (no secrets), for messages."""
        items = list(self.endpoints.values()) + ([self.default] if self.default else [])
        return sorted({e.source for e in items})

    def fingerprint(self) -> str | None:
        """32 hex characters that change whenever anything that decides a verdict changes;
        None when nothing is configured."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str | None:
        if self.empty:
            return None
        doc = {
            "version": _FINGERPRINT_VERSION,
            "endpoints": sorted(e.canonical() for e in self.endpoints.values()),
            "default": self.default.canonical() if self.default else None,
        }
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        key = hashlib.pbkdf2_hmac("sha256", canonical.encode("utf-8", "surrogateescape"), _FINGERPRINT_SALT,
                                  _FINGERPRINT_ROUNDS)
        return key.hex()[:32]

    def __repr__(self) -> str:
        return f"WebhookConfig(endpoints={sorted(self.endpoints)!r}, default={self.default is not None})"


def _url_key(url: str) -> str:
    """A URL compared loosely: blanks, case of scheme and host, and a trailing slash ignored."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rstrip("/")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")


# --------------------------------------------------------------------------- building


def _secret_list(value: Any, where: str, name: str) -> list[str]:
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else [value]
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ConfigError(f"{where}: {name}{f' #{i + 1}' if len(values) > 1 else ''} must be a string")
        out.append(v)
    return out


def _rotated_at(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{where}: rotated_at {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise ConfigError(f"{where}: rotated_at must be an ISO 8601 time with a UTC offset")
    if value.tzinfo is None:
        raise ConfigError(f"{where}: rotated_at has no UTC offset; write it like 2026-10-01T12:24:00+03:00")
    return value.astimezone(timezone.utc)


def _endpoint(url: str | None, scheme: Any, current: Any, previous: Any, rotated_at: Any, tolerance: Any,
              where: str) -> EndpointSecrets:
    scheme = scheme or "gateway"
    if scheme not in SCHEMES:
        raise ConfigError(f"{where}: scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    if tolerance is None:
        tolerance = DEFAULT_TOLERANCE
    if isinstance(tolerance, str) and tolerance.strip().isdigit():
        tolerance = int(tolerance)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise ConfigError(f"{where}: tolerance must be a whole number of seconds >= 0")
    currents = _secret_list(current, where, "the current secret")
    if len(currents) != 1:
        raise ConfigError(f"{where}: give exactly one current secret")
    secrets = currents + _secret_list(previous, where, "previous secret")
    for i, secret in enumerate(secrets):
        what = "the current secret" if i == 0 else f"previous secret #{i}"
        try:  # the same checks the verification makes: empty, not base64 for "standard"...
            sign(scheme, b"", secret, timestamp=0, msg_id="check")
        except InputError as exc:
            raise ConfigError(f"{where}: {what}: {exc}") from None
    return EndpointSecrets(url, scheme, tuple(secrets), _rotated_at(rotated_at, where), tolerance, where)


def _from_json_file(path: Path) -> dict[str, EndpointSecrets]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path}: webhook secrets file not found (named by the argument, "
                          f"{SECRETS_FILE_ENV} or [{TABLE}] secrets_file)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the webhook secrets file: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ConfigError(f"{path}: not a JSON document ({type(exc).__name__} at position "
                          f"{getattr(exc, 'pos', getattr(exc, 'start', '?'))})") from None
    endpoints = doc.get("endpoints") if isinstance(doc, dict) else None
    if not isinstance(endpoints, dict):
        raise ConfigError(f'{path}: expected {{"endpoints": {{"<url>": {{"current": ..., "previous": ...}}}}}}')
    out = {}
    for url, entry in endpoints.items():
        where = f"{path} endpoint {url}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected an object with current, previous and rotated_at")
        out[_url_key(url)] = _endpoint(url, entry.get("scheme"), entry.get("current"), entry.get("previous"),
                                       entry.get("rotated_at"), entry.get("tolerance"), where)
    return out


def _from_toml(secrets: dict, where_file: str) -> dict[str, EndpointSecrets]:
    out = {}
    for name, entry in config.section(f"{TABLE}.endpoints", secrets).items():
        where = f"{where_file} [{TABLE}.endpoints.{name}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table with url, scheme, secret and previous_secret")
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{where}: url is missing; give the endpoint URL the deliveries are sent to")
        out[_url_key(url)] = _endpoint(url, entry.get("scheme"), entry.get("secret"), entry.get("previous_secret"),
                                       entry.get("rotated_at"), entry.get("tolerance"), where)
    return out


def _default(secrets: dict, where_file: str) -> EndpointSecrets | None:
    table = config.section(TABLE, secrets)
    if os.environ.get(SECRET_ENV):
        current, previous, where = os.environ[SECRET_ENV], os.environ.get(PREVIOUS_SECRET_ENV), SECRET_ENV
    else:
        current, previous, where = table.get("secret"), table.get("previous_secret"), f"{where_file} [{TABLE}]"
        if os.environ.get(PREVIOUS_SECRET_ENV):
            raise ConfigError(f"{PREVIOUS_SECRET_ENV} is set but {SECRET_ENV} is not; set the current secret too")
    if not current:
        return None
    return _endpoint(None, table.get("scheme"), current, previous, table.get("rotated_at"), table.get("tolerance"),
                     where)


def load_config(secrets_file: str | Path | None = None, *, secrets: dict | None = None) -> WebhookConfig:
    """The webhook configuration from the sources in the module doc.

    ``secrets`` is the parsed secrets.toml (default: read it). Raises ConfigError, one
    line naming the file and the place, never a secret."""
    toml = config.load_secrets() if secrets is None else secrets
    toml_name = str(config.secrets_path()) if secrets is None else "secrets.toml"
    endpoints = _from_toml(toml, toml_name)
    path = config.setting(str(secrets_file) if secrets_file else None, SECRETS_FILE_ENV,
                          f"{TABLE}.secrets_file", secrets=toml)
    if path:
        endpoints.update(_from_json_file(Path(path).expanduser()))
    return WebhookConfig(endpoints, _default(toml, toml_name))

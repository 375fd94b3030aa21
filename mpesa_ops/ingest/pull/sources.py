"""What to pull and how: the gateway's address and credentials, and each stream's
path, query parameter names, page size and field names, all settings.

Precedence for every value: the flag, the environment, `.streamlit/secrets.toml`
(`[gateway]`, then `[gateway.streams.NAME]` for a stream's own values), the default.
A gateway whose API differs from section D needs new settings, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from mpesa_ops.config import load_secrets, section, setting
from mpesa_ops.ingest.normalise import Delivery, Txn, normalise_delivery, normalise_txn


class SettingsError(ValueError):
    """A pull setting is missing or unusable; the message names it and how to give it."""


# The record formats a stream may carry: the normaliser and the time that orders its records.
FORMATS: dict[str, tuple[Callable[[dict], Txn | Delivery], str]] = {
    "transactions": (normalise_txn, "updated_at"),
    "deliveries": (normalise_delivery, "sent_at"),
}


@dataclass(frozen=True)
class Stream:
    """One paged log of the gateway's API."""

    name: str
    format: str  # a key of FORMATS
    path: str
    page_size: int
    since_param: str = "updated_since"
    cursor_param: str = "cursor"
    limit_param: str = "limit"
    data_key: str = "data"
    next_key: str = "next_cursor"
    primary_key: str = "id"
    updated_field: str = "updated_at"


@dataclass(frozen=True)
class GatewaySettings:
    base_url: str
    api_key: str = field(repr=False)
    link_id: str = field(repr=False)
    streams: tuple[Stream, ...]
    apikey_header: str = "apikey"
    linkid_header: str = "linkid"
    lag_seconds: float = 600.0
    timeout_seconds: float = 30.0
    retry_budget_seconds: float = 120.0
    max_attempts: int = 8

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message."""
        return tuple(s for s in (self.api_key, self.link_id) if s)


DEFAULT_STREAMS = {
    "transactions": {"format": "transactions", "path": "/v1/transactions", "updated_field": "updated_at"},
    "deliveries": {"format": "deliveries", "path": "/v1/webhooks/deliveries", "updated_field": "sent_at"},
}
STREAM_KEYS = ("path", "since_param", "cursor_param", "limit_param", "data_key", "next_key", "primary_key",
               "updated_field")
DEFAULT_PAGE_SIZE = 2000

# (name in the secrets file, flag, environment variable)
REQUIRED = (("base_url", "--base-url", "MPESA_OPS_BASE_URL"),
            ("api_key", "--api-key", "MPESA_OPS_API_KEY"),
            ("link_id", "--link-id", "MPESA_OPS_LINK_ID"))


def _number(value: Any, name: str, where: str, kind=float, minimum: float = 0):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where} {name}: expected a number, got {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{where} {name}: must be at least {minimum}, got {number}")
    return number


def load_settings(*, base_url: str | None = None, api_key: str | None = None, link_id: str | None = None,
                  page_size: int | None = None, lag_seconds: float | None = None,
                  secrets: dict | None = None) -> GatewaySettings:
    """The pull's settings from flags (the arguments), environment and secrets file."""
    secrets = load_secrets() if secrets is None else secrets
    given = {"base_url": base_url, "api_key": api_key, "link_id": link_id}
    values = {}
    for name, flag, env in REQUIRED:
        value = setting(given[name], env, f"gateway.{name}", None, secrets)
        if value is None or not str(value).strip():
            raise SettingsError(f"no gateway {name.replace('_', ' ')}: give {flag}, set {env}, or set {name} "
                                "in the [gateway] table of .streamlit/secrets.toml")
        values[name] = str(value).strip()
    if not values["base_url"].startswith(("http://", "https://")):
        raise SettingsError(f"gateway base url {values['base_url']!r}: expected an http:// or https:// address")
    gateway = section("gateway", secrets)
    where = "[gateway]"

    def number(flag, env, key, default, kind=float, minimum=0):
        return _number(setting(flag, env, f"gateway.{key}", default, secrets), key, where, kind, minimum)

    forced = setting(page_size, "MPESA_OPS_PULL_PAGE_SIZE")  # a flag or the environment beats a stream's own
    forced = None if forced is None else _number(forced, "page size", "--page-size", int, 1)
    size = forced or number(None, None, "page_size", DEFAULT_PAGE_SIZE, int, 1)
    streams = []
    configured = gateway.get("streams") if isinstance(gateway.get("streams"), dict) else {}
    for name in {**DEFAULT_STREAMS, **configured}:
        table = configured.get(name) if isinstance(configured.get(name), dict) else {}
        if table.get("enabled", True) is False:
            continue
        streams.append(_stream(name, {**DEFAULT_STREAMS.get(name, {}), **table}, forced, size))
    return GatewaySettings(
        base_url=values["base_url"].rstrip("/"), api_key=values["api_key"], link_id=values["link_id"],
        streams=tuple(streams),
        apikey_header=str(gateway.get("apikey_header") or "apikey"),
        linkid_header=str(gateway.get("linkid_header") or "linkid"),
        lag_seconds=number(lag_seconds, "MPESA_OPS_PULL_LAG", "lag_seconds", 600.0),
        timeout_seconds=number(None, "MPESA_OPS_PULL_TIMEOUT", "timeout_seconds", 30.0, float, 0.01),
        retry_budget_seconds=number(None, "MPESA_OPS_PULL_RETRY_BUDGET", "retry_budget_seconds", 120.0),
        max_attempts=number(None, None, "max_attempts", 8, int, 1),
    )


def _stream(name: str, table: dict, forced_size: int | None, default_size: int) -> Stream:
    where = f"[gateway.streams.{name}]"
    fmt = table.get("format")
    if fmt not in FORMATS:
        raise SettingsError(f"{where} format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if not table.get("path"):
        raise SettingsError(f"{where} path: missing (the API path of this stream, e.g. /v1/transactions)")
    names = {k: str(table[k]) for k in STREAM_KEYS if table.get(k)}
    size = forced_size or (_number(table["page_size"], "page_size", where, int, 1) if "page_size" in table
                           else default_size)
    return Stream(name=name, format=fmt, page_size=size, **names)

"""What every page shares: the store, the viewer's role, the sidebar filters and the
phone masking. Filters live in session state (so they survive a page change) and are
mirrored in the URL's query parameters (so a link shares the view)."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy
import streamlit as st

from mpesa_ops.config import ConfigError, load_secrets, section, setting
from mpesa_ops.dashboard import nav, redact

ROLE_ENV = "MPESA_OPS_ROLE"
DEFAULT_TZ = "Africa/Nairobi"
PHONE_ROLES = frozenset({"support", "admin"})  # finance and engineers see 2547•••••123

# preset key -> (label, length); "custom" takes dates from the date picker
RANGES = {
    "1h": ("Last hour", timedelta(hours=1)),
    "6h": ("Last 6 hours", timedelta(hours=6)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "2d": ("Last 2 days", timedelta(days=2)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
    "custom": ("Dates…", None),
}
DEFAULT_RANGE = "24h"
ALL_SHORTCODES = "All shortcodes"


@dataclass(frozen=True)
class Filters:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive
    tz: str
    shortcode: str | None  # None = all shortcodes

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    def previous(self) -> "Filters":
        """The period of the same length just before this one."""
        span = self.end - self.start
        return Filters(self.start - span, self.start, self.tz, self.shortcode)


# --- the store ---

@st.cache_resource(show_spinner=False)
def _engine(url: str) -> sqlalchemy.Engine:
    from mpesa_ops.ingest.db import open_store

    return open_store(url)


def engine() -> sqlalchemy.Engine:
    """The store named by MPESA_OPS_DB (else the default SQLite file), opened once per server."""
    from mpesa_ops.ingest.db import StoreError, resolve_url

    try:
        return _engine(resolve_url(None))
    except StoreError as exc:
        st.error(str(exc))
        st.stop()


# --- who is looking ---

def _secrets() -> dict:
    try:
        return load_secrets()
    except ConfigError as exc:
        st.error(f"{exc}. Fix the file and reload the page.")
        st.stop()


def login_configured() -> bool:
    """True when secrets.toml has an [auth] table: then viewers log in with st.login."""
    return bool(section("auth", _secrets()))


def _providers(auth: dict) -> list[str | None]:
    """[auth] with its own client_id is one provider (st.login()); [auth.NAME] tables are named ones."""
    named = [name for name, value in auth.items() if isinstance(value, dict) and "client_id" in value]
    return ([None] if "client_id" in auth else []) + named


def _role_of_user(secrets: dict) -> str | None:
    """[roles] maps an e-mail address or a group name to a role; e-mail wins over groups."""
    mapping = {str(k).lower(): v for k, v in section("roles", secrets).items()}
    email = str(st.user.get("email") or "").lower()
    if email in mapping:
        return mapping[email]
    groups = st.user.get("groups") or []
    for group in [groups] if isinstance(groups, str) else groups:
        if str(group).lower() in mapping:
            return mapping[str(group).lower()]
    return setting(None, None, "dashboard.default_role", None, secrets=secrets)


def _checked(value, where: str) -> str:
    value = str(value).strip().lower()
    if value not in nav.ROLES:
        st.error(f"{where}: role {value!r} is not one of {', '.join(nav.ROLES)}. Set a valid role and reload.")
        st.stop()
    return value


def role() -> str:
    """The viewer's role. Local mode (no [auth]): MPESA_OPS_ROLE, else secrets
    [dashboard] role, else admin. With [auth]: log in, then [roles] decides; a viewer
    without a role is told so and the page stops."""
    secrets = _secrets()
    if not section("auth", secrets):
        return _checked(setting(None, ROLE_ENV, "dashboard.role", "admin", secrets=secrets),
                        f"{ROLE_ENV} or [dashboard] role")
    if not st.user.is_logged_in:
        st.title("M-Pesa operations")
        st.write("Log in to see the dashboard.")
        for provider in _providers(section("auth", secrets)):
            label = "Log in" if provider is None else f"Log in with {provider}"
            st.button(label, on_click=st.login, args=() if provider is None else (provider,))
        st.stop()
    found = _role_of_user(secrets)
    if not found:
        st.error(f"Your account ({st.user.get('email') or 'no e-mail'}) has no role in this dashboard. "
                 "Ask an admin to add your e-mail or group under [roles] in .streamlit/secrets.toml.")
        st.button("Log out", on_click=st.logout)
        st.stop()
    return _checked(found, "[roles] in secrets.toml")


def viewer_name() -> str:
    """Who acts (alert acknowledgements): the logged-in e-mail, or 'local <role>'."""
    if login_configured() and st.user.is_logged_in:
        return str(st.user.get("email") or st.user.get("name") or "unknown user")
    return f"local {role()}"


def viewer_banner(current_role: str) -> None:
    """Who is looking, at the top of the sidebar: a warning in local mode (no login)."""
    if login_configured():
        st.sidebar.caption(f"Signed in as {st.user.get('email') or st.user.get('name')} · {current_role}")
        st.sidebar.button("Log out", on_click=st.logout)
    else:
        st.sidebar.warning(f"Local mode: no login configured, everyone is **{current_role}**. "
                           "Add [auth] to .streamlit/secrets.toml to require a login.",
                           icon=":material/lock_open:")


def may_see_phone() -> bool:
    return role() in PHONE_ROLES


def mask_phone(msisdn: str | None) -> str:
    """2547•••••123: the first 4 and last 3 digits stay, the rest become dots."""
    return redact.mask_phone(msisdn)


def shown_phone(msisdn: str | None) -> str:
    """The number as this viewer may see it."""
    return (msisdn or "") if may_see_phone() else mask_phone(msisdn)


def shown_text(text: str | None, *phones: str | None, hide_phones: bool | None = None) -> str:
    """Any text a page shows or exports (an id, a payload, headers, a description):
    secrets' values (link_id, api keys, tokens, …) hidden for every role; for a role that
    may not see phones, the given numbers masked in every shape (254…, 0…, the 9 digits
    inside a CheckoutRequestID) and any other 2547/2541 number too. hide_phones=None asks
    the viewer's role (pass it when calling once per row)."""
    hide = (not may_see_phone()) if hide_phones is None else hide_phones
    return redact.redact_text(text, phones=phones, hide_phones=hide)


def shown_json(value, *phones: str | None):
    """A JSON value (headers, a payload) as shown_text shows text, keeping its keys."""
    return redact.redact_json(value, phones=phones, hide_phones=not may_see_phone())


# --- filters ---
#
# The URL carries range (a RANGES key), from/to (dates for "custom", UTC ISO times for
# "window", the exact window a chart or an alert drills into), tz and shortcode. The
# session keeps the same values, so a page change (which clears the URL) keeps the view;
# a URL that differs from what this session last wrote (a shared link, a drill-down)
# wins over the session.

FILTER_PARAMS = ("range", "from", "to", "tz", "shortcode")
_STATE = "_mpesa_filters"  # the current values as URL strings
_WRITTEN = "_mpesa_filters_written"  # what this session last put in the URL


def _url_filters() -> dict[str, str]:
    return {name: st.query_params[name] for name in FILTER_PARAMS if st.query_params.get(name)}


def _clean(raw: dict[str, str]) -> dict[str, str]:
    """Valid filter values from URL strings; what cannot be read falls back to the default."""
    values = {"range": raw.get("range") if raw.get("range") in (*RANGES, "window") else DEFAULT_RANGE,
              "tz": raw.get("tz") if raw.get("tz") in _zones() else DEFAULT_TZ}
    if raw.get("shortcode"):
        values["shortcode"] = raw["shortcode"]
    if values["range"] in ("custom", "window"):
        try:
            parse = date.fromisoformat if values["range"] == "custom" else _utc
            first, last = parse(raw.get("from", "")), parse(raw.get("to", ""))
            values["from"], values["to"] = raw["from"], raw["to"]
            if first > last:
                values["from"], values["to"] = raw["to"], raw["from"]
        except (TypeError, ValueError):
            values["range"] = DEFAULT_RANGE
    return values


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return value.astimezone(timezone.utc)


def utc_param(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


@st.cache_data(show_spinner=False)
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _current() -> dict[str, str]:
    """The session's filter values, taking the URL's when it changed under us."""
    url = _url_filters()
    if _STATE not in st.session_state or (url and url != st.session_state.get(_WRITTEN)):
        st.session_state[_STATE] = _clean(url)
    return st.session_state[_STATE]


# Widgets are seeded from the values on every run (a page change makes them new widgets)
# and write back through on_change, which runs before the rerun.

def _on_range() -> None:
    values = st.session_state[_STATE]
    if st.session_state["f_range"] != values["range"]:
        values["range"] = st.session_state["f_range"]
        values.pop("from", None), values.pop("to", None)


def _on_dates() -> None:
    dates = st.session_state["f_dates"]
    if isinstance(dates, (tuple, list)) and len(dates) == 2:
        st.session_state[_STATE]["from"], st.session_state[_STATE]["to"] = dates[0].isoformat(), dates[1].isoformat()


def _on_tz() -> None:
    st.session_state[_STATE]["tz"] = st.session_state["f_tz"]


def _on_shortcode() -> None:
    values = st.session_state[_STATE]
    if st.session_state["f_shortcode"] == ALL_SHORTCODES:
        values.pop("shortcode", None)
    else:
        values["shortcode"] = st.session_state["f_shortcode"]


def span_words(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours < 48:
        return f"{hours:g} hour{'s' if hours != 1 else ''}"
    return f"{hours / 24:g} days"


def _window(values: dict[str, str], now: datetime, latest: datetime | None) -> tuple[datetime, datetime, str | None]:
    """UTC start and end of the chosen range, and a note when it was moved to the data."""
    zone = zoneinfo.ZoneInfo(values["tz"])
    if values["range"] == "window":
        return _utc(values["from"]), _utc(values["to"]), None
    if values["range"] == "custom":
        first, last = date.fromisoformat(values["from"]), date.fromisoformat(values["to"])
        start = datetime.combine(first, time(), zone).astimezone(timezone.utc)
        end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(timezone.utc)
        return start, end, None
    span = RANGES[values["range"]][1]
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - span
    if span >= timedelta(days=1):  # these read hour rollups: whole hours that cover the whole span
        start = start.replace(minute=0)
        end = end.replace(minute=0) + (timedelta(hours=1) if end.minute else timedelta())
    if latest is not None and latest < start:  # nothing in the range: show the newest data instead
        end = latest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return end - span, end, (f"Nothing arrived in the {span_words(span)} to now: showing the {span_words(span)} "
                                 f"up to the newest data ({latest.astimezone(zone):%d %b %Y %H:%M}).")
    return start, end, None


def _running_page() -> str | None:
    """The name of the page file this run executes (views/<name>.py), if any."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    info = ctx.pages_manager.get_pages().get(ctx.page_script_hash) if ctx else None
    path = Path(str(info.get("script_path") or "")) if info else None
    return path.stem if path and path.parent.name == "views" else None


def _allow_page() -> None:
    """Stop a page the viewer's role may not see. The router does not register such
    pages, and the page folder is views/, not Streamlit's automatic pages/, so no URL
    reaches one; this guard holds even if a page file is run by itself."""
    name, current = _running_page(), role()
    if name and not nav.may_open(name, current):
        st.error(f"This page is not available to the {current} role.")
        st.stop()


def filters() -> Filters:
    """The sidebar's time range, time zone and shortcode, mirrored in st.query_params.
    Every page calls it first: it also stops a page the viewer's role may not see."""
    from mpesa_ops.dashboard import data

    _allow_page()
    values = _current()
    known_shortcodes, latest = data.shortcodes(), data.latest_bucket()
    side = st.sidebar
    st.session_state["f_range"] = values["range"]
    options = list(RANGES) + (["window"] if values["range"] == "window" else [])
    side.selectbox("Time range", options, key="f_range", on_change=_on_range,
                   format_func=lambda k: RANGES[k][0] if k in RANGES else "Chart window")
    zone = zoneinfo.ZoneInfo(values["tz"])
    if values["range"] == "custom":
        if "from" not in values:
            today = datetime.now(zone).date()
            values["from"], values["to"] = (today - timedelta(days=6)).isoformat(), today.isoformat()
        st.session_state["f_dates"] = (date.fromisoformat(values["from"]), date.fromisoformat(values["to"]))
        side.date_input("Dates", key="f_dates", on_change=_on_dates)
    elif values["range"] == "window":
        first, last = _utc(values["from"]).astimezone(zone), _utc(values["to"]).astimezone(zone)
        side.caption(f"Window {first:%d %b %H:%M} – {last:%d %b %H:%M}")
    st.session_state["f_tz"] = values["tz"]
    side.selectbox("Time zone", _zones(), key="f_tz", on_change=_on_tz)
    codes = [ALL_SHORTCODES] + known_shortcodes
    if values.get("shortcode") and values["shortcode"] not in codes:
        codes.append(values["shortcode"])
    st.session_state["f_shortcode"] = values.get("shortcode") or ALL_SHORTCODES
    side.selectbox("Shortcode", codes, key="f_shortcode", on_change=_on_shortcode)

    start, end, note = _window(values, datetime.now(timezone.utc), latest)
    if note:
        side.caption(note)
    _mirror(values)
    return Filters(start, end, values["tz"], values.get("shortcode"))


def _mirror(values: dict[str, str]) -> None:
    for name in FILTER_PARAMS:
        if name in values:
            if st.query_params.get(name) != values[name]:
                st.query_params[name] = values[name]
        elif name in st.query_params:
            del st.query_params[name]
    st.session_state[_WRITTEN] = dict(values)


def link_params(f: Filters, *, start: datetime | None = None, end: datetime | None = None,
                shortcode: str | None | bool = False, **extra: str) -> dict[str, str]:
    """Query parameters that open another page on this view, or on the window [start, end)
    and the given shortcode (None = all, False = as now), plus extra page parameters."""
    params = dict(st.session_state.get(_STATE) or _clean({}))
    if start is not None and end is not None:
        params.update({"range": "window", "from": utc_param(start), "to": utc_param(end)})
    if shortcode is None:
        params.pop("shortcode", None)
    elif shortcode is not False:
        params["shortcode"] = shortcode
    params.update({k: v for k, v in extra.items() if v not in (None, "")})
    return params


# --- empty store ---

def empty_store_notice() -> bool:
    """When the store holds no payments: say how to load some and return True."""
    from mpesa_ops.dashboard import data
    from mpesa_ops.ingest.db import resolve_url

    if data.has_payments():
        return False
    url = resolve_url(None)
    db = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else "$MPESA_OPS_DB"
    st.info("The store holds no payments yet. Load some, then reload this page.")
    st.markdown("Demo data (3 days of simulated traffic):")
    st.code(f"mpesa-ops simulate --days 3 --seed 1 --out mpesa-ops-demo\n"
            f"mpesa-ops ingest mpesa-ops-demo --db {db}\n"
            f"mpesa-ops detect --db {db}", language="bash")
    st.markdown("Your gateway's logs, from files or from its log API:")
    st.code(f"mpesa-ops ingest PATH_TO_LOGS --db {db}\n"
            f"mpesa-ops pull --db {db} --watch 60", language="bash")
    return True

"""Alerts (everyone): firing first, then recent. Each with its chart (the code's rate
against its baseline, the window marked), the guide for its code beside it, the
shortcodes behind it and a link to its failed payments. Engineers and admins
acknowledge (with a comment) and silence."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mpesa_ops import catalogue
from mpesa_ops.alert_figures import counted_window, figures
from mpesa_ops.dashboard import context, data, nav, ui
from mpesa_ops.formatting import pct

ACTORS = frozenset({"engineer", "admin"})
RECENT = 20  # resolved alerts shown below the open ones
CHARTED = 8  # alerts drawn with a chart; the rest are listed
SILENCE_FOR = {"1 hour": timedelta(hours=1), "4 hours": timedelta(hours=4), "24 hours": timedelta(hours=24),
               "7 days": timedelta(days=7)}
_ORDER = {"firing": 0, "pending": 1, "resolved": 2}


def _end_of(alert: dict) -> datetime:
    """When the alert ended: resolved, or the end of the last bucket that was still anomalous."""
    return alert["ended_at"] or alert["last_seen_at"] + timedelta(minutes=5)


def ordered(alerts: list[dict], f: context.Filters) -> list[dict]:
    """Open alerts (firing, then pending), then the latest resolved ones that overlap the range."""
    open_ = [a for a in alerts if a["status"] != "resolved"]
    done = [a for a in alerts if a["status"] == "resolved" and a["started_at"] < f.end and _end_of(a) >= f.start]
    open_.sort(key=lambda a: (_ORDER.get(a["status"], 3), a["severity"] != "critical", -a["started_at"].timestamp()))
    done.sort(key=lambda a: a["started_at"], reverse=True)
    return open_ + done[:RECENT]


def detector_series(alert: dict) -> pd.DataFrame | None:
    """The series the detector kept (None when it kept none): columns at (UTC, the start
    of each bucket), failures, attempts, baseline."""
    details = alert.get("details") or {}
    if not details.get("series"):
        return None
    df = pd.DataFrame(details["series"], columns=details.get("series_columns")
                      or ["bucket_start", "failures", "attempts", "baseline_rate"])
    return pd.DataFrame({"at": pd.to_datetime(df["bucket_start"], utc=True), "failures": df["failures"],
                         "attempts": df["attempts"], "baseline": df["baseline_rate"]})


def rate_series(alert: dict) -> pd.DataFrame:
    """Columns at (UTC), failures, attempts, baseline: the detector's own series when it
    kept one (webhook codes too), else the code's rate from the minute rollup."""
    series = detector_series(alert)
    if series is not None:
        return series
    df = data.code_rate(alert["code"], alert["started_at"] - timedelta(hours=3), _end_of(alert) + timedelta(hours=1),
                        alert["shortcode"] or None)
    per = df.assign(at=df["bucket"].dt.floor(pd.Timedelta(minutes=5))).groupby("at", as_index=False)[
        ["attempts", "failures"]].sum()
    return per.assign(baseline=alert["baseline_rate"])


def _windows(fig: go.Figure, alert: dict, tz: str) -> None:
    """Shade the alert's span and outline the window its figures were counted in."""
    fig.add_vrect(x0=pd.Timestamp(alert["started_at"]).tz_convert(tz), x1=pd.Timestamp(_end_of(alert)).tz_convert(tz),
                  fillcolor="#cf222e", opacity=0.08, line_width=0, annotation_text="alert window",
                  annotation_position="top left")
    start, end = counted_window(alert)
    fig.add_vrect(x0=pd.Timestamp(start).tz_convert(tz), x1=pd.Timestamp(end).tz_convert(tz), fillcolor="rgba(0,0,0,0)",
                  line=dict(color="#57606a", dash="dash", width=1), annotation_text="counted",
                  annotation_position="bottom left")


def rate_chart(alert: dict, tz: str, key: str) -> None:
    df = rate_series(alert)
    if df.empty:
        st.caption("No payments around this alert's window.")
        return
    times = df["at"].dt.tz_convert(tz)
    rate = df["failures"] / df["attempts"].where(df["attempts"] > 0)
    fig = go.Figure([go.Scatter(x=times, y=rate, mode="lines+markers", name=f"{alert['code']} rate",
                                line=dict(color="#cf222e")),
                     go.Scatter(x=times, y=df["baseline"], mode="lines", name="baseline",
                                line=dict(color="#57606a", dash="dot"))])
    _windows(fig, alert, tz)
    fig.update_layout(height=240, margin=dict(t=10, b=10, l=10, r=10), yaxis_tickformat=".0%",
                      yaxis_title="share failing", legend=dict(orientation="h", y=-0.25))
    st.plotly_chart(fig, key=key)


def volume_series(alert: dict) -> pd.DataFrame:
    """Columns at (UTC, the end of each window) and payments: the payments requested in
    the window_minutes up to each 5-minute bucket of the detector's series, as it counts
    them; empty when the alert kept no series."""
    series = detector_series(alert)
    if series is None:
        return pd.DataFrame(columns=["at", "payments"])
    step = pd.Timedelta(minutes=alert["details"].get("bucket_minutes") or 5)
    per = max(int(pd.Timedelta(minutes=alert["window_minutes"] or 30) / step), 1)
    payments = series["attempts"].astype("float64").rolling(per, min_periods=per).sum()
    out = pd.DataFrame({"at": series["at"] + step, "payments": payments})
    return out.dropna().reset_index(drop=True)


def volume_chart(alert: dict, tz: str, key: str) -> None:
    """Payments per window (as the detector counts them) against the count expected at the peak."""
    df = volume_series(alert)
    if df.empty:
        return
    expected = figures(alert)["expected"]
    minutes = alert["window_minutes"]
    fig = go.Figure([go.Scatter(x=df["at"].dt.tz_convert(tz), y=df["payments"], mode="lines+markers",
                                name=f"payments in the last {minutes} min", line=dict(color="#0969da")),
                     go.Scatter(x=df["at"].dt.tz_convert(tz), y=[expected] * len(df), mode="lines",
                                name="expected at the peak", line=dict(color="#57606a", dash="dot"))])
    _windows(fig, alert, tz)
    fig.update_layout(height=240, margin=dict(t=10, b=10, l=10, r=10), yaxis_title="payments",
                      yaxis_rangemode="tozero", legend=dict(orientation="h", y=-0.25))
    st.plotly_chart(fig, key=key)


def shortcodes(alert: dict) -> None:
    top = alert["top_shortcodes"]
    if top:
        st.caption(f"The {len(top)} shortcode{'s' if len(top) > 1 else ''} with most of the excess failures "
                   "(the others make up the rest of the counts above)")
        st.dataframe(pd.DataFrame(top), hide_index=True)
    elif alert["shortcode"]:
        st.caption(f"Shortcode {alert['shortcode']}")


def actions(alert: dict) -> None:
    from mpesa_ops.ingest.detect.alerts import acknowledge, silence

    aid = alert["id"]
    left, right = st.columns(2)
    with left.form(f"ack_{aid}", clear_on_submit=True):
        comment = st.text_input("Comment", key=f"ack_comment_{aid}", placeholder="Looking into it: …")
        if st.form_submit_button("Acknowledge", icon=":material/check:"):
            acknowledge(context.engine(), aid, by=context.viewer_name(), comment=comment.strip() or None)
            data.clear()
            st.rerun()
    with right.form(f"silence_{aid}", clear_on_submit=True):
        span = st.selectbox("Silence for", list(SILENCE_FOR), key=f"silence_for_{aid}")
        comment = st.text_input("Why", key=f"silence_comment_{aid}")
        if st.form_submit_button("Silence", icon=":material/notifications_off:"):
            silence(context.engine(), aid, until=datetime.now(timezone.utc) + SILENCE_FOR[span],
                    by=context.viewer_name(), comment=comment.strip() or None)
            data.clear()
            st.rerun()


def pending_after() -> int:
    """Minutes after its request a payment counts as stuck (the detection setting)."""
    from mpesa_ops.config import ConfigError
    from mpesa_ops.ingest.detect.settings import DetectSettings, load_settings

    try:
        return load_settings().pending_after_minutes
    except ConfigError:
        return DetectSettings().pending_after_minutes


def _span(start: datetime, end: datetime, tz: str) -> str:
    return f"{ui.when(start, tz)}–{ui.when(end, tz, '%H:%M')}"


def figures_line(alert: dict, tz: str) -> str:
    """The alert's numbers in words, per detector, naming the window they were counted in."""
    fig = figures(alert)
    start, end = fig["counted_from"], fig["counted_to"]
    minutes = alert["window_minutes"]
    if alert["detector"] == "volume":
        share = alert["observed_rate"]
        return (f"{fig['observed']:,} payments in the last {minutes} minutes ({_span(start, end, tz)}) against "
                f"about {fig['expected']:,} expected ({pct(share, 0)} of normal)")
    rates = f"{pct(alert['observed_rate'])} against {pct(alert['baseline_rate'])}"
    if alert["detector"] == "pending":
        return (f"{alert['failures']:,} of {alert['attempts']:,} payments requested {_span(start, end, tz)} "
                f"still pending after {pending_after()} minutes: {rates}")
    unit = "deliveries" if alert["family"] == "webhook" else "payments"
    counts = f"{alert['failures']:,} of {alert['attempts']:,} {unit}"
    if alert["detector"] == "slow_burn":
        return (f"in its peak {minutes // 60} hours ({_span(start, end, tz)}): {counts}, {rates} "
                "the week before")
    return f"at its peak, {counts} in the {minutes} minutes {_span(start, end, tz)}: {rates}"


def state_line(alert: dict, tz: str) -> str:
    parts = [f"{alert['detector']} detector", f"since {ui.when(alert['started_at'], tz)}"]
    if alert["ended_at"]:
        parts.append(f"resolved {ui.when(alert['ended_at'], tz)}")
    parts.append(figures_line(alert, tz))
    if alert["acknowledged_at"]:
        parts.append(f"acknowledged by {alert['acknowledged_by']}"
                     + (f" ({alert['ack_comment']})" if alert["ack_comment"] else ""))
    if alert["silenced_until"] and alert["silenced_until"] > datetime.now(timezone.utc):
        parts.append(f"silenced until {ui.when(alert['silenced_until'], tz)} by {alert['silenced_by']}")
    return " · ".join(parts)


def drill_down(alert: dict, f: context.Filters, role: str) -> None:
    """A link to the payments the alert counted: failed ones (every status for stuck
    payments), failed deliveries, or for a volume drop the Overview around it."""
    start, end = counted_window(alert)
    if alert["detector"] == "volume":
        if nav.may_open("overview", role):
            st.page_link(nav.page_path("overview"), icon=":material/arrow_forward:",
                         label="Traffic around this drop on the Overview",
                         query_params=context.link_params(f, start=start - timedelta(hours=1),
                                                          end=_end_of(alert) + timedelta(hours=1), shortcode=None))
        return
    page_name = "webhooks" if alert["family"] == "webhook" else "failures"
    if not nav.may_open(page_name, role):
        return
    span = _span(start, end, f.tz)
    if page_name == "webhooks":
        label = f"Failed deliveries {span}"
    elif alert["detector"] == "pending":
        label = f"Payments still pending, requested {span}"
    else:
        label = f"Failed payments {span}"
    extra = {"all": "1"} if alert["detector"] == "pending" else {}
    st.page_link(nav.page_path(page_name), icon=":material/arrow_forward:", label=label,
                 query_params=context.link_params(f, start=start, end=end, shortcode=alert["shortcode"] or None,
                                                  code=alert["code"], **extra))


def one(alert: dict, index: int, f: context.Filters, role: str) -> None:
    info = catalogue.lookup(alert["code"])
    # Streamlit's own icons and colours: an emoji needs a font that servers often lack
    icon = {"firing": ":red[:material/notifications_active:]",
            "pending": ":orange[:material/pending:]"}.get(alert["status"], ":gray[:material/check_circle:]")
    where = f" on {alert['shortcode']}" if alert["shortcode"] else " (all shortcodes)"
    with st.container(border=True):
        st.markdown(f"{icon} **{alert['status'].upper()} · {alert['severity']}** · code `{alert['code']}` "
                    f"{info.title}{where}")
        st.caption(state_line(alert, f.tz))
        left, right = st.columns([3, 2])
        with left:
            if index < CHARTED:
                chart = volume_chart if alert["detector"] == "volume" else rate_chart
                chart(alert, f.tz, key=f"al_chart_{alert['id']}")
            shortcodes(alert)
            drill_down(alert, f, role)
        with right:
            ui.guide(alert["code"])
        if role in ACTORS and alert["status"] != "resolved":
            actions(alert)


def earlier_link(earlier: list[dict], tz: str) -> tuple[str, datetime]:
    """The label and start of a link to alerts before an empty range: the window from
    the day the RECENT-th latest began, so the page shows what the label counts."""
    newest = sorted(earlier, key=lambda a: a["started_at"], reverse=True)
    latest, shown = newest[0], newest[:RECENT]
    day = shown[-1]["started_at"].astimezone(zoneinfo.ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    what = "them" if len(shown) == len(newest) else f"the latest {len(shown)}"
    title = catalogue.lookup(latest["code"]).title
    label = (f"{len(newest):,} earlier alert{'s' if len(newest) != 1 else ''}; the latest {latest['code']} ({title}) "
             f"on {ui.when(latest['started_at'], tz)}. Show {what}, from {ui.when(day, tz, '%d %b')}.")
    return label, day


@st.fragment(run_every=30)
def live(f: context.Filters, role: str) -> None:
    stored = data.alerts()
    alerts = ordered(stored, f)
    firing = sum(a["status"] == "firing" for a in alerts)
    st.caption(f"{firing} firing · refreshed {ui.when(datetime.now(timezone.utc), f.tz, '%H:%M:%S')}")
    if not alerts:
        st.success("No alert is open, and none was resolved in this range.")
        earlier = [a for a in stored if a["started_at"] < f.start]
        if earlier:  # say where the last ones are, rather than leave the page looking empty
            label, start = earlier_link(earlier, f.tz)
            st.page_link(nav.page_path("alerts"), icon=":material/history:", label=label,
                         query_params=context.link_params(f, start=start, end=f.end))
        return
    for index, alert in enumerate(alerts):
        one(alert, index, f, role)


def render() -> None:
    role = context.role()
    f = context.filters()
    st.title("Alerts")
    if context.empty_store_notice():
        return
    live(f, role)


if __name__ == "__main__":
    render()

"""Overview (everyone): firing alerts and data freshness (live), the period's payments,
success rate and value against the previous period, failures by family over time,
gateway API errors by HTTP status."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import plotly.express as px
import streamlit as st

from mpesa_ops import catalogue
from mpesa_ops.dashboard import context, data, nav, queries, ui
from mpesa_ops.formatting import pct


@st.fragment(run_every=60)
def live_status(tz: str) -> None:
    """Firing alerts and how fresh the data is; reruns on its own every minute."""
    firing = [a for a in data.alerts() if a["status"] == "firing"]
    if firing:
        worst = sorted(firing, key=lambda a: (a["severity"] != "critical", a["started_at"]))
        for alert in worst[:3]:
            info = catalogue.lookup(alert["code"])
            where = f" on {alert['shortcode']}" if alert["shortcode"] else ""
            st.error(f"**{alert['severity'].upper()}** · code {alert['code']} ({info.title}){where}: "
                     f"{pct(alert['observed_rate'])} against a baseline of {pct(alert['baseline_rate'])} "
                     f"since {ui.when(alert['started_at'], tz, '%d %b %H:%M')}",
                     icon=":material/notifications_active:")
        if len(firing) > 3:
            st.caption(f"{len(firing) - 3} more firing: see Alerts.")
        st.page_link(nav.page_path("alerts"), label="Open alerts", icon=":material/arrow_forward:")
    fresh = data.freshness()
    latest, load = fresh["latest_data"], fresh["load"]
    parts = []
    if latest:
        age = (datetime.now(timezone.utc) - latest).total_seconds()
        parts.append(f"newest payment {ui.when(latest, tz, '%d %b %H:%M')} "
                     + (f"({_age(age)} ago)" if age >= 0 else f"({_age(-age)} ahead of this server's clock)"))
    if load:
        when = load["finished_at"] or load["started_at"]
        parts.append(f"last load: {load['command']} {load['status']} at "
                     f"{ui.when(when, tz, '%d %b %H:%M')}")
    if fresh["detection"] and fresh["detection"]["finished_at"]:
        parts.append(f"last detection {ui.when(fresh['detection']['finished_at'], tz, '%H:%M')}")
    st.caption("Data: " + " · ".join(parts) if parts else "Data: nothing loaded yet")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def headline(f: context.Filters, outcomes: pd.DataFrame) -> None:
    now, before = queries.totals(outcomes), queries.totals(data.outcomes(f, previous=True))
    a, b, c, d = st.columns(4)
    a.metric("Payments", f"{now['payments']:,}", ui.change(now["payments"], before["payments"]),
             help="STK Push requests made in the range; the change is against the period just before it.")
    b.metric("Success rate", pct(now["success_rate"]),
             ui.change(now["success_rate"], before["success_rate"], as_points=True),
             help="Paid, out of the payments that have an outcome (pending ones are left out).")
    c.metric("Value collected", ui.kes(now["collected_cents"]),
             ui.change(now["collected_cents"], before["collected_cents"]))
    d.metric("Failed", f"{now['completed'] - now['succeeded']:,}",
             ui.change(now["completed"] - now["succeeded"], before["completed"] - before["succeeded"]),
             delta_color="inverse")


def failure_chart(f: context.Filters, df: pd.DataFrame, role: str) -> None:
    step = queries.grain(f.start, f.end)
    st.subheader("Failure rate by family")
    st.caption(f"Share of payments with an outcome that failed, per {context.span_words(step)}, "
               f"stacked by family. Click a bar to see its payments.")
    done = df[df["status"] != "pending"].copy()
    if done.empty:
        st.info("No completed payments in this range.")
        return
    done["at"] = queries.rebucket(done, step, f.tz)
    total = done.groupby("at")["attempts"].sum()
    failed = done[done["family"] != "success"]
    rates = failed.groupby(["at", "family"], as_index=False)["attempts"].sum()
    rates["rate"] = rates["attempts"] / rates["at"].map(total)
    rates["until"] = rates["at"] + pd.Timedelta(step)
    fig = px.bar(rates, x="at", y="rate", color="family", color_discrete_map=ui.FAMILY_COLOURS,
                 custom_data=["family", "until"], labels={"at": "", "rate": "failure rate", "family": "family"})
    fig.update_layout(yaxis_tickformat=".0%", height=340, margin=dict(t=10, b=10), bargap=0.05,
                      legend=dict(orientation="h", y=-0.15))
    can_drill = nav.may_open("failures", role)
    event = st.plotly_chart(fig, key="ov_failures", on_select="rerun" if can_drill else "ignore",
                            selection_mode="points")
    if can_drill and event and event.selection.points:
        point = event.selection.points[0]
        family, until = point["customdata"][0], pd.Timestamp(point["customdata"][1])
        start = pd.Timestamp(point["x"]).tz_localize(f.tz) if pd.Timestamp(point["x"]).tzinfo is None \
            else pd.Timestamp(point["x"])
        until = until.tz_localize(f.tz) if until.tzinfo is None else until
        st.switch_page(nav.page_path("failures"), query_params=context.link_params(
            f, start=start.to_pydatetime(), end=until.to_pydatetime(), family=family))
    codes = (failed.groupby(["outcome", "family"], as_index=False)["attempts"].sum()
             .sort_values("attempts", ascending=False).head(8))
    if codes.empty:
        return
    st.markdown("**Top failure codes**")
    for row in codes.itertuples():
        left, right = st.columns([3, 1])
        left.write(f"`{row.outcome}` {catalogue.lookup(row.outcome).title} · {row.family} · "
                   f"**{row.attempts:,}** ({pct(row.attempts / total.sum())} of payments)")
        if can_drill:
            right.page_link(nav.page_path("failures"), label="Payments", icon=":material/arrow_forward:",
                            query_params=context.link_params(f, code=row.outcome))


def http_family(code: str) -> str:
    status = catalogue.lookup(code).http_status
    if status is None and code.startswith("HTTP "):
        status = int(code[5:]) if code[5:].isdigit() else None
    if status in (401, 422, 500):
        return f"HTTP {status}"
    if status is None:
        return "no HTTP status"
    return f"other HTTP {str(status)[0]}xx"


def gateway_errors(df: pd.DataFrame, role: str) -> None:
    refused = df[df["status"] == "rejected"]
    st.subheader("Gateway API errors")
    if refused.empty:
        st.caption("No request was refused by the gateway in this range.")
        return
    by_code = refused.groupby("outcome", as_index=False)["attempts"].sum()
    by_code["HTTP"] = by_code["outcome"].map(http_family)
    by_code["meaning"] = by_code["outcome"].map(lambda c: catalogue.lookup(c).title)
    by_code = by_code.sort_values(["attempts", "outcome"], ascending=[False, True], ignore_index=True)
    # one bar per code, most first, coloured by HTTP family: readable with any number of codes
    fig = px.bar(by_code.iloc[::-1], x="attempts", y="outcome", color="HTTP", orientation="h", text="attempts",
                 hover_data=["meaning"], labels={"attempts": "requests refused", "outcome": "", "HTTP": "HTTP"})
    fig.update_traces(texttemplate="%{x:,}", textposition="outside", cliponaxis=False)
    fig.update_layout(height=max(220, 80 + 24 * len(by_code)), margin=dict(t=30, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, title=None))
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(by_code["outcome"][::-1]))
    left, right = st.columns([3, 2])
    left.plotly_chart(fig, key="ov_gateway")
    right.dataframe(by_code[["outcome", "attempts", "HTTP", "meaning"]], hide_index=True,
                    column_config={"outcome": "code", "attempts": st.column_config.NumberColumn("requests",
                                                                                             format="%d")})
    if nav.may_open("gateway_errors", role):
        right.page_link(nav.page_path("gateway_errors"), label="Gateway errors over time",
                        icon=":material/arrow_forward:")


def render() -> None:
    role = context.role()
    f = context.filters()
    st.title("Overview")
    if context.empty_store_notice():
        return
    live_status(f.tz)
    outcomes = data.outcomes(f)
    headline(f, outcomes)
    failure_chart(f, outcomes, role)
    gateway_errors(outcomes, role)


if __name__ == "__main__":
    render()

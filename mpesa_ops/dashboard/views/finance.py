"""Finance (finance, admins): what insufficient funds (M-Pesa result 1) costs, by day,
hour of day, day of month and shortcode, against the previous period; the customers
who hit it again and again; money collected against money lost by failure family."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from mpesa_ops.dashboard import context, data, queries, ui

CODE = "1"  # insufficient funds


def _code_share(df: pd.DataFrame) -> dict:
    done = df[df["status"] != "pending"]
    hit = done[done["outcome"] == CODE]
    attempts = int(done["attempts"].sum())
    return {"count": int(hit["attempts"].sum()), "share": hit["attempts"].sum() / attempts if attempts else None,
            "cents": int(hit["amount_cents"].sum())}


def headline(now: pd.DataFrame, before: pd.DataFrame) -> None:
    a, b = _code_share(now), _code_share(before)
    cols = st.columns(3)
    cols[0].metric("Insufficient funds", f"{a['count']:,}", ui.change(a["count"], b["count"]), delta_color="inverse",
                   help="Payments that ended in M-Pesa result 1; the change is against the period just before.")
    cols[1].metric("Share of payments", ui.pct(a["share"]), ui.change(a["share"], b["share"], as_points=True),
                   delta_color="inverse")
    cols[2].metric("KES not collected", ui.kes(a["cents"]), ui.change(a["cents"], b["cents"]), delta_color="inverse",
                   help="The amounts those payments asked for.")


def _by(df: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    done = df[df["status"] != "pending"].assign(key=key)
    total = done.groupby("key")["attempts"].sum()
    hit = done[done["outcome"] == CODE].groupby("key")[["attempts", "amount_cents"]].sum()
    out = pd.DataFrame({"payments": total}).join(hit).fillna(0)
    out["share"] = out["attempts"] / out["payments"]
    out["KES"] = out["amount_cents"] / 100
    return out.reset_index()


def patterns(f: context.Filters, now: pd.DataFrame, before: pd.DataFrame) -> None:
    local = now["bucket"].dt.tz_convert(f.tz)
    span = f.end - f.start
    day_tab, hour_tab, month_tab, code_tab = st.tabs(["By day", "Hour of day", "Day of month (paydays)",
                                                      "By shortcode"])
    with day_tab:
        days = _by(now, local.dt.normalize())
        days["period"] = "this period"
        prev_local = before["bucket"].dt.tz_convert(f.tz)
        prev = _by(before, (prev_local + span).dt.normalize())  # shifted onto this period's days
        prev["period"] = "previous period"
        both = pd.concat([days, prev])
        fig = px.line(both, x="key", y="share", color="period", markers=True,
                      hover_data={"attempts": True, "KES": ":,.0f"},
                      labels={"key": "", "share": "share of payments", "attempts": "insufficient funds"},
                      color_discrete_map={"this period": "#cf222e", "previous period": "#8c959f"})
        fig.update_layout(yaxis_tickformat=".0%", height=320, margin=dict(t=10, b=10))
        st.plotly_chart(fig, key="fin_days")
    with hour_tab:
        hours = _by(now, local.dt.hour)
        fig = px.bar(hours, x="key", y="attempts", hover_data={"share": ":.1%"},
                     labels={"key": "hour of day", "attempts": "insufficient funds"}, color_discrete_sequence=["#d4a72c"])
        fig.update_layout(height=300, margin=dict(t=10, b=10))
        st.plotly_chart(fig, key="fin_hours")
    with month_tab:
        if span < pd.Timedelta(days=28):
            st.caption("Pick 30 or 90 days to see the month's pattern around paydays.")
        month = _by(now, local.dt.day)
        fig = px.bar(month, x="key", y="share", hover_data={"attempts": True},
                     labels={"key": "day of month", "share": "share of payments"}, color_discrete_sequence=["#d4a72c"])
        fig.update_layout(yaxis_tickformat=".0%", height=300, margin=dict(t=10, b=10))
        st.plotly_chart(fig, key="fin_month")
    with code_tab:
        per = data.by_shortcode(f)
        codes = _by(per, per["shortcode"].replace("", "unknown"))
        shown = codes.rename(columns={"key": "shortcode", "attempts": "insufficient funds"})
        st.dataframe(shown[["shortcode", "payments", "insufficient funds", "share", "KES"]].sort_values(
            "insufficient funds", ascending=False), hide_index=True,
            column_config={"share": st.column_config.NumberColumn(format="percent"),
                           "KES": st.column_config.NumberColumn("KES not collected", format="%.0f")})


def repeaters(f: context.Filters) -> None:
    st.subheader("Customers who hit it repeatedly")
    rows = data.repeat_customers(CODE, f)
    st.caption(f"Among the newest {queries.REPEAT_SCAN:,} insufficient-funds payments in the range.")
    if rows.empty:
        st.caption("No number ended in insufficient funds twice in this range.")
        return
    shown = pd.DataFrame({"phone": ui.phones(rows["msisdn"]), "times": rows["hits"],
                          "KES asked": rows["amount_cents"] / 100, "first": rows["first"], "last": rows["last"]})
    shown = ui.local_times(shown, f.tz, "first", "last")
    st.dataframe(shown, hide_index=True, column_config={"KES asked": st.column_config.NumberColumn(format="%.0f")})
    ui.csv_download(shown, "insufficient-funds-repeat-customers.csv", key="fin_csv")


def collected_vs_lost(now: pd.DataFrame) -> None:
    st.subheader("Money collected and money lost, by family")
    done = now[now["status"] != "pending"]
    fam = done.groupby("family", as_index=False)[["attempts", "amount_cents"]].sum()
    fam["KES"] = fam["amount_cents"] / 100
    fam["what"] = fam["family"].map(lambda x: "collected" if x == "success" else "not collected")
    fig = px.bar(fam.sort_values("KES"), x="KES", y="family", color="family", orientation="h",
                 color_discrete_map=ui.FAMILY_COLOURS, hover_data={"attempts": True, "what": True},
                 labels={"family": "", "KES": "KES"})
    fig.update_layout(height=300, margin=dict(t=10, b=10), showlegend=False)
    st.plotly_chart(fig, key="fin_families")
    lost = fam.loc[fam["family"] != "success", "amount_cents"].sum()
    kept = fam.loc[fam["family"] == "success", "amount_cents"].sum()
    st.caption(f"Collected {ui.kes(kept)}; asked for but not collected {ui.kes(lost)} "
               f"({ui.pct(lost / (lost + kept) if lost + kept else None)} of the value asked).")


def render() -> None:
    f = context.filters()
    st.title("Finance")
    if context.empty_store_notice():
        return
    now, before = data.outcomes(f), data.outcomes(f, previous=True)
    if now.empty:
        st.info("No payments in this range.")
        return
    st.caption("Insufficient funds: M-Pesa result 1. Nothing was taken; the customer may pay later or not at all.")
    headline(now, before)
    patterns(f, now, before)
    left, right = st.columns(2)
    with left:
        repeaters(f)
    with right:
        collected_vs_lost(now)


if __name__ == "__main__":
    render()

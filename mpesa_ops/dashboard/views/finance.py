"""Finance (finance, admins): what insufficient funds (M-Pesa result 1) costs, by day,
hour of day, day of month and shortcode, against the previous period; the customers
who hit it again and again; money collected against money lost by failure family."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pandas as pd
import plotly.express as px
import streamlit as st

from mpesa_ops.dashboard import context, data, queries, ui
from mpesa_ops.formatting import pct

CODE = "1"  # insufficient funds


def _code_share(df: pd.DataFrame) -> dict:
    done = df[df["status"] != "pending"]
    hit = done[done["outcome"] == CODE]
    attempts = int(done["attempts"].sum())
    return {"count": int(hit["attempts"].sum()), "share": hit["attempts"].sum() / attempts if attempts else None,
            "cents": int(hit["amount_cents"].sum())}


def previous_is_partial(f: context.Filters, first: datetime | None) -> bool:
    """Whether the period before this one starts before the first stored payment, so
    a change against it would compare with days the store never held."""
    return first is None or f.previous().start < first


def headline(now: pd.DataFrame, before: pd.DataFrame, *, compare: bool) -> None:
    a, b = _code_share(now), _code_share(before)

    def delta(x, y, **kw):
        return ui.change(x, y, **kw) if compare else None

    cols = st.columns(3)
    cols[0].metric("Insufficient funds", f"{a['count']:,}", delta(a["count"], b["count"]), delta_color="inverse",
                   help="Payments that ended in M-Pesa result 1; the change is against the period just before.")
    cols[1].metric("Share of payments", pct(a["share"]), delta(a["share"], b["share"], as_points=True),
                   delta_color="inverse")
    cols[2].metric("KES not collected", ui.kes(a["cents"]), delta(a["cents"], b["cents"]), delta_color="inverse",
                   help="The amounts those payments asked for.")


def _by(df: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    done = df[df["status"] != "pending"].assign(key=key)
    total = done.groupby("key")["attempts"].sum()
    hit = done[done["outcome"] == CODE].groupby("key")[["attempts", "amount_cents"]].sum()
    out = pd.DataFrame({"payments": total}).join(hit).fillna(0)
    out["share"] = out["attempts"] / out["payments"]
    out["KES"] = out["amount_cents"] / 100
    return out.reset_index()


DAILY_FROM = pd.Timedelta(days=2)  # shorter ranges chart "By day" by the hour


def _two_periods(now: pd.DataFrame, before: pd.DataFrame, key_now: pd.Series, key_before: pd.Series,
                 previous: str) -> pd.DataFrame:
    this = _by(now, key_now).assign(period="this period")
    prev = _by(before, key_before).assign(period=previous)
    return pd.concat([this, prev], ignore_index=True)


COLOURS = {"this period": "#cf222e"}


def patterns(f: context.Filters, now: pd.DataFrame, before: pd.DataFrame, *, previous: str) -> None:
    """The tabs; ``previous`` names the period before (flagged when only partly stored)."""
    local = now["bucket"].dt.tz_convert(f.tz)
    prev_local = before["bucket"].dt.tz_convert(f.tz)
    span = f.end - f.start
    colours = {**COLOURS, previous: "#8c959f"}
    day_tab, hour_tab, month_tab, code_tab = st.tabs(["By day", "Hour of day", "Day of month (paydays)",
                                                      "By shortcode"])
    with day_tab:
        hourly = span <= DAILY_FROM
        step = (lambda t: t.dt.floor("h", ambiguous="NaT", nonexistent="shift_forward")) if hourly \
            else (lambda t: t.dt.normalize())
        both = _two_periods(now, before, step(local), step(prev_local + span), previous)  # shifted onto this period
        fig = px.line(both, x="key", y="share", color="period", markers=True,
                      hover_data={"attempts": ":,", "KES": ":,.0f"},
                      labels={"key": "", "share": "share of payments", "attempts": "insufficient funds"},
                      color_discrete_map=colours)
        fig.update_layout(yaxis_tickformat=".0%", height=320, margin=dict(t=10, b=10))
        if not hourly:
            fig.update_xaxes(dtick="D1" if span <= pd.Timedelta(days=31) else "D7", tickformat="%d %b")
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
        month = _two_periods(now, before, local.dt.day, prev_local.dt.day, previous)
        fig = px.bar(month, x="key", y="share", color="period", barmode="group",
                     hover_data={"attempts": ":,", "KES": ":,.0f"}, color_discrete_map=colours,
                     labels={"key": "day of month", "share": "share of payments", "attempts": "insufficient funds"})
        fig.update_layout(yaxis_tickformat=".0%", height=300, margin=dict(t=10, b=10))
        st.plotly_chart(fig, key="fin_month")
    with code_tab:
        st.dataframe(shortcode_table(data.by_shortcode(f), data.by_shortcode(f, previous=True)), hide_index=True,
                     column_config={"share": st.column_config.NumberColumn(format="percent"),
                                    "share before": st.column_config.NumberColumn(
                                        f"share ({previous})", format="percent"),
                                    "KES": st.column_config.NumberColumn("KES not collected", format="KES %,d"),
                                    "KES before": st.column_config.NumberColumn(
                                        f"KES not collected ({previous})", format="KES %,d"),
                                    "payments": st.column_config.NumberColumn(format="%,d"),
                                    "insufficient funds": st.column_config.NumberColumn(format="%,d")})


def shortcode_table(per: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """Per shortcode: payments, insufficient funds, share and KES not collected, with
    the previous period's share and KES beside them; most insufficient funds first."""
    def table(df: pd.DataFrame) -> pd.DataFrame:
        return _by(df, df["shortcode"].replace("", "unknown")).set_index("key")

    now, prev = table(per), table(before)
    out = pd.DataFrame({"payments": now["payments"].astype("int64"),
                        "insufficient funds": now["attempts"].astype("int64"), "share": now["share"],
                        "KES": now["KES"].round(0)})
    out["share before"] = prev["share"].reindex(out.index)
    out["KES before"] = prev["KES"].reindex(out.index).round(0)
    out.index.name = "shortcode"
    return out.reset_index().sort_values("insufficient funds", ascending=False, kind="stable")


@st.cache_resource(show_spinner=False)
def _tag_salt() -> bytes:
    """A random salt per server: tags stay stable while it runs and say nothing elsewhere."""
    return secrets.token_bytes(16)


def customer_tag(msisdn: str, salt: bytes) -> str:
    """A short stable tag for a number (6 hex of a salted HMAC), so finance can tell
    customers apart without seeing their numbers."""
    if not isinstance(msisdn, str) or not msisdn:
        return ""
    return hmac.new(salt, msisdn.encode(), hashlib.sha256).hexdigest()[:6]


def repeaters(f: context.Filters) -> None:
    st.subheader("Customers who hit it repeatedly")
    rows = data.repeat_customers(CODE, f)
    st.caption(f"Among the newest {queries.REPEAT_SCAN:,} insufficient-funds payments in the range. The customer "
               "tag tells numbers apart without showing them; it changes when the dashboard restarts.")
    if rows.empty:
        st.caption("No number ended in insufficient funds twice in this range.")
        return
    salt = _tag_salt()
    shown = pd.DataFrame({"customer": rows["msisdn"].map(lambda m: customer_tag(m, salt)),
                          "phone": ui.phones(rows["msisdn"]), "times": rows["hits"],
                          "KES asked": rows["amount_cents"] / 100, "first": rows["first"], "last": rows["last"]})
    shown = ui.local_times(shown, f.tz, "first", "last")
    st.dataframe(shown, hide_index=True, column_config={"KES asked": st.column_config.NumberColumn(format="KES %,d")})
    exported = shown.assign(**{"KES asked": rows["amount_cents"].map(ui.exact_amount)})  # exact, not float
    ui.csv_download(exported, "insufficient-funds-repeat-customers.csv", key="fin_csv")


def lost_by_family(now: pd.DataFrame, impossible: pd.DataFrame) -> pd.DataFrame:
    """Completed payments' attempts and KES per family, leaving out the amounts of
    refused requests no payment can have (``impossible``, from queries.impossible_amounts).
    Columns: family, attempts, amount_cents, KES, what."""
    done = now[now["status"] != "pending"]
    fam = done.groupby("family")[["attempts", "amount_cents"]].sum()
    if len(impossible):
        families = [queries.family(outcome, status) for outcome, status in
                    zip(impossible["outcome"], impossible["status"])]
        left_out = impossible.groupby(families)["amount_cents"].sum()
        fam["amount_cents"] -= left_out.reindex(fam.index, fill_value=0)
    fam = fam.reset_index()
    fam["KES"] = fam["amount_cents"] / 100
    fam["what"] = fam["family"].map(lambda x: "collected" if x == "success" else "not collected")
    return fam


def collected_vs_lost(now: pd.DataFrame, impossible: pd.DataFrame) -> None:
    st.subheader("Money collected and money lost, by family")
    fam = lost_by_family(now, impossible)
    fig = px.bar(fam.sort_values("KES"), x="KES", y="family", color="family", orientation="h",
                 color_discrete_map=ui.FAMILY_COLOURS, hover_data={"attempts": ":,", "what": True, "KES": ":,.0f"},
                 labels={"family": "", "KES": "KES"})
    fig.update_layout(height=300, margin=dict(t=10, b=10), showlegend=False)
    st.plotly_chart(fig, key="fin_families")
    lost = fam.loc[fam["family"] != "success", "amount_cents"].sum()
    kept = fam.loc[fam["family"] == "success", "amount_cents"].sum()
    st.caption(f"Collected {ui.kes(kept)}; asked for but not collected {ui.kes(lost)} "
               f"({pct(lost / (lost + kept) if lost + kept else None)} of the value asked).")
    if len(impossible):
        st.caption(f"Left out: {ui.kes(impossible['amount_cents'].sum())} asked by "
                   f"{int(impossible['attempts'].sum()):,} refused requests whose amount no payment can have "
                   "(outside KES 1 to 300,000, such as INVALID_AMOUNT's 0 or millions): no money was at stake.")


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
    first = data.first_payment()
    partial = previous_is_partial(f, first)
    if partial:
        st.caption(f"The previous period is only partly in the store (payments from "
                   f"{ui.when(first, f.tz, '%d %b %Y')}): no changes against it are shown.")
    headline(now, before, compare=not partial)
    patterns(f, now, before, previous="previous period (partly in the store)" if partial else "previous period")
    left, right = st.columns(2)
    with left:
        repeaters(f)
    with right:
        collected_vs_lost(now, data.impossible_amounts(f))


if __name__ == "__main__":
    render()

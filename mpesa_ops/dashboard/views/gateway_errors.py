"""Gateway errors (engineers, admins): the requests the gateway or Daraja refused, by
code over time, with each code's guidance."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from mpesa_ops import catalogue
from mpesa_ops.dashboard import context, data, nav, queries, ui
from mpesa_ops.dashboard.views.overview import http_family
from mpesa_ops.formatting import pct


def render() -> None:
    f = context.filters()
    st.title("Gateway errors")
    if context.empty_store_notice():
        return
    df = data.outcomes(f)
    refused = df[df["status"] == "rejected"].copy()
    total = int(df["attempts"].sum())
    count = int(refused["attempts"].sum())
    cols = st.columns(3)
    cols[0].metric("Requests refused", f"{count:,}")
    cols[1].metric("Share of requests", pct(count / total if total else None, 2))
    cols[2].metric("Codes", f"{refused['outcome'].nunique():,}")
    if refused.empty:
        st.info("The gateway refused no request in this range.")
        return
    step = queries.grain(f.start, f.end)
    refused["at"] = queries.rebucket(refused, step, f.tz)
    refused["HTTP"] = refused["outcome"].map(http_family)
    series = refused.groupby(["at", "outcome"], as_index=False)["attempts"].sum()
    st.caption(f"Refused requests per {context.span_words(step)}, by code.")
    fig = px.bar(series, x="at", y="attempts", color="outcome", labels={"at": "", "attempts": "requests",
                                                                         "outcome": "code"})
    fig.update_layout(height=320, margin=dict(t=10, b=10), bargap=0.05)
    fig.update_yaxes(rangemode="tozero", tickformat=",d")
    st.plotly_chart(fig, key="gw_series")
    by_code = (refused.groupby(["HTTP", "outcome"], as_index=False)["attempts"].sum()
               .sort_values("attempts", ascending=False))
    can_drill = nav.may_open("failures", context.role())
    for row in by_code.itertuples():
        info = catalogue.lookup(row.outcome)
        with st.expander(f"{row.HTTP} · `{row.outcome}` {info.title} · {row.attempts:,} request{'s' if row.attempts != 1 else ''}"):
            ui.guide(row.outcome)
            if can_drill:
                st.page_link(nav.page_path("failures"), label="The refused requests",
                             icon=":material/arrow_forward:", query_params=context.link_params(f, code=row.outcome))


if __name__ == "__main__":
    render()

"""Failed payments (support, engineers, admins): find a payment by phone, receipt,
CheckoutRequestID or gateway id; filter by code, family, shortcode and time; pages
come from the database; one payment's timeline and what its code means for the
customer; CSV export of the page on screen, masked as on screen.

URL parameters besides the sidebar's: q (search), code, family, all=1 (every status,
not only failures), page (1-based), txn (the payment opened)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mpesa_ops import catalogue
from mpesa_ops.dashboard import context, data, queries, ui

PAGE_SIZE = 50
COUNT_CAP = 10_000  # counted exactly up to here, then shown as "10,000+"
ANY = "Any"
_PARAMS = {"q": "fl_q", "code": "fl_code", "family": "fl_family", "all": "fl_all", "page": "fl_page"}


def _seed_from_url() -> None:
    """Widgets start from the URL when it names a search or a filter (a drill-down or a link)."""
    url = {name: st.query_params.get(name, "") for name in _PARAMS}
    if url != st.session_state.get("_fl_url"):
        st.session_state["_fl_url"] = url
        st.session_state["fl_q"] = url["q"]
        st.session_state["fl_code"] = url["code"] or ANY
        st.session_state["fl_family"] = url["family"] if url["family"] in catalogue.FAMILIES else ANY
        st.session_state["fl_all"] = url["all"] == "1"
        st.session_state["fl_page"] = int(url["page"]) if url["page"].isdigit() and int(url["page"]) > 0 else 1


def _write_url() -> None:
    values = {"q": st.session_state["fl_q"].strip(),
              "code": "" if st.session_state["fl_code"] == ANY else st.session_state["fl_code"],
              "family": "" if st.session_state["fl_family"] == ANY else st.session_state["fl_family"],
              "all": "1" if st.session_state["fl_all"] else "",
              "page": str(st.session_state["fl_page"]) if st.session_state["fl_page"] > 1 else ""}
    for name, value in values.items():
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]
    st.session_state["_fl_url"] = {name: st.query_params.get(name, "") for name in _PARAMS}


def _first_page() -> None:
    st.session_state["fl_page"] = 1


def _codes(seen: pd.DataFrame, code: str, family: str) -> tuple[str, ...] | None:
    """The outcomes a code or family filter means: a family is the catalogue's codes of
    it plus any other outcome ``seen`` in the range (a data.outcomes frame) that maps to it."""
    if code != ANY:
        return (code,)
    if family == ANY:
        return None
    known = {info.code for info in catalogue.all_codes() if info.family == family}
    return tuple(sorted(known | set(seen.loc[seen["family"] == family, "outcome"])))


def render() -> None:
    f = context.filters()
    st.title("Failed payments")
    if context.empty_store_notice():
        return
    _seed_from_url()
    st.text_input("Find a payment", key="fl_q", on_change=_first_page,
                  placeholder="Phone (0712…, +254712…, 712…), M-Pesa receipt, CheckoutRequestID or gateway id")
    seen = data.outcomes(f)
    failed_codes = sorted(set(seen.loc[seen["family"] != "success", "outcome"]) - {"pending"})
    if st.session_state["fl_code"] not in failed_codes + [ANY]:
        failed_codes.append(st.session_state["fl_code"])
    a, b, c = st.columns([2, 2, 1])
    code = a.selectbox("Code", [ANY] + failed_codes, key="fl_code", on_change=_first_page,
                       format_func=lambda x: x if x == ANY else f"{x} · {catalogue.lookup(x).title}")
    family = b.selectbox("Family", [ANY] + [x for x in catalogue.FAMILIES if x != "success"], key="fl_family",
                         on_change=_first_page)
    search = st.session_state["fl_q"].strip()
    everything = c.toggle("Every status", key="fl_all", on_change=_first_page, disabled=bool(search),
                          help="Also paid and pending payments, not only failures. A search always "
                               "looks at every status.")
    if search:  # a receipt exists only on a paid payment: the one looked for, whatever its status
        st.caption("A search looks at every status (paid, pending and failed) and all time; "
                   "the code, family and shortcode filters still apply.")
    codes = _codes(seen, code, family)
    page_no = max(1, st.session_state["fl_page"])
    rows, total = data.payments(f, codes, search, not (everything or search), limit=PAGE_SIZE,
                                offset=(page_no - 1) * PAGE_SIZE, cap=COUNT_CAP)
    pages = max(1, -(-total // PAGE_SIZE))
    if page_no > pages:
        st.session_state["fl_page"] = page_no = pages
    _write_url()
    if rows.empty:
        st.info("No payment matches." + ("" if search else " Try a longer time range or fewer filters."))
        return
    shown = ui.payments_table(rows, f.tz)
    top = st.columns([1, 3, 1])
    with top[0]:  # on the left: the table's own toolbar sits at its top right
        ui.csv_download(ui.payments_table(rows, f.tz, for_csv=True), f"payments-page-{page_no}.csv", key="fl_csv",
                        label="CSV of this page")
    plural = "" if total == 1 else "s"
    top[1].markdown(f"**{total:,}{'+' if total >= COUNT_CAP else ''}** payment{plural} · page {page_no} of {pages:,}")
    top[2].number_input("Page", min_value=1, max_value=pages, step=1, key="fl_page", label_visibility="collapsed")
    event = st.dataframe(shown, hide_index=True, on_select="rerun", selection_mode="single-row", key="fl_table",
                         column_config={"amount KES": st.column_config.NumberColumn(format="%.2f")})
    picked = event.selection.rows if event and event.selection else []
    if picked:
        st.query_params["txn"] = str(rows.iloc[picked[0]]["id"])
    txn = st.query_params.get("txn")
    if txn:
        detail(txn, f.tz)
    else:
        st.caption("Select a row to see its timeline and what to tell the customer.")


def detail(txn_id: str, tz: str) -> None:
    payment = queries.payment(context.engine(), txn_id)
    if payment is None:
        st.warning(f"No payment with gateway id {txn_id}.")
        return
    st.divider()
    st.subheader(f"Payment {txn_id}")
    info = catalogue.lookup(payment["outcome"]) if payment["outcome"] != "pending" else None
    cols = st.columns(4)
    cols[0].metric("Status", payment["status"])
    cols[1].metric("Code", payment["outcome"])
    cols[2].metric("Amount", ui.kes(payment["amount_cents"]))
    cols[3].metric("Phone", context.shown_phone(payment["msisdn"]) or "–")
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Timeline**")
        steps = queries.timeline(context.engine(), txn_id)
        hide, phone = not context.may_see_phone(), payment["msisdn"]
        for column in ("code", "detail"):
            steps[column] = [context.shown_text(text, phone, hide_phones=hide) for text in steps[column]]
        st.dataframe(ui.local_times(steps, tz, "time"), hide_index=True)
        st.caption(context.shown_text(
            f"Shortcode {payment['shortcode'] or '–'} · receipt {payment['mpesa_receipt'] or '–'} · "
            f"CheckoutRequestID {payment['checkout_request_id'] or '–'} · "
            f"requested {ui.when(payment['created_at'], tz, '%d %b %Y %H:%M:%S')}", phone, hide_phones=hide))
        if payment["conflicting_results"]:
            st.warning("This payment received conflicting results; the latest one decides its state.")
    with right:
        if info is None:
            st.info("No result yet: M-Pesa has not answered. Ask the customer not to pay again until it does.")
        else:
            ui.guide(payment["outcome"], for_support=True)


if __name__ == "__main__":
    render()

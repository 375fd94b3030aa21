"""Small pieces several pages draw: money formats, the table of payments as a
viewer may see it (phones masked per role), CSV export, a code's guide."""

from __future__ import annotations

import zoneinfo

import pandas as pd
import streamlit as st

from mpesa_ops import catalogue
from mpesa_ops.dashboard import context

FAMILY_COLOURS = {
    "success": "#1a7f37", "pending": "#8c959f", "customer": "#d4a72c", "merchant configuration": "#bc4c00",
    "M-Pesa system": "#cf222e", "gateway authentication": "#8250df", "gateway validation": "#bf3989",
    "gateway system": "#953800", "webhook": "#0969da", "other": "#57606a",
}


def kes(cents: int | float | None) -> str:
    if cents is None or pd.isna(cents):
        return "–"
    value = cents / 100
    if abs(value) >= 1_000_000:
        return f"KES {value / 1_000_000:,.2f} M"
    return f"KES {value:,.0f}" if abs(value) >= 10_000 else f"KES {value:,.2f}"


def change(now: float | None, before: float | None, *, as_points: bool = False) -> str | None:
    """The delta text for st.metric: relative change, or percentage points for rates."""
    if now is None or before is None:
        return None
    if as_points:
        text = f"{(now - before) * 100:+.1f} pp"
    elif before == 0:
        return None
    else:
        text = f"{(now - before) / before * 100:+.1f}%"
    # a change that rounds to nothing shows no delta: st.metric would draw it as a rise
    return None if text.lstrip("+-").startswith(("0.0 ", "0.0%")) else text


def local_times(df: pd.DataFrame, tz: str, *names: str) -> pd.DataFrame:
    for name in names:
        df[name] = df[name].dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M:%S")
    return df


def phones(values: pd.Series) -> pd.Series:
    """A phone column as this viewer may see it."""
    values = values.map(lambda v: v if isinstance(v, str) else "")  # None and NaN: no number
    return values if context.may_see_phone() else values.map(context.mask_phone)


def exact_amount(cents) -> str:
    """Cents as an exact decimal string: 8700 -> "87.00" (no float rounding)."""
    if cents is None or pd.isna(cents):
        return ""
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def payments_table(rows: pd.DataFrame, tz: str, *, for_csv: bool = False) -> pd.DataFrame:
    """Stored payment rows as shown and exported: local times, KES, masked phones, and
    ids with no phone inside (a CheckoutRequestID ends with the customer's number). The
    CSV form has exact decimal amounts and times with their zone offset."""
    hide = not context.may_see_phone()
    ids = [context.shown_text(value, phone, hide_phones=hide)
           for value, phone in zip(rows["checkout_request_id"].fillna(""), rows["msisdn"])]
    amounts = (rows["amount_cents"].map(exact_amount) if for_csv
               else rows["amount_cents"].astype("Float64") / 100)
    out = pd.DataFrame({
        "time": rows["created_at"], "phone": phones(rows["msisdn"]),
        "amount KES": amounts, "code": rows["outcome"],
        "meaning": [catalogue.lookup(code).title for code in rows["outcome"]], "status": rows["status"],
        "shortcode": rows["shortcode"].fillna(""), "receipt": rows["mpesa_receipt"].fillna(""),
        "gateway id": rows["id"], "CheckoutRequestID": ids,
    })
    if for_csv:
        out["time"] = out["time"].dt.tz_convert(tz).map(lambda t: t.isoformat(sep=" "))
        return out
    return local_times(out, tz, "time")


def csv_download(df: pd.DataFrame, filename: str, *, key: str, label: str = "Download CSV") -> None:
    """The frame as shown on screen (already masked) as a CSV file."""
    st.download_button(label, df.to_csv(index=False).encode("utf-8"), file_name=filename, mime="text/csv",
                       key=key, icon=":material/download:")


def guide(code: str, *, for_support: bool = False) -> None:
    """What a code means and what to do, in the catalogue's words."""
    info = catalogue.lookup(code)
    g = info.guide
    st.markdown(f"**{g.title}** · {info.family}")
    st.write(g.meaning)
    if for_support and g.tell_customer:
        st.info(f"**Tell the customer:** {g.tell_customer}", icon=":material/support_agent:")
    if g.check_first:
        st.markdown("**Check first**\n" + "\n".join(f"1. {step}" for step in g.check_first))
    st.markdown(f"**Retry:** {g.retry}")
    st.caption("Who acts: " + ", ".join(g.who_acts))
    if not for_support and g.tell_customer:
        st.caption(f"Tell the customer: {g.tell_customer}")


def when(value, tz: str, fmt: str = "%d %b %H:%M") -> str:
    """An aware time in the viewer's zone."""
    return "–" if value is None else value.astimezone(zoneinfo.ZoneInfo(tz)).strftime(fmt)

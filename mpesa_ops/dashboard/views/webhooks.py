"""Webhooks (engineers): delivery health per endpoint, signature failures by verdict,
one refused delivery taken apart, and a form to check a signature by hand.

Secrets typed into the form are read in the submit callback, used once and blanked
before the page is drawn again: they are never kept in session state, put in the URL,
logged or shown.
"""

from __future__ import annotations

import time

import pandas as pd
import plotly.express as px
import streamlit as st

from mpesa_ops import catalogue
from mpesa_ops.config import ConfigError
from mpesa_ops.dashboard import context, data, queries, ui
from mpesa_ops.dashboard import webhook_queries as wq
from mpesa_ops.formatting import pct
from mpesa_ops.ingest.verdicts import CannotDiagnose, diagnose_delivery
from mpesa_ops.ingest.webhook_secrets import WebhookConfig, load_config
from mpesa_ops.signatures import DEFAULT_TOLERANCE, SCHEMES, VERDICTS, InputError, diagnose

ALL_ENDPOINTS = "All endpoints"
ALL_VERDICTS = "All verdicts"
SECRET_KEYS = ("wh_secret", "wh_previous_secret")
RESULT_KEY = "wh_check_result"  # the last check's verdict (never a secret)


HOW_TO_CONFIGURE = ("Name a secrets file with MPESA_OPS_WEBHOOK_SECRETS_FILE, add [webhooks.endpoints.NAME] tables "
                    "to .streamlit/secrets.toml, or set MPESA_OPS_WEBHOOK_SECRET, then restart the dashboard.")


def _config() -> WebhookConfig | None:
    """The configured secrets (possibly none), or None (with a message) when they are wrong."""
    try:
        return load_config()
    except ConfigError as exc:
        st.error(f"Webhook secrets: {exc}. Fix it to see live diagnoses.", icon=":material/key_off:")
        return None


def _secrets_note(failures: pd.DataFrame) -> None:
    """When this server has no secrets: what the page can still show, and how to configure them."""
    if (failures["verdict"] != wq.UNDIAGNOSED).any():
        st.info("Showing the verdicts stored when the deliveries were loaded. No webhook secrets are configured "
                "on this dashboard's server, so live diagnosis (the refused delivery's diagnosis and the body "
                "diff) is off. " + HOW_TO_CONFIGURE, icon=":material/key:")
    else:
        st.info("No webhook secrets are configured and no verdict is stored, so refused signatures have no "
                "verdict. " + HOW_TO_CONFIGURE + " The next `mpesa-ops ingest`, `pull` or `detect` stores "
                "verdicts.", icon=":material/key:")


def _time_axis(fig, f: context.Filters, *, bars: bool = True):
    """The chart's x axis is the chosen range; each bar is one chart bucket wide,
    starting at its bucket (so a single event is not drawn as a wide block)."""
    step = queries.grain(f.start, f.end)
    local = [t.astimezone(f.zone).replace(tzinfo=None) for t in (f.start, f.end)]
    fig.update_xaxes(range=local)
    if bars:
        fig.update_traces(width=step.total_seconds() * 1000 * 0.9, offset=0, selector={"type": "bar"})
    return fig


def _chart_buckets(df: pd.DataFrame, column: str, f: context.Filters) -> pd.Series:
    step = queries.grain(f.start, f.end)
    return queries.rebucket(pd.DataFrame({"bucket": df[column]}), step, f.tz)


def _local(series: pd.Series, tz: str) -> pd.Series:
    return series.dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M:%S")


# --- delivery health ---

def _health(f: context.Filters, url: str | None) -> None:
    st.subheader("Deliveries")
    df = data.delivery_outcomes(f, url)
    if df.empty:
        st.info("No webhook deliveries in this range.")
        return
    t = wq.health_totals(df)
    cols = st.columns(4)
    cols[0].metric("Deliveries", f"{t['deliveries']:,}")
    cols[1].metric("Delivered", pct(t["delivered_rate"]))
    cols[2].metric("Retries", f"{t['retries']:,}")
    cols[3].metric("Mean latency", "–" if t["mean_latency_ms"] is None else f"{t['mean_latency_ms']:,.0f} ms")

    buckets = _chart_buckets(df, "bucket", f)
    by_outcome = wq.per_chart_bucket(df, buckets, "outcome")
    colours = {wq.DELIVERED: ui.FAMILY_COLOURS["success"]}
    fig = px.bar(by_outcome, x="chart_bucket", y="deliveries", color="outcome", color_discrete_map=colours,
                 labels={"chart_bucket": "", "deliveries": "deliveries"}, title="Deliveries by outcome")
    st.plotly_chart(_time_axis(fig, f), key="wh_outcomes")

    by_url = wq.per_chart_bucket(df, buckets, "url")
    legend_below = {"legend": {"orientation": "h", "yanchor": "top", "y": -0.25, "title": None}}
    left, right = st.columns(2)
    left.plotly_chart(_time_axis(px.line(by_url, x="chart_bucket", y="mean_latency_ms", color="url",
                                         labels={"chart_bucket": "", "mean_latency_ms": "ms", "url": "endpoint"},
                                         title="Mean latency by endpoint").update_layout(legend_below), f,
                                 bars=False), key="wh_latency")
    right.plotly_chart(_time_axis(px.bar(by_url, x="chart_bucket", y="retries", color="url",
                                         labels={"chart_bucket": "", "url": "endpoint"},
                                         title="Retries (attempts after the first)").update_layout(legend_below),
                                  f), key="wh_retries")
    table = wq.by_endpoint(df)
    st.dataframe(table, hide_index=True, column_config={
        "delivered share": st.column_config.NumberColumn(format="percent"),
        "mean latency ms": st.column_config.NumberColumn(format="%.0f")})


# --- signature failures ---

def _signatures(f: context.Filters, url: str | None, config: WebhookConfig | None) -> pd.DataFrame:
    st.subheader("Signature failures")
    failures = data.signature_failures(f, url)
    if failures.empty:
        st.success("No delivery was refused on its signature in this range.", icon=":material/verified:")
        return failures
    if config is not None and config.empty:
        _secrets_note(failures)
        config = None
    stale = wq.stale_verdicts(failures, config.fingerprint() if config else None)
    if stale:
        st.warning(f"{stale:,} refused deliver{'y has' if stale == 1 else 'ies have'} no verdict for the current "
                   "secrets yet; the next "
                   "`mpesa-ops ingest`, `pull` or `detect` computes them.", icon=":material/update:")
    buckets = _chart_buckets(failures, "sent_at", f)
    counts = failures.assign(chart_bucket=buckets).groupby(["chart_bucket", "verdict"], as_index=False).size()
    order = [v for v in (*VERDICTS, wq.UNDIAGNOSED) if v in set(counts["verdict"])]
    step = context.span_words(queries.grain(f.start, f.end))
    fig = px.bar(counts, x="chart_bucket", y="size", color="verdict", category_orders={"verdict": order},
                 labels={"chart_bucket": "", "size": "refused deliveries"},
                 title=f"Refused signatures by verdict, per {step}")
    tallest = counts.groupby("chart_bucket")["size"].sum().max()
    # whole deliveries: with few of them Plotly's fractional ticks would print as 0 0 1 1
    fig.update_yaxes(tickformat=",d", rangemode="tozero", dtick=1 if tallest <= 8 else None)
    st.plotly_chart(_time_axis(fig, f), key="wh_verdicts")

    onsets = wq.failure_onsets(failures)
    onsets["meaning"] = [catalogue.lookup(v).title if v != wq.UNDIAGNOSED else "No verdict stored"
                         for v in onsets["verdict"]]
    onsets["first"], onsets["last"] = _local(onsets["first"], f.tz), _local(onsets["last"], f.tz)
    st.caption("When each cause started and stopped, per endpoint (newest first). A secret rotation the "
               "sender missed shows as one block of previous_secret.")
    st.dataframe(onsets[["first", "last", "verdict", "meaning", "url", "deliveries"]], hide_index=True)
    for verdict in order:
        if verdict != wq.UNDIAGNOSED:
            with st.expander(f"{verdict}: {catalogue.lookup(verdict).title}"):
                ui.guide(verdict)
    return failures


# --- one delivery ---

def _pick_delivery(f: context.Filters, url: str | None, failures: pd.DataFrame) -> str | None:
    verdicts = [ALL_VERDICTS] + sorted(set(failures["verdict"]))
    verdict = st.selectbox("Verdict", verdicts, key="wh_verdict_filter")
    listed = data.failure_list(f, url, None if verdict == ALL_VERDICTS else verdict)
    labels = {row.id: context.shown_text(f"{row.sent_at.tz_convert(f.tz):%Y-%m-%d %H:%M:%S} · {row.verdict} · "
                                         f"{row.url} · {row.id}", hide_phones=False)
              for row in listed.itertuples()}
    wanted = st.query_params.get("delivery")
    if wanted and wanted not in labels:
        labels = {wanted: wanted, **labels}
    if not labels:
        return None
    ids = list(labels)
    picked = st.selectbox(f"Refused delivery (newest {wq.PAGE_SIZE} shown)", ids, format_func=labels.get,
                          index=ids.index(wanted) if wanted in labels else 0, key="wh_delivery")
    if picked != wanted:
        st.query_params["delivery"] = picked
    return picked


def _one_delivery(f: context.Filters, url: str | None, failures: pd.DataFrame, config: WebhookConfig | None) -> None:
    st.subheader("One refused delivery")
    if failures.empty and not st.query_params.get("delivery"):
        st.caption("Nothing to take apart in this range.")
        return
    picked = _pick_delivery(f, url, failures)
    row = wq.delivery(context.engine(), picked) if picked else None
    if row is None:
        st.warning(f"No delivery {picked!r} in the store.")
        return
    payment = queries.payment(context.engine(), row["transaction_id"]) if row["transaction_id"] else None
    phone = payment["msisdn"] if payment else None

    def shown(text: str) -> str:  # secrets hidden; phones masked for roles that may not see them
        return context.shown_text(text, phone)

    sent = pd.Timestamp(row["sent_at"]).tz_convert(f.tz).strftime("%Y-%m-%d %H:%M:%S")
    st.markdown(f"**Sent** {sent} · **attempt** {row['attempt'] or '–'} · **answer** {row['status_code'] or 'none'}"
                f" · **stored verdict** `{row['signature_verdict'] or wq.UNDIAGNOSED}`")
    st.caption(shown(f"{row['url'] or 'no endpoint'} · event {row['event_id'] or '–'} · transaction "
                     f"{row['transaction_id'] or '–'} · endpoint answered: {row['response_body'] or '(nothing)'}"))

    diagnosis = None
    if config is not None:
        try:
            diagnosis = diagnose_delivery(row, config)
        except CannotDiagnose as exc:
            st.warning(f"No diagnosis: {exc}.")
    if diagnosis is not None:
        skew = f" · clock skew {diagnosis.skew_seconds:+,} s" if diagnosis.skew_seconds is not None else ""
        st.markdown(f"**Diagnosis: `{diagnosis.verdict}`**{skew}  \n{diagnosis.detail}")
        if row["signature_verdict"] and row["signature_verdict"] != diagnosis.verdict:
            st.caption(f"The stored verdict ({row['signature_verdict']}) was reached with other secrets.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Request headers**")
        st.json(context.shown_json(wq.headers_of(row), phone), expanded=True)
    with right:
        st.markdown("**Payload**")
        if row["payload"] is None:
            st.caption("The log kept no payload.")
        else:
            text, language = wq.pretty_payload(row["payload"])
            st.code(shown(text), language=language)
            st.caption(f"{len(row['payload'].encode('utf-8', 'surrogateescape')):,} bytes as sent; shown "
                       + ("indented" if language == "json" else "as text"))
    if diagnosis is not None and diagnosis.verdict == "body_reserialized" and row["payload"] is not None:
        other = wq.reserialized_form(row["payload"], diagnosis.variant or "")
        if other is not None:
            st.markdown("**The raw body against the form the signature was computed over**  \n"
                        + "\n".join(f"- {shown(note)}" for note in wq.body_differences(row["payload"], other)))
            text, language = wq.body_diff(row["payload"], other)
            st.code(shown(text), language=language)
    verdict = diagnosis.verdict if diagnosis is not None else row["signature_verdict"]
    if verdict:
        with st.expander("What to do", expanded=True):
            ui.guide(verdict)


# --- check a signature by hand ---

def _check() -> None:
    """The form's submit callback: diagnose, keep only the result, blank the secrets."""
    state = st.session_state
    secrets = [state.get(key) or "" for key in SECRET_KEYS]
    for key in SECRET_KEYS:
        state[key] = ""
    secrets = [s for i, s in enumerate(secrets) if s or i == 0]
    payload = (state.get("wh_payload") or "").encode("utf-8", "surrogateescape")
    now_text = (state.get("wh_now") or "").strip()
    try:
        if now_text and not now_text.isdigit():
            raise InputError(f"'Checked at' must be Unix seconds, got {now_text[:20]!r}")
        d = diagnose(state.get("wh_scheme") or "gateway", payload, state.get("wh_signature") or None, secrets,
                     timestamp=(state.get("wh_timestamp") or "").strip() or None,
                     msg_id=(state.get("wh_id") or "").strip() or None,
                     now=int(now_text) if now_text else int(time.time()),
                     tolerance=int(state.get("wh_tolerance") or 0))
    except InputError as exc:
        state[RESULT_KEY] = {"error": str(exc)}
        return
    state[RESULT_KEY] = {"verdict": d.verdict, "valid": d.valid, "detail": d.detail, "skew": d.skew_seconds,
                         "scheme": d.scheme, "bytes": len(payload)}


def _check_form() -> None:
    st.subheader("Check a signature")
    st.caption("Paste the exact body, the signature header and the secret. The secrets are used for this one "
               "check and then forgotten: not stored, not put in the link, not shown again. A browser may change "
               "line endings in pasted text; `mpesa-ops verify --payload FILE` reads the exact bytes.")
    with st.form("wh_check"):
        st.text_area("Payload (raw body)", key="wh_payload", height=160)
        st.text_input("Signature header (X-Signature, Stripe-Signature or webhook-signature)", key="wh_signature")
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Scheme", SCHEMES, key="wh_scheme")
        c2.text_input("Timestamp (X-Timestamp / webhook-timestamp)", key="wh_timestamp")
        c3.text_input("webhook-id (standard scheme)", key="wh_id")
        c4, c5 = st.columns(2)
        c4.text_input("Secret", type="password", key=SECRET_KEYS[0])
        c5.text_input("Previous secret (optional)", type="password", key=SECRET_KEYS[1])
        c6, c7 = st.columns(2)
        c6.text_input("Checked at (Unix seconds, empty = now)", key="wh_now")
        c7.number_input("Tolerance (seconds)", min_value=0, value=DEFAULT_TOLERANCE, step=30, key="wh_tolerance")
        st.form_submit_button("Check signature", on_click=_check)
    result = st.session_state.get(RESULT_KEY)
    if not result:
        return
    if "error" in result:
        st.error(result["error"])
        return
    skew = f" · clock skew {result['skew']:+,} s" if result["skew"] is not None else ""
    text = f"**`{result['verdict']}`** ({result['scheme']}, {result['bytes']:,} bytes){skew}  \n{result['detail']}"
    (st.success if result["valid"] else st.error)(text)
    with st.expander("What to do", expanded=not result["valid"]):
        ui.guide(result["verdict"])


def render() -> None:
    st.title("Webhooks")
    if context.empty_store_notice():
        return
    f = context.filters()
    endpoints = data.endpoints()
    choice = st.selectbox("Endpoint", [ALL_ENDPOINTS] + endpoints, key="wh_endpoint")
    url = None if choice == ALL_ENDPOINTS else choice
    st.caption("Deliveries are per endpoint: the shortcode filter does not apply on this page.")
    config = _config()
    _health(f, url)
    failures = _signatures(f, url, config)
    _one_delivery(f, url, failures, None if config is None or config.empty else config)
    _check_form()


if __name__ == "__main__":
    render()

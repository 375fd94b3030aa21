"""Pull settings: flag, then environment, then secrets.toml, then default; streams
declared by settings; one clear line for a missing or bad value, never the value of a secret."""

from __future__ import annotations

import pytest

from mpesa_ops.ingest.pull.sources import SettingsError, load_settings

SECRETS = {"gateway": {"base_url": "https://file.example/", "api_key": "file-key", "link_id": "file-link",
                       "page_size": 300, "lag_seconds": 120,
                       "streams": {"deliveries": {"page_size": 50, "path": "/v2/deliveries"}}}}


def test_the_secrets_file_fills_what_flags_and_environment_leave():
    s = load_settings(secrets=SECRETS)
    assert (s.base_url, s.api_key, s.link_id, s.lag_seconds) == ("https://file.example", "file-key", "file-link", 120)
    streams = {st.name: st for st in s.streams}
    assert streams["transactions"].page_size == 300 and streams["transactions"].path == "/v1/transactions"
    assert streams["deliveries"].page_size == 50 and streams["deliveries"].path == "/v2/deliveries"
    assert streams["deliveries"].updated_field == "sent_at" and streams["transactions"].data_key == "data"


def test_the_environment_beats_the_file_and_a_flag_beats_both(monkeypatch):
    monkeypatch.setenv("MPESA_OPS_API_KEY", "env-key")
    monkeypatch.setenv("MPESA_OPS_PULL_PAGE_SIZE", "700")
    monkeypatch.setenv("MPESA_OPS_PULL_LAG", "30")
    s = load_settings(secrets=SECRETS)
    assert s.api_key == "env-key" and s.lag_seconds == 30
    assert {st.page_size for st in s.streams} == {700}  # the environment beats a stream's own size too
    s = load_settings(api_key="flag-key", page_size=9, lag_seconds=0, secrets=SECRETS)
    assert s.api_key == "flag-key" and s.lag_seconds == 0 and {st.page_size for st in s.streams} == {9}


@pytest.mark.parametrize("missing, words", [
    ("base_url", "no gateway base url: give --base-url, set MPESA_OPS_BASE_URL, or set base_url in the [gateway] "
                 "table of .streamlit/secrets.toml"),
    ("link_id", "no gateway link id: give --link-id, set MPESA_OPS_LINK_ID, or set link_id in the [gateway]"),
])
def test_a_missing_setting_names_itself_and_the_three_ways_to_give_it(missing, words):
    gateway = {k: v for k, v in SECRETS["gateway"].items() if k != missing}
    with pytest.raises(SettingsError) as err:
        load_settings(secrets={"gateway": gateway})
    assert str(err.value).startswith(words)


def test_bad_values_are_named_without_echoing_secrets():
    with pytest.raises(SettingsError, match=r"\[gateway.streams.deliveries\] page_size: expected a number"):
        load_settings(secrets={"gateway": {**SECRETS["gateway"], "streams": {"deliveries": {"page_size": "lots"}}}})
    with pytest.raises(SettingsError, match="expected an http:// or https:// address"):
        load_settings(base_url="gateway.example", secrets=SECRETS)
    with pytest.raises(SettingsError, match=r"\[gateway.streams.refunds\] format"):
        load_settings(secrets={"gateway": {**SECRETS["gateway"], "streams": {"refunds": {"path": "/v1/refunds"}}}})
    s = load_settings(secrets=SECRETS)
    assert "file-key" not in repr(s) and "file-link" not in repr(s)


def test_streams_may_be_added_or_switched_off():
    gateway = {**SECRETS["gateway"], "streams": {"deliveries": {"enabled": False},
                                                 "refunds": {"format": "transactions", "path": "/v1/refunds",
                                                             "primary_key": "refund_id"}}}
    streams = {st.name: st for st in load_settings(secrets={"gateway": gateway}).streams}
    assert set(streams) == {"transactions", "refunds"} and streams["refunds"].primary_key == "refund_id"

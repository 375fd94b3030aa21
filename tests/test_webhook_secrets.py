"""Webhook secrets configuration: sources, precedence, fingerprint, errors that hide secrets."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from mpesa_ops.config import ConfigError
from mpesa_ops.ingest import webhook_secrets as ws
from mpesa_ops.ingest.webhook_secrets import load_config

SHOP = "https://shop.example.co.ke/mpesa/webhook"
BILLS = "https://api.bills.example.co.ke/webhooks/payments"
OTHER = "https://elsewhere.example.com/hook"
CUR, PREV, ENV_SECRET = "cur-secret-AAAA", "prev-secret-BBBB", "env-secret-CCCC"


def secrets_json(tmp_path, endpoints: dict):
    path = tmp_path / "webhook-secrets.json"
    path.write_text(json.dumps({"endpoints": endpoints}))
    return path


def test_nothing_configured_is_empty_without_fingerprint():
    cfg = load_config()
    assert cfg.empty and cfg.fingerprint() is None and cfg.for_url(SHOP) is None


def test_simulator_file_format(tmp_path):
    path = secrets_json(tmp_path, {
        BILLS: {"current": CUR, "previous": PREV, "rotated_at": "2026-10-01T12:24:00+03:00"},
        SHOP: {"current": "shop-secret", "previous": None, "rotated_at": None},
    })
    cfg = load_config(path)
    bills = cfg.for_url(BILLS)
    assert bills.secrets == (CUR, PREV) and bills.scheme == "gateway" and bills.tolerance == 300
    assert bills.rotated_at == datetime(2026, 10, 1, 9, 24, tzinfo=timezone.utc)
    assert cfg.for_url(SHOP).secrets == ("shop-secret",) and cfg.for_url(SHOP).rotated_at is None
    assert cfg.for_url(OTHER) is None
    # before the rotation the previous secret was the one in force
    assert bills.previous_from(datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)) == 2
    assert bills.previous_from(datetime(2026, 10, 1, 9, 30, tzinfo=timezone.utc)) == 1


def test_file_named_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ws.SECRETS_FILE_ENV, str(secrets_json(tmp_path, {SHOP: {"current": CUR}})))
    assert load_config().for_url(SHOP).secrets == (CUR,)


def test_toml_endpoints_and_loose_url_match():
    toml = {"webhooks": {"endpoints": {
        "shop": {"url": SHOP, "scheme": "stripe", "secret": CUR, "previous_secret": [PREV, "older"],
                 "tolerance": 60},
        "std": {"url": BILLS, "scheme": "standard", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    }}}
    cfg = load_config(secrets=toml)
    shop = cfg.for_url("HTTPS://Shop.Example.co.ke/mpesa/webhook/")
    assert (shop.scheme, shop.secrets, shop.tolerance) == ("stripe", (CUR, PREV, "older"), 60)
    assert cfg.for_url(BILLS).scheme == "standard"


def test_precedence_file_then_toml_then_default(tmp_path, monkeypatch):
    toml = {"webhooks": {"secret": "toml-default", "scheme": "gateway",
                         "endpoints": {"shop": {"url": SHOP, "secret": "from-toml"},
                                       "bills": {"url": BILLS, "secret": "bills-toml"}}}}
    path = secrets_json(tmp_path, {SHOP: {"current": "from-file"}})
    cfg = load_config(path, secrets=toml)
    assert cfg.for_url(SHOP).secrets == ("from-file",)
    assert cfg.for_url(BILLS).secrets == ("bills-toml",)
    assert cfg.for_url(OTHER).secrets == ("toml-default",)
    monkeypatch.setenv(ws.SECRET_ENV, ENV_SECRET)
    monkeypatch.setenv(ws.PREVIOUS_SECRET_ENV, PREV)
    cfg = load_config(path, secrets=toml)
    assert cfg.for_url(OTHER).secrets == (ENV_SECRET, PREV) and cfg.for_url(SHOP).secrets == ("from-file",)
    assert cfg.for_url(None).secrets == (ENV_SECRET, PREV)


def test_fingerprint_changes_with_every_setting_and_hides_secrets(tmp_path):
    base = {"url": SHOP, "secret": CUR, "previous_secret": PREV, "rotated_at": "2026-10-01T12:00:00+03:00"}

    def fp(**change):
        return load_config(secrets={"webhooks": {"endpoints": {"shop": {**base, **change}}}}).fingerprint()

    first = fp()
    assert len(first) == 32 and int(first, 16) >= 0
    assert fp() == first
    assert fp(rotated_at="2026-10-01T09:00:00+00:00") == first  # the same instant
    others = [fp(secret="cur-secret-AAAB"), fp(previous_secret=None), fp(rotated_at="2026-10-01T12:00:01+03:00"),
              fp(tolerance=301), fp(scheme="stripe"), fp(url=BILLS)]
    assert len({first, *others}) == len(others) + 1
    for secret in (CUR, PREV):
        assert secret not in first and secret.encode().hex()[:8] not in first


@pytest.mark.parametrize("entry, expected", [
    ({"url": SHOP, "secret": ""}, "give exactly one current secret"),
    ({"url": SHOP, "secret": "   "}, "the current secret: secret is empty"),
    ({"url": SHOP, "secret": CUR, "scheme": "hmac"}, "scheme 'hmac' is not one of"),
    ({"url": SHOP, "secret": CUR + "!", "scheme": "standard"}, "is not base64"),
    ({"url": SHOP, "secret": CUR, "rotated_at": "2026-10-01T12:00:00"}, "rotated_at has no UTC offset"),
    ({"url": SHOP, "secret": CUR, "tolerance": -1}, "tolerance must be"),
    ({"url": SHOP, "secret": CUR, "previous_secret": [PREV, 3]}, "previous secret #2 must be a string"),
    ({"secret": CUR}, "url is missing"),
])
def test_bad_toml_entries_name_the_place_not_the_secret(entry, expected):
    with pytest.raises(ConfigError) as info:
        load_config(secrets={"webhooks": {"endpoints": {"shop": entry}}})
    message = str(info.value)
    assert expected in message and "[webhooks.endpoints.shop]" in message
    assert CUR not in message and PREV not in message


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="webhook secrets file not found"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"endpoints": ')
    with pytest.raises(ConfigError, match="not a JSON document"):
        load_config(bad)
    bad.write_text('{"hooks": {}}')
    with pytest.raises(ConfigError, match='expected {"endpoints"'):
        load_config(bad)
    path = secrets_json(tmp_path, {SHOP: {"current": CUR, "previous": "  "}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"endpoint {SHOP}: previous secret #1: secret is empty" in str(info.value) and CUR not in str(info.value)


def test_previous_without_current_in_environment(monkeypatch):
    monkeypatch.setenv(ws.PREVIOUS_SECRET_ENV, PREV)
    with pytest.raises(ConfigError, match=f"{ws.SECRET_ENV} is not"):
        load_config()


def test_reprs_hide_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv(ws.SECRET_ENV, ENV_SECRET)
    cfg = load_config(secrets_json(tmp_path, {SHOP: {"current": CUR, "previous": PREV}}))
    shown = repr(cfg) + repr(cfg.for_url(SHOP)) + repr(cfg.default) + " ".join(cfg.sources())
    assert CUR not in shown and PREV not in shown and ENV_SECRET not in shown
    assert ws.SECRET_ENV in cfg.sources()

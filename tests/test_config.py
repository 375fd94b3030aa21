"""Settings precedence: flag, environment, secrets file, default."""

from __future__ import annotations

import pytest

from mpesa_ops.config import ConfigError, load_secrets, section, setting


@pytest.fixture
def secrets_file(tmp_path, monkeypatch):
    path = tmp_path / "secrets.toml"
    path.write_text('[gateway]\nbase_url = "http://from-file"\napi_key = "file-key"\n'
                    '[notify.targets.ops]\ntype = "slack"\n')
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(path))
    return path


def test_flag_beats_environment_beats_file_beats_default(secrets_file, monkeypatch):
    monkeypatch.delenv("MPESA_OPS_BASE_URL", raising=False)
    assert setting(None, "MPESA_OPS_BASE_URL", "gateway.base_url", "dflt") == "http://from-file"
    monkeypatch.setenv("MPESA_OPS_BASE_URL", "http://from-env")
    assert setting(None, "MPESA_OPS_BASE_URL", "gateway.base_url", "dflt") == "http://from-env"
    assert setting("http://flag", "MPESA_OPS_BASE_URL", "gateway.base_url", "dflt") == "http://flag"
    assert setting(None, None, "gateway.link_id", "dflt") == "dflt"


def test_an_empty_environment_variable_does_not_count(secrets_file, monkeypatch):
    monkeypatch.setenv("MPESA_OPS_API_KEY", "")
    assert setting(None, "MPESA_OPS_API_KEY", "gateway.api_key") == "file-key"


def test_nested_sections_and_a_missing_file(secrets_file, tmp_path, monkeypatch):
    assert section("notify.targets") == {"ops": {"type": "slack"}}
    assert section("nothing.here") == {}
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(tmp_path / "absent.toml"))
    assert load_secrets() == {}


def test_a_broken_file_names_itself_and_the_place(tmp_path, monkeypatch):
    path = tmp_path / "secrets.toml"
    path.write_text('[gateway]\napi_key = "unterminated\n')
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(path))
    with pytest.raises(ConfigError, match=r"secrets\.toml: not valid TOML: .*line 2"):
        load_secrets()


def test_the_file_is_parsed_once_until_it_changes_and_callers_get_copies(secrets_file, monkeypatch):
    import tomllib

    calls = []
    real = tomllib.loads
    monkeypatch.setattr(tomllib, "loads", lambda text: calls.append(1) or real(text))
    first = load_secrets()
    first["gateway"]["api_key"] = "changed by a caller"
    assert load_secrets()["gateway"]["api_key"] == "file-key" and len(calls) == 1
    secrets_file.write_text('[gateway]\napi_key = "rotated-key"\n')
    assert section("gateway")["api_key"] == "rotated-key" and len(calls) == 2

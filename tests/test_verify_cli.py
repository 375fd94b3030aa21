"""`mpesa-ops verify`: exit 0 valid, 1 invalid, 2 wrong usage; the verdict and why; no secret echoed."""

from __future__ import annotations

import json

import pytest

from mpesa_ops.cli import main
from mpesa_ops.signatures import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks published test vector's secret
BODY = b'{"test": 2432232314}'


def verify(capsys, *argv):
    code = main(["verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def payload(tmp_path):
    p = tmp_path / "body.json"
    p.write_bytes(BODY)
    return str(p)


def test_published_standard_webhooks_vector_is_valid(capsys, payload):
    code, out, _ = verify(capsys, "--payload", payload, "--scheme", "standard", "--secret", SECRET,
                          "--signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                          "--timestamp", "1614265330", "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                          "--now", "1614265330", "--json")
    result = json.loads(out)
    assert code == 0 and result["valid"] is True and result["verdict"] == "valid"
    assert result["skew_seconds"] == 0 and SECRET not in out


def test_rotation_half_done_is_previous_secret_and_exits_1(capsys, payload):
    old, new = "old-secret-value", "new-secret-value"
    code, out, _ = verify(capsys, "--payload", payload, "--signature", sign("gateway", BODY, old),
                          "--secret", new, "--secret", old, "--json")
    result = json.loads(out)
    assert (code, result["valid"], result["verdict"], result["matched_secret"]) == (1, False, "previous_secret", 1)
    assert result["explanation"] and result["steps"] and old not in out and new not in out


def test_timestamp_one_second_past_tolerance_reports_the_skew(capsys, payload):
    sig = sign("gateway", BODY, "s3cret")
    code, out, _ = verify(capsys, "--payload", payload, "--signature", sig, "--secret", "s3cret",
                          "--timestamp", "1700000000", "--now", "1700000301", "--json")
    result = json.loads(out)
    assert (code, result["verdict"], result["skew_seconds"]) == (1, "timestamp_skew", 301)


def test_secret_from_the_environment(capsys, payload, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    code, out, _ = verify(capsys, "--payload", payload, "--signature", sign("gateway", BODY, "s3cret"),
                          "--secret", "env:HOOK_SECRET")
    assert code == 0 and out.startswith("VALID\n") and "s3cret" not in out
    monkeypatch.setenv("MPESA_OPS_WEBHOOK_SECRET", "s3cret")
    assert verify(capsys, "--payload", payload, "--signature", sign("gateway", BODY, "s3cret"))[0] == 0


def test_re_serialised_body_is_named_with_the_variant_the_endpoint_computed(capsys, payload):
    compact = sign("gateway", b'{"test":2432232314}', "s3cret")
    code, out, _ = verify(capsys, "--payload", payload, "--signature", sign("gateway", BODY, "s3cret"),
                          "--secret", "s3cret", "--computed", compact, "--json")
    assert json.loads(out)["computed_variant"] == "compact"


@pytest.mark.parametrize("argv, message", [
    (["--signature", "sha256=00", "--secret", "x", "--payload", "/nonexistent/body"], "--payload"),
    (["--signature", "sha256=00", "--secret", "", "--payload", "BODY"], "secret"),
    (["--signature", "sha256=00", "--secret", "env:NOPE_NOT_SET", "--payload", "BODY"], "NOPE_NOT_SET"),
])
def test_wrong_usage_exits_2_with_a_clear_line(capsys, payload, monkeypatch, argv, message):
    monkeypatch.delenv("MPESA_OPS_WEBHOOK_SECRET", raising=False)
    argv = [payload if a == "BODY" else a for a in argv]
    code, _, err = verify(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_garbage_signature_header_is_a_clean_verdict(capsys, payload):
    code, out, err = verify(capsys, "--payload", payload, "--signature", "x" * 10_000, "--secret", "s", "--json")
    assert code == 1 and json.loads(out)["verdict"] == "malformed_signature" and not err

"""`mpesa-ops dashboard`: its flags, the Streamlit command it starts, and a store that
cannot be opened failing in one line (the browser test starts it for real)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mpesa_ops import dashboard_cli
from mpesa_ops.cli import build_parser, main


def test_the_command_takes_db_port_address_and_role():
    args = build_parser().parse_args(["dashboard", "--db", "x.db", "--port", "8600", "--address", "127.0.0.1",
                                      "--role", "support"])
    assert (args.db, args.port, args.address, args.role) == ("x.db", 8600, "127.0.0.1", "support")
    assert args.func is dashboard_cli.cmd_dashboard


def test_it_listens_on_this_machine_only_unless_told_otherwise():
    args = build_parser().parse_args(["dashboard"])
    assert args.address == "127.0.0.1"
    assert "--server.address=127.0.0.1" in dashboard_cli.streamlit_command()
    assert "--server.address=0.0.0.0" in dashboard_cli.streamlit_command(address="0.0.0.0")


def test_an_unknown_role_is_wrong_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", "--role", "boss"])
    assert exc.value.code == 2


def test_streamlit_runs_the_app_headless_without_usage_stats_and_with_the_repo_theme(monkeypatch, tmp_path):
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(tmp_path / "s.toml"))
    cmd = dashboard_cli.streamlit_command(8600, "127.0.0.1")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("mpesa_ops/dashboard/app.py")
    for flag in ("--server.headless=true", "--browser.gatherUsageStats=false", "--theme.primaryColor=#1a7f37",
                 "--server.port=8600", "--server.address=127.0.0.1", f"--secrets.files={tmp_path / 's.toml'}"):
        assert flag in cmd


def test_the_forced_settings_win_over_the_config_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[server]\nheadless = false\nport = 9000\n[browser]\ngatherUsageStats = true\n')
    flags = dashboard_cli.config_flags(config)
    assert "--server.port=9000" in flags and "--server.headless=true" in flags
    assert "--server.headless=false" not in flags and "--browser.gatherUsageStats=true" not in flags


def test_a_store_that_cannot_be_opened_fails_in_one_line_without_the_password():
    proc = subprocess.run([sys.executable, "-m", "mpesa_ops", "dashboard", "--db",
                           "postgresql://bob:s3cret@127.0.0.1:1/none"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open the store" in lines[0] and "s3cret" not in lines[0]

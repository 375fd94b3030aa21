"""`mpesa-ops dashboard`: start the Streamlit app on a store.

The store URL reaches the app in MPESA_OPS_DB, the local-mode role in MPESA_OPS_ROLE;
the repository's .streamlit/config.toml is applied as flags (so it holds wherever the
command runs), always headless and without usage statistics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

from mpesa_ops.cli_args import positive_int
from mpesa_ops.dashboard.nav import ROLES

APP = Path(__file__).parent / "dashboard" / "app.py"
REPO_CONFIG = Path(__file__).parent.parent / ".streamlit" / "config.toml"
FORCED = {"server.headless": "true", "browser.gatherUsageStats": "false", "server.fileWatcherType": "none",
          "client.toolbarMode": "viewer"}


# In local mode everyone is admin with phone numbers in full: listen on this machine
# only unless told otherwise.
LOCAL_ONLY = "127.0.0.1"


def add_parsers(sub, db_help: str) -> None:
    """Register this module's commands on the `mpesa-ops` subparsers."""
    p = sub.add_parser("dashboard", help="start the dashboard (Streamlit) on the store",
                       description="Start the Streamlit dashboard on the store and print its address. "
                                   "Stop it with Ctrl-C.")
    p.add_argument("--db", help=db_help)
    p.add_argument("--port", type=positive_int, help="port to listen on (default 8501)")
    p.add_argument("--address", default=LOCAL_ONLY,
                   help=f"address to listen on (default {LOCAL_ONLY}: this machine only, or a reverse proxy on it; "
                        "0.0.0.0 serves every network the machine is on, so configure [auth] first)")
    p.add_argument("--role", choices=ROLES,
                   help="the viewer's role when no login is configured (default: $MPESA_OPS_ROLE, "
                        "else [dashboard] role in secrets.toml, else admin)")
    p.set_defaults(func=cmd_dashboard)


def config_flags(path: Path = REPO_CONFIG) -> list[str]:
    """The repository's Streamlit config as --section.key=value flags, then the forced ones."""
    options: dict[str, str] = {}
    if path.is_file():
        for section, table in tomllib.loads(path.read_text("utf-8")).items():
            for key, value in table.items():
                options[f"{section}.{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
    options.update(FORCED)
    return [f"--{name}={value}" for name, value in options.items()]


def streamlit_command(port: int | None = None, address: str = LOCAL_ONLY) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), *config_flags()]
    if port is not None:
        cmd.append(f"--server.port={port}")
    cmd.append(f"--server.address={address}")
    secrets = os.environ.get("MPESA_OPS_SECRETS")
    if secrets:  # the same file the rest of mpesa-ops reads, for st.login and st.secrets too
        cmd.append(f"--secrets.files={secrets}")
    return cmd


def run_dashboard(db: str | None = None, *, port: int | None = None, address: str = LOCAL_ONLY,
                  role: str | None = None) -> int:
    """Start Streamlit on the store and wait for it; Ctrl-C or SIGTERM stops it."""
    from mpesa_ops.cli import Failure
    from mpesa_ops.ingest.db import StoreError, open_store, resolve_url

    url = resolve_url(db)
    try:
        open_store(url, must_exist=True).dispose()  # fail here, in one line, rather than in the browser
    except StoreError as exc:
        raise Failure(str(exc)) from None
    env = dict(os.environ, MPESA_OPS_DB=url)
    if role:
        env["MPESA_OPS_ROLE"] = role
    try:
        proc = subprocess.Popen(streamlit_command(port, address), env=env)
    except OSError as exc:
        raise Failure(f"cannot start Streamlit: {exc.strerror or exc}") from None
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        status = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status not in (0, -signal.SIGTERM):
        raise Failure(f"the dashboard stopped with status {status}; see Streamlit's messages above")
    return 0


def cmd_dashboard(args) -> int:
    return run_dashboard(args.db, port=args.port, address=args.address, role=args.role)

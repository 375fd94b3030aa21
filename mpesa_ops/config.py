"""Settings that are not flags: the environment and `.streamlit/secrets.toml`.

Precedence everywhere: a command-line flag, then the environment variable, then the
secrets file, then the default. The secrets file is `.streamlit/secrets.toml` in the
working directory (the file Streamlit itself reads), or the path in MPESA_OPS_SECRETS.
Values read here are never printed: callers name the setting, not its value.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

SECRETS_ENV = "MPESA_OPS_SECRETS"
DEFAULT_SECRETS = Path(".streamlit") / "secrets.toml"


class ConfigError(ValueError):
    """The secrets file cannot be read; the message names the file and the place."""


def secrets_path() -> Path:
    return Path(os.environ.get(SECRETS_ENV) or DEFAULT_SECRETS)


_parsed: dict[tuple, dict[str, Any]] = {}  # (path, mtime, size) -> the file's tables, so one load reads it once


def load_secrets(path: Path | None = None) -> dict[str, Any]:
    """The secrets file as a dict (a copy: callers may keep it); {} when there is
    none. Parsed again only when the file changed, so the verdicts, detection and
    notifications after a load, and each dashboard rerun, share one parse."""
    path = path or secrets_path()
    try:
        st = path.stat()
        # ctime and the inode change on every write and every replacement, even one
        # that keeps the size and copies the old mtime (cp -p, rsync)
        key = (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        tables = _parsed.get(key)
        if tables is None:
            tables = _parse(path, path.read_bytes())
            _parsed.clear()  # one file at a time; dashboard sessions may race here, harmlessly
            _parsed[key] = tables
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secrets file: {exc.strerror or exc}") from None
    return copy.deepcopy(tables)


def _parse(path: Path, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def section(name: str, secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    """One table of the secrets file (dotted names reach nested tables), {} when absent."""
    node: Any = load_secrets() if secrets is None else secrets
    for part in name.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def setting(flag: Any, env: str | None, secrets_key: str | None = None, default: Any = None,
            secrets: dict[str, Any] | None = None) -> Any:
    """The first of: the flag's value (when not None), the environment variable (when
    set and not empty), the secrets file's `table.key`, the default."""
    if flag is not None:
        return flag
    if env and os.environ.get(env):
        return os.environ[env]
    if secrets_key:
        table, _, key = secrets_key.rpartition(".")
        value = (section(table, secrets) if table else (load_secrets() if secrets is None else secrets)).get(key)
        if value is not None and value != "":
            return value
    return default

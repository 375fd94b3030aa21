"""The dashboard's test fixtures: a small demo store built once per session, an empty
store, and AppTest runs of the app as a given role (pytest finds them through
conftest.py), plus `page` to open one page of a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mpesa_ops.dashboard import nav
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.detect.run import detect
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.simulate import simulate

APP = Path(__file__).resolve().parents[1] / "mpesa_ops" / "dashboard" / "app.py"


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory) -> str:
    """A small demo store, built once: 3 days at 300 payments a day, loaded and detected."""
    folder = tmp_path_factory.mktemp("demo")
    simulate(folder / "logs", days=3, seed=11, per_day=300, start=dt.date.today() - dt.timedelta(days=2))
    url = f"sqlite:///{folder / 'demo.db'}"
    engine = open_store(url)
    ingest_paths(engine, [str(folder / "logs")])
    detect(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def empty_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('empty') / 'empty.db'}"
    open_store(url).dispose()
    return url


@pytest.fixture
def app(monkeypatch, tmp_path):
    """app(store_url, role=None, secrets=None) -> an AppTest that has run once."""
    secrets = tmp_path / "secrets.toml"
    monkeypatch.setenv("MPESA_OPS_SECRETS", str(secrets))  # never the developer's own file

    def make(url: str, role: str | None = "admin", secrets_text: str = "", user: dict | None = None,
             query: dict | None = None) -> AppTest:
        monkeypatch.setenv("MPESA_OPS_DB", url)
        if role:
            monkeypatch.setenv("MPESA_OPS_ROLE", role)
        else:
            monkeypatch.delenv("MPESA_OPS_ROLE", raising=False)
        secrets.write_text(secrets_text)
        at = AppTest.from_file(str(APP), default_timeout=60)
        if user is not None:
            at.user = user
        at.query_params.update(query or {})
        return at.run()

    return make


def page(at: AppTest, name: str, **query) -> AppTest:
    at.query_params.update(query)
    return at.switch_page(nav.page_path(name)).run()

"""End to end: `mpesa-ops dashboard` on a demo store, driven by headless Chromium
(Debian's /usr/bin/chromium through Playwright; no browser is downloaded). Every page
opens without a Streamlit error, shows its key content, and is saved as a screenshot
(in MPESA_OPS_SCREENSHOTS, else a temporary folder printed in the output)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from mpesa_ops.dashboard import nav
from mpesa_ops.ingest.db import open_store
from mpesa_ops.ingest.detect.run import detect
from mpesa_ops.ingest.run import ingest_paths
from mpesa_ops.ingest.simulate import simulate
from mpesa_ops.ingest.verdicts import refresh_verdicts
from mpesa_ops.ingest.webhook_secrets import load_config

CHROMIUM = "/usr/bin/chromium"
KEY_CONTENT = {  # what each page must show once it has run
    "overview": "Failure rate by family",
    "alerts": "firing",
    "failures": "Find a payment",
    "finance": "Insufficient funds",
    "gateway_errors": "Requests refused",
    "webhooks": "Webhooks",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running `mpesa-ops dashboard` (admin, local mode) on a demo store: its base URL."""
    folder = tmp_path_factory.mktemp("e2e")
    simulate(folder / "logs", days=3, seed=21, per_day=300, start=dt.date.today() - dt.timedelta(days=2))
    url = f"sqlite:///{folder / 'demo.db'}"
    engine = open_store(url)
    ingest_paths(engine, [str(folder / "logs")])
    secrets_file = folder / "logs" / "webhook-secrets.json"
    refresh_verdicts(engine, load_config(secrets_file))
    detect(engine)
    engine.dispose()
    port = _free_port()
    env = dict(os.environ, MPESA_OPS_SECRETS=str(folder / "no-secrets.toml"),
               MPESA_OPS_WEBHOOK_SECRETS_FILE=str(secrets_file))
    env.pop("MPESA_OPS_ROLE", None)
    cli = Path(sys.executable).with_name("mpesa-ops")
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen([str(cli), "dashboard", "--db", url, "--port", str(port), "--address", "127.0.0.1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"the dashboard did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MPESA_OPS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


_SETTLED = """() => {
    const status = document.querySelector('[data-testid="stStatusWidget"]');
    const running = status && status.innerText.includes('Running');
    const skeletons = document.querySelectorAll('[data-testid="stSkeleton"]').length;
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    return !running && skeletons === 0 && charts.every(c => c.querySelector('svg.main-svg'));
}"""


def _settle(page, text: str) -> None:
    """Wait for the page's key text, then until Streamlit has finished the script (a
    rerun from the URL's parameters included) and every chart is drawn, twice in a row
    half a second apart."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
    for _ in range(2):
        page.wait_for_function(_SETTLED, timeout=60_000)
        page.wait_for_timeout(500)


def _no_error_box(page, name: str) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, name
    assert "Traceback" not in page.content(), name


@pytest.mark.parametrize("pdef", nav.PAGES, ids=[p.name for p in nav.PAGES])
def test_every_page_opens_in_a_real_browser_without_errors(server, browser, shots, pdef):
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # Streamlit scrolls inside: no full_page
    path = "" if pdef is nav.PAGES[0] else pdef.name
    page.goto(f"{server}/{path}?range=7d")
    _settle(page, KEY_CONTENT[pdef.name])
    _no_error_box(page, pdef.name)
    assert page.get_by_text("Local mode").count() >= 1  # the banner
    page.screenshot(path=str(shots / f"dashboard-{pdef.name}.png"))
    page.close()


def test_a_code_on_the_overview_opens_its_failed_payments(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/?range=7d")
    _settle(page, "Top failure codes")
    page.get_by_role("link", name="Payments", exact=True).first.click()
    _settle(page, "Find a payment")
    assert "/failures" in page.url and "code=" in page.url and "range=7d" in page.url
    _no_error_box(page, "failures from overview")
    assert page.get_by_text("payments · page 1 of").count() == 1
    page.close()

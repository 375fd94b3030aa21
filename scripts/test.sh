#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole suite.
# Storage tests run on SQLite and on the Postgres at 127.0.0.1:5432 (database `test`);
# set MPESA_OPS_TEST_PG to use another. A Postgres that cannot be reached fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

# The browser test drives Debian's Chromium through Playwright (never a browser download).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian's chromium and chromium-driver for the browser test" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "the browser test needs /usr/bin/chromium: run 'sudo apt-get install chromium chromium-driver'" >&2
    fi
fi

pg_host=127.0.0.1
if command -v pg_isready >/dev/null && ! pg_isready -q -h "$pg_host" -p 5432; then
    echo "Postgres is not answering on $pg_host:5432; trying to start the local cluster" >&2
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        for _ in $(seq 1 30); do pg_isready -q -h "$pg_host" -p 5432 && break; sleep 1; done
    fi
fi

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit "$status"

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

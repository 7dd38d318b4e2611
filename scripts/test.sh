#!/usr/bin/env bash
# Runs the whole test suite: starts the protocol servers and PostgreSQL, runs ruff, mypy and pytest,
# stops them.
set -uo pipefail
cd "$(dirname "$0")/.."
export OSBUILDD_TEST_MOTO=${OSBUILDD_TEST_MOTO:-http://127.0.0.1:5000}
export OSBUILDD_TEST_AZURITE=${OSBUILDD_TEST_AZURITE:-http://127.0.0.1:10000}
export OSBUILDD_TEST_GCS=${OSBUILDD_TEST_GCS:-http://127.0.0.1:9023}
bash scripts/test-servers.sh start || exit 1
trap 'bash scripts/test-servers.sh stop' EXIT
# the private PostgreSQL cluster (scripts/test-pg.sh); REQUIRE makes its tests fail, not skip, without it
RUN=${OSBUILDD_TEST_RUN:-/var/tmp/osbuildd-test/servers}
OSBUILDD_TEST_PG=$(cat "$RUN/pg.url") || exit 1
export OSBUILDD_TEST_PG OSBUILDD_TEST_PG_CTL=$RUN/pg_ctl OSBUILDD_TEST_REQUIRE_PG=1
.venv/bin/ruff check osbuildd tests bench || exit 1
.venv/bin/mypy || exit 1   # strict on osbuildd/ ([tool.mypy] in pyproject.toml)
.venv/bin/python -m pytest -ra --durations=60 "$@"   # the slowest tests listed: CI time is watched
rc=$?
# pytest's "no tests collected" (5) is a failure here: a suite that ran nothing proves nothing.
exit $rc

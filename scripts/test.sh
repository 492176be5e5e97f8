#!/usr/bin/env bash
# Runs every test (XCTest) and ends with one plain summary line: "N passed, N failed".
set -uo pipefail
mkdir -p .build
# Input must never trap the process: no force unwraps, try! or as! in the sources outside a reviewed allow-list.
/usr/bin/python3 scripts/check_unwraps.py || exit 1
# The systemd unit, the nginx site and the logrotate file in deploy/ are checked as installed (scratch root, nginx -t).
bash scripts/verify-deploy.sh || exit 1
# A throwaway PostgreSQL cluster (Unix socket only) for the PostgreSQL store's tests, stopped on every exit.
pg_parent=$(mktemp -d /tmp/roster-pg.XXXXXX); chmod 755 "$pg_parent"
trap 'bash scripts/postgres.sh stop "$pg_parent/pg"; rm -rf "$pg_parent"' EXIT
ROSTER_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "$pg_parent/pg") || { echo "tests: PostgreSQL did not start"; exit 1; }
export ROSTER_TEST_POSTGRES_URL ROSTER_TEST_POSTGRES_REQUIRED=1
swift test --disable-swift-testing "$@" 2>&1 | tee .build/test-output.log
status=${PIPESTATUS[0]}
summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?" .build/test-output.log | tail -1)
executed=$(echo "$summary" | sed -E 's/.*Executed ([0-9]+) tests?.*/\1/')
failed=$(echo "$summary" | sed -E 's/.*with ([0-9]+) failures?.*/\1/')
if [ -z "$summary" ]; then
  echo "tests: no XCTest summary (build failure?)"
  exit "$([ "$status" -ne 0 ] && echo "$status" || echo 1)"
fi
echo "tests: $((executed - failed)) passed, ${failed} failed"
[ "$status" -ne 0 ] && exit "$status"
# The domain, page and integration suites again, on PostgreSQL: each test (and each app it starts behind nginx) gets a
# database of its own on the throwaway cluster.
ROSTER_TEST_STORE=postgres swift test --skip-build --disable-swift-testing --filter "RosterTests|WebTests|IntegrationTests" 2>&1 \
  | tee .build/test-output-postgres.log | grep -E "error:|Executed [0-9]+ tests" | tail -20
pg_status=${PIPESTATUS[0]}
pg_summary=$(grep -E "^[[:space:]]*Executed [0-9]+ tests?, with" .build/test-output-postgres.log | tail -1)
[ -n "$pg_summary" ] || { echo "tests on PostgreSQL: no XCTest summary"; exit 1; }
echo "tests on PostgreSQL: $pg_summary"
[ "$pg_status" -ne 0 ] && exit "$pg_status"
# Then the flows in a real headless Chromium against the release binary behind nginx.
if [ "${ROSTER_E2E:-1}" = "1" ]; then
  /usr/bin/python3 Tests/e2e/run.py || exit 1
  ROSTER_TEST_STORE=postgres /usr/bin/python3 Tests/e2e/run.py || exit 1
fi
exit 0

#!/usr/bin/env bash
# The whole suite: sets up everything (scripts/setup.sh --test), runs the linters (make lint), then every test —
# fast, real libvirt, browser — on SQLite, then the tests that use the database on PostgreSQL (docs/testing.md).
# Extra arguments go to pytest, and then only the SQLite pass runs.
#   scripts/test.sh --fast [pytest args]   fast tests only: no root, no apt, no libvirt daemon, no Redis
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--fast" ]]; then
  shift
  # Only the Python environment (the machine already has what libvirt-python builds against).
  if [[ ! -x .venv/bin/python ]]; then "${PYTHON:-python3}" -m venv .venv; fi
  if [[ ! -f .venv/.installed[test] || pyproject.toml -nt .venv/.installed[test] ]]; then
    .venv/bin/pip install -q -e ".[test]" && touch ".venv/.installed[test]"
  fi
  exec .venv/bin/pytest -m "not real and not browser" "$@"
fi
scripts/setup.sh --test
make --no-print-directory lint
.venv/bin/python manage.py collectstatic --noinput -v0
if (( $# )); then exec .venv/bin/pytest "$@"; fi  # a part of the suite: SQLite only
status=0
.venv/bin/pytest || status=$?
# The second pass, on PostgreSQL (the role and database scripts/setup.sh --test made): every fast test that uses
# the database but the two permission matrices (the same rules on any database, and over half of the time), and the
# real tests marked `postgres` (the 20 concurrent creates against the quota).
SECONDS=0
KVMWEB_DATABASE_URL=${KVMWEB_TEST_POSTGRES_URL:-postgres://kvmweb_test:kvmweb_test@127.0.0.1:5432/kvmweb_test} \
  .venv/bin/pytest --db-only -m "(not real and not browser) or postgres" \
  --ignore=tests/access/test_permission_matrix.py --ignore=tests/access/test_role_matrix.py || status=$?
echo "PostgreSQL pass: ${SECONDS} s"
exit $status

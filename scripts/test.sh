#!/usr/bin/env bash
# The whole suite: sets up everything (scripts/setup.sh --test), runs the linters (make lint), then every test —
# fast, real libvirt, browser. Extra arguments go to pytest.
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
exec .venv/bin/pytest "$@"

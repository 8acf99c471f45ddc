#!/usr/bin/env bash
# Sets up everything the tests need (scripts/setup.sh --test) and runs the whole suite: fast, real, browser.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/python manage.py collectstatic --noinput -v0
exec .venv/bin/pytest "$@"

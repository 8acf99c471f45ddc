#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the portal: uvicorn (HTTP + websockets) and a Celery worker.
# Ctrl-C stops what this script started. Listens on 127.0.0.1:${KVMWEB_PORT:-8000} unless KVMWEB_BIND says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BIND=${KVMWEB_BIND:-127.0.0.1}
PORT=${KVMWEB_PORT:-8000}
.venv/bin/python manage.py bootstrap
.venv/bin/python manage.py collectstatic --noinput -v0

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping kvmweb..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Celery refuses to run as root unless told; on these machines the portal runs as root because libvirt's
# qemu:///system socket has no polkit here (see README, "Running as root").
export C_FORCE_ROOT=1
# Celery workers: one for the default queue and one per host queue, following the hosts (docs/deploy.md).
# --beat: the default queue's worker also runs Celery beat (periodic work: the sweep of abandoned uploads); only one
# machine may.
.venv/bin/python manage.py workers --beat var/celerybeat-schedule &
pids+=($!)
# The web process: uvicorn (uvloop, httptools) serving kvmweb.asgi (HTTP + websockets); chosen over daphne by
# bench/asgi_bench.py (docs/benchmarks.md). No lifespan events: the Channels application has none.
.venv/bin/uvicorn --host "$BIND" --port "$PORT" --loop uvloop --http httptools --lifespan off kvmweb.asgi:application &
pids+=($!)
# libvirt domain events (VM state changes) of every host → browsers, live (/ws/events/).
.venv/bin/python manage.py event_listener &
pids+=($!)
# Usage of every VM and host every KVMWEB_STATS_INTERVAL s → the history (Redis), the graphs and lists, live.
.venv/bin/python manage.py collector &
pids+=($!)
# The console proxy (websockify + one-time tokens): 127.0.0.1:${KVMWEB_CONSOLE_PORT:-6080} unless KVMWEB_CONSOLE_BIND says otherwise.
.venv/bin/python manage.py console_proxy &
pids+=($!)
echo
echo "kvmweb is running: http://$BIND:$PORT/   (Ctrl-C stops it)"
echo "Log in as ${KVMWEB_ADMIN_USER:-admin}; a generated password is printed above and kept in var/admin_password."
wait -n "${pids[@]}"

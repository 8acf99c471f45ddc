#!/usr/bin/env bash
# Installs and starts everything kvmweb needs on a Debian 12 machine, as root. Idempotent: run it again and it
# reuses what exists. Usage: scripts/setup.sh [--test]   (--test adds the test-only packages and Python extras)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TEST=0
[[ "${1:-}" == "--test" ]] && TEST=1
VAR=${KVMWEB_VAR_DIR:-$ROOT/var}
mkdir -p "$VAR"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# -- Debian packages ----------------------------------------------------------------------------------------
PKGS=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils libvirt-dev pkg-config iptables
      redis-server python3 python3-venv python3-dev gcc nodejs npm osinfo-db iproute2 dnsmasq-base
      openssh-client)
TEST_PKGS=(chromium memtest86+ grub-rescue-pc virtinst openssh-server postgresql)
want=("${PKGS[@]}")
(( TEST )) && want+=("${TEST_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from elsewhere (nodesource, nvm): accept working commands.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if (( ${#missing[@]} )); then
  say "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- libvirt ------------------------------------------------------------------------------------------------
if ! virsh -c qemu:///system uri >/dev/null 2>&1; then
  say "Starting virtlogd and libvirtd (no running daemon answered)"
  mkdir -p /var/log/libvirt
  if [[ -e /dev/kvm ]]; then chgrp kvm /dev/kvm 2>/dev/null && chmod 0660 /dev/kvm || true; fi
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for _ in $(seq 50); do virsh -c qemu:///system uri >/dev/null 2>&1 && break; sleep 0.2; done
  virsh -c qemu:///system uri >/dev/null
elif ! pgrep -x virtlogd >/dev/null && [[ ! -d /run/systemd/system ]]; then
  virtlogd -d
fi
# Network safety: libvirt's stock NAT network stays off.
virsh -c qemu:///system net-autostart default --disable >/dev/null 2>&1 || true

# -- Redis --------------------------------------------------------------------------------------------------
REDIS_PORT=${KVMWEB_REDIS_PORT:-6379}
if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  say "Starting Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$VAR/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --pidfile "$VAR/redis/redis.pid" --logfile "$VAR/redis/redis.log" --dir "$VAR/redis"
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# -- PostgreSQL (tests only: the second pass of the database tests, see docs/testing.md) ---------------------
# Debian's cluster listens on localhost and its unix socket only. The test role may create databases (pytest-django
# makes one per run); its password is no secret: it reaches nothing but this machine's throwaway test databases.
if (( TEST )); then
  PG_VERSION=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
  if [[ -n "$PG_VERSION" ]] && ! pg_lsclusters -h 2>/dev/null | awk '$2=="main" && $4=="online"' | grep -q .; then
    say "Starting PostgreSQL $PG_VERSION"
    pg_ctlcluster "$PG_VERSION" main start
  fi
  pg() { (cd / && runuser -u postgres -- "$@"); }
  for _ in $(seq 50); do pg pg_isready -q && break; sleep 0.2; done
  pg psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='kvmweb_test'" | grep -q 1 ||
    pg psql -qc "CREATE ROLE kvmweb_test LOGIN CREATEDB PASSWORD 'kvmweb_test'"
  # Throwaway data: commits need not wait for the disk (the tests commit and truncate thousands of times).
  pg psql -qc "ALTER ROLE kvmweb_test SET synchronous_commit = off"
  pg psql -qtAc "SELECT 1 FROM pg_database WHERE datname='kvmweb_test'" | grep -q 1 || pg createdb -O kvmweb_test kvmweb_test
fi

# -- Python -------------------------------------------------------------------------------------------------
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  say "Creating the virtualenv in .venv"
  "$PY" -m venv .venv
fi
EXTRAS=""
(( TEST )) && EXTRAS="[test]"  # includes [postgres]
stamp=.venv/.installed$EXTRAS
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  say "Installing Python packages"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".$EXTRAS"
  touch "$stamp"
fi

# -- Front-end packages (npm, from package-lock.json) -------------------------------------------------------
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  say "Installing front-end packages (npm ci)"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
fi

# -- The cloud-init test guest (Debian 12 + cloud-init + the guest agent, booted by the real tests) ---------------
if (( TEST )); then
  IMAGE_DIR="$VAR/cloud-image"
  if [[ ! -f "$IMAGE_DIR/base.qcow2" || ! -f "$IMAGE_DIR/vmlinuz" || ! -f "$IMAGE_DIR/initrd" ]]; then
    say "Building the cloud-init test image in $IMAGE_DIR (about 40 s, once per machine)"
    scripts/cloud-image.sh "$IMAGE_DIR"
  fi
fi

# -- Database -----------------------------------------------------------------------------------------------
.venv/bin/python manage.py migrate --noinput -v0
# The portal's own SSH key for remote hosts (KVMWEB_SSH_DIR, default var/ssh): made once, kept after that.
.venv/bin/python manage.py ssh_key >/dev/null
say "Setup done"

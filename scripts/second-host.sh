#!/bin/bash
# A second, independent libvirt host on this machine, for the many-hosts tests: a libvirtd in its own network,
# mount, PID and UTS namespaces, reached over a veth pair whose addresses exist only on this machine, with an
# sshd bound to its side of the pair (qemu+libssh with a pinned host key).
#   scripts/second-host.sh up DIR [SLOT]   start it (SLOT 1-250 picks the /30 and the names; default 1)
#   scripts/second-host.sh down DIR        stop everything `up DIR` started, by PID, and remove the namespace
# `up` writes DIR/env (shell variables: URIs, addresses, key paths) for the caller. DIR holds only files `up`
# makes; host 2's local disks live in DIR/disks (the same path is a different folder for each host), DIR/shared
# is one folder both hosts see.
set -euo pipefail
cmd=${1:?usage: second-host.sh up|down DIR [SLOT]}; BASE=${2:?a folder}; BASE=$(realpath -m "$BASE")
B=$BASE/h2; D=$BASE/ssh

down() {
  [ -f "$BASE/env" ] || { echo "nothing started in $BASE"; return 0; }
  # shellcheck disable=SC1091
  . "$BASE/env"
  for d in $(virsh -c "$H2_TCP" list --all --name 2>/dev/null); do
    virsh -c "$H2_TCP" destroy "$d" >/dev/null 2>&1 || true
    virsh -c "$H2_TCP" undefine --snapshots-metadata --nvram "$d" >/dev/null 2>&1 || true
  done
  if [ -f "$B/unshare.pid" ]; then
    local up init
    up=$(cat "$B/unshare.pid"); init=$(pgrep -P "$up" 2>/dev/null | head -1 || true)
    [ -n "$init" ] && kill -TERM "$init" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "$up" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$up" 2>/dev/null && kill -KILL "$up" 2>/dev/null || true
    rm -f "$B/unshare.pid"
  fi
  ip link del "$VETH" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -f "$BASE/env"
  echo "second host in $BASE stopped"
}

up() {
  local slot=${1:-1}
  [[ "$slot" =~ ^[0-9]+$ ]] && (( slot >= 1 && slot <= 250 )) || { echo "SLOT must be 1-250" >&2; exit 2; }
  local NS=kvmweb-h2-$slot VETH=kvh2-$slot-a PEER=kvh2-$slot-b H1IP=10.77.$slot.1 H2IP=10.77.$slot.2
  local HOST_UUID
  HOST_UUID=$(printf '5a1e0000-0000-4000-8000-%012d' "$slot")  # differs from host 1's, or migration refuses
  if ip netns list | grep -qw "$NS"; then echo "namespace $NS exists: slot $slot is taken" >&2; exit 3; fi
  command -v sshd >/dev/null || { echo "openssh-server is missing (scripts/setup.sh --test installs it)" >&2; exit 4; }
  mkdir -p "$B"/{run,lib,cache,log,etc} "$BASE"/{disks,shared} "$D" /run/sshd
  chmod 755 "$BASE" "$B" "$B/lib" "$B/cache" "$B/log" "$BASE/disks" "$BASE/shared"
  [ -f "$D/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C kvmweb-h2 -f "$D/host_ed25519"
  [ -f "$D/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C kvmweb-test-client -f "$D/client_ed25519"
  cp "$D/client_ed25519.pub" "$D/authorized_keys"; chmod 600 "$D/authorized_keys"
  # host 2's libvirt: only host 1's *.conf (none of its domains, networks or pools), then our overrides
  rm -rf "$B/etc"; mkdir -p "$B/etc"; cp /etc/libvirt/*.conf "$B/etc/"; cp -a /etc/libvirt/nwfilter "$B/etc/"
  printf 'listen_tls = 0\nlisten_tcp = 1\nlisten_addr = "%s"\nauth_tcp = "none"\nhost_uuid = "%s"\n' \
    "$H2IP" "$HOST_UUID" >> "$B/etc/libvirtd.conf"
  # `ip netns exec` remounts /sys: host 2 sees no cgroups; an empty list keeps the daemons off each other's
  printf 'cgroup_controllers = [ ]\nmigration_address = "%s"\nmigration_host = "%s"\n' "$H2IP" "$H2IP" \
    >> "$B/etc/qemu.conf"
  printf '127.0.0.1 localhost\n%s kvmweb-h2\n%s kvmweb-h1\n' "$H2IP" "$H1IP" > "$B/hosts"
  { printf 'Port 2222\nListenAddress %s\nHostKey %s\nPidFile /run/sshd.pid\nAuthorizedKeysFile %s\n' \
      "$H2IP" "$D/host_ed25519" "$D/authorized_keys"
    printf 'StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n'
    printf 'KbdInteractiveAuthentication no\nUsePAM no\n'; } > "$B/sshd_config"
  # the network: a veth pair into a namespace of our own; no default route, nothing else reachable
  ip netns add "$NS"
  ip link add "$VETH" type veth peer name "$PEER" netns "$NS"
  sysctl -qw "net.ipv6.conf.$VETH.disable_ipv6=1"
  ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip addr add "$H1IP/30" dev "$VETH"; ip link set "$VETH" up
  ip -n "$NS" addr add "$H2IP/30" dev "$PEER"; ip -n "$NS" link set "$PEER" up; ip -n "$NS" link set lo up
  # host 2's "init": private /run and libvirt folders, its own virtlogd, libvirtd and sshd; PID 1 of its PID
  # namespace reaps orphaned QEMU processes, and killing it stops everything inside
  cat > "$B/init.sh" <<EOI
#!/bin/bash
hostname kvmweb-h2
mount --bind $B/run /run
mkdir -p /run/libvirt /run/lock /run/sshd
mount --bind $B/etc /etc/libvirt
mount --bind $B/lib /var/lib/libvirt
mount --bind $B/cache /var/cache/libvirt
mount --bind $B/log /var/log/libvirt
mount --bind $B/hosts /etc/hosts
mkdir -p $B/disks && mount --bind $B/disks $BASE/disks
virtlogd -d
libvirtd -d --listen
/usr/sbin/sshd -f $B/sshd_config -E $B/sshd.log
trap 'kill -TERM \$(cat /run/libvirtd.pid /run/virtlogd.pid /run/sshd.pid 2>/dev/null) 2>/dev/null; sleep 2; exit 0' TERM INT
while :; do sleep 1 & wait \$!; done
EOI
  chmod +x "$B/init.sh"
  ip netns exec "$NS" unshare --mount --pid --uts --fork --mount-proc --propagation private "$B/init.sh" \
    > "$B/init.log" 2>&1 < /dev/null &
  echo $! > "$B/unshare.pid"
  : > "$D/known_hosts"
  echo "[$H2IP]:2222 $(cut -d' ' -f1,2 "$D/host_ed25519.pub")" >> "$D/known_hosts"
  local tcp="qemu+tcp://$H2IP/system"
  local ssh="qemu+libssh://root@$H2IP:2222/system?keyfile=$D/client_ed25519&known_hosts=$D/known_hosts&sshauth=privkey"
  cat > "$BASE/env" <<EOV
NS=$NS
VETH=$VETH
H1IP=$H1IP
H2IP=$H2IP
H2_TCP=$tcp
H2_LIBSSH='$ssh'
H2_HOST_KEY=$D/host_ed25519.pub
CLIENT_KEY=$D/client_ed25519
KNOWN_HOSTS=$D/known_hosts
INIT_PID=$(cat "$B/unshare.pid")
EOV
  for _ in $(seq 1 100); do
    virsh -c "$tcp" hostname >/dev/null 2>&1 && { echo "second host up: $tcp"; return 0; }
    sleep 0.1
  done
  echo "host 2 did not answer; its log:" >&2; cat "$B/init.log" >&2; down; exit 1
}

case $cmd in
  up) up "${3:-1}" ;;
  down) down ;;
  *) echo "usage: second-host.sh up|down DIR [SLOT]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The real cloud-init guest the tests boot: a tiny Debian 12 (bookworm) root file system with cloud-init (NoCloud)
# and the QEMU guest agent, started by direct kernel boot under TCG (see docs/testing.md).
# Usage: scripts/cloud-image.sh [OUTDIR]   (default: var/cloud-image) -> OUTDIR/base.qcow2, vmlinuz, initrd.
# Idempotent: builds only when one of the three files is missing (about 40 s from the Debian mirror). As root.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${KVMWEB_VAR_DIR:-$PWD/var}/cloud-image}
SIZE=${SIZE:-2G}
if [[ -f "$OUT/base.qcow2" && -f "$OUT/vmlinuz" && -f "$OUT/initrd" ]]; then
  exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
# The mirror apt already uses on this machine (deb822 sources, else the one-line format).
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[[ -n "$MIRROR" ]] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs

# Kernel modules the guest never needs are removed (the image stays small); virtio_net and what it depends on stay,
# so a guest with a NIC gets an address from cloud-init's fallback network config (DHCP by systemd-networkd).
# (mmdebstrap runs hooks with sh: no brace expansion.)
# shellcheck disable=SC2016  # the hooks are run by mmdebstrap, with the root file system as $1
PRUNE='M=$(echo "$1"/usr/lib/modules/*/kernel)
find "$M/drivers/net" -type f ! -name "virtio_net.ko*" ! -name "net_failover.ko*" -delete
find "$M/net" -type f ! -path "*/net/core/failover.ko*" -delete
find "$M/drivers/net" "$M/net" -depth -type d -empty -delete
for d in sound drivers/infiniband drivers/comedi drivers/target drivers/md drivers/gpu drivers/media drivers/usb \
    drivers/iio drivers/isdn drivers/bluetooth drivers/nvme drivers/staging fs/btrfs fs/xfs fs/ocfs2 fs/nfs fs/nfsd \
    fs/ceph fs/smb fs/gfs2 fs/f2fs fs/ubifs fs/jfs fs/reiserfs fs/nilfs2 fs/dlm fs/cifs; do rm -rf "${M:?}/$d"; done'

mmdebstrap --variant=minbase --mode=root --quiet \
  --include=systemd-sysv,udev,linux-image-cloud-amd64,initramfs-tools,cloud-init,qemu-guest-agent,openssh-server,dbus,iproute2 \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/i18n/*' \
  --customize-hook='echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" > "$1/etc/fstab"' \
  --customize-hook='printf "datasource_list: [ NoCloud, None ]\nlocale: C.UTF-8\n" > "$1/etc/cloud/cloud.cfg.d/90-kvmweb-test.cfg"' \
  --customize-hook='echo LANG=C.UTF-8 > "$1/etc/default/locale"; echo localhost > "$1/etc/hostname"' \
  --customize-hook=': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id" "$1"/etc/ssh/ssh_host_*' \
  --customize-hook="$PRUNE" \
  --customize-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/kvmweb-test"; printf "virtio_pci\nvirtio_blk\n" >> "$1/etc/initramfs-tools/modules"' \
  --customize-hook='chroot "$1" sh -c "for k in /usr/lib/modules/*; do depmod -a \$(basename \$k); done; update-initramfs -u -k all"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
  --customize-hook='chroot "$1" systemctl mask e2scrub_reap.service systemd-networkd-wait-online.service' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$ROOTFS" "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main"

cp "$ROOTFS"/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$ROOTFS"/boot/initrd.img-* "$WORK/initrd"
truncate -s "$SIZE" "$WORK/base.raw"
mkfs.ext4 -q -F -L rootfs -d "$ROOTFS" -E root_owner=0:0 "$WORK/base.raw"   # no loop device or mount needed
qemu-img convert -f raw -O qcow2 "$WORK/base.raw" "$WORK/base.qcow2"
# base.qcow2 comes last: a build stopped half-way is built again next time.
mv "$WORK/vmlinuz" "$WORK/initrd" "$OUT/"
mv "$WORK/base.qcow2" "$OUT/base.qcow2"
chmod 644 "$OUT/base.qcow2" "$OUT/vmlinuz" "$OUT/initrd"

#!/bin/sh
# Replace kernel modules before the guest's runs: modules.sh DIR KO... unmounts the file
# system DIR is on, removes the modules named like the .ko files (in reverse order: the
# last given may depend on the first), loads the files in the order given and mounts the
# file system again as it was (cifs with run.sh's password, which findmnt does not show).
set -u
dir=$1
shift
mnt=$(findmnt -n -o TARGET --target "$dir")
dev=$(findmnt -n -o SOURCE --target "$mnt")
fstype=$(findmnt -n -o FSTYPE --target "$mnt")
opts=$(findmnt -n -o OPTIONS --target "$mnt")
umount "$mnt" || exit 2
names=
for ko in "$@"; do names="$(basename "$ko" .ko) $names"; done
# cifs holds its module for a moment after the unmount (deferred closes): retry.
try=0
until rmmod $names; do
    try=$((try + 1))
    [ $try -ge 10 ] && exit 2
    sleep 1
done
for ko in "$@"; do insmod "$ko" || exit 2; done
[ "$fstype" = cifs ] && opts="$opts,password=fsrace"
# -i: the kernel's ntfs driver, not the mount.ntfs helper (ntfs-3g, FUSE), as run.sh
helper=
[ "$fstype" = ntfs ] && helper=-i
mount $helper -t "$fstype" -o "$opts" "$dev" "$mnt" || exit 2
now=$(findmnt -n -o FSTYPE --target "$mnt")
if [ "$now" != "$fstype" ]; then
    echo "$mnt came back as $now, not $fstype: the replaced module is not in use" >&2
    exit 2
fi
for ko in "$@"; do
    echo "module replaced: $(basename "$ko") sha256 $(sha256sum "$ko" | cut -c1-16)"
done

#!/bin/bash
# Cold reads of a file written as large extents, for `fsrace vm-run --fs btrfs [--module
# btrfs.ko] bench/btrfs-read-cost.sh`: what a change to btrfs's extent map cache costs reads
# (docs/benchmarks.md). FILE is the run's file on the guest's btrfs.
f=$1
dd if=/dev/zero of=$f bs=1M count=256 conv=fsync status=none
filefrag $f 2>/dev/null | tail -1 || true
ms() { local s=${EPOCHREALTIME/./}; "$@"; local e=${EPOCHREALTIME/./}; echo $(( (e - s) / 1000 )); }
for i in 1 2 3; do
  sync; echo 3 > /proc/sys/vm/drop_caches
  echo "buffered, 256 MiB in 1 MiB reads: $(ms dd if=$f of=/dev/null bs=1M status=none) ms"
  echo "O_DIRECT, 64 MiB in 4 KiB reads: $(ms dd if=$f of=/dev/null bs=4k count=16384 iflag=direct status=none) ms"
done

#!/bin/sh
# fsrace guest init: mount the basics and the run's disk, hand over to its script.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /io
mount /dev/vdb /io
exec /bin/sh /io/init.sh

#!/bin/sh
# rename.sh DIR: turn a copy of fs/fuse into module fsracefuse, which can load beside a
# built-in fuse: its own device (/dev/fsracefuse, a dynamic minor), file system types
# (fsracefuse, fsracefuseblk, fsracefusectl), sysfs and sysctl folders, trace system,
# and no exported symbols (the built-in exports the same names).
set -e
cd "$1"
rm -f cuse.c virtio_fs.c
sed -i 's/^\(EXPORT_SYMBOL\(_GPL\)\?(.*);\)$/\/* \1 *\//' *.c
sed -i 's/\.minor = FUSE_MINOR,/.minor = MISC_DYNAMIC_MINOR,/; s/\.name  = "fuse",/.name  = "fsracefuse",/' dev.c
sed -i 's/^MODULE_ALIAS_MISCDEV(FUSE_MINOR);//; s/^MODULE_ALIAS("devname:fuse");//' dev.c
sed -i 's/\.name\t\t= "fuse",/.name\t\t= "fsracefuse",/; s/\.name\t\t= "fuseblk",/.name\t\t= "fsracefuseblk",/; s/MODULE_ALIAS_FS("fuse");//; s/MODULE_ALIAS_FS("fuseblk");//; s/kobject_create_and_add("fuse", fs_kobj)/kobject_create_and_add("fsracefuse", fs_kobj)/' inode.c
sed -i 's/\.name\t\t= "fusectl",/.name\t\t= "fsracefusectl",/; s/MODULE_ALIAS_FS("fusectl");//' control.c
[ -f sysctl.c ] && sed -i 's|register_sysctl("fs/fuse"|register_sysctl("fs/fsracefuse"|' sysctl.c
[ -f fuse_trace.h ] && sed -i 's/^#define TRACE_SYSTEM fuse$/#define TRACE_SYSTEM fsracefuse/' fuse_trace.h
# The kernel's own Makefile, so that each version's list of objects is kept: fuse.o
# becomes fsracefuse.o, built as a module; CUSE and virtiofs are left out.
sed -i -e '/^obj-\$(CONFIG_CUSE)/d; /^obj-\$(CONFIG_VIRTIO_FS)/d; /^virtiofs-/d' \
    -e 's/^obj-\$(CONFIG_FUSE_FS) += fuse\.o$/obj-m += fsracefuse.o/' \
    -e 's/^fuse-/fsracefuse-/' Makefile
grep -q '^obj-m += fsracefuse.o$' Makefile
grep -c "fsracefuse" dev.c inode.c control.c $(ls fuse_trace.h sysctl.c 2>/dev/null)

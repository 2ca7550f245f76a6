#!/bin/bash
# fstests inside fsrace's qemu guest, on the file system the guest mounted:
#   fsrace vm-run --fs FS fstests/vm-check.sh --file fstests.tar.gz [--file PKG.deb ...]
#       [--module nfs.ko --module nfsv4.ko | --module cifs.ko | ...] --args "..."
# fstests.tar.gz is a built fstests checkout with these tests installed (install.sh);
# .deb files are installed first (the guest image lacks bc, which fstests needs). A
# patched module built against the guest kernel's headers is loaded by vm-run's --module
# before this runs. The first argument is a fresh file on the mounted file system; its
# directory's mount is fstests' TEST_DEV.
set -u
mnt=$(findmnt -n -o TARGET --target "$(dirname "$1")")
dev=$(findmnt -n -o SOURCE --target "$mnt")
fstype=$(findmnt -n -o FSTYPE --target "$mnt")
opts=$(findmnt -n -o OPTIONS --target "$mnt")
shift
files=/io/files
if ls $files/*.deb >/dev/null 2>&1; then
    # Twice: a package that pre-depends on another given here (gawk on libsigsegv2) is
    # refused until that one is configured, which the first pass does.
    dpkg -i $files/*.deb >/dev/null 2>&1 || dpkg -i $files/*.deb >/dev/null || exit 2
fi
mkdir -p /tmp/fstests && tar -xzf $files/fstests.tar.gz -C /tmp/fstests || exit 2
cd /tmp/fstests
# The scratch file system fstests' own tests want: a directory of the same export for
# the network clients (fstests "makes" one by emptying it), else a loop device on a file
# in the guest's memory (ntfs3 and ntfs have none: fstests cannot make one).
mkdir -p /mnt/fstests-scratch
case "$fstype" in
nfs4|cifs) mkdir -p "$mnt/fstests-scratch"; scratch="${dev%/}/fstests-scratch" ;;
ntfs3|ntfs) scratch= ;;
9p) scratch= ;;  # one share (run.sh's fsrace9p): the tests that need TEST_DEV alone
*.fsrace)
    # fsrace's FUSE server (run.sh serves the folder $dev): fstests mounts servers of its
    # own, of folders beside it, through mount(8)'s helper (given with --file).
    [ -e $files/mount.fuse.fsrace ] || { echo "FUSE needs --file fstests/mount.fuse.fsrace"; exit 2; }
    install -m 755 $files/mount.fuse.fsrace /sbin/mount.fuse.fsrace
    mkdir -p "$dev/fstests-test" "$dev/fstests-scratch" /mnt/fstests-test
    folder=$dev mnt=/mnt/fstests-test dev=fsrace-test scratch=fsrace-scratch ;;
*)
    # Kernels that build loop as a module (sid's 7.x) have no free loop device until it
    # is loaded, and nothing in the guest loads it.
    modprobe loop 2>/dev/null
    truncate -s 1G /tmp/scratch.img; scratch=$(losetup -f --show /tmp/scratch.img) ;;
esac
{
    case "$fstype" in
    nfs4) echo "export FSTYP=nfs NFS_MOUNT_OPTIONS='-o vers=4.2'" ;;
    cifs) echo "export FSTYP=cifs" \
        "CIFS_MOUNT_OPTIONS='-o username=root,password=fsrace,vers=3.1.1'" ;;  # run.sh's
    ocfs2) echo "export FSTYP=ocfs2 MKFS_OPTIONS='-M local'" ;;  # no cluster stack
    9p) echo "export FSTYP=9p PLAN9_MOUNT_OPTIONS='-o $opts'" ;;  # run.sh's cache mode
    # mount -t ntfs runs ntfs-3g's helper (FUSE) when it is installed; -i keeps the
    # kernel's ntfs driver that the guest mounted (7.2 builds it instead of ntfs3).
    ntfs) echo "export FSTYP=ntfs MOUNT_PROG='$(type -P mount) -i'" ;;
    *.fsrace)
        fuse=${fstype%.fsrace}
        echo "export FSTYP=fuse FUSE_SUBTYP=.fsrace FSRACE_FUSE=$fuse" \
            "FSRACE_FUSE_SERVER=/io/fuse_server.py" \
            "TEST_FS_MOUNT_OPTS=-osource=$folder/fstests-test" \
            "MOUNT_OPTIONS=-osource=$folder/fstests-scratch"
        if [ "$fuse" != fuse ]; then
            # A renamed build of fs/fuse mounts as its own type; fstests checks the
            # type df shows, so its df shows that one as fuse.
            printf '#!/bin/sh\ndf "$@" | sed -E "s/^([^ ]+ +)%s( |\$)/\\1fuse\\2/"\n' \
                "$fuse" > /usr/local/bin/df-fstests
            chmod 755 /usr/local/bin/df-fstests
            echo "export DF_PROG='/usr/local/bin/df-fstests -T -P'"
        fi ;;
    *) echo "export FSTYP=$fstype" ;;
    esac
    echo "export TEST_DEV=$dev TEST_DIR=$mnt"
    [ -n "$scratch" ] && echo "export SCRATCH_DEV=$scratch SCRATCH_MNT=/mnt/fstests-scratch"
} > local.config
# fstests waits for udev to make the device-mapper nodes of its dm-flakey and
# dm-log-writes tests (udevadm wait), and the guest runs no udevd: without one those
# tests wait for ever.
if [ ! -S /run/udev/control ] && [ -x /lib/systemd/systemd-udevd ]; then
    /lib/systemd/systemd-udevd --daemon && udevadm trigger --action=add >/dev/null 2>&1
    udevadm settle -t 30
fi
echo "$(uname -r), $fstype $dev on $mnt ($opts)"  # fuse: the run's mount, not fstests's
./check "$@"
status=$?
for f in results/*/*.full results/*/*.out.bad results/*/*.dmesg; do
    [ -e "$f" ] && { echo "== $f"; cat "$f"; }
done
exit $status

#!/bin/sh
exec >/io/console.txt 2>&1
ip link set lo up
mkdir -p /tmp /run /var/lib/nfs/rpc_pipefs
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/shm
mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/mounts /etc/mtab  # mkfs.nilfs2 checks it
mkfs_mount() {  # type, where: a fresh file system on the scratch disk
    mkdir -p "$2"
    case "$1" in
    ext4) mkfs.ext4 -q -F /dev/vdc ;;
    xfs) mkfs.xfs -q -f /dev/vdc ;;
    btrfs|btrfs-compress) mkfs.btrfs -q -f /dev/vdc ;;
    f2fs) mkfs.f2fs -q -f /dev/vdc ;;
    f2fs-compress) mkfs.f2fs -q -f -O extra_attr,compression /dev/vdc ;;
    nilfs2) mkfs.nilfs2 -q -f /dev/vdc ;;
    gfs2) mkfs.gfs2 -O -q -p lock_nolock -j 1 /dev/vdc ;;
    ocfs2) mkfs.ocfs2 -q -F -M local /dev/vdc ;;
    ntfs3|ntfs) mkntfs -q -Q -F /dev/vdc ;;
    exfat) mkfs.exfat /dev/vdc >/dev/null ;;
    vfat) mkfs.vfat /dev/vdc >/dev/null ;;
    jfs) mkfs.jfs -q /dev/vdc >/dev/null ;;
    udf) mkudffs /dev/vdc >/dev/null ;;
    esac
    case "$1" in
    # -i: the kernel's ntfs driver, not the mount.ntfs helper (ntfs-3g, FUSE)
    ntfs) mount -i -t ntfs /dev/vdc "$2" ;;
    # every extent compressed, whether or not it compresses well
    btrfs-compress) mount -t btrfs -o compress-force=zstd /dev/vdc "$2" ;;
    # the compression flag on the folder: every file made in it is compressed
    f2fs-compress) mount -t f2fs -o compress_algorithm=lz4 /dev/vdc "$2" && chattr +c "$2" ;;
    *) mount -t "$1" /dev/vdc "$2" ;;
    esac
}
# A given module the kernel does not ship (ntfs3: Debian's 7.x builds ntfs instead) is
# loaded before the mount, which needs it; modules.sh then replaces it like the others.
if [ -e /io/modules.txt ]; then
    for ko in $(cat /io/modules.txt); do
        modinfo -n "$(basename "$ko" .ko)" >/dev/null 2>&1 || insmod "$ko"
    done
fi
FS=@FS@
case "$FS" in
nfs|nfs-xfs|nfs3|nfs41)
    case "$FS" in *-xfs) mkfs_mount xfs /srv/export ;; *) mkfs_mount ext4 /srv/export ;; esac
    mkdir -p /mnt/nfs /proc/fs/nfsd
    mount -t nfsd nfsd /proc/fs/nfsd
    echo 10 > /proc/fs/nfsd/nfsv4gracetime
    echo 10 > /proc/fs/nfsd/nfsv4leasetime
    echo "/srv/export *(rw,fsid=0,no_subtree_check,no_root_squash,insecure,sync)" > /etc/exports
    rpcbind -w
    exportfs -ra
    rpc.mountd
    case "$FS" in
    nfs3)  # no pseudo root in v3: the export's path; nolock: no statd in the guest
        rpc.nfsd 8
        timeout 120 mount -t nfs -o vers=3,nolock localhost:/srv/export /mnt/nfs ;;
    nfs41)
        rpc.nfsd -N 3 8
        timeout 120 mount -t nfs4 -o vers=4.1 localhost:/ /mnt/nfs ;;
    *)
        rpc.nfsd -N 3 8
        timeout 120 mount -t nfs4 -o vers=4.2 localhost:/ /mnt/nfs ;;
    esac
    DIR=/mnt/nfs ;;
smb|smb-xfs|smb-loose)
    case "$FS" in *-xfs) mkfs_mount xfs /srv/export ;; *) mkfs_mount ext4 /srv/export ;; esac
    mkdir -p /etc/samba /mnt/smb /run/samba /var/lib/samba/private /var/log/samba
    cat > /etc/samba/smb.conf <<EOF
[global]
    server role = standalone server
    interfaces = lo
    bind interfaces only = yes
    disable netbios = yes
    smb ports = 445
    server min protocol = SMB3
    log file = /var/log/samba/%m.log
[export]
    path = /srv/export
    read only = no
    force user = root
EOF
    printf 'fsrace\nfsrace\n' | smbpasswd -a -s root
    smbd -D
    sleep 2
    timeout 60 mount -t cifs //127.0.0.1/export /mnt/smb \
        -o username=root,password=fsrace,vers=3.1.1,uid=0,gid=0$(
            [ "$FS" = smb-loose ] && echo ,cache=loose)
    DIR=/mnt/smb ;;
fuse|fuse-passthrough)
    # fsrace's own server (fuse_server.py), serving an ext4; ready once FUSE_INIT is done
    mkfs_mount ext4 /srv/backing
    modprobe fuse 2>/dev/null  # built in on some kernels
    mkdir -p /mnt/fuse
    # A renamed build of fs/fuse given with --module (fsracefuse.ko, loaded above beside
    # the kernel's built-in FUSE) serves instead: how a change to FUSE is tried.
    name=fuse
    if [ -d /sys/module/fsracefuse ]; then
        name=fsracefuse
        echo "module loaded beside the kernel's fuse: fsracefuse.ko sha256" \
            "$(sha256sum /io/modules/fsracefuse.ko | cut -c1-16)" > /io/modules-out.txt
    fi
    python3 /io/fuse_server.py /srv/backing /mnt/fuse --source /srv/backing \
        --ready /run/fuse-ready --fuse $name $(
        [ "$FS" = fuse-passthrough ] && echo --passthrough) 2>/io/fuse-server.txt &
    for _ in $(seq 100); do [ -e /run/fuse-ready ] || sleep 0.2; done
    [ -e /run/fuse-ready ] || echo "$FS: $(cat /io/fuse-server.txt)" > /io/failed.txt
    DIR=/mnt/fuse ;;
9p|9p-loose)
    # qemu's 9p server shares a folder of the host's; cache=mmap keeps pages for mappings
    # alone, cache=loose caches everything
    modprobe 9pnet_virtio 2>/dev/null
    mkdir -p /mnt/9p
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=$(
        [ "$FS" = 9p-loose ] && echo loose || echo mmap) fsrace9p /mnt/9p
    DIR=/mnt/9p ;;
tmpfs)
    mkdir -p /srv/work
    mount -t tmpfs tmpfs /srv/work
    DIR=/srv/work ;;
*)
    mkfs_mount "$FS" /srv/work
    DIR=/srv/work ;;
esac
uname -r > /io/kernel.txt
(while sleep 15; do dmesg > /io/dmesg.txt; sync; done) &  # kept if the guest hangs
cut -d' ' -f1 /proc/uptime > /io/uptime.txt  # booted and set up: the runs start
# (Not for FUSE: its server, not a mount(8), mounts it; its module was loaded above.)
if [ -e /io/modules.txt ] && mountpoint -q "$DIR" && [ "$DIR" != /mnt/fuse ] &&
        ! sh /io/modules.sh "$DIR" $(cat /io/modules.txt) > /io/modules-out.txt 2>&1; then
    echo "replacing the kernel's modules failed: $(cat /io/modules-out.txt)" > /io/failed.txt
    dmesg | tail -25 >> /io/console.txt
elif [ -e /io/failed.txt ]; then
    dmesg | tail -25 >> /io/console.txt
elif mountpoint -q "$DIR"; then
    stat -f -c %T "$DIR" > /io/fstype.txt
    python3 /io/guest.py "$DIR"
else
    echo "$FS: nothing is mounted on $DIR" > /io/failed.txt
    dmesg | tail -25 >> /io/console.txt
fi
dmesg > /io/dmesg.txt
sync
umount /mnt/nfs /mnt/smb /mnt/fuse /mnt/9p 2>/dev/null
umount /io
poweroff -f

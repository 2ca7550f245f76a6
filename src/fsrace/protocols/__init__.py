"""Locking protocols: the locks each kernel era (or proposal) takes at fixed points of the
model. `PROTOCOLS` maps CLI names to them, in history order."""

from .base import Protocol
from .btrfs import Btrfs61, BtrfsExtentMapClamped, BtrfsExtentMapDropCount
from .cifs import Smb61, SmbInvalidateLock, SmbMkwriteRecheck, SmbSetattrLocked
from .f2fs import F2fs, F2fsInsertLocked, F2fsLocked
from .fuse import FuseFallocateLocked, FuseInvalidateLock, FuseWriteback
from .gfs2 import Gfs2_61, Gfs2InvalidateLock
from .i_mmap_sem import Ext4IMmapSem
from .invalidate_lock import InvalidateLock, XfsInvalidateLock
from .iolock_mkwrite import IolockMkwrite, MkwriteRetry
from .linux_2012 import Linux2012
from .mmap_sem import MmapSem
from .nfs import Nfs42, NfsInvalidateLock
from .ocfs2 import Ocfs2_61, Ocfs2InvalidateLock
from .page_by_page import PageByPage
from .shmem_2014 import Shmem2014
from .v9fs import V9fs61, V9fsInvalidateLock
from .xfs import Xfs2012, XfsMmaplock

PROTOCOLS: dict[str, type[Protocol]] = {
    p.name: p
    for p in (Linux2012, Xfs2012, MmapSem, IolockMkwrite, MkwriteRetry, PageByPage,
              Shmem2014, XfsMmaplock, Ext4IMmapSem, InvalidateLock, XfsInvalidateLock, Nfs42,
              NfsInvalidateLock, F2fs, F2fsInsertLocked, F2fsLocked, Smb61, SmbInvalidateLock,
              SmbMkwriteRecheck, SmbSetattrLocked, Ocfs2_61, Ocfs2InvalidateLock, Gfs2_61,
              Gfs2InvalidateLock, FuseWriteback, FuseFallocateLocked, FuseInvalidateLock, V9fs61,
              V9fsInvalidateLock, Btrfs61, BtrfsExtentMapClamped,
              BtrfsExtentMapDropCount)
}

__all__ = ["PROTOCOLS", "Protocol"]

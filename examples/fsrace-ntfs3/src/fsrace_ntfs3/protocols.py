"""ntfs3's locking against page faults, as Linux 6.12 ships it and with a fix.

ntfs3 maps files with generic_file_mmap: its faults are filemap_fault, which takes
invalidate_lock shared only to bring a page into the cache, and filemap_page_mkwrite,
which takes nothing (fs/ntfs3/file.c ntfs_file_mmap; mm/filemap.c generic_file_vm_ops).
Its fallocate holds invalidate_lock exclusive across the flush, the page cache truncation
and the block map change (fsrace_ntfs3.file). A page that stays mapped across the flush
can therefore be written through its mapping after the flush and before the truncation,
which drops the page and the store with it.

Ntfs3MkwriteLock is the fix ext4 (ext4_page_mkwrite) and XFS (xfs_filemap_page_mkwrite)
have: page_mkwrite takes invalidate_lock shared, so a store through a mapping waits for
the whole operation.

The page cache, reads, writeback and truncate run the model's own code, which is ext4's
with delayed allocation; ntfs3 6.12 allocates clusters in writeback through ntfs_get_block.
Where a block comes from does not change the ordering these protocols are about, and the
scenarios that show it start with every block of the file allocated.
"""

from fsrace.kernel.ext4 import AOPS as EXT4_AOPS
from fsrace.kernel.kernel import FileSystem
from fsrace.protocols.base import Protocol
from fsrace.protocols.invalidate_lock import SharedWhereAdded

from .file import ntfs_collapse_range, ntfs_insert_range, ntfs_punch_hole

# ntfs3 as the generic code reaches it: the model's page cache paths (see above), its own
# punch, collapse and insert; ntfs_fallocate refuses FALLOC_FL_ZERO_RANGE, and ntfs3 has no
# remap_file_range.
NTFS3 = FileSystem("ntfs3", EXT4_AOPS, punch_hole=ntfs_punch_hole,
                   collapse_range=ntfs_collapse_range, insert_range=ntfs_insert_range,
                   refused=frozenset({"zero range"}))


class Ntfs3(SharedWhereAdded):  # mm/filemap.c since 5.15
    name = "ntfs3"
    summary = "ntfs3 6.12: invalidate_lock over fallocate, page_mkwrite takes nothing"
    era = "Linux 6.12 fs/ntfs3/file.c ntfs_fallocate, generic_file_vm_ops"
    filesystem = NTFS3
    # The model's direct-I/O race is about delayed allocation, which ntfs3 6.12 lacks: run
    # here it would report ext4's.
    unsupported = Protocol.unsupported | {"direct I/O"}


class Ntfs3MkwriteLock(Ntfs3):
    name = "ntfs3-mkwrite-lock"
    summary = "ntfs3 with invalidate_lock shared in page_mkwrite, as ext4 and XFS take it"
    era = "fsrace_ntfs3: a page_mkwrite of ntfs3's own around filemap_page_mkwrite"

    page_mkwrite_begin = Ntfs3.fault_miss_begin
    page_mkwrite_end = Ntfs3.fault_miss_end

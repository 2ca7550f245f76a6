"""btrfs's clone as in Debian's 6.1, and the change to btrfs_get_extent tried on 7.3-rc7.

btrfs-6.1: btrfs_remap_file_range holds i_rwsem and i_mmap_lock exclusive throughout
(btrfs_inode_lock with BTRFS_ILOCK_MMAP, 5.13 on); btrfs_page_mkwrite takes i_mmap_lock
shared, so no page of the file is dirtied by a fault meanwhile. Read faults, read(2) and
readahead take neither: a read of a page beside the clone's destination can cache a map
of the destination's replaced blocks (docs/findings/btrfs-clone-stale-page.md).

btrfs-em-clamped: docs/findings/btrfs-clone-stale-page-7.3.diff, built and run on 7.3-rc7:
btrfs_get_extent caches no more of a regular file extent item than the range it was asked
for, which its caller holds locked in the extent io tree.

btrfs-em-drop-count: docs/findings/btrfs-clone-stale-page-drops-6.1.diff: the extent map
tree counts the drops of its maps; btrfs_get_extent notes the count before it reads the
item and, if maps were dropped meanwhile, caches only the range it was asked for; the
clone drops the destination's maps once more after it changed the items."""

from ..kernel.locking import down_read, up_read
from .base import ExclusiveOverRemoval

# The model's btrfs has reads through the extent map cache, faults, copy-on-write
# writeback, write(2) and the clone (and copy_file_range, a reflink on btrfs); its punch,
# truncate, zero range, direct I/O and compression are not modelled, and it has no
# collapse or insert range. Its page_mkwrite is its own.
BTRFS_LACKS = frozenset({"punch hole", "truncate", "zero range", "collapse range",
                         "insert range", "direct I/O", "block_page_mkwrite"})


class Btrfs61(ExclusiveOverRemoval):
    """i_mmap_lock (the model's i_mmaplock) exclusive inside i_rwsem over the clone, shared
    in btrfs_page_mkwrite only."""

    name = "btrfs-6.1"
    summary = "btrfs 6.1: clone under i_mmap_lock; reads cache a map of a whole extent item"
    era = ("Linux 6.1 fs/btrfs/reflink.c btrfs_remap_file_range, inode.c btrfs_get_extent, "
           "btrfs_page_mkwrite")
    filesystem = "btrfs"
    unsupported = BTRFS_LACKS
    # The extent map changes tried (fsrace.kernel.btrfs reads them): 6.1 has none.
    extent_map_whole_item = True
    extent_map_drops = False
    clone_drops_maps_after = False

    @staticmethod
    def lock_of(inode):
        return inode.i_mmaplock

    def page_mkwrite_begin(self, cur, k, inode):
        return down_read(cur, inode.i_mmaplock)

    def page_mkwrite_end(self, cur, k, inode):
        return up_read(cur, inode.i_mmaplock)


class BtrfsExtentMapClamped(Btrfs61):
    name = "btrfs-em-clamped"
    summary = "btrfs 6.1 with btrfs_get_extent caching only the range asked for"
    era = ("change tried on 7.3-rc7 (docs/findings/btrfs-clone-stale-page-7.3.diff), "
           "not proposed")
    extent_map_whole_item = False


class BtrfsExtentMapDropCount(Btrfs61):
    name = "btrfs-em-drop-count"
    summary = ("btrfs 6.1; btrfs_get_extent caches only the range asked for when maps were "
               "dropped since it read the item, and the clone drops its maps again at the end")
    era = ("change tried on 6.1, 6.12 and 7.3-rc7 "
           "(docs/findings/btrfs-clone-stale-page-drops-6.1.diff), not proposed")
    extent_map_drops = True
    clone_drops_maps_after = True

"""Delayed-allocation accounting, the same for every file system of the model that
reserves space when a page is dirtied and allocates at writeback.

A delalloc extent holds one reserved block: counted in the inode
(`i_reserved_data_blocks`) and on the disk (ext4's `s_dirtyclusters_counter`, XFS's
`m_fdblocks` taken by `xfs_bmapi_reserve_delalloc`) from the write fault or write that
made it until writeback allocates the block or a punch, truncate or invalidation drops
it. The `reservations-balance` invariant (fsrace.checks.invariants) checks that the three
agree after every step. Each function says what its callers hold.
"""

from __future__ import annotations

from .kernel import Kernel
from .structs import DELALLOC, WRITTEN, Inode


def da_reserve(k: Kernel, inode: Inode, lblk: int) -> None:
    """ext4_da_reserve_space (xfs_bmapi_reserve_delalloc): a hole at lblk becomes a
    delalloc extent backed by one reserved block. Called with i_data_sem held
    (ext4_da_map_blocks takes it shared) and the page locked, or before the inode is
    visible."""
    inode.i_reserved_data_blocks += 1
    k.disk.dirty_clusters += 1
    inode.extents[lblk] = (DELALLOC, None)


def da_release(k: Kernel, inode: Inode, lblk: int) -> None:
    """ext4_da_release_space (xfs_bmap_del_extent_delay): drop the delalloc extent at lblk
    and its reservation; nothing if lblk is not delalloc. Called with i_data_sem (the
    ILOCK) held for write; with the page locked whose delay buffer covers lblk
    (->invalidatepage, the partial-page zeroing of a punch); or by the file server as it
    allocates the block (server_write)."""
    if inode.extents.get(lblk, (None,))[0] == DELALLOC:
        del inode.extents[lblk]
        inode.i_reserved_data_blocks -= 1
        k.disk.dirty_clusters -= 1


def da_allocate(k: Kernel, inode: Inode, lblk: int) -> int:
    """ext4_map_blocks with EXT4_GET_BLOCKS_DELALLOC_RESERVE, then
    ext4_da_update_reserve_space: the delalloc extent at lblk gets a block, and its
    reservation is used up. Called with i_data_sem held for write and the page locked
    (mpage_da_map_blocks)."""
    pblk = k.disk.alloc((inode.name, lblk))
    inode.extents[lblk] = (WRITTEN, pblk)
    inode.i_reserved_data_blocks -= 1
    k.disk.dirty_clusters -= 1
    return pblk

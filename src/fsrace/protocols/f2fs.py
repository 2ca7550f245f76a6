"""f2fs's insert and collapse ranges, as in Debian's 6.1 and sid's 7.2.13 kernels, and
fixes.

f2fs: since 5.15 f2fs takes invalidate_lock shared in f2fs_vm_page_mkwrite and the generic
fault, read and readahead paths take it where they add pages; its punch, truncate and zero
range hold it across dropping the cache and freeing blocks (the model runs ext4's code for
those, under the same locks). f2fs_insert_range and f2fs_collapse_range do not: each
flushes from the offset before taking the lock and drops the lock between the block
exchange and the final flush and truncate (fsrace.kernel.f2fs), and the exchange copies
checkpointed blocks through the page cache. docs/findings/f2fs-insert-mmap.md has the
real kernels' side.

f2fs-insert-locked: the insert's lock held from the first flush to the last truncate, one
section, as ext4_insert_range does; the collapse as shipped. f2fs-locked: the collapse
so too, with its i_size written inside the section, as ext4_collapse_range does. Neither
is merged anywhere; the model's verdicts are in docs/verdicts.md."""

from .invalidate_lock import InvalidateLock


class F2fs(InvalidateLock):
    name = "f2fs"
    summary = "f2fs 6.1-7.2: invalidate_lock, but insert/collapse flush before it, drop it midway"
    era = ("Linux 6.1-7.2.13 fs/f2fs/file.c f2fs_insert_range, f2fs_collapse_range, "
           "__exchange_data_block")
    filesystem = "f2fs"
    # The gaps in its invalidate lock (fsrace.kernel.f2fs): two in each operation, and the
    # collapse's i_size written after the lock is dropped.
    insert_flushes_unlocked = insert_drops_lock = True
    collapse_flushes_unlocked = collapse_drops_lock = collapse_sizes_unlocked = True


class F2fsInsertLocked(F2fs):
    name = "f2fs-insert-locked"
    summary = "f2fs with invalidate_lock held across insert's flushes, exchange and truncates"
    era = "proposed fix (not merged): one invalidate_lock section in f2fs_insert_range"
    insert_flushes_unlocked = insert_drops_lock = False


class F2fsLocked(F2fsInsertLocked):
    name = "f2fs-locked"
    summary = "f2fs-insert-locked, and collapse in one invalidate_lock section with its i_size"
    era = ("proposed fix (not merged): one invalidate_lock section in f2fs_insert_range and "
           "f2fs_collapse_range, i_size written inside it")
    collapse_flushes_unlocked = collapse_drops_lock = collapse_sizes_unlocked = False

"""f2fs's insert range, as in Debian's 6.1 and sid's 7.2.13 kernels, and a fix.

f2fs: since 5.15 f2fs takes invalidate_lock shared in f2fs_vm_page_mkwrite and the generic
fault, read and readahead paths take it where they add pages; its punch, truncate and zero
range hold it across dropping the cache and freeing blocks (the model runs ext4's code for
those, under the same locks). f2fs_insert_range does not: it flushes from the offset before
taking the lock and drops the lock between the block exchange and the final flush and
truncate (fsrace.kernel.f2fs), and its exchange copies checkpointed blocks through the page
cache. docs/findings/f2fs-insert-mmap.md has the real kernels' side.

f2fs-insert-locked: the lock held from the first flush to the last truncate, one section,
as ext4_insert_range does. Not merged anywhere; the model's verdict is in docs/verdicts.md."""

from ..kernel.f2fs import f2fs_insert_range
from .invalidate_lock import InvalidateLock


class F2fs(InvalidateLock):
    name = "f2fs"
    summary = "f2fs 6.1-7.2: invalidate_lock, but insert flushes before it and drops it midway"
    era = "Linux 6.1-7.2.13 fs/f2fs/file.c f2fs_insert_range, __exchange_data_block"
    filesystem = "f2fs"
    # Its collapse (the same sections, the exchange run the other way) is not modelled.
    unsupported = frozenset({"clone range", "copy range", "collapse range", "shared blocks"})
    insert_range = staticmethod(f2fs_insert_range)
    # The two gaps in its invalidate lock (fsrace.kernel.f2fs.f2fs_insert_range).
    insert_flushes_unlocked = True
    insert_drops_lock = True


class F2fsInsertLocked(F2fs):
    name = "f2fs-insert-locked"
    summary = "f2fs with invalidate_lock held across insert's flushes, exchange and truncates"
    era = "proposed fix (not merged): one invalidate_lock section in f2fs_insert_range"
    insert_flushes_unlocked = False
    insert_drops_lock = False

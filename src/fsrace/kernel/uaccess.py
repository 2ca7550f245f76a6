"""User buffers for read(2) and write(2): plain memory, or a shared mapping of a file.

A copy from a mapping runs with page faults disabled (iov_iter_copy_from_user_atomic): if a
source PTE is missing it copies nothing, and the caller faults the buffer in again
(iov_iter_fault_in_readable) outside the page lock before retrying.
"""

from __future__ import annotations

from ..explore.step import READ
from .kernel import Kernel
from .memory import SIGBUS, user_load, user_store
from .structs import MM, PAGE_SIZE, Current, Inode


class PlainBuffer:
    """Anonymous user memory holding the values: never faults."""

    def __init__(self, values: list) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def fault_in_readable(self, cur: Current, k: Kernel, start: int, n: int):
        return None
        yield  # no steps

    def accesses(self, cur: Current, start: int, n: int) -> tuple:
        return ()

    def copy_atomic(self, cur: Current, start: int, n: int) -> list | None:
        return self.values[start:start + n]


class MappedBuffer:
    """`length` bytes of a shared mapping of `inode` from `offset`, in the task's mm."""

    def __init__(self, inode: Inode, offset: int, length: int) -> None:
        self.inode, self.offset, self.length = inode, offset, length

    def __len__(self) -> int:
        return self.length

    def _pages(self, start: int, n: int) -> range:
        first = (self.offset + start) // PAGE_SIZE
        return range(first, (self.offset + start + n - 1) // PAGE_SIZE + 1)

    def fault_in_readable(self, cur: Current, k: Kernel, start: int, n: int):
        """Touch each source page once; SIGBUS becomes -EFAULT for the syscall."""
        for index in self._pages(start, n):
            offset = max(index * PAGE_SIZE, self.offset + start)
            if (yield from user_load(cur, k, self.inode, offset)) == SIGBUS:
                return SIGBUS
        return None

    def accesses(self, cur: Current, start: int, n: int) -> tuple:
        mm: MM = cur.mm  # type: ignore[assignment]
        out: list = []
        for index in self._pages(start, n):
            out += [(mm.pte_key(self.inode, index), READ),
                    (self.inode.data_key(index), READ)]
        return tuple(out)

    def copy_to_user(self, cur: Current, k: Kernel, start: int, values: list):
        """file_read_actor's __copy_to_user: stores that may write-fault, with no page lock
        held (the reader's IO lock, if its protocol takes one, is held). Returns None, or
        -EFAULT."""
        for i, value in enumerate(values):
            if (yield from user_store(cur, k, self.inode, self.offset + start + i,
                                      value)) == SIGBUS:
                return "-EFAULT"
        return None

    def copy_atomic(self, cur: Current, start: int, n: int) -> list | None:
        mm: MM = cur.mm  # type: ignore[assignment]
        out = []
        for pos in range(self.offset + start, self.offset + start + n):
            pte = mm.ptes.get((self.inode.name, pos // PAGE_SIZE))
            if pte is None:
                return None  # would fault: copied nothing
            out.append(pte.page.data[pos % PAGE_SIZE])
        return out

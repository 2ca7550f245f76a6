"""The file operations scenarios are made of, as plain values.

The model runs them through its syscalls (fsrace.scenarios.base.run_op); the abstract file
(fsrace.checks.spec) gives their meaning, independently of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kernel.structs import PAGE_SIZE


def _pages(start: int, end: int) -> range:
    return range(start // PAGE_SIZE, max(start // PAGE_SIZE, (end - 1) // PAGE_SIZE) + 1)


@dataclass(frozen=True)
class Store:
    """A CPU store of one cell through a shared mapping of the file."""

    file: str
    offset: int
    value: str

    def pages(self) -> range:
        return _pages(self.offset, self.offset + 1)

    def __str__(self) -> str:
        return f"store {self.file}[{self.offset}] = {self.value!r} (mmap)"


@dataclass(frozen=True)
class Load:
    file: str
    offset: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + 1)

    def __str__(self) -> str:
        return f"load {self.file}[{self.offset}] (mmap)"


@dataclass(frozen=True)
class Punch:
    file: str
    offset: int
    length: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.length)

    def __str__(self) -> str:
        return f"punch_hole({self.file}, {self.offset}, {self.length})"


@dataclass(frozen=True)
class ZeroRange:
    """fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)."""

    file: str
    offset: int
    length: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.length)

    def __str__(self) -> str:
        return f"zero_range({self.file}, {self.offset}, {self.length})"


_TO_EOF = 1 << 20  # pages: a shift moves everything after the offset


@dataclass(frozen=True)
class Collapse:
    """fallocate(FALLOC_FL_COLLAPSE_RANGE): remove the range, shift the rest down."""

    file: str
    offset: int
    length: int

    def pages(self) -> range:
        return range(self.offset // PAGE_SIZE, _TO_EOF)

    def __str__(self) -> str:
        return f"collapse_range({self.file}, {self.offset}, {self.length})"


@dataclass(frozen=True)
class Insert:
    """fallocate(FALLOC_FL_INSERT_RANGE): shift everything from the offset up, leave a hole."""

    file: str
    offset: int
    length: int

    def pages(self) -> range:
        return range(self.offset // PAGE_SIZE, _TO_EOF)

    def __str__(self) -> str:
        return f"insert_range({self.file}, {self.offset}, {self.length})"


@dataclass(frozen=True)
class Clone:
    """ioctl(FICLONERANGE) within one file: the destination range shares (on NFS: the
    server copies) the source range's blocks."""

    file: str
    src_offset: int
    offset: int  # the destination
    length: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.length)

    def __str__(self) -> str:
        return (f"clone_range({self.file}, {self.src_offset} -> {self.offset}, "
                f"{self.length})")


@dataclass(frozen=True)
class Copy(Clone):
    """copy_file_range within one file: the destination range gets the source range's
    bytes, as a clone's does (on SMB the server copies them)."""

    def __str__(self) -> str:
        return (f"copy_file_range({self.file}, {self.src_offset} -> {self.offset}, "
                f"{self.length})")


@dataclass(frozen=True)
class Truncate:
    file: str
    size: int

    def pages(self) -> range:
        return range(0)  # whole-file effect; observed through the final size

    def __str__(self) -> str:
        return f"ftruncate({self.file}, {self.size})"


@dataclass(frozen=True)
class Write:
    file: str
    offset: int
    values: tuple

    def pages(self) -> range:
        return _pages(self.offset, self.offset + len(self.values))

    def __str__(self) -> str:
        return f"pwrite({self.file}, {list(self.values)}, {self.offset})"


@dataclass(frozen=True)
class WriteFromMapping:
    """write(2) whose source buffer is a shared mapping of `source` from `source_offset`."""

    file: str
    offset: int
    source: str
    source_offset: int
    length: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.length)

    def __str__(self) -> str:
        return (f"pwrite({self.file}, mmap({self.source})+{self.source_offset}, "
                f"{self.length}, {self.offset})")


@dataclass(frozen=True)
class Read:
    file: str
    offset: int
    count: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.count)

    def __str__(self) -> str:
        return f"pread({self.file}, {self.count}, {self.offset})"


@dataclass(frozen=True)
class Readahead:
    """readahead(2) (as fadvise/madvise WILLNEED): fill the cache, return nothing."""

    file: str
    offset: int
    count: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.count)

    def __str__(self) -> str:
        return f"readahead({self.file}, {self.offset}, {self.count})"


@dataclass(frozen=True)
class DirectRead:
    """pread(2) on an O_DIRECT descriptor: from the blocks, bypassing the page cache."""

    file: str
    offset: int
    count: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.count)

    def __str__(self) -> str:
        return f"pread({self.file}, {self.count}, {self.offset}, O_DIRECT)"


@dataclass(frozen=True)
class ReadIntoMapping:
    """read(2) whose destination buffer is a shared mapping of `dest` from `dest_offset`."""

    file: str
    offset: int
    count: int
    dest: str
    dest_offset: int

    def pages(self) -> range:
        return _pages(self.offset, self.offset + self.count)

    def __str__(self) -> str:
        return (f"pread({self.file}, mmap({self.dest})+{self.dest_offset}, {self.count}, "
                f"{self.offset})")


@dataclass(frozen=True)
class Fsync:
    file: str

    def pages(self) -> range:
        return range(0)

    def __str__(self) -> str:
        return f"fsync({self.file})"


Op = (Store | Load | Punch | ZeroRange | Collapse | Insert | Truncate | Write | Copy
      | WriteFromMapping | Read | Readahead | DirectRead | ReadIntoMapping | Fsync)

"""Direct I/O against a write fault into a hole (Chinner's "mmap vs direct IO", row 3 of his
19 May 2012 table: "non-existent" protection). The direct read flushes its range, then a
store through a mapping dirties a page over the hole, reserving a delalloc block, and the
direct read's block mapping finds that delalloc extent: XFS BUG()ed (04197b341f23, 2017,
made it a warning; generic/446 is its regression test)."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE, Inode
from .base import Params, Scenario, TaskSpec
from .ops import DirectRead, Store


class DioWriteFault(Scenario):
    name = "dio-write-fault"
    summary = "O_DIRECT read vs a write fault into a hole: direct I/O finds delalloc"
    exercises = ("dio-sees-no-delalloc", "file-contents")
    needs = frozenset({"direct I/O"})

    def initial_files(self, params: Params) -> dict[str, list]:
        return {"A": [0] * (params.pages * PAGE_SIZE)}

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        length = params.pages * PAGE_SIZE
        a = Inode("A", length)  # sparse: ftruncate'd to its size, no block, nothing cached
        k.inodes["A"] = a
        k.new_mm("P1")
        specs = [TaskSpec("TASK1", "direct I/O read", [DirectRead("A", 0, length)],
                          process="P1")]
        for w in range(params.writers):
            name = f"TASK{w + 2}"
            mm = k.new_mm(f"P{w + 2}")
            mm.mmap(a)
            specs.append(TaskSpec(name, "store via mmap into the hole",
                                  [Store("A", (w % params.pages) * PAGE_SIZE, name)],
                                  process=mm.name))
        return specs

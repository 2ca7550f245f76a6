"""A store through a writable PTE races writeback of the page: page_mkclean must
write-protect the PTE so the store faults and redirties the page, or the store is lost."""

from __future__ import annotations

from ..kernel.kernel import Kernel
from ..kernel.structs import PAGE_SIZE, PTE, Buffer
from ..kernel.syscalls import wb_writeback
from .base import Params, Scenario, TaskSpec, block_contents, cache_clean_page
from .ops import Store


class WritebackStore(Scenario):
    name = "writeback-store"
    summary = "a store through a dirty writable mapping vs the flusher (no block removal)"
    exercises = ("file-contents", "io-to-owned-blocks")

    def initial_files(self, params: Params) -> dict[str, list]:
        bpp = params.blocks_per_page
        return {"A": block_contents("A", bpp, PAGE_SIZE // bpp)}

    def setup(self, k: Kernel, params: Params) -> list[TaskSpec]:
        a = k.create_file("A", self.initial_files(params)["A"])
        cache_clean_page(k, a, 0)
        page = a.pages[0]
        # An earlier store left the page dirty and its PTE writable (buffers mapped).
        page.dirty = True
        page.buffers = [Buffer(blocknr=a.extents[nr][1], uptodate=True, dirty=True)
                        for nr in range(k.blocks_per_page)]
        mm = k.new_mm("P2")
        mm.mmap(a)
        mm.ptes[("A", 0)] = PTE(page, writable=True, dirty=True)
        return [TaskSpec("TASK2", "store via mmap", [Store("A", 0, "TASK2")], process="P2"),
                TaskSpec("FLUSHER", "writeback", thread=wb_writeback)]

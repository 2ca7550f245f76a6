"""The data of the modelled kernel: blocks, inodes, pages, buffers, processes, PTEs."""

from __future__ import annotations

from dataclasses import dataclass, field

PAGE_SIZE = 4  # cells per page
TO_EOF = 1 << 30  # a page index beyond any file: "to the end of the file"

# Block map states of a file block (a missing entry is a hole).
DELALLOC = "delalloc"  # reserved, no block yet (ext4 delay buffer + reservation)
UNWRITTEN = "unwritten"  # allocated, reads as zeros
WRITTEN = "written"


class Mutex:
    def __init__(self, name: str) -> None:
        self.name = name
        self.owner: str | None = None


class RWSem:
    """A reader-writer semaphore with Linux's fairness: a queued writer holds back new
    readers, and a trylock fails while anyone is queued.

    `fair=False` drops the queueing step for a leaf lock, under which nothing else is
    taken: there fairness cannot cause a deadlock, and without it the model only has more
    interleavings, so no race is hidden (ext4's i_data_sem)."""

    def __init__(self, name: str, fair: bool = True) -> None:
        self.name = name
        self.fair = fair
        self.writer: str | None = None
        self.readers: list[str] = []
        self.waiting_writers: list[str] = []


class WaitQueue:
    """A condition tasks sleep on until it is cleared (shmem's falloc waitqueue, a
    completion): `busy` while its owner works, wake_up_all clears it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.busy_by: str | None = None


@dataclass
class Block:
    owner: tuple[str, int] | None  # (inode, file block) or None when free
    data: list
    # The other file blocks a reflink made share it (ocfs2's refcount tree counts
    # 1 + len(sharers)); only the file systems with reflink ever set it.
    sharers: list = field(default_factory=list)


class Disk:
    """Blocks and the allocator. Delayed-allocation reservations are counted here in total
    (ext4 s_dirtyclusters_counter) and per inode."""

    RESV_KEY = "s_dirtyclusters"  # the reservation counter

    def __init__(self, nblocks: int, blksize: int) -> None:
        self.blksize = blksize
        self.blocks = [Block(None, [0] * blksize) for _ in range(nblocks)]
        self.dirty_clusters = 0

    @staticmethod
    def key(pblk: int) -> str:
        """The block's contents."""
        return f"blk{pblk}"

    @staticmethod
    def owner_key(pblk: int) -> str:
        """Who owns the block (free or an inode's file block)."""
        return f"owner{pblk}"

    def next_free(self, count: int) -> list[int]:
        """The blocks the next `count` allocations will take (lowest free first)."""
        free = [n for n, b in enumerate(self.blocks) if b.owner is None]
        if len(free) < count:
            raise RuntimeError("model disk full: scenario needs more blocks")
        return free[:count]

    def alloc_footprint(self, count: int) -> tuple:
        """Allocation reads every block's owner to find the lowest free one."""
        taken = set(self.next_free(count)) if count else set()
        return tuple((self.owner_key(n), "w" if n in taken else "r")
                     for n in range(len(self.blocks)))

    def alloc(self, owner: tuple[str, int]) -> int:
        n = self.next_free(1)[0]
        self.blocks[n].owner = owner
        return n

    def free(self, pblk: int) -> None:
        assert not self.blocks[pblk].sharers, f"blk{pblk} is shared: unshare it"
        self.blocks[pblk].owner = None

    # -- shared (refcounted) blocks: ocfs2's refcount tree ------------------------------------
    def refcount(self, pblk: int) -> int:
        b = self.blocks[pblk]
        return 0 if b.owner is None else 1 + len(b.sharers)

    def owners(self, pblk: int) -> list[tuple[str, int]]:
        b = self.blocks[pblk]
        return [] if b.owner is None else [b.owner, *b.sharers]

    def share(self, pblk: int, owner: tuple[str, int]) -> None:
        """One more file block maps this block (ocfs2_increase_refcount)."""
        assert self.blocks[pblk].owner is not None, f"blk{pblk} is free"
        self.blocks[pblk].sharers.append(owner)

    def unshare(self, pblk: int, owner: tuple[str, int]) -> bool:
        """`owner` stops mapping the block (ocfs2_decrease_refcount); the last one frees
        it. Returns whether it was freed."""
        b = self.blocks[pblk]
        rest = [o for o in self.owners(pblk) if o != owner]
        assert len(rest) < self.refcount(pblk), f"{owner} does not map blk{pblk}"
        b.owner, b.sharers = (rest[0], rest[1:]) if rest else (None, [])
        return not rest


@dataclass(eq=False)
class Buffer:
    """A buffer_head: one block of a page."""

    blocknr: int | None = None  # mapped to this block (None: unmapped, or delay)
    delay: bool = False
    new: bool = False
    uptodate: bool = False
    dirty: bool = False
    unwritten: bool = False

    @property
    def mapped(self) -> bool:
        return self.blocknr is not None or self.delay

    def describe(self) -> str:
        bits = []
        if self.delay:
            bits.append("delay")
        elif self.blocknr is not None:
            bits.append(f"mapped->blk{self.blocknr}")
        else:
            bits.append("unmapped")
        bits += [n for n in ("new", "uptodate", "dirty", "unwritten") if getattr(self, n)]
        return ",".join(bits)


@dataclass(eq=False)
class Page:
    inode: Inode | None  # page->mapping; None once truncated
    index: int
    # Which of its slot's pages it is ("g1", "g2"): pages enter a slot in the order of
    # the steps that insert them, which conflict, so the name is the same in every
    # interleaving of a trace whoever made the page. It names the page's lock and
    # writeback bit (distinct pages of one slot are distinct locks) and stands for the
    # page in a state.
    origin: str
    locked_by: str | None = None
    uptodate: bool = False
    dirty: bool = False
    # PAGECACHE_TAG_DIRTY outlives PG_dirty while writeback is being started: cleared by
    # set_page_writeback, not by clear_page_dirty_for_io, so a data-integrity flush still
    # finds (and locks) a page the flusher is about to write.
    tagged_dirty: bool = False
    writeback: bool = False
    data: list = field(default_factory=lambda: [0] * PAGE_SIZE)
    buffers: list[Buffer] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        ino = self.inode.name if self.inode else "?"
        self.name = f"{ino}:{self.index}"
        self.key = f"page:{self.name}"  # flags, buffers, mapping; shared by a slot's pages
        self.data_key = f"data:{self.name}"  # contents
        self.lock_key = f"PG_locked:{self.name}#{self.origin}"
        self.wb_key = f"PG_writeback:{self.name}#{self.origin}"

    def describe(self) -> str:
        flags = [n for n in ("uptodate", "dirty", "writeback") if getattr(self, n)]
        if self.locked_by:
            flags.insert(0, f"locked by {self.locked_by}")
        if self.inode is None:
            flags.append("truncated (mapping=NULL)")
        bufs = "no buffers" if self.buffers is None else \
            "buffers [" + "; ".join(b.describe() for b in self.buffers) + "]"
        return f"page {self.name}: {' '.join(flags) or 'clean'}; data {self.data}; {bufs}"


class Inode:
    def __init__(self, name: str, i_size: int) -> None:
        self.name = name
        self.i_size = i_size
        self.extents: dict[int, tuple[str, int | None]] = {}  # lblk -> (state, pblk)
        self.i_reserved_data_blocks = 0
        self.pages: dict[int, Page] = {}  # the address_space's page tree
        self.i_mmap: list[MM] = []  # processes mapping the file shared
        self.i_mutex = Mutex(f"{name}.i_mutex")
        self.i_data_sem = RWSem(f"{name}.i_data_sem", fair=False)
        self.invalidate_lock = RWSem(f"{name}.invalidate_lock")
        # Locks only some protocols take: the XFS IO lock and MMAPLOCK, ext4 4.5's i_mmap_sem, and
        # shmem's hole-punch waitqueue (inode->i_private).
        self.iolock = RWSem(f"{name}.iolock")
        self.i_mmap_sem = RWSem(f"{name}.i_mmap_sem")
        self.i_mmaplock = RWSem(f"{name}.i_mmaplock")  # XFS 4.1
        # ocfs2's allocation lock: written by page_mkwrite and the remap, read by readpage.
        self.ip_alloc_sem = RWSem(f"{name}.ip_alloc_sem")
        # gfs2's inode glock; on a local (lock_nolock) mount, an rwsem of the inode.
        self.i_gl = RWSem(f"{name}.i_gl")
        # FUSE's FUSE_NOWRITE (fi->writectr): a truncate holds the FUSE_WRITEs back (write),
        # each FUSE_WRITE goes out under it (read).
        self.fuse_nowrite = RWSem(f"{name}.fuse_nowrite")
        self.falloc = WaitQueue(f"{name}.shmem_falloc")
        # btrfs: where each file extent item of the subvolume tree begins (start lblk ->
        # length in blocks; the blocks are `extents`'), the inode's extent map cache
        # (start lblk -> the blocks a cached map gives, None for a hole), and the pages whose
        # range of the extent io tree is locked (index -> holder), and how many times the
        # cache has had maps dropped, where the protocol counts them. Only btrfs reads them.
        self.items: dict[int, int] = {}
        self.em_cache: dict[int, tuple[int | None, ...]] = {}
        self.extent_locked: dict[int, str] = {}
        self.em_drops = 0
        self.size_key = f"{name}.i_size"
        self.map_key = f"{name}.extents"  # block map and the inode's reservations
        self.pages_key = f"{name}.i_pages"
        self.dirty_tag_key = f"{name}.PAGECACHE_TAG_DIRTY"  # which pages are dirty
        self.em_key = f"{name}.extent_tree"  # btrfs's extent map cache

    def rwsems(self) -> tuple[RWSem, ...]:
        """Every rwsem of the inode, whichever protocol takes it: what the state and a
        deadlock's report must see."""
        return (self.i_data_sem, self.invalidate_lock, self.iolock, self.i_mmap_sem,
                self.i_mmaplock, self.ip_alloc_sem, self.i_gl, self.fuse_nowrite)

    def page_key(self, index: int) -> str:
        return f"page:{self.name}:{index}"

    def data_key(self, index: int) -> str:
        return f"data:{self.name}:{index}"

    def extent_lock_key(self, index: int) -> str:
        """btrfs's extent io tree lock over the page's range."""
        return f"io_tree:{self.name}:{index}"

    def written_block(self, lblk: int) -> int | None:
        """The block file block lblk is written in, or None (a hole, delayed, unwritten)."""
        state, pblk = self.extents.get(lblk, ("hole", None))
        if state != WRITTEN:
            return None
        assert pblk is not None, f"{self.name} lblk {lblk} is written but has no block"
        return pblk

    def describe_map(self) -> str:
        if not self.extents:
            return "all holes"
        parts = []
        for lblk in sorted(self.extents):
            state, pblk = self.extents[lblk]
            parts.append(f"{lblk}:{state}" + (f"->blk{pblk}" if pblk is not None else ""))
        return " ".join(parts)


@dataclass(eq=False)
class PTE:
    page: Page
    writable: bool
    dirty: bool = False


class MM:
    """A process's address space: its mmap_sem and the PTEs of its shared file mappings."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mmap_sem = RWSem(f"{name}.mmap_sem")
        self.ptes: dict[tuple[str, int], PTE] = {}

    def pte_key(self, inode: Inode, index: int) -> str:
        return f"pte:{self.name}:{inode.name}:{index}"

    def mmap(self, inode: Inode) -> None:
        if self not in inode.i_mmap:
            inode.i_mmap.append(self)


@dataclass
class Current:
    """The running task (the kernel's `current`)."""

    comm: str
    mm: MM | None

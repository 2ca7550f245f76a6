"""ext4 in Linux 3.4 with delayed allocation: the kernel of the 2012 thread."""

from .base import Protocol


class Linux2012(Protocol):
    name = "linux-2012"
    summary = "ext4 3.4 delalloc: punch takes no lock that faults take (the seed's race)"
    era = ("Linux 3.4.2 ext4_ext_punch_hole: no i_mutex, no fault exclusion; "
           "page_mkwrite = block_page_mkwrite(ext4_da_get_block_prep)")

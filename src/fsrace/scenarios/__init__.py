"""Scenarios: one module per race class; `SCENARIOS` maps CLI names to them."""

from .base import Params, Scenario, build_program
from .dio_write_fault import DioWriteFault
from .fallocate_modes import (
    CloneBesideReadFault,
    CloneSourceWriteFault,
    CloneWriteFault,
    CollapseReadFault,
    CollapseWriteFault,
    CopyWriteFault,
    InsertWriteFault,
    PunchStoreReread,
    ZeroRangeStoreReread,
    ZeroRangeWriteback,
    ZeroRangeWriteFault,
)
from .punch_read import PunchRead, PunchReadahead
from .punch_write_fault import PunchWriteFault
from .read_into_own_mapping import ReadIntoOwnMapping
from .variants import (
    PunchNoCachedPages,
    PunchReadFault,
    PunchWriteFaultThread,
    TruncateWriteFault,
    TruncateWriteFaultNoRecheck,
)
from .write_from_own_mapping import WriteFromOwnMapping
from .writeback_store import WritebackStore

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (PunchWriteFault(), PunchWriteFaultThread(), PunchNoCachedPages(),
                        PunchReadFault(), PunchRead(), PunchReadahead(),
                        DioWriteFault(), TruncateWriteFault(), TruncateWriteFaultNoRecheck(),
                        ZeroRangeWriteFault(), ZeroRangeStoreReread(), ZeroRangeWriteback(),
                        PunchStoreReread(),
                        CollapseReadFault(), CollapseWriteFault(),
                        InsertWriteFault(),
                        CloneWriteFault(), CopyWriteFault(), CloneSourceWriteFault(),
                        CloneBesideReadFault(),
                        WriteFromOwnMapping(), ReadIntoOwnMapping(), WritebackStore())
}

__all__ = ["SCENARIOS", "Params", "Scenario", "build_program"]

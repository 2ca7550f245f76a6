"""Locking protocols: the locks each kernel era takes at fixed points of the model.

Each protocol is a subclass of `Protocol`; `PROTOCOLS` maps CLI names to them.
"""

from .base import Protocol
from .invalidate_lock import InvalidateLock
from .linux_2012 import Linux2012

PROTOCOLS: dict[str, type[Protocol]] = {p.name: p for p in (Linux2012, InvalidateLock)}

__all__ = ["PROTOCOLS", "Protocol"]

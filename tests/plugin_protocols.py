"""A protocol from outside fsrace, as another package would ship it (tests/test_api.py)."""

from fsrace.protocols.base import Protocol
from fsrace.protocols.invalidate_lock import InvalidateLock


class NotInPunch(InvalidateLock):
    """invalidate-lock with the punch side left out: broken on purpose."""

    name = "plugin-not-in-punch"
    summary = "invalidate_lock in faults only (a test plugin)"
    remove_blocks_begin = Protocol.remove_blocks_begin
    remove_blocks_end = Protocol.remove_blocks_end

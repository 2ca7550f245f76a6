"""Exit codes, one table for every command (printed by `fsrace --help` and in the README)."""

from __future__ import annotations

OK = 0  # safe, every check held, no violation
FOUND = 1  # a race, deadlock, starvation or violation
USAGE = 2  # a bad option, name, number or file; nothing was run
HUNG = 3  # the guest never finished a run (a hung kernel)
UNKNOWN = 4  # the search ended before it covered everything, and found nothing (or a
# guest's stress run whose check did not finish)
NOT_EXERCISED = 5  # a stress run whose race class's own operation never ran
CANNOT_RUN = 6  # the machine could not run it: not root, a mount, the guest, a Ray cluster
INTERNAL = 70  # a bug in fsrace (what was measured is printed first)
INTERRUPTED = 130  # Ctrl-C, after printing what was covered
TERMINATED = 143  # SIGTERM, likewise

TABLE = [
    (OK, "safe: the search was complete and found nothing; every check held"),
    (FOUND, "a race, deadlock, starvation or violation was found"),
    (USAGE, "bad usage (an option, name, number or file); nothing ran"),
    (HUNG, "the qemu guest never finished (a hung kernel)"),
    (UNKNOWN, "unknown: the search stopped at a bound before it covered everything"),
    (NOT_EXERCISED, "not exercised: the race class's own operation was refused or never "
                    "overlapped"),
    (CANNOT_RUN, "could not run here: not root, a mount, the guest, the Ray cluster"),
    (INTERNAL, "an internal error of fsrace; the message says where its traceback is"),
    (INTERRUPTED, "interrupted by Ctrl-C, after printing what was covered"),
    (TERMINATED, "terminated by SIGTERM, likewise"),
]


def help_text() -> str:
    return "Exit codes:\n\n\b\n" + "\n".join(f"  {code:>3}  {text}" for code, text in TABLE)

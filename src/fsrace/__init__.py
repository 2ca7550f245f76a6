"""fsrace: find and rule out races between page faults and block-removing operations.

    import fsrace
    record = fsrace.check("punch-write-fault", "invalidate-lock", pages=2, writers=2)
    record["verdict"]  # "safe"

`check` takes names (`fsrace list`) or objects (a Scenario instance, a Protocol class) and
returns what `fsrace check --json` prints (docs/json.md). fsrace.testing has assertions for
test suites.
"""

from __future__ import annotations

__version__ = "0.1.0"


def check(scenario, protocol, *, pages: int = 1, writers: int = 1, blocks_per_page: int = 1,
          strategy: str = "auto", seed: int = 0, max_executions: int | None = None,
          time_limit: float | None = None, shrink: bool = True) -> dict:
    """Search `scenario` under `protocol`; the record `fsrace check --json` prints."""
    from .explore.search import Limits
    from .report.html import json_record
    from .run import check as run_check
    from .scenarios import Params

    res = run_check(scenario, protocol, Params(pages=pages, writers=writers,
                                               blocks_per_page=blocks_per_page),
                    strategy, seed, limits=Limits(max_executions=max_executions,
                                                  time_limit=time_limit),
                    shrink_budget_s=5.0 if shrink else 0)
    return json_record(res)

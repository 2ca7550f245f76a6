"""Scenarios: one module per race class; `SCENARIOS` maps CLI names to them."""

from .base import Params, Scenario, build_program
from .punch_write_fault import PunchWriteFault

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (PunchWriteFault(),)}

__all__ = ["SCENARIOS", "Params", "Scenario", "build_program"]

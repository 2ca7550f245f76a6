import pytest

from fsrace.protocols import PROTOCOLS
from fsrace.scenarios import SCENARIOS, Params, build_program


@pytest.fixture
def build():
    """build(scenario, protocol, **params) -> a program factory."""
    def make(scenario: str, protocol: str, **params):
        p = Params(**params)
        return lambda: build_program(SCENARIOS[scenario], PROTOCOLS[protocol], p)
    return make

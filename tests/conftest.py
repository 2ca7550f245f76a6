import pytest

from fsrace.protocols import PROTOCOLS
from fsrace.scenarios import SCENARIOS, Params, build_program


@pytest.fixture(autouse=True)
def _registries_as_they_were():
    """A test that registers a scenario or protocol (fsrace.check with an object, the CLI
    loading installed packages' entry points) leaves the registries as they were: the
    tests that compare tables with docs/ see the bundled ones alone."""
    scenarios, protocols = dict(SCENARIOS), dict(PROTOCOLS)
    yield
    for table, old in ((SCENARIOS, scenarios), (PROTOCOLS, protocols)):
        table.clear()
        table.update(old)


@pytest.fixture
def build():
    """build(scenario, protocol, **params) -> a program factory."""
    def make(scenario: str, protocol: str, **params):
        p = Params(**params)
        return lambda: build_program(SCENARIOS[scenario], PROTOCOLS[protocol], p)
    return make

"""Work spread over a Ray cluster: a head and a second node started here, every process on
127.0.0.1, no dashboard. A matrix searched there gives the table a single process gives."""

import os

import pytest

from fsrace.distributed import SINGLE_MACHINE

os.environ[SINGLE_MACHINE] = "0"  # before Ray is imported: nothing leaves 127.0.0.1
pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True,
                head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                "include_dashboard": False})
    c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _node_of(seconds: float) -> str:
    import time

    time.sleep(seconds)  # long enough that one node cannot take every task
    return ray.get_runtime_context().get_node_id()


def test_tasks_run_on_both_nodes_of_a_ray_cluster(cluster):
    import sys

    from fsrace.distributed import map_unordered

    # The workers cannot import this test module: send _node_of by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

    nodes = {node for _, node in map_unordered(_node_of, [(1.0,)] * 4, ray=cluster.address)}
    assert len(nodes) == 2


def test_a_matrix_on_a_two_node_ray_cluster_is_the_table_one_process_gives(cluster):
    from fsrace.matrix import run_matrix
    from fsrace.report.matrix_report import table_row, why_section

    scenarios = ["punch-read", "writeback-store", "punch-write-fault"]
    here = run_matrix(scenarios=scenarios, costs=False)
    there = run_matrix(scenarios=scenarios, costs=False, ray=cluster.address)
    assert list(here.cells) == list(there.cells)
    for scen in scenarios:
        assert table_row(here, scen) == table_row(there, scen)
        assert why_section(here, scen) == why_section(there, scen)


def test_one_stateful_search_on_a_two_node_ray_cluster(cluster):
    from fsrace.explore.parallel import parallel_search
    from fsrace.run import builder
    from fsrace.scenarios import Params

    safe = parallel_search(builder("punch-write-fault", "invalidate-lock", Params()), 2,
                           ray=cluster.address, batch=3)
    assert safe.verdict == "safe" and safe.complete and safe.parts > 1
    race = parallel_search(builder("punch-write-fault", "linux-2012", Params()), 2,
                           ray=cluster.address, batch=3)
    assert race.verdict == "race" and race.counterexample is not None

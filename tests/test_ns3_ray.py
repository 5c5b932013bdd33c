"""NS-3 runs as Ray tasks (a local cluster): the same results as local worker threads, in order,
and one failed run reported without losing the others."""

import dataclasses

import numpy as np
import pytest
import ray  # the ecosystem extra, installed by the README's test command
from test_ns3 import two_task_plan  # skips without the ns3 extra, fails in CI

from ns3_validation.cluster import LOCAL, play_many
from ns3_validation.worker import Ns3RunError


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_runs_equal_local_runs_and_a_failure_is_reported_alone(ray_cluster):
    good = [two_task_plan("arrival", 9000), two_task_plan("arrival", 1_000_000)]
    broken = dict(good[0], tasks=[{"src": 0}])  # the worker fails on it
    plans = [good[0], broken, good[1]]
    seen = []
    out = play_many(plans, timeout_s=300, ray_address=LOCAL, on_result=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2]
    assert isinstance(out[1], Ns3RunError)
    local = play_many(good, timeout_s=300, max_workers=2)
    for ray_raw, local_raw in zip((out[0], out[2]), local, strict=True):
        assert isinstance(ray_raw, dict) and isinstance(local_raw, dict)
        for key in ("path_done_s", "data_done_s", "start_s", "end_s", "counters"):
            np.testing.assert_equal(ray_raw[key], local_raw[key])
    # each result is its own plan's: the 1 MB first task ends after the 9 kB one
    assert out[2]["end_s"][0] > out[0]["end_s"][0]


def test_replay_many_with_ray_matches_threads_on_a_scenario(ray_cluster):
    from cpnjax.evaluate import run_policy
    from cpnjax.scenario import make_scenario
    from ns3_validation.fidelity import validation_config
    from ns3_validation.plan import Decisions
    from ns3_validation.replay import replay_many

    scenario = make_scenario(validation_config("abilene", "low", 6), 0)
    sim = run_policy(scenario, "base1", 0)
    bad = dataclasses.replace(Decisions.of(sim), node_slot=np.full(6, 99))  # no such candidate
    jobs = [(scenario, Decisions.of(sim), "base1"), (scenario, bad, "bad")]
    with_ray = replay_many(jobs, timeout_s=600, ray_address=LOCAL)
    threads = replay_many(jobs[:1], timeout_s=600)
    assert isinstance(with_ray[1], ValueError)  # refused before NS-3 starts
    np.testing.assert_array_equal(with_ray[0].result.response_ms, threads[0].result.response_ms)

"""Tasks drawn inside jit have the law of the host generator (`scenario.tasks`), field by field,
for every task type, and follow the load scale."""

import dataclasses

import jax
import numpy as np
import pytest
from scipy import stats

from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim.tasks import sample_stream, task_distribution

NUM_TASKS = 4000


@pytest.mark.parametrize("task_type", ["mixed", "io", "compute"])
def test_jax_stream_has_the_host_generator_law(task_type):
    sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), task_type=task_type), 2)
    jax_stream = jax.jit(sample_stream, static_argnums=2)(
        task_distribution(sc), jax.random.key(0), NUM_TASKS
    )
    host = sc.draw_tasks(np.random.default_rng(9), NUM_TASKS)
    for field in ("interarrival_s", "size_bytes", "arch"):
        a = np.asarray(getattr(jax_stream, field), np.float64)
        b = getattr(host, field).astype(np.float64)
        np.testing.assert_allclose(a.mean(), b.mean(), rtol=0.08, err_msg=field)
        np.testing.assert_allclose(a.std(), b.std(), rtol=0.1, atol=1e-3, err_msg=field)
        if b.std() > 0:
            assert stats.ks_2samp(a, b).pvalue > 1e-3, field
        else:  # io: every size the same
            np.testing.assert_allclose(a, b[0], rtol=1e-6)
    if task_type == "compute":  # the heaviest quarter only, as on the host
        assert np.isin(
            np.asarray(jax_stream.arch), np.asarray(task_distribution(sc).arch_pool)
        ).all()
    num_ap = len(sc.access_points)
    jax_ap = np.bincount(np.asarray(jax_stream.access_point), minlength=num_ap)
    host_ap = np.bincount(host.access_point, minlength=num_ap)
    assert stats.chi2_contingency(np.stack([jax_ap, host_ap])).pvalue > 1e-3
    np.testing.assert_allclose(
        np.asarray(jax_stream.interarrival_s).mean(), 1 / sc.arrival_rate_hz, rtol=0.08
    )


def test_load_scale_divides_the_interarrival_times():
    sc = make_scenario(ScenarioConfig.test(), 0)
    dist = task_distribution(sc)
    one = sample_stream(dist, jax.random.key(1), 500)
    three = sample_stream(dist, jax.random.key(1), 500, 3.0)
    np.testing.assert_allclose(three.interarrival_s * 3.0, one.interarrival_s, rtol=1e-5)
    np.testing.assert_array_equal(three.arch, one.arch)

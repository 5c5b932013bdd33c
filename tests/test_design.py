"""Gradients for network design: with_capacity / with_device_speed, sign and finite
differences of the capacity gradient of mean response."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import line_params

from cpnjax.policies import base1, greedy_joint
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import Action, SimConfig, Task, make_params, reset, rollout, task_arrays
from cpnjax.sim.params import with_capacity, with_device_speed

SMOOTH = SimConfig(smooth_temp_s=3e-4, probe_noise=False)
EXACT = SimConfig(probe_noise=False)


def one_path(obs):
    return Action(node_slot=jnp.asarray(0, jnp.int32), split=jnp.array([1.0]))


def mean_response(params, tasks, policy, config):
    def f(factor, speed=None):
        p = with_capacity(params, params.link_capacity_bps * factor)
        if speed is not None:
            p = with_device_speed(p, speed)
        info = rollout(p, reset(p, jax.random.key(0)), tasks, policy, config)[1]
        return info.response_s.mean()

    return f


def burst(num_tasks=6, size_bytes=2e6, gap_s=2e-3):
    n = num_tasks
    return Task(
        interarrival_s=jnp.full((n,), gap_s, jnp.float32),
        access_point=jnp.zeros((n,), jnp.int32),
        arch=jnp.zeros((n,), jnp.int32),
        size_bytes=jnp.full((n,), size_bytes, jnp.float32),
    )


def test_with_capacity_at_the_same_capacity_is_make_params():
    sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), topology="tiscali"), 0)
    p = make_params(sc)
    q = with_capacity(p, p.link_capacity_bps)
    for field in ("link_rate_bps", "link_bg_util", "link_bg_wait_s", "hop_rate_bps"):
        np.testing.assert_allclose(getattr(q, field), getattr(p, field), rtol=1e-5)
    np.testing.assert_array_equal(q.hop_capacity_bps, p.hop_capacity_bps)


@pytest.mark.parametrize("config", [EXACT, SMOOTH], ids=["exact", "smooth"])
def test_more_capacity_never_increases_latency_on_one_path(config):
    # Tasks queue behind each other on a 3-hop line with background: every link slows them.
    params = line_params(num_hops=3, bg_util=0.4, bg_wait_s=5e-6)
    f = mean_response(params, burst(), one_path, config)
    grad = np.asarray(jax.grad(f)(jnp.ones(3)))
    assert (grad < 0).all(), grad
    base = float(f(jnp.ones(3)))
    for i in range(3):
        assert float(f(jnp.ones(3).at[i].set(1.1))) < base


def test_capacity_and_speed_gradients_match_finite_differences():
    sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), access_points=(0, 8)), 0)
    params, tasks = make_params(sc), task_arrays(sc.tasks)
    f = jax.jit(mean_response(params, tasks, greedy_joint, SMOOTH))
    num_links, num_devices = params.link_capacity_bps.shape[0], params.true_compute_s.shape[1]
    ones_l, ones_d = jnp.ones(num_links), jnp.ones(num_devices)
    g_link, g_dev = jax.jit(jax.grad(f, argnums=(0, 1)))(ones_l, ones_d)
    h = 1e-3
    links = np.argsort(-np.abs(np.asarray(g_link)))[:3]  # the links that matter most
    for i in links:
        e = jnp.zeros(num_links).at[i].set(h)
        fd = (float(f(ones_l + e, ones_d)) - float(f(ones_l - e, ones_d))) / (2 * h)
        assert float(g_link[i]) == pytest.approx(fd, rel=0.05, abs=1e-6)
    d = int(np.argmax(np.abs(np.asarray(g_dev))))
    e = jnp.zeros(num_devices).at[d].set(h)
    fd = (float(f(ones_l, ones_d + e)) - float(f(ones_l, ones_d - e))) / (2 * h)
    assert float(g_dev[d]) < 0  # a faster device never slows the stream it serves
    assert float(g_dev[d]) == pytest.approx(fd, rel=0.05, abs=1e-6)


def test_base1_capacity_gradient_is_finite_under_heavy_load():
    # Base1 (ECMP on the fastest server) at load 0.5 on Abilene queues for hundreds of ms; the
    # smooth server wait's gradient was NaN there before its weights entered as logs.
    sc = make_scenario(dataclasses.replace(ScenarioConfig.default(), load=0.5, num_tasks=200), 0)
    params, tasks = make_params(sc), task_arrays(sc.tasks)
    f = mean_response(params, tasks, base1, SMOOTH)
    grad = jax.jit(jax.grad(f))(jnp.ones(params.link_capacity_bps.shape[0]))
    assert np.isfinite(np.asarray(grad)).all()

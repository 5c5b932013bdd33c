import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import with_link_job

from cpnjax.policies import (
    POLICIES,
    get_policy,
    max_utilisation,
    mlu_rows,
    mlu_split,
    mlu_split_highs,
    water_fill,
)
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, arrive, make_params, observe, reset, split_is_valid, task_arrays


def test_lp_equals_the_hand_solved_optimum():
    # Two disjoint one-link paths (plus a missing third): utilisation 0.1 + x on path 0,
    # 0.1 + (1 - x) / 3 on path 1. Optimum: x = 1/4, max utilisation 0.35.
    base = jnp.array([0.1, -1e9, 0.1, -1e9, -1e9, -1e9])
    real = jnp.array([True, False, True, False, False, False])
    coef = jnp.zeros((6, 3)).at[0, 0].set(1.0).at[2, 1].set(1.0 / 3.0)
    path_mask = jnp.array([True, True, False])
    hops = jnp.array([1.0, 1.0, 0.0])
    x = mlu_split(base, coef, real, path_mask, hops)
    np.testing.assert_allclose(np.asarray(x), [0.25, 0.75, 0.0], atol=1e-5)
    assert float(max_utilisation(base, coef, real, x)) == pytest.approx(0.35, abs=1e-5)
    x_ref, mlu_ref = mlu_split_highs(base, coef, real, path_mask, hops)
    np.testing.assert_allclose(x_ref, [0.25, 0.75, 0.0], atol=1e-6)
    assert mlu_ref == pytest.approx(0.35, abs=1e-6)


def observations(topology, seed, num=12):
    cfg = dataclasses.replace(
        ScenarioConfig.test(), topology=topology, num_tasks=num, background_util=0.5
    )
    sc = make_scenario(cfg, seed)
    params = make_params(sc)
    tasks = task_arrays(sc.tasks)
    state = reset(params, jax.random.key(seed))
    obs = []
    rng = np.random.default_rng(seed)
    for i in range(num):
        t = jax.tree.map(lambda x, i=i: x[i], tasks)
        state = arrive(state, t)
        # random task backlog so that the LP sees uneven links
        backlog_s = jnp.asarray(rng.exponential(0.01, params.num_links), jnp.float32)
        state = with_link_job(state, slice(None), 0.0, 0.0, backlog_s, slot=-1)
        obs.append(observe(params, state, t, SimConfig()))
    return obs


@pytest.mark.parametrize("topology, seed", [("abilene", 0), ("tiscali", 1), ("ebone", 2)])
def test_jittable_lp_agrees_with_highs(topology, seed):
    solve = jax.jit(mlu_split)
    checked = 0
    for obs in observations(topology, seed):
        for slot in np.flatnonzero(np.asarray(obs.cand_mask)):
            base, coef, real = mlu_rows(obs, jnp.asarray(slot))
            mask, hops = obs.path_mask[slot], obs.path_hops[slot]
            x = solve(base, coef, real, mask, hops)
            x_ref, mlu_ref = mlu_split_highs(base, coef, real, mask, hops)
            assert bool(split_is_valid(x, mask))
            assert float(max_utilisation(base, coef, real, x)) == pytest.approx(
                mlu_ref, rel=1e-4, abs=1e-5
            )
            np.testing.assert_allclose(np.asarray(x), x_ref, atol=2e-3)
            checked += 1
    assert checked >= 20


def test_water_fill_equalises_used_paths_and_beats_every_other_split():
    delay = jnp.array([0.002, 0.004, 0.010])
    free = jnp.array([1e9, 2e9, 1e9])
    mask = jnp.array([True, True, True])
    size = jnp.asarray(1e6)
    split, level = water_fill(delay, free, mask, size)
    finish = delay + 8 * size * split / free
    used = np.asarray(split) > 0
    np.testing.assert_allclose(np.asarray(finish)[used], float(level), rtol=1e-5)
    assert not used[2]  # the 10 ms path is slower than the level: unused
    rng = np.random.default_rng(0)
    for _ in range(200):
        other = rng.dirichlet(np.ones(3))
        t_other = np.max(np.where(other > 0, np.asarray(delay) + 8e6 * other / np.asarray(free), 0))
        assert t_other >= float(level) - 1e-9


def test_every_policy_returns_a_valid_action_from_the_observation_alone():
    for obs in observations("abilene", 4, num=6):
        for name in POLICIES:
            action = jax.jit(get_policy(name))(obs)
            slot = int(action.node_slot)
            assert bool(obs.cand_mask[slot])
            assert bool(split_is_valid(action.split, obs.path_mask[slot]))


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown policy"):
        get_policy("oracle")


def test_water_fill_gradients_are_finite_with_missing_paths():
    # A missing path's prefix has no capacity; its level's division must leave no NaN in the
    # gradient (capacity gradients through greedy-joint were NaN on 5 Tiscali links).
    def level(free):
        delay = jnp.array([2e-3, 1e-3, 0.0])
        return water_fill(delay, free, jnp.array([True, True, False]), jnp.asarray(1e6))[1]

    grad = jax.grad(level)(jnp.array([1e9, 5e8, 0.0]))
    assert np.isfinite(np.asarray(grad)).all() and float(grad[0]) < 0

"""gradsplit: on the simplex, never better than the exact optimum, no worse than water-filling
under its own belief."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import parallel_params, task

from cpnjax.policies import greedy_joint
from cpnjax.policies.gradsplit import gradsplit, optimise_split, predicted_transmission
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, arrive, make_params, observe, reset, rollout, step, task_arrays

HARD = SimConfig(probe_noise=False)


@pytest.mark.parametrize("capacities", [(1e9, 0.5e9), (1e9, 0.1e9), (2e8, 1e9)])
def test_two_disjoint_paths_reach_but_never_beat_the_hand_optimum(capacities):
    # Path k carries x_k B over one idle hop: its last byte is in at 8 x_k B / c_k + prop. The
    # optimum splits in proportion to capacity: 8 B / (c1 + c2) + prop, + 5 ms compute.
    params = parallel_params(capacities)
    t = task(4e6)
    state = arrive(reset(params, jax.random.key(0)), t)
    obs = observe(params, state, t, HARD)
    action = jax.jit(gradsplit)(obs)
    split = np.asarray(action.split)
    assert (split >= 0).all() and split.sum() == pytest.approx(1.0, abs=1e-6)
    assert split[2] == 0.0  # the missing path slot
    response = float(step(params, state, t, action, HARD)[1].response_s)
    optimum = 8 * 4e6 / sum(capacities) + 1e-3 + 5e-3
    assert response >= optimum * (1 - 1e-5)
    assert response <= optimum * 1.01
    np.testing.assert_allclose(split[:2], np.asarray(capacities) / sum(capacities), atol=0.02)


def test_belief_model_of_an_idle_path_is_the_simulator():
    params = parallel_params((1e9, 0.5e9))
    t = task(2e6)
    state = arrive(reset(params, jax.random.key(0)), t)
    obs = observe(params, state, t, HARD)
    split = jnp.array([0.7, 0.3, 0.0])
    believed = float(predicted_transmission(obs, jnp.int32(0), split, None))
    action = greedy_joint(obs).replace(split=split)
    true = float(step(params, state, t, action, HARD)[1].transmission_s)
    assert believed == pytest.approx(true, rel=1e-4)


@pytest.mark.parametrize("topology", ["abilene", "tiscali"])
def test_on_real_states_gradsplit_stays_on_the_simplex_and_is_no_worse_than_water_filling(topology):
    sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), topology=topology), 0)
    params, tasks = make_params(sc), task_arrays(sc.tasks)
    _, info = jax.jit(lambda p, s, x: rollout(p, s, x, gradsplit, HARD))(
        params, reset(params, jax.random.key(0)), tasks
    )
    assert np.isfinite(np.asarray(info.response_s)).all()  # the simulator rejects off-simplex

    # Under its own belief, the optimised split is never worse than water-filling's.
    def both(state, t):
        state = arrive(state, t)
        obs = observe(params, state, t, HARD)
        slot = greedy_joint(obs).node_slot
        _, value = optimise_split(obs, slot)
        wf = greedy_joint(obs).split
        return state, (value, predicted_transmission(obs, slot, wf, None))

    _, (opt, wf) = jax.jit(lambda s, x: jax.lax.scan(both, s, x))(
        reset(params, jax.random.key(0)), tasks
    )
    assert (np.asarray(opt) <= np.asarray(wf) * (1 + 1e-6)).all()

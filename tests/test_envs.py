"""cpnjax.envs: the gymnax environment (spaces, any action accepted, parity with the simulator,
episodes, vmap over scenarios, one trace) and its action codec."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cpnjax.envs as envs
from cpnjax.envs.codec import decode_flat, normalise_split
from cpnjax.policies import base1
from cpnjax.sim import SimConfig, candidates, reset, rollout

N_STEPS = 120  # more than one 50-task episode


@pytest.fixture(scope="module")
def dict_env():
    # 12 candidates on Abilene's 12 nodes: fewer compute nodes than slots, so some are masked
    return envs.make("abilene", episode_tasks=50, num_candidates=12)


@pytest.fixture(scope="module")
def flat_env():
    return envs.make("abilene", flat=True, episode_tasks=50, num_candidates=12)


def run_actions(env, params, actions_fn, key, steps=N_STEPS):
    """Reset, then `steps` env.step calls with actions_fn(key, obs, state): a scan, jitted."""

    def body(carry, k):
        obs, state = carry
        k_act, k_step = jax.random.split(k)
        action = actions_fn(k_act, obs, state)
        obs2, state2, reward, term, trunc, info = env.step(k_step, state, action, params)
        out = (obs2, state2, reward, term, trunc, info, state.task)
        return (obs2, state2), out

    @jax.jit
    def run(key):
        k_reset, k_run = jax.random.split(key)
        first = env.reset(k_reset, params)
        return first, jax.lax.scan(body, first, jax.random.split(k_run, steps))[1]

    return run(key)


def finite_tree(tree) -> bool:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return all(np.isfinite(np.asarray(x)).all() for x in leaves)


def test_spaces_describe_exactly_what_is_returned(dict_env, flat_env):
    for env, params in (dict_env, flat_env):
        obs, state = env.reset(jax.random.key(0), params)
        space = env.observation_space(params)
        if env.flat:
            assert obs.shape == space.shape and obs.dtype == space.dtype
        else:
            assert set(obs) == set(space.spaces)
            for k, sub in space.spaces.items():
                assert obs[k].shape == sub.shape and obs[k].dtype == sub.dtype, k
        contains = jax.tree.map(
            lambda o, s: bool(s.contains(o)),
            obs if env.flat else dict(obs),
            space if env.flat else dict(space.spaces),
            is_leaf=lambda x: isinstance(x, envs.cpn_env.spaces.Space),
        )
        assert all(jax.tree.leaves(contains))
        n, k = env.num_candidates, env.num_paths
        act = env.action_space(params)
        if env.flat:
            assert act.shape == (n + k,) and (act.low, act.high) == (-1.0, 1.0)
        else:
            assert act.spaces["node"].n == n and act.spaces["split"].shape == (k,)


@pytest.mark.parametrize("which", ["dict", "flat"])
def test_every_sample_of_the_action_space_is_accepted(which, dict_env, flat_env):
    env, params = dict_env if which == "dict" else flat_env
    space = env.action_space(params)
    first, (obs, state, reward, term, trunc, info, _) = run_actions(
        env, params, lambda k, o, s: space.sample(k), jax.random.key(1)
    )
    assert finite_tree((obs, state.sim, reward, info)), "NaN or inf in an output"
    assert (np.asarray(info["response_s"]) > 0).all()
    np.testing.assert_allclose(reward, -info["response_s"] / params.reward_scale_s, rtol=1e-6)
    assert not np.asarray(trunc).any()
    if which == "dict":
        # the sampled node is uniform over all 12 slots: some are masked, flagged and rerouted
        invalid = np.asarray(info["invalid_action"])
        assert 0 < invalid.sum() < invalid.size
    else:
        assert not np.asarray(info["invalid_action"]).any()


def test_hostile_dict_actions_are_accepted_and_flagged(dict_env):
    env, params = dict_env
    k = env.num_paths
    hostile = [
        ({"node": -5, "split": [np.nan] * k}, True),
        ({"node": 10_000, "split": [np.inf, 1.0, -3.0][:k]}, True),
        ({"node": 0, "split": [0.0] * k}, False),  # all zero: equal split
        ({"node": 0, "split": [np.inf] * k}, False),
        ({"node": 0, "split": [-1.0, 1e38, 3e38][:k]}, False),
    ]
    _, state = env.reset(jax.random.key(2), params)
    step = jax.jit(env.step)
    for action, flagged in hostile:
        action = {"node": jnp.asarray(action["node"]), "split": jnp.asarray(action["split"])}
        obs, new, reward, *_, info = step(jax.random.key(3), state, action, params)
        assert finite_tree((obs, new.sim, reward, info)), action
        assert bool(info["invalid_action"]) == flagged, action
        if flagged:  # rerouted to slot 0, the candidate nearest the access point
            assert int(info["node"]) == int(candidates(params.sim, state.task).node[0])


def test_split_normalisation_and_flat_decoding_give_exact_zeros():
    mask = jnp.array([True, True, False])
    np.testing.assert_allclose(normalise_split(jnp.array([3.0, 1.0, 5.0]), mask), [0.75, 0.25, 0])
    np.testing.assert_allclose(normalise_split(jnp.zeros(3), mask), [0.5, 0.5, 0])
    np.testing.assert_allclose(
        normalise_split(jnp.array([jnp.inf, 1.0, 0]), mask), [1, 0, 0], atol=1e-29
    )
    np.testing.assert_allclose(normalise_split(jnp.array([jnp.nan, -2.0, 0]), mask), [0.5, 0.5, 0])

    from cpnjax.sim import Obs

    n, k, h = 3, 3, 2
    obs = Obs(
        size_bytes=jnp.float32(1e6),
        cand_mask=jnp.array([True, True, False]),
        pred_compute_s=jnp.zeros(n),
        compute_wait_s=jnp.zeros(n),
        path_mask=jnp.ones((n, k), bool),
        path_delay_s=jnp.zeros((n, k)),
        path_free_bps=jnp.ones((n, k)),
        path_hops=jnp.ones((n, k)),
        hop_links=jnp.zeros((n, k, h), jnp.int32),
        hop_mask=jnp.ones((n, k, h), bool),
        hop_capacity_bps=jnp.ones((n, k, h)),
        hop_bg_util=jnp.zeros((n, k, h)),
        hop_backlog_s=jnp.zeros((n, k, h)),
    )
    # the masked slot 2 has the top score: never chosen; z = (1, -1, -1) puts exactly 0 on two
    action, invalid = decode_flat(jnp.array([0.2, 0.5, 1.0, 1.0, -1.0, -1.0]), obs)
    assert int(action.node_slot) == 1 and not bool(invalid)
    np.testing.assert_array_equal(action.split, [1.0, 0.0, 0.0])
    action, _ = decode_flat(jnp.array([jnp.nan] * 6), obs)  # NaN: read as 0, equal split
    np.testing.assert_allclose(action.split, [1 / 3] * 3, rtol=1e-6)


def test_env_equals_the_simulator_on_the_tasks_it_drew(dict_env):
    """Base1's decisions through the env give the responses of `sim.rollout` on the same tasks
    from the same idle state (default ranges: the scenario's own load and background)."""
    env, params = dict_env

    def act(key, obs, state):
        a = base1(state.obs)
        return {"node": a.node_slot, "split": a.split}

    first, (_, _, _, term, _, info, tasks) = run_actions(env, params, act, jax.random.key(4), 50)
    assert bool(term[-1]) and not np.asarray(term[:-1]).any()
    sim0 = first[1].sim
    _, ref = rollout(params.sim, reset(params.sim, sim0.key), tasks, base1, SimConfig())
    np.testing.assert_allclose(info["response_s"], ref.response_s, rtol=1e-5)
    np.testing.assert_array_equal(info["node"], ref.node)


def test_episodes_end_on_their_last_task_and_restart_idle(dict_env):
    env, params = dict_env
    space = env.action_space(params)
    _, (obs, state, _, term, _, _, _) = run_actions(
        env, params, lambda k, o, s: space.sample(k), jax.random.key(5)
    )
    term = np.asarray(term)
    assert np.flatnonzero(term).tolist() == [49, 99]
    time = np.asarray(state.time)
    assert time[49] == 0 and time[50] == 1 and time[48] == 49
    np.testing.assert_allclose(obs["time_left"][49], 1.0)
    assert float(state.sim.time_s[49]) < float(state.sim.time_s[48])  # a fresh stream


def test_episode_load_and_background_are_drawn_from_their_ranges():
    env, params = envs.make(
        "abilene", episode_tasks=10, load_range=(0.05, 0.4), background_util_range=(0.1, 0.5)
    )
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
        jax.random.split(jax.random.key(6), 400), params
    )
    load = np.asarray(states.load_scale) * float(params.load)
    assert 0.05 <= load.min() < 0.07 and 0.38 < load.max() <= 0.4
    from cpnjax.envs.cpn_env import episode_sim_params

    util = jax.vmap(lambda s: episode_sim_params(params, s).link_bg_util.mean())(states)
    base_mean = float(params.sim.link_bg_util.mean())  # every link (all_links params)
    np.testing.assert_allclose(float(params.background_util_mean), base_mean, rtol=1e-5)
    util = np.asarray(util)
    busiest = np.asarray(
        jax.vmap(lambda s: episode_sim_params(params, s).link_bg_util.max())(states)
    )
    assert busiest.max() <= float(params.max_background_util) + 1e-5
    capped = busiest >= float(params.max_background_util) - 1e-5
    drawn = util[~capped]
    assert drawn.min() < 0.12 and drawn.max() > 0.3


def test_params_of_two_scenarios_vmap_and_step_traces_once():
    made = [envs.make("abilene", seed=s, episode_tasks=20, max_hops=8) for s in (0, 3)]
    env = made[0][0]
    shapes = [jax.tree.map(np.shape, p) for _, p in made]
    assert shapes[0] == shapes[1]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *(p for _, p in made))
    space = env.action_space(made[0][1])

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(keys, states, actions, params):
        return jax.vmap(env.step)(keys, states, actions, params)

    chex.clear_trace_counter()
    keys = jax.random.split(jax.random.key(8), 2)
    _, states = jax.vmap(env.reset)(keys, stacked)
    for i in range(3):
        actions = jax.vmap(space.sample)(jax.random.split(jax.random.key(i), 2))
        _, states, reward, *_ = step(keys, states, actions, stacked)
    assert np.isfinite(np.asarray(reward)).all()
    assert np.asarray(states.time).tolist() == [3, 3]
    # each environment reads its own scenario: scenario 1 stepped alone gives the same state
    _, alone = env.reset(keys[1], made[1][1])
    for i in range(3):
        actions = jax.vmap(space.sample)(jax.random.split(jax.random.key(i), 2))
        action = jax.tree.map(lambda x: x[1], actions)
        _, alone, *_ = env.step(keys[1], alone, action, made[1][1])
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[1], states.sim.links), alone.sim.links)


def test_make_rejects_bad_options():
    with pytest.raises(TypeError, match="unknown option"):
        envs.make("abilene", candidates=3)
    with pytest.raises(ValueError, match="load_range"):
        envs.make("abilene", load_range=(0.0, 0.2), reward_scale_s=0.01)
    with pytest.raises(ValueError, match="background_util_range"):
        envs.make("abilene", background_util_range=(0.2, 1.0), reward_scale_s=0.01)
    with pytest.raises(ValueError, match="episode_tasks"):
        envs.make("abilene", episode_tasks=0)

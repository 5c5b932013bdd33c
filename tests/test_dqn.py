"""GNN+DQN baseline: the split grid, valid actions, learning on a toy scenario."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from helpers import one_arch_tasks, two_node_params

from cpnjax.sim import SimConfig, reset, rollout, split_is_valid
from cpnjax.sim.tasks import sample_task
from cpnjax.train.dqn import DQNConfig, index_action, make_trainer, simplex_grid


def test_simplex_grid_has_every_quarter_split():
    grid = simplex_grid(3, 4)
    assert grid.shape == (15, 3)
    np.testing.assert_allclose(grid.sum(1), 1.0)
    assert {tuple(r) for r in (4 * grid).astype(int)} == {
        (a, b, 4 - a - b) for a in range(5) for b in range(5 - a)
    }


def test_grid_actions_on_missing_paths_are_masked_and_valid():
    grid = jnp.asarray(simplex_grid(3, 4))
    path_mask = jnp.array([[True, True, False], [True, False, False]])
    for index in range(2 * 15):
        a = index_action(jnp.int32(index), grid, path_mask)
        g = np.asarray(grid[index % 15])
        on_missing = (g > 0) & ~np.asarray(path_mask[index // 15])
        if not on_missing.any():
            assert bool(split_is_valid(a.split, path_mask[a.node_slot]))


def mean_response(policy, params, tasks):
    info = rollout(params, reset(params, jax.random.key(0)), tasks, policy, SimConfig())[1]
    return float(info.response_s.mean())


def random_mean_response(params, tasks, key):
    """Mean response of uniformly random candidates (one path each) on the task stream."""
    from cpnjax.sim import Action, arrive, step

    slots = jax.random.randint(key, tasks.arch.shape, 0, 2)

    def body(state, xs):
        task, slot = xs
        state = arrive(state, task)
        return step(params, state, task, Action(slot, jnp.ones((1,))), SimConfig())

    _, info = jax.lax.scan(body, reset(params, jax.random.key(0)), (tasks, slots))
    return float(info.response_s.mean())


def test_dqn_beats_a_uniformly_random_policy_on_a_tiny_scenario():
    params, dist = two_node_params(), one_arch_tasks()
    cfg = dataclasses.replace(
        DQNConfig.test(),
        reward="latency",
        num_envs=16,
        rollout_steps=4,
        num_updates=40,
        batch_size=64,
        buffer_size=1024,
        epsilon_decay_updates=20,
        target_every=5,
        lr=3e-3,
    )
    trainer = make_trainer(cfg, params, dist)
    state = jax.jit(trainer.init)(jax.random.key(0))
    update = jax.jit(trainer.update)
    for _ in range(cfg.num_updates):
        state, _ = update(state)
    tasks = jax.vmap(lambda k: sample_task(dist, k))(jax.random.split(jax.random.key(5), 50))
    learned = mean_response(trainer.policy(state.params), params, tasks)

    rand = random_mean_response(params, tasks, jax.random.key(6))
    assert learned < 0.7 * rand, (learned, rand)


def test_a_dqn_run_directory_loads_back_as_a_valid_policy(tmp_path):
    import numpy as np

    from cpnjax.evaluate import run_policy
    from cpnjax.scenario import ScenarioConfig, make_scenario
    from cpnjax.train import RunSpec
    from cpnjax.train.run import train_run

    spec = RunSpec(ScenarioConfig.test(), 1, DQNConfig.test(), chunk_updates=3, validation_tasks=10)
    summary = train_run(spec, tmp_path / "dqn", progress=False, score_baselines=False)
    assert summary["agent_name"] == "dqn"
    result = run_policy(make_scenario(ScenarioConfig.test(), 1), str(tmp_path / "dqn"), seed=1)
    assert result.policy == "dqn"
    assert np.isfinite(result.response_ms).all()  # every action accepted by the simulator
    np.testing.assert_allclose(result.split.sum(1), 1.0, atol=1e-5)

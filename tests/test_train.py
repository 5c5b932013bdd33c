"""Actor-critic trainer: advantage sign, one trace, determinism, sampler law."""

import dataclasses

import chex
import jax
import numpy as np
from helpers import one_arch_tasks, two_node_params

from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import make_params
from cpnjax.sim.tasks import task_distribution
from cpnjax.train import EnvConfig, TrainConfig, make_train, make_trainer


def p_fast(trainer, state):
    """Mean probability the policy gives the fast node over its environments' current tasks."""
    from cpnjax.policies.features import graph_features
    from cpnjax.train.env import env_observe

    cfg = EnvConfig()
    obs = jax.vmap(env_observe, in_axes=(None, 0, None))(two_node_params(), state.env, cfg)
    out = jax.vmap(trainer.network.apply, in_axes=(None, 0))(
        state.params, jax.vmap(graph_features)(obs)
    )
    return float(jax.nn.softmax(out.node_logits)[:, 0].mean())


def test_advantage_sign_raises_the_better_node():
    cfg = dataclasses.replace(
        TrainConfig.test(),
        algo="a2c",
        optimizer="adam",
        lr=3e-3,
        num_envs=32,
        rollout_steps=8,
        max_grad_norm=None,
    )
    trainer = make_trainer(cfg, two_node_params(), one_arch_tasks())
    update = jax.jit(trainer.update)
    state = jax.jit(trainer.init)(jax.random.key(0))
    before = p_fast(trainer, state)
    for _ in range(15):
        state, _ = update(state)
    after = p_fast(trainer, state)
    assert after > before + 0.1, (before, after)


def test_update_traces_once_across_updates_and_scenarios():
    sc = [make_scenario(dataclasses.replace(ScenarioConfig.test(), max_hops=8), s) for s in (0, 3)]
    args = [(make_params(s, all_links=True), task_distribution(s)) for s in sc]
    shapes = [jax.tree.map(np.shape, a) for a in args]
    assert shapes[0] == shapes[1]  # two scenarios of one padded size
    cfg = TrainConfig.test()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def update(sim_params, tasks, state):
        return make_trainer(cfg, sim_params, tasks).update(state)[0]

    chex.clear_trace_counter()
    for p, d in args:
        state = jax.jit(make_trainer(cfg, p, d).init)(jax.random.key(0))
        state = update(p, d, update(p, d, state))
        assert int(state.update) == 2


def test_make_train_is_deterministic_and_finite():
    sc = make_scenario(ScenarioConfig.test(), 0)
    params, tasks = make_params(sc), task_distribution(sc)
    for algo in ("ppo", "a2c"):
        train = jax.jit(
            make_train(dataclasses.replace(TrainConfig.test(), algo=algo), params, tasks)
        )
        a, metrics = train(jax.random.key(4))
        b, _ = train(jax.random.key(4))
        chex.assert_trees_all_equal(a.params, b.params)
        assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
        assert metrics["response_ms"].shape == (TrainConfig.test().num_updates,)

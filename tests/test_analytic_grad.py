"""Analytic-gradient trainer: its loss's gradient, the direction it learns, one trace, config."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import one_arch_tasks, two_node_params

from cpnjax.policies.features import graph_features
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import make_params
from cpnjax.sim.tasks import task_distribution
from cpnjax.train.analytic_grad import (
    APGConfig,
    discounted_to_go,
    make_trainer,
    make_window_loss,
)
from cpnjax.train.env import EnvConfig, env_observe
from cpnjax.train.run import RunSpec


def p_fast(trainer, state):
    """Mean probability the policy gives the fast node (slot 0) over its environments."""
    obs = jax.vmap(env_observe, in_axes=(None, 0, None))(two_node_params(), state.env, EnvConfig())
    out = jax.vmap(trainer.network.apply, in_axes=(None, 0))(
        state.params, jax.vmap(graph_features)(obs)
    )
    return float(jax.nn.softmax(out.node_logits)[:, 0].mean())


@pytest.mark.parametrize("node_grad", ["expected", "score"])
def test_apg_raises_the_faster_node(node_grad):
    cfg = dataclasses.replace(
        APGConfig.test(),
        node_grad=node_grad,
        num_envs=16,
        rollout_steps=4,
        lr=3e-3,
        num_updates=15,  # the cosine decay spans the 15 updates
    )
    trainer = make_trainer(cfg, two_node_params(), one_arch_tasks())
    update = jax.jit(trainer.update)
    state = jax.jit(trainer.init)(jax.random.key(0))
    before = p_fast(trainer, state)
    for _ in range(15):
        state, metrics = update(state)
    after = p_fast(trainer, state)
    assert after > before + 0.1, (before, after)
    assert np.isfinite(float(metrics["grad_norm"])) and float(metrics["grad_norm"]) > 0


def small_abilene():
    sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), access_points=(0, 8)), 0)
    return make_params(sc, all_links=True), task_distribution(sc)


H = 1e-3  # step of the central differences along a unit direction in weight space


H = 1e-3  # step of the central differences along a unit direction in weight space


@pytest.mark.parametrize(
    "coupled", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["one_sweep", "coupled"]
)
def test_window_loss_gradient_matches_finite_differences(coupled):
    # `expected`: the loss's value is exactly what is differentiated (no stop-gradient terms),
    # so its directional derivative must match central differences of the loss itself. With
    # coupled chunks it once jumped between two levels (a log-sum-exp taken apart).
    sim_params, dist = small_abilene()
    cfg = dataclasses.replace(APGConfig.test(), num_envs=3, rollout_steps=3)
    sim = dataclasses.replace(cfg.env.sim, coupled_chunks=coupled)
    cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, sim=sim))
    trainer = make_trainer(cfg, sim_params, dist)
    state = jax.jit(trainer.init)(jax.random.key(1))
    loss = make_window_loss(cfg, sim_params, dist, trainer.network)
    key = jax.random.key(2)

    def f(params):
        return loss(params, state.env, key, state.reward_scale_s)[0]

    grad = jax.jit(jax.grad(f))(state.params)
    leaves, tree = jax.tree.flatten(grad)
    assert float(jnp.sqrt(sum((g**2).sum() for g in leaves))) > 1e-3  # not vanishing
    f_jit = jax.jit(f)
    rng = np.random.default_rng(0)
    for direction in ("gradient", "random"):
        if direction == "gradient":
            d = leaves
        else:
            d = [jnp.asarray(rng.normal(size=g.shape), g.dtype) for g in leaves]
        norm = jnp.sqrt(sum((x**2).sum() for x in d))
        d = jax.tree.unflatten(tree, [x / norm for x in d])
        plus = jax.tree.map(lambda p, x: p + H * x, state.params, d)
        minus = jax.tree.map(lambda p, x: p - H * x, state.params, d)
        fd = (float(f_jit(plus)) - float(f_jit(minus))) / (2 * H)
        analytic = float(
            sum((g * x).sum() for g, x in zip(leaves, jax.tree.leaves(d), strict=True))
        )
        assert analytic == pytest.approx(fd, rel=0.05, abs=1e-3), direction


def test_update_traces_once_and_is_deterministic():
    sim_params, dist = small_abilene()
    cfg = dataclasses.replace(APGConfig.test(), node_grad="score")

    @jax.jit
    @chex.assert_max_traces(n=1)
    def update(state):
        return make_trainer(cfg, sim_params, dist).update(state)

    chex.clear_trace_counter()
    init = jax.jit(make_trainer(cfg, sim_params, dist).init)
    runs = []
    for _ in range(2):
        state = init(jax.random.key(5))
        for _ in range(2):
            state, metrics = update(state)
        runs.append(state.params)
        assert np.isfinite(float(metrics["loss"]))
    chex.assert_trees_all_equal(*runs)


def test_discounted_cost_to_go_stops_at_episode_ends():
    cost = jnp.array([[1.0], [2.0], [4.0]])
    done = jnp.array([[False], [True], [False]])
    got = discounted_to_go(cost, done, 0.5)
    np.testing.assert_allclose(np.asarray(got)[:, 0], [1 + 0.5 * 2, 2, 4])


def test_config_refuses_bad_input_and_round_trips():
    with pytest.raises(ValueError, match="node_grad"):
        dataclasses.replace(APGConfig.test(), node_grad="gumbel").validate()
    with pytest.raises(ValueError, match="temperature"):
        dataclasses.replace(APGConfig.test(), temperature_s=0.0).validate()
    spec = RunSpec(ScenarioConfig.test(), 0, APGConfig.test())
    assert RunSpec.from_json(spec.to_json()) == spec

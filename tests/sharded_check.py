"""Run by test_sharding.py in a process with 8 fake CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=8): the sharded rollout and trainer give the
numbers of the unsharded ones. Prints OK at the end."""

import dataclasses

import chex
import jax
import numpy as np

from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import make_batched_rollout, make_params, permuted_tasks
from cpnjax.sim.sharding import env_mesh
from cpnjax.sim.tasks import task_distribution
from cpnjax.train import TrainConfig, make_train

assert jax.device_count() == 8, jax.devices()
mesh = env_mesh(8)
sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), num_tasks=12), 0)
params = make_params(sc)
tasks = permuted_tasks(sc.tasks, 16, seed=0)
keys = jax.random.split(jax.random.key(0), 16)
for name in ("base1", "greedy"):
    plain = make_batched_rollout(get_policy(name))(params, keys, tasks)
    sharded = make_batched_rollout(get_policy(name), mesh=mesh)(params, keys, tasks)
    assert len(sharded.response_s.sharding.device_set) == 8, sharded.response_s.sharding
    assert np.isfinite(np.asarray(plain.response_s)).all()
    chex.assert_trees_all_equal(jax.device_get(plain), jax.device_get(sharded))
try:
    make_batched_rollout(get_policy("base1"), mesh=mesh)(
        params, keys[:12], jax.tree.map(lambda x: x[:12], tasks)
    )
except ValueError as e:
    assert "evenly divide" in str(e), e
else:
    raise AssertionError("12 environments on 8 devices were accepted")

# SGD: Adam turns the last-bit differences of a reordered gradient sum on a near-0 gradient
# into whole steps of size lr; SGD keeps them last-bit.
config = dataclasses.replace(
    TrainConfig.test(), num_envs=16, num_updates=2, optimizer="sgd", lr=0.05
)
dist = task_distribution(sc)
plain_state, plain_metrics = jax.jit(make_train(config, params, dist))(jax.random.key(1))
state, metrics = jax.jit(make_train(config, params, dist, mesh=mesh))(jax.random.key(1))
leaf = jax.tree.leaves(state.env)[0]
assert len(leaf.sharding.device_set) == 8, leaf.sharding
chex.assert_trees_all_close(plain_metrics, metrics, rtol=1e-4, atol=1e-6)
chex.assert_trees_all_close(plain_state.params, state.params, rtol=1e-4, atol=1e-6)
try:
    make_train(dataclasses.replace(config, num_envs=12), params, dist, mesh=mesh)
except ValueError as e:
    assert "split evenly" in str(e), e
else:
    raise AssertionError("num_envs 12 on 8 devices was accepted")
print("OK")

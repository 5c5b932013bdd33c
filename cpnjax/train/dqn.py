"""GNN+DQN baseline (paper ref. [8], table 3's last column), all in JAX.

The same SyncGNN encoder reads the task's graph; a Q head scores every (candidate node, split)
pair, the split taken from a fixed grid on the simplex (`simplex_grid`: all shares in steps of
1/levels, 15 points for k = 3 and levels = 4), masked where a grid point puts weight on a
missing path. Each pair also gets the transmission the observation predicts for it,
max over used paths of (probe delay + 8 B share / free capacity), as an input (the actor-critic
gets the equivalent through its water-filling prior). Epsilon-greedy exploration (linear decay),
a jnp ring-buffer replay of transitions, double-DQN targets from a target network updated
every `target_every` updates.

Reward (`reward`):
* `bandwidth` (default, as the paper describes ref. [8]: its network term is bandwidth-based):
  -(compute wait + compute + max over used paths of 8 B share / free capacity) / scale, the
  time the task's bytes occupy the bottleneck bandwidth, ignoring propagation and queueing
  on the path;
* `latency`: -response / scale, the actor-critic's reward.
scale: the mean response of the first rollout, as in the actor-critic.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from cpnjax.policies.features import GraphFeatures, graph_features
from cpnjax.policies.networks import MLP, NEG, SyncGNN
from cpnjax.sim import Action, Obs, Policy, SimParams
from cpnjax.sim.tasks import TaskDistribution
from cpnjax.train.actor_critic import Trainer, flat, make_optimizer
from cpnjax.train.env import (
    EnvConfig,
    EnvState,
    RolloutBudget,
    env_observe,
    env_reset,
    env_step,
)

REWARDS = ("bandwidth", "latency")


@dataclasses.dataclass(frozen=True)
class DQNConfig(RolloutBudget):
    agent: str = "dqn"
    algo: str = "dqn"
    reward: str = "bandwidth"
    num_envs: int = 256
    rollout_steps: int = 4
    num_updates: int = 600
    hidden: int = 32
    rounds: int = 1
    grid_levels: int = 4
    gamma: float = 0.5
    lr: float = 1e-3
    batch_size: int = 256
    gradient_steps: int = 2
    buffer_size: int = 32768
    target_every: int = 20
    epsilon_start: float = 1.0
    epsilon_end: float = 0.02
    epsilon_decay_updates: int = 300
    max_grad_norm: float | None = 10.0
    env: EnvConfig = EnvConfig()

    @classmethod
    def default(cls) -> DQNConfig:
        return cls()

    @classmethod
    def test(cls) -> DQNConfig:
        return cls(
            num_envs=8,
            rollout_steps=2,
            num_updates=3,
            hidden=8,
            batch_size=8,
            buffer_size=64,
            env=EnvConfig(episode_tasks=10),
        )

    def validate(self) -> None:
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; expected one of {REWARDS}")
        self.check_counts(("batch_size", "buffer_size", "grid_levels"))


def simplex_grid(num_paths: int, levels: int) -> np.ndarray:
    """(G, K) every split with shares in multiples of 1/levels."""
    rows = [c for c in itertools.product(range(levels + 1), repeat=num_paths) if sum(c) == levels]
    return np.asarray(sorted(rows, reverse=True), np.float32) / levels


def grid_transmission_s(obs: Obs, grid: jax.Array) -> jax.Array:
    """(N, G) transmission the observation predicts for each (candidate, grid split)."""
    free = jnp.maximum(obs.path_free_bps, 1.0)[:, None, :]  # (N, 1, K)
    per_path = obs.path_delay_s[:, None, :] + 8.0 * obs.size_bytes * grid[None] / free
    return jnp.where(grid[None] > 0, per_path, 0.0).max(-1)


class QFeatures(NamedTuple):
    graph: GraphFeatures
    transmission: jax.Array  # (N, G) log1p(ms)
    valid: jax.Array  # (N, G) bool


def q_features(obs: Obs, grid: jax.Array) -> QFeatures:
    graph = graph_features(obs)
    on_missing = (grid[None] > 0) & ~graph.path_mask[:, None, :]  # (N, G, K)
    valid = graph.cand_mask[:, None] & ~on_missing.any(-1)
    return QFeatures(graph, jnp.log1p(grid_transmission_s(obs, grid) / 1e-3), valid)


class QNetwork(nn.Module):
    """Q (N, G) of every (candidate, grid split); invalid pairs at NEG."""

    grid: tuple  # (G, K) as nested tuples (static)
    hidden: int = 32
    rounds: int = 1

    @nn.compact
    def __call__(self, f: QFeatures) -> jax.Array:
        grid = jnp.asarray(self.grid, jnp.float32)
        h_c, h_p = SyncGNN(self.hidden, self.rounds)(f.graph)
        mixed = jnp.einsum("gk,nkd->ngd", grid, h_p)
        n, g = f.valid.shape
        x = jnp.concatenate(
            [
                jnp.broadcast_to(h_c[:, None], (n, g, self.hidden)),
                mixed,
                jnp.broadcast_to(grid[None], (n, g, grid.shape[1])),
                f.transmission[..., None],
            ],
            -1,
        )
        q = MLP(self.hidden, 2, out=1)(x)[..., 0]
        return jnp.where(f.valid, q, NEG)


def greedy_index(q: jax.Array) -> jax.Array:
    return jnp.argmax(q.reshape(-1)).astype(jnp.int32)


def index_action(index: jax.Array, grid: jax.Array, path_mask: jax.Array) -> Action:
    """Flat (candidate, grid) index -> simulator action."""
    node = (index // grid.shape[0]).astype(jnp.int32)
    split = jnp.where(path_mask[node], grid[index % grid.shape[0]], 0.0)
    return Action(node_slot=node, split=split / split.sum())


def dqn_policy(network: QNetwork, params) -> Policy:
    grid = jnp.asarray(network.grid, jnp.float32)

    def policy(obs: Obs) -> Action:
        index = greedy_index(network.apply(params, q_features(obs, grid)))
        return index_action(index, grid, obs.path_mask)

    return policy


def make_q_network(config: DQNConfig, num_paths: int) -> QNetwork:
    grid = simplex_grid(num_paths, config.grid_levels)
    return QNetwork(tuple(map(tuple, grid.tolist())), config.hidden, config.rounds)


@struct.dataclass
class Replay:
    data: QFeatures  # leaves (B, ...)
    next_data: QFeatures
    action: jax.Array  # (B,) int32 flat index
    reward: jax.Array  # (B,) in seconds, unscaled cost
    done: jax.Array  # (B,) bool
    size: jax.Array  # () int32 filled slots
    head: jax.Array  # () int32 next slot to write


@struct.dataclass
class DQNState:
    params: dict
    target_params: dict
    opt_state: optax.OptState
    env: EnvState
    replay: Replay
    key: jax.Array
    update: jax.Array
    reward_scale_s: jax.Array


def make_trainer(config: DQNConfig, sim_params: SimParams, tasks: TaskDistribution) -> Trainer:
    config.validate()
    num_paths = sim_params.path_mask.shape[-1]
    net = make_q_network(config, num_paths)
    grid = jnp.asarray(net.grid, jnp.float32)
    tx = make_optimizer("adam", config.lr, config.max_grad_norm)
    env_cfg = config.env
    num_envs = config.num_envs

    def features(env: EnvState):
        obs = jax.vmap(env_observe, in_axes=(None, 0, None))(sim_params, env, env_cfg)
        return obs, jax.vmap(q_features, in_axes=(0, None))(obs, grid)

    def q_all(params, f):
        return jax.vmap(net.apply, in_axes=(None, 0))(params, f)

    def init(key):
        k_env, k_net, k_next = jax.random.split(key, 3)
        env = jax.vmap(env_reset, in_axes=(None, None, 0, None))(
            sim_params, tasks, jax.random.split(k_env, num_envs), env_cfg
        )
        _, f = features(env)
        params = net.init(k_net, jax.tree.map(lambda x: x[0], f))
        empty = jax.tree.map(lambda x: jnp.zeros((config.buffer_size, *x.shape[1:]), x.dtype), f)
        zeros = jnp.zeros((config.buffer_size,))
        replay = Replay(
            empty,
            empty,
            zeros.astype(jnp.int32),
            zeros,
            zeros.astype(bool),
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
        )
        return DQNState(
            params,
            params,
            tx.init(params),
            env,
            replay,
            k_next,
            jnp.zeros((), jnp.int32),
            jnp.ones((), jnp.float32),
        )

    def epsilon(update):
        frac = jnp.clip(update / max(config.epsilon_decay_updates, 1), 0.0, 1.0)
        return config.epsilon_start + frac * (config.epsilon_end - config.epsilon_start)

    def env_step_fn(carry, _):
        params, env, key, eps = carry
        key, k_rand, k_explore = jax.random.split(key, 3)
        obs, f = features(env)
        q = q_all(params, f)
        greedy = jax.vmap(greedy_index)(q)
        logits = jnp.where(f.valid.reshape(num_envs, -1), 0.0, NEG)
        random = jax.random.categorical(k_rand, logits).astype(jnp.int32)
        explore = jax.random.uniform(k_explore, (num_envs,)) < eps
        index = jnp.where(explore, random, greedy)
        action = jax.vmap(index_action, in_axes=(0, None, 0))(index, grid, obs.path_mask)
        env, info, done = jax.vmap(env_step, in_axes=(None, None, 0, 0, None))(
            sim_params, tasks, env, action, env_cfg
        )
        _, next_f = features(env)  # the next task's features (a fresh episode's after done)
        if config.reward == "bandwidth":
            free = jnp.maximum(
                jnp.take_along_axis(obs.path_free_bps, action.node_slot[:, None, None], 1)[:, 0],
                1.0,
            )
            busy = (8.0 * obs.size_bytes[:, None] * action.split / free).max(-1)
            cost = info.wait_s + info.compute_s + busy
        else:
            cost = info.response_s
        return (params, env, key, eps), (f, next_f, index, cost, done, info.response_s)

    def push(replay: Replay, items) -> Replay:
        f, next_f, index, cost, done = items
        n = index.shape[0]
        slots = (replay.head + jnp.arange(n)) % config.buffer_size
        put = lambda buf, x: buf.at[slots].set(x)  # noqa: E731
        return Replay(
            jax.tree.map(put, replay.data, f),
            jax.tree.map(put, replay.next_data, next_f),
            put(replay.action, index),
            put(replay.reward, cost),
            put(replay.done, done),
            jnp.minimum(replay.size + n, config.buffer_size),
            (replay.head + n) % config.buffer_size,
        )

    def loss_fn(params, target_params, batch, scale):
        f, next_f, index, cost, done = batch
        q = q_all(params, f).reshape(index.shape[0], -1)
        q_taken = jnp.take_along_axis(q, index[:, None], 1)[:, 0]
        next_online = q_all(params, next_f).reshape(index.shape[0], -1)
        best = jnp.argmax(next_online, -1)
        next_target = q_all(target_params, next_f).reshape(index.shape[0], -1)
        bootstrap = jnp.take_along_axis(next_target, best[:, None], 1)[:, 0]
        target = -cost / scale + config.gamma * (1.0 - done) * bootstrap
        td = q_taken - jax.lax.stop_gradient(target)
        return optax.huber_loss(td).mean()

    def update(state: DQNState):
        eps = epsilon(state.update)
        (_, env, key, _), traj = jax.lax.scan(
            env_step_fn, (state.params, state.env, state.key, eps), None, config.rollout_steps
        )
        f, next_f, index, cost, done, response = traj
        scale = jnp.where(state.update == 0, response.mean(), state.reward_scale_s)
        replay = push(state.replay, jax.tree.map(flat, (f, next_f, index, cost, done)))
        key, k_sample = jax.random.split(key)

        def grad_step(carry, k):
            params, opt_state = carry
            pick = jax.random.randint(k, (config.batch_size,), 0, replay.size)
            batch = jax.tree.map(
                lambda x: x[pick],
                (replay.data, replay.next_data, replay.action, replay.reward, replay.done),
            )
            loss, grads = jax.value_and_grad(loss_fn)(params, state.target_params, batch, scale)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), loss = jax.lax.scan(
            grad_step,
            (state.params, state.opt_state),
            jax.random.split(k_sample, config.gradient_steps),
        )
        sync = (state.update + 1) % config.target_every == 0
        target = jax.tree.map(lambda a, b: jnp.where(sync, a, b), params, state.target_params)
        new = DQNState(params, target, opt_state, env, replay, key, state.update + 1, scale)
        return new, {"response_ms": response.mean() * 1e3, "loss": loss.mean(), "epsilon": eps}

    return Trainer(init=init, update=update, policy=lambda p: dqn_policy(net, p), network=net)

"""Actor-critic training of the RLMS-CPN scheduler (paper 3.4.4), purejaxrl style.

`make_trainer(config, sim_params, tasks)` closes over one CPN instance and returns pure
functions: `init(key) -> TrainState` and `update(state) -> (state, metrics)`, one update being a
`lax.scan` of `rollout_steps` steps over `num_envs` vmapped environments followed by the
learning step. `make_train(...)` composes them into `train(key)`, one `lax.scan` over updates,
jitted once (and vmappable over seeds). No host round-trip inside an update.

Reward = -response / reward_scale, where reward_scale_s is the mean response of the first
rollout (the initial policy's), fixed from then on: rewards are of order one on every topology.

Algorithms:
* `a2c`, the paper's update (eqs. 9-15) with the advantage sign corrected: the TD error
  delta = r + gamma V(s') - V(s) (the paper writes V(s) - y and ascends on it, which raises the
  probability of worse-than-expected actions); actor loss -delta * log pi, critic loss delta^2/2,
  one step per rollout, batched over environments (the paper steps online on one sample).
  `TrainConfig.paper()` is the paper's plain SGD at lr 0.1/0.1, gamma 0.99.
* `ppo`: PPO-clip on GAE advantages (normalised per minibatch), epochs x minibatches, Adam.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from cpnjax.policies import distributions
from cpnjax.policies.features import GraphFeatures, graph_features
from cpnjax.policies.learned import learned_policy
from cpnjax.policies.networks import ActorCritic
from cpnjax.sim import SimParams
from cpnjax.sim.sharding import check_divisible, constrain_envs
from cpnjax.sim.tasks import TaskDistribution
from cpnjax.train.env import (
    EnvConfig,
    EnvState,
    RolloutBudget,
    env_observe,
    env_reset,
    env_step,
    time_left,
)

AGENTS = ("syncgnn", "mlp")
ALGOS = ("a2c", "ppo")


@dataclasses.dataclass(frozen=True)
class TrainConfig(RolloutBudget):
    """Everything a training run depends on, besides the scenario and the seed."""

    agent: str = "syncgnn"  # syncgnn | mlp
    algo: str = "ppo"  # a2c | ppo
    num_envs: int = 256
    rollout_steps: int = 16
    num_updates: int = 150
    hidden: int = 32
    rounds: int = 1  # SyncGNN message-passing rounds
    split_prior: bool = True  # split logits centred on the water-filling split
    split_cut: float = distributions.SPLIT_CUT
    init_log_std: float = -0.7
    gamma: float = (
        0.5  # by measurement: experiments/compare_algos.py (0.99 19.19, 0.9 18.53, 0.5 18.43 ms)
    )
    gae_lambda: float = 0.95
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    clip_eps: float = 0.2
    epochs: int = 4
    minibatches: int = 4
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float | None = 0.5
    env: EnvConfig = EnvConfig()

    @classmethod
    def default(cls) -> TrainConfig:
        return cls()

    @classmethod
    def paper(cls) -> TrainConfig:
        """The paper's update: TD(0) actor-critic, plain SGD, lr 0.1 (actors and critic),
        gamma 0.99, no clipping, no entropy term."""
        return cls(algo="a2c", optimizer="sgd", lr=0.1, gamma=0.99, vf_coef=1.0, max_grad_norm=None)

    @classmethod
    def test(cls) -> TrainConfig:
        """CPU-seconds preset for tests."""
        return cls(
            num_envs=8,
            rollout_steps=4,
            num_updates=3,
            hidden=8,
            epochs=2,
            minibatches=2,
            env=EnvConfig(episode_tasks=10),
        )

    def validate(self) -> None:
        if self.agent not in AGENTS:
            raise ValueError(f"unknown agent {self.agent!r}; expected one of {', '.join(AGENTS)}")
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algo {self.algo!r}; expected one of {', '.join(ALGOS)}")
        self.check_counts(("epochs", "minibatches", "hidden"))
        if self.steps_per_update % self.minibatches:
            raise ValueError("num_envs * rollout_steps must be divisible by minibatches")


def make_network(config: TrainConfig) -> ActorCritic:
    return ActorCritic(
        encoder=config.agent,
        hidden=config.hidden,
        rounds=config.rounds,
        split_prior=config.split_prior,
        init_log_std=config.init_log_std,
    )


@struct.dataclass
class TrainState:
    params: dict
    opt_state: optax.OptState
    env: EnvState  # (E,) environments
    key: jax.Array
    update: jax.Array  # () int32 updates done
    reward_scale_s: jax.Array  # () seconds per unit of reward


class Transition(NamedTuple):
    features: GraphFeatures  # leaves (T, E, ...)
    time_left: jax.Array  # (T, E)
    node: jax.Array  # (T, E) int32
    z: jax.Array  # (T, E, K) split logits
    log_prob: jax.Array  # (T, E)
    value: jax.Array  # (T, E)
    response_s: jax.Array  # (T, E)
    done: jax.Array  # (T, E) bool: the step ended its episode


class Trainer(NamedTuple):
    """What the run loop needs of a trainer (actor-critic or DQN)."""

    init: Callable  # key -> state
    update: Callable  # state -> (state, metrics)
    policy: Callable  # network params -> deterministic Policy
    network: nn.Module  # ActorCritic or QNetwork


def make_optimizer(
    name: str, lr: float | optax.Schedule, max_grad_norm: float | None
) -> optax.GradientTransformation:
    """adam | sgd at `lr` (a float or a schedule of the step), after global-norm clipping when
    max_grad_norm is set."""
    opt = {"adam": optax.adam, "sgd": optax.sgd}[name](lr)
    if max_grad_norm is None:
        return opt
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), opt)


def make_trainer(
    config: TrainConfig,
    sim_params: SimParams,
    tasks: TaskDistribution,
    mesh: Mesh | None = None,
) -> Trainer:
    """Pure init/update functions for one CPN instance (see the module docstring).

    With a `mesh` (`cpnjax.sim.sharding.env_mesh`) the environments, their rollouts and
    transitions are split over its devices and the weights replicated; num_envs must be a
    multiple of the device count."""
    config.validate()
    check_divisible(config.num_envs, mesh)
    net = make_network(config)
    tx = make_optimizer(config.optimizer, config.lr, config.max_grad_norm)
    env_cfg = config.env
    num_envs = config.num_envs

    def observe_all(env: EnvState):
        obs = jax.vmap(env_observe, in_axes=(None, 0, None))(sim_params, env, env_cfg)
        return jax.vmap(graph_features)(obs), jax.vmap(time_left, in_axes=(0, None))(env, env_cfg)

    def forward(params, feats, clock):
        return jax.vmap(net.apply, in_axes=(None, 0, 0))(params, feats, clock)

    def init(key: jax.Array) -> TrainState:
        k_env, k_net, k_next = jax.random.split(key, 3)
        env = jax.vmap(env_reset, in_axes=(None, None, 0, None))(
            sim_params, tasks, jax.random.split(k_env, num_envs), env_cfg
        )
        env = constrain_envs(env, mesh)
        feats, clock = observe_all(env)
        one = jax.tree.map(lambda x: x[0], feats)
        params = net.init(k_net, one, clock[0])
        return TrainState(
            params=params,
            opt_state=tx.init(params),
            env=env,
            key=k_next,
            update=jnp.zeros((), jnp.int32),
            reward_scale_s=jnp.ones((), jnp.float32),
        )

    def env_step_fn(carry, _):
        params, env, key = carry
        key, k_act = jax.random.split(key)
        feats, clock = observe_all(env)
        out = forward(params, feats, clock)
        node, z = jax.vmap(distributions.sample)(out, jax.random.split(k_act, num_envs))
        log_prob = jax.vmap(distributions.log_prob)(out, node, z)
        action = jax.vmap(distributions.to_action, in_axes=(0, 0, 0, None))(
            out, node, z, config.split_cut
        )
        env, info, done = jax.vmap(env_step, in_axes=(None, None, 0, 0, None))(
            sim_params, tasks, env, action, env_cfg
        )
        env = constrain_envs(env, mesh)
        t = Transition(feats, clock, node, z, log_prob, out.value, info.response_s, done)
        return (params, env, key), t

    def update(state: TrainState) -> tuple[TrainState, dict]:
        (_, env, key), traj = jax.lax.scan(
            env_step_fn, (state.params, state.env, state.key), None, config.rollout_steps
        )
        scale = jnp.where(state.update == 0, traj.response_s.mean(), state.reward_scale_s)
        reward = -traj.response_s / scale
        feats, clock = observe_all(env)
        last_value = forward(state.params, feats, clock).value
        key, k_learn = jax.random.split(key)
        if config.algo == "ppo":
            params, opt_state, losses = ppo_learn(state, traj, reward, last_value, k_learn)
        else:
            params, opt_state, losses = a2c_learn(state, traj, reward, last_value)
        metrics = {
            "response_ms": traj.response_s.mean() * 1e3,
            "reward": reward.mean(),
            "split_log_std": params["params"]["split_log_std"],
            **losses,
        }
        new = state.replace(
            params=params,
            opt_state=opt_state,
            env=env,
            key=key,
            update=state.update + 1,
            reward_scale_s=scale,
        )
        return new, metrics

    def policy_terms(params, traj: Transition):
        out = forward_flat(params, traj)
        log_prob = jax.vmap(distributions.log_prob)(out, flat(traj.node), flat(traj.z))
        entropy = jax.vmap(distributions.entropy)(out).mean()
        return out.value, log_prob, entropy

    def forward_flat(params, traj: Transition):
        return forward(params, jax.tree.map(flat, traj.features), flat(traj.time_left))

    def a2c_learn(state: TrainState, traj: Transition, reward, last_value):
        next_value = jnp.concatenate([traj.value[1:], last_value[None]])
        target = reward + config.gamma * next_value * (1.0 - traj.done)
        delta = flat(target - traj.value)

        def loss_fn(params):
            value, log_prob, entropy = policy_terms(params, traj)
            td = flat(target) - value
            actor = -(jax.lax.stop_gradient(delta) * log_prob).mean()
            critic = 0.5 * (td**2).mean()
            total = actor + config.vf_coef * critic - config.ent_coef * entropy
            return total, {"actor_loss": actor, "critic_loss": critic, "entropy": entropy}

        grads, losses = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), opt_state, losses

    def ppo_learn(state: TrainState, traj: Transition, reward, last_value, key):
        advantage, target = gae(reward, traj.value, traj.done, last_value)
        batch = (jax.tree.map(flat, traj), flat(advantage), flat(target))
        size = config.steps_per_update // config.minibatches

        def loss_fn(params, mb):
            t, adv, tgt = mb
            out = forward(params, t.features, t.time_left)
            log_prob = jax.vmap(distributions.log_prob)(out, t.node, t.z)
            entropy = jax.vmap(distributions.entropy)(out).mean()
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            ratio = jnp.exp(log_prob - t.log_prob)
            clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
            actor = -jnp.minimum(ratio * adv, clipped * adv).mean()
            critic = 0.5 * ((out.value - tgt) ** 2).mean()
            total = actor + config.vf_coef * critic - config.ent_coef * entropy
            return total, {"actor_loss": actor, "critic_loss": critic, "entropy": entropy}

        def minibatch_step(carry, mb):
            params, opt_state = carry
            grads, losses = jax.grad(loss_fn, has_aux=True)(params, mb)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), losses

        def epoch(carry, k):
            perm = jax.random.permutation(k, config.steps_per_update)
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape(config.minibatches, size, *x.shape[1:]), batch
            )
            return jax.lax.scan(minibatch_step, carry, shuffled)

        (params, opt_state), losses = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, config.epochs)
        )
        return params, opt_state, jax.tree.map(jnp.mean, losses)

    def gae(reward, value, done, last_value):
        def back(carry, x):
            adv_next, v_next = carry
            r, v, d = x
            delta = r + config.gamma * v_next * (1.0 - d) - v
            adv = delta + config.gamma * config.gae_lambda * (1.0 - d) * adv_next
            return (adv, v), adv

        _, advantage = jax.lax.scan(
            back, (jnp.zeros_like(last_value), last_value), (reward, value, done), reverse=True
        )
        return advantage, advantage + value

    def policy(params):
        return learned_policy(net, params, config.split_cut)

    return Trainer(init=init, update=update, policy=policy, network=net)


def flat(x: jax.Array) -> jax.Array:
    """(T, E, ...) -> (T * E, ...)."""
    return x.reshape(-1, *x.shape[2:])


def make_train(
    config: TrainConfig,
    sim_params: SimParams,
    tasks: TaskDistribution,
    mesh: Mesh | None = None,
):
    """train(key) -> (TrainState, metrics with a leading (num_updates,) axis): the whole run as
    one pure function (jit it once; vmap it over keys for several seeds). `mesh`: environments
    split over devices, as `make_trainer`."""
    trainer = make_trainer(config, sim_params, tasks, mesh)

    def train(key: jax.Array):
        state = trainer.init(key)
        return jax.lax.scan(lambda s, _: trainer.update(s), state, None, config.num_updates)

    return train

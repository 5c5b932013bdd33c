"""Analytic-gradient training (APG) of the SyncGNN scheduler: backpropagate the smooth
simulator's mean response latency through `lax.scan` over task streams (as brax's APG does
with `jax.grad` through `env.step`).

`make_trainer(config, sim_params, tasks)` returns the same `Trainer` as the actor-critic
(init, update, policy, network), so `train_run` and `cpnjax train --algo apg` drive it alike.
One update rolls `rollout_steps` tasks (the truncation window W) in each of `num_envs`
environments of the *smooth* simulator (temperature `temperature_s`), takes the gradient of
their mean response with respect to the network's weights, and makes one optimiser step. The
environments carry on into the next window; the gradient does not (truncated backpropagation
through time).

What the gradient sees. The split head is continuous: split = cut(softmax(split_mean)), its
mode, with no noise, so its gradient is pathwise, through the task's own latency and through
every later task's (the links and servers it loads, the observations they make, the actions
taken on them) within the window. The node choice is discrete; two estimators:

* `expected`: the loss of a step is the softmax-weighted expectation of the per-candidate
  latencies, sum_n pi(n) R_n, where R_n is the smooth latency of sending the task to candidate
  n with that candidate's split (one simulator step per candidate, from the same state). The
  next state follows a node drawn from pi; its pathwise effect on later tasks is kept.
* `score`: the pathwise gradient of the drawn node's latency plus a score-function term for
  the node head, (G_t - b_t) grad log pi(node_t), with G_t the discounted (gamma) sum of the
  window's remaining latencies and b_t its mean over environments.

Env steps count tasks scheduled, as for the actor-critic; `expected` also simulates the N
candidates of every task (N + 1 simulator steps per env step).

Loss scale: responses are divided by the initial policy's mean response over one window
(measured at init, fixed from then on), as the actor-critic's reward is.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from cpnjax.policies import distributions
from cpnjax.policies.features import graph_features
from cpnjax.policies.learned import learned_policy
from cpnjax.policies.networks import ActorCritic
from cpnjax.sim import Action, SimParams, step
from cpnjax.sim.sharding import check_divisible, constrain_envs
from cpnjax.sim.tasks import TaskDistribution
from cpnjax.train.actor_critic import AGENTS, Trainer, TrainState, make_network, make_optimizer
from cpnjax.train.env import EnvConfig, EnvState, RolloutBudget, env_observe, env_reset, env_step

NODE_GRADS = ("expected", "score")
DEFAULT_TEMPERATURE_S = 3e-4
"""The smooth simulator's temperature for training: the largest whose smooth gradient keeps a
median cosine >= 0.9 with finite differences of the exact model in every cell and a median
latency bias <= 5% (results/gradient_quality)."""


@dataclasses.dataclass(frozen=True)
class APGConfig(RolloutBudget):
    """Everything an APG run depends on, besides the scenario and the seed. The network fields
    are the actor-critic's (same SyncGNN, same heads; the critic is not trained)."""

    agent: str = "syncgnn"  # syncgnn | mlp
    algo: str = "apg"
    # defaults by measurement (results/compare_apg): window 1 and 16 environments make the most
    # updates of an env-step budget, and each update improves about as much as a longer one
    node_grad: str = "expected"  # expected | score
    num_envs: int = 16
    rollout_steps: int = 1  # the truncation window W, in tasks
    num_updates: int = 2048
    hidden: int = 32
    rounds: int = 1
    split_prior: bool = True
    split_cut: float = distributions.SPLIT_CUT
    init_log_std: float = -0.7
    temperature_s: float = DEFAULT_TEMPERATURE_S
    gamma: float = 0.5  # `score`: discount of the cost-to-go within the window
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_decay: bool = True  # cosine decay of the learning rate to 0 over num_updates
    max_grad_norm: float | None = 0.5
    env: EnvConfig = EnvConfig()

    @classmethod
    def default(cls) -> APGConfig:
        return cls()

    @classmethod
    def test(cls) -> APGConfig:
        """CPU-seconds preset for tests."""
        return cls(num_envs=4, rollout_steps=3, num_updates=2, hidden=8, env=EnvConfig(10))

    def validate(self) -> None:
        if self.agent not in AGENTS:
            raise ValueError(f"unknown agent {self.agent!r}; expected one of {', '.join(AGENTS)}")
        if self.algo != "apg":
            raise ValueError(f"APGConfig is for algo 'apg', got {self.algo!r}")
        if self.node_grad not in NODE_GRADS:
            raise ValueError(
                f"unknown node_grad {self.node_grad!r}; expected one of {', '.join(NODE_GRADS)}"
            )
        if not self.temperature_s > 0:
            raise ValueError(f"temperature_s must be > 0, got {self.temperature_s}")
        self.check_counts(("hidden",))

    def smooth_env(self) -> EnvConfig:
        """The training environment: the configured one in smooth mode."""
        sim = dataclasses.replace(self.env.sim, smooth_temp_s=self.temperature_s)
        return dataclasses.replace(self.env, sim=sim)


def candidate_splits(out, cut: float) -> jax.Array:
    """(N, K) every candidate's mode split; a missing candidate gets all on path 0 (finite, so
    that its masked-out latency cannot put NaN in a gradient)."""
    split = jax.vmap(distributions.split_of_logits, in_axes=(0, 0, None))(
        out.split_mean, out.path_mask, cut
    )
    first = jnp.zeros_like(split).at[:, 0].set(1.0)
    return jnp.where(out.cand_mask[:, None], split, first)


def clock(env: EnvState, env_cfg: EnvConfig) -> jax.Array:
    """() the fraction of the episode still to come (what the critic head reads)."""
    return 1.0 - env.step.astype(jnp.float32) / env_cfg.episode_tasks


def make_window_loss(
    config: APGConfig,
    sim_params: SimParams,
    tasks: TaskDistribution,
    net: ActorCritic,
    mesh: Mesh | None = None,
):
    """window_loss(params, env (E,), key, scale) -> (loss, (env after the window, responses
    (W, E) s)): the differentiable objective of one update (see the module docstring)."""
    env_cfg = config.smooth_env()
    num_envs = config.num_envs

    def one_env_step(params, env: EnvState, key: jax.Array):
        """One task of one environment: (env', chosen response, step cost, log pi(node), done).
        The step cost is what the node head's gradient reads (see the module docstring)."""
        feats = graph_features(env_observe(sim_params, env, env_cfg))
        out = net.apply(params, feats, clock(env, env_cfg))
        splits = candidate_splits(out, config.split_cut)
        node = jax.random.categorical(key, jax.lax.stop_gradient(out.node_logits))
        node = node.astype(jnp.int32)
        log_pi = jax.nn.log_softmax(out.node_logits)
        new_env, info, done = env_step(
            sim_params, tasks, env, Action(node_slot=node, split=splits[node]), env_cfg
        )
        if config.node_grad == "expected":

            def latency(slot, split):
                action = Action(node_slot=slot, split=split)
                return step(sim_params, env.sim, env.task, action, env_cfg.sim)[1].response_s

            slots = jnp.arange(splits.shape[0], dtype=jnp.int32)
            per_candidate = jax.vmap(latency)(slots, splits)
            per_candidate = jnp.where(out.cand_mask, per_candidate, 0.0)
            cost = (jnp.exp(log_pi) * per_candidate).sum()
        else:
            cost = info.response_s
        return new_env, info.response_s, cost, log_pi[node], done

    def window_loss(params, env: EnvState, key: jax.Array, scale: jax.Array):
        def body(env, k):
            keys = jax.random.split(k, num_envs)
            env, response, cost, log_pi, done = jax.vmap(one_env_step, in_axes=(None, 0, 0))(
                params, env, keys
            )
            return constrain_envs(env, mesh), (response, cost, log_pi, done)

        env, (response, cost, log_pi, done) = jax.lax.scan(
            body, env, jax.random.split(key, config.rollout_steps)
        )  # (W, E) each
        loss = (cost / scale).mean()
        if config.node_grad == "score":
            to_go = discounted_to_go(jax.lax.stop_gradient(response) / scale, done, config.gamma)
            advantage = to_go - to_go.mean(axis=1, keepdims=True)
            loss = loss + (jax.lax.stop_gradient(advantage) * log_pi).mean()
        return loss, (env, response)

    return window_loss


def make_trainer(
    config: APGConfig,
    sim_params: SimParams,
    tasks: TaskDistribution,
    mesh: Mesh | None = None,
) -> Trainer:
    """Pure init/update functions for one CPN instance (see the module docstring)."""
    config.validate()
    check_divisible(config.num_envs, mesh)
    net = make_network(config)
    lr = optax.cosine_decay_schedule(config.lr, max(config.num_updates, 1))
    tx = make_optimizer(
        config.optimizer, lr if config.lr_decay else config.lr, config.max_grad_norm
    )
    env_cfg = config.smooth_env()
    window_loss = make_window_loss(config, sim_params, tasks, net, mesh)

    def init(key: jax.Array) -> TrainState:
        k_env, k_net, k_scale, k_next = jax.random.split(key, 4)
        env = jax.vmap(env_reset, in_axes=(None, None, 0, None))(
            sim_params, tasks, jax.random.split(k_env, config.num_envs), env_cfg
        )
        env = constrain_envs(env, mesh)
        one = jax.tree.map(lambda x: x[0], env)
        feats = graph_features(env_observe(sim_params, one, env_cfg))
        params = net.init(k_net, feats, clock(one, env_cfg))
        # the loss scale: the initial policy's mean response over one window (not kept)
        scale = window_loss(params, env, k_scale, jnp.ones((), jnp.float32))[1][1].mean()
        return TrainState(
            params=params,
            opt_state=tx.init(params),
            env=env,
            key=k_next,
            update=jnp.zeros((), jnp.int32),
            reward_scale_s=scale,
        )

    def update(state: TrainState) -> tuple[TrainState, dict]:
        key, k_roll = jax.random.split(state.key)
        grad_fn = jax.value_and_grad(window_loss, has_aux=True)
        (loss, (env, response)), grads = grad_fn(
            state.params, state.env, k_roll, state.reward_scale_s
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "response_ms": response.mean() * 1e3,
            "loss": loss,
            "grad_norm": optax.tree.norm(grads),
        }
        new = state.replace(
            params=params, opt_state=opt_state, env=env, key=key, update=state.update + 1
        )
        return new, metrics

    def policy(params):
        return learned_policy(net, params, config.split_cut)

    return Trainer(init=init, update=update, policy=policy, network=net)


def discounted_to_go(cost: jax.Array, done: jax.Array, gamma: float) -> jax.Array:
    """(W, E) sum_{j >= t} gamma^(j - t) cost_j within the window, cut where an episode ends
    (done at step t: nothing after t counts)."""

    def back(nxt, x):
        c, d = x
        g = c + gamma * (1.0 - d.astype(c.dtype)) * nxt
        return g, g

    return jax.lax.scan(back, jnp.zeros_like(cost[0]), (cost, done), reverse=True)[1]

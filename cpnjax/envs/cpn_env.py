"""`CPNEnv`: the CPN scheduling problem as a gymnax `Environment` (gymnax 1.x API).

One step schedules one task: the agent sees the arrived task's candidates and paths
(`codec`), picks a candidate and a split of the task's data over its paths, and receives
reward = -response_s / reward_scale_s, with the response's parts in `info`. An episode is
`params.max_steps_in_episode` tasks drawn inside jit (`sim.tasks.sample_task`) from an idle
network, at a load and a background level drawn per episode; `terminated` is True on the
episode's last task (the stream ends; `truncated` is never set) and gymnax's `step` then resets.

The functions act on one unbatched environment; vmap them (or use gymnax's and rejax's
wrappers) for many.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from cpnjax.envs import codec
from cpnjax.envs.types import EnvParams, EnvState
from cpnjax.policies.features import NUM_CANDIDATE_FEATURES, NUM_PATH_FEATURES
from cpnjax.sim import (
    Obs,
    SimConfig,
    StepInfo,
    Task,
    arrive,
    observe,
    observe_idle,
    reset,
    step,
)
from cpnjax.sim.params import with_background_scale
from cpnjax.sim.tasks import sample_task

FINITE = float(jnp.finfo(jnp.float32).max)  # observations are any finite float32, never inf
INFO_KEYS = ("response_s", "transmission_s", "wait_s", "compute_s", "node", "invalid_action")


class CPNEnv(environment.Environment[EnvState, EnvParams]):
    """The CPN scheduling environment of one scenario (see the module).

    Args:
      default_params: the scenario's EnvParams (`cpnjax.envs.make` builds them).
      num_candidates, num_paths: N and K of the scenario's candidate tables (static sizes).
      flat: one Box observation and a Box(N + K) action instead of dicts (`codec`).
      sim_config: the simulator's static switches (exact FIFO by default).
      name: shown by `name`, e.g. "Abilene".

    `cpnjax.envs.make` also sets `env.scenario`, the host-side `Scenario` the params were made
    from (its topology, devices and validation stream).
    """

    def __init__(
        self,
        default_params: EnvParams,
        num_candidates: int,
        num_paths: int,
        flat: bool = False,
        sim_config: SimConfig | None = None,
        name: str = "CPN",
    ):
        self._default_params = default_params
        self.num_candidates = num_candidates
        self.num_paths = num_paths
        self.flat = flat
        self.sim_config = sim_config or SimConfig()
        self._name = name

    @property
    def default_params(self) -> EnvParams:
        return self._default_params

    @property
    def name(self) -> str:
        return f"cpnjax/{self._name}" + ("-flat" if self.flat else "")

    @property
    def num_actions(self) -> int:
        return self.num_candidates

    # --- the transition -------------------------------------------------------------------

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[Any, EnvState]:
        """An idle network at this episode's load and background, its first task arrived."""
        k_sim, k_load, k_bg, k_task = jax.random.split(key, 4)
        lo, hi = params.load_range[0], params.load_range[1]
        load_scale = jax.random.uniform(k_load, (), minval=lo, maxval=hi) / params.load
        task = sample_task(params.tasks, k_task, load_scale)
        bg_scale = background_scale(params, k_bg)
        sim = arrive(reset(params.sim, k_sim), task)
        sim_params = with_background_scale(params.sim, bg_scale)
        state = EnvState(
            time=jnp.zeros((), jnp.int32),
            sim=sim,
            task=task,
            # the network is idle: no row to probe (gymnax computes a reset on every step)
            obs=observe_idle(sim_params, k_sim, task, self.sim_config),
            load_scale=load_scale,
            background_scale=bg_scale,
        )
        return self.get_obs(state, params), state

    def step_env(
        self, key: jax.Array, state: EnvState, action: Any, params: EnvParams
    ) -> tuple[Any, EnvState, jax.Array, jax.Array, dict]:
        """Schedule the waiting task, then let the next one arrive."""
        sim_params = episode_sim_params(params, state)
        sim_action, invalid = self.decode(action, state.obs)
        sim, out = step(sim_params, state.sim, state.task, sim_action, self.sim_config)
        task = sample_task(params.tasks, key, state.load_scale)
        sim = arrive(sim, task)
        new = state.replace(
            time=state.time + 1, sim=sim, task=task, obs=self._observe(sim_params, sim, task)
        )
        reward = -out.response_s / params.reward_scale_s
        info = {
            "response_s": out.response_s,
            "transmission_s": out.transmission_s,
            "wait_s": out.wait_s,
            "compute_s": out.compute_s,
            "node": out.node,
            "invalid_action": invalid,
        }
        terminated = new.time >= params.max_steps_in_episode
        return self.get_obs(new, params), new, reward, terminated, info

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Never: an episode ends when its stream does (`terminated`)."""
        return jnp.zeros((), bool)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode

    # --- observation and action -----------------------------------------------------------

    def get_obs(self, state: EnvState, params: EnvParams | None = None, key=None) -> Any:
        params = self.default_params if params is None else params
        return self.encode(state.obs, time_left(state, params))

    def _observe(self, sim_params, sim, task) -> Obs:
        return observe(sim_params, sim, task, self.sim_config)

    def encode(self, obs: Obs, time_left: jax.Array) -> Any:
        """This env's observation of a simulator Obs (dict, or flat)."""
        observation = codec.encode(obs, time_left)
        return codec.flatten(observation) if self.flat else observation

    def decode(self, action: Any, obs: Obs):
        """(simulator Action, () bool invalid_action) of one of this env's actions."""
        return codec.decode_flat(action, obs) if self.flat else codec.decode_dict(action, obs)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Space:
        n, k = self.num_candidates, self.num_paths
        if self.flat:
            return spaces.Box(-FINITE, FINITE, (codec.flat_size(n, k),), jnp.float32)
        return spaces.Dict(
            {
                "candidate": spaces.Box(-FINITE, FINITE, (n, NUM_CANDIDATE_FEATURES)),
                "path": spaces.Box(-FINITE, FINITE, (n, k, NUM_PATH_FEATURES)),
                "path_mask": spaces.Box(0, 1, (n, k), jnp.bool_),
                "action_mask": spaces.Box(0, 1, (n,), jnp.bool_),
                "time_left": spaces.Box(0.0, 1.0, (), jnp.float32),
            }
        )

    def action_space(self, params: EnvParams | None = None) -> spaces.Space:
        n, k = self.num_candidates, self.num_paths
        if self.flat:
            return spaces.Box(-1.0, 1.0, (n + k,), jnp.float32)
        return spaces.Dict({"node": spaces.Discrete(n), "split": spaces.Box(0.0, 1.0, (k,))})


def time_left(state: EnvState, params: EnvParams) -> jax.Array:
    """() fraction of the episode still to come."""
    total = jnp.maximum(params.max_steps_in_episode, 1).astype(jnp.float32)
    return jnp.clip(1.0 - state.time.astype(jnp.float32) / total, 0.0, 1.0)


def background_scale(params: EnvParams, key: jax.Array) -> jax.Array:
    """() an episode's background bit rate over the scenario's: u / mean for a mean
    utilisation u ~ U(background_util_range), capped so the busiest link stays at or under
    `max_background_util`; 1 for a scenario without background."""
    lo, hi = params.background_util_range[0], params.background_util_range[1]
    util = jax.random.uniform(key, (), minval=lo, maxval=hi)
    has = params.background_util_mean > 0.0
    mean = jnp.where(has, params.background_util_mean, 1.0)
    busiest = jnp.where(has, params.background_util_max, 1.0)
    return jnp.where(has, jnp.minimum(util / mean, params.max_background_util / busiest), 1.0)


def episode_sim_params(params: EnvParams, state: EnvState):
    """The simulator's params of this episode: the scenario's, at its background level."""
    return with_background_scale(params.sim, state.background_scale)


def rollout_stream(
    env: CPNEnv, params: EnvParams, act, tasks: Task, key: jax.Array
) -> tuple[StepInfo, jax.Array]:
    """Score an agent of this env on a fixed task stream (T,) from an idle network, at the
    scenario's own background, exactly as `sim.rollout` scores a baseline with the same key:
    act(observation, key) -> action in the env's action space. Returns (StepInfo with (T,)
    leaves, (T,) bool invalid_action). Jittable (e.g. inside a trainer's evaluation)."""
    num_tasks = tasks.arch.shape[0]

    def body(carry, xs):
        sim, k = carry
        task, t = xs
        k, k_act = jax.random.split(k)
        sim = arrive(sim, task)
        obs = observe(params.sim, sim, task, env.sim_config)
        left = 1.0 - t.astype(jnp.float32) / num_tasks
        action, invalid = env.decode(act(env.encode(obs, left), k_act), obs)
        sim, info = step(params.sim, sim, task, action, env.sim_config)
        return (sim, k), (info, invalid)

    xs = (tasks, jnp.arange(num_tasks))
    _, (info, invalid) = jax.lax.scan(body, (reset(params.sim, key), key), xs)
    return info, invalid

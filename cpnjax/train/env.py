"""The training environment: one CPN instance whose tasks are drawn inside jit.

An episode is `episode_tasks` tasks from an idle network (what `cpnjax evaluate` scores), each
episode at its own arrival load drawn from `load_range`; the next episode starts idle
(auto-reset in `env_step`). Functions act on one unbatched environment; trainers vmap them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from cpnjax.sim import (
    Action,
    Obs,
    SimConfig,
    SimParams,
    SimState,
    StepInfo,
    Task,
    arrive,
    observe,
    reset,
    step,
)
from cpnjax.sim.tasks import TaskDistribution, sample_task


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """episode_tasks: tasks per episode. load_scale_range: each episode's arrival rate is the
    scenario's times a factor drawn uniformly from this range."""

    episode_tasks: int = 100
    load_scale_range: tuple[float, float] = (1.0, 1.0)
    sim: SimConfig = SimConfig()


class RolloutBudget:
    """What trainer configs with `num_envs`, `rollout_steps` and `num_updates` share."""

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout_steps

    @property
    def env_steps(self) -> int:
        return self.num_updates * self.steps_per_update

    def check_counts(self, names: tuple[str, ...]) -> None:
        """ValueError unless every named field is >= 1 and num_updates >= 0."""
        for name in ("num_envs", "rollout_steps", *names):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_updates < 0:
            raise ValueError(f"num_updates must be >= 0, got {self.num_updates}")


@struct.dataclass
class EnvState:
    sim: SimState
    task: Task  # the task that has arrived and waits for a decision
    step: jax.Array  # () int32 tasks already scheduled in this episode
    load_scale: jax.Array  # () this episode's arrival-rate factor
    key: jax.Array


def env_reset(params: SimParams, dist: TaskDistribution, key: jax.Array, cfg: EnvConfig):
    """An idle network with its first task arrived."""
    k_sim, k_load, k_task, k_next = jax.random.split(key, 4)
    lo, hi = cfg.load_scale_range
    load_scale = jax.random.uniform(k_load, (), minval=lo, maxval=hi)
    task = sample_task(dist, k_task, load_scale)
    sim = arrive(reset(params, k_sim), task)
    return EnvState(
        sim=sim, task=task, step=jnp.zeros((), jnp.int32), load_scale=load_scale, key=k_next
    )


def env_observe(params: SimParams, state: EnvState, cfg: EnvConfig) -> Obs:
    return observe(params, state.sim, state.task, cfg.sim)


def env_step(
    params: SimParams, dist: TaskDistribution, state: EnvState, action: Action, cfg: EnvConfig
) -> tuple[EnvState, StepInfo, jax.Array]:
    """Schedule the waiting task; then the next task arrives (or, after the episode's last
    task, a new episode starts). Returns (state, info, done)."""
    sim, info = step(params, state.sim, state.task, action, cfg.sim)
    k_task, k_reset, k_next = jax.random.split(state.key, 3)
    task = sample_task(dist, k_task, state.load_scale)
    cont = EnvState(
        sim=arrive(sim, task),
        task=task,
        step=state.step + 1,
        load_scale=state.load_scale,
        key=k_next,
    )
    done = cont.step >= cfg.episode_tasks
    fresh = env_reset(params, dist, k_reset, cfg)
    new = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, cont)
    return new, info, done


def time_left(state: EnvState, cfg: EnvConfig) -> jax.Array:
    """() fraction of the episode still to come (the critic's clock)."""
    return 1.0 - state.step.astype(jnp.float32) / cfg.episode_tasks

"""Batching wrappers: one jit over many environments (vmap) and many tasks (lax.scan)."""

from __future__ import annotations

from collections.abc import Callable

import jax

from cpnjax.sim.env import Policy, reset, rollout
from cpnjax.sim.types import SimConfig, SimParams, StepInfo, Task


def make_batched_rollout(
    policy: Policy, config: SimConfig | None = None, share_params: bool = True
) -> Callable[[SimParams, jax.Array, Task], StepInfo]:
    """A jitted function (params, keys (E,), tasks (E, T)) -> StepInfo with (E, T) leaves.

    Every environment starts idle with its own key and runs its own task stream. With
    `share_params` all environments use one scenario; otherwise params carry a leading (E,)
    axis (scenarios of one padded size).
    """

    config = config or SimConfig()

    def one(params: SimParams, key: jax.Array, tasks: Task) -> StepInfo:
        return rollout(params, reset(params, key), tasks, policy, config)[1]

    return jax.jit(jax.vmap(one, in_axes=(None if share_params else 0, 0, 0)))

"""Batching wrappers: one jit over many environments (vmap) and many tasks (lax.scan)."""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax.sharding import Mesh

from cpnjax.sim.dynamics import SLOTS
from cpnjax.sim.env import Policy, reset, rollout
from cpnjax.sim.sharding import env_sharding, replicated
from cpnjax.sim.types import SimConfig, SimParams, StepInfo, Task


def make_batched_rollout(
    policy: Policy,
    config: SimConfig | None = None,
    share_params: bool = True,
    mesh: Mesh | None = None,
    slots: int = SLOTS,
) -> Callable[[SimParams, jax.Array, Task], StepInfo]:
    """A jitted function (params, keys (E,), tasks (E, T)) -> StepInfo with (E, T) leaves.

    Every environment starts idle with its own key and runs its own task stream. With
    `share_params` all environments use one scenario; otherwise params carry a leading (E,)
    axis (scenarios of one padded size). With a `mesh` (`sharding.env_mesh`) the environments
    are split over its devices (E a multiple of the device count) and so is the output; the
    numbers are the same as without. `slots`: jobs remembered per link and server (`reset`);
    fewer is faster and blurs timing once more jobs are in flight (see bench_sim --slots).
    """

    config = config or SimConfig()

    def one(params: SimParams, key: jax.Array, tasks: Task) -> StepInfo:
        return rollout(params, reset(params, key, slots), tasks, policy, config)[1]

    batched = jax.vmap(one, in_axes=(None if share_params else 0, 0, 0))
    if mesh is None:
        return jax.jit(batched)
    envs = env_sharding(mesh)  # jit refuses an E that the devices do not divide
    return jax.jit(
        batched,
        in_shardings=(replicated(mesh) if share_params else envs, envs, envs),
        out_shardings=envs,
    )

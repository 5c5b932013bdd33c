"""Batching wrappers: one jit over many environments (vmap) and many tasks (lax.scan)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
from jax.sharding import Mesh

from cpnjax.sim.dynamics import SLOTS
from cpnjax.sim.env import Policy, reset, rollout
from cpnjax.sim.sharding import env_sharding, replicated
from cpnjax.sim.types import SimConfig, SimParams, StepInfo, Task

FEW_ENVS = 8
"""With at most this many environments on a device, `send_order_for` sends path by path."""


def send_order_for(config: SimConfig, num_envs: int) -> SimConfig:
    """`config` with `per_path_send` chosen for `num_envs` environments on one device, if it
    is None: path by path (True) for at most `FEW_ENVS`, where the number of kernels sets the
    time; else left None (packed where packing leaves out hops). Measured crossover:
    results/bench_sim_send_order."""
    if config.per_path_send is not None or num_envs > FEW_ENVS:
        return config
    return dataclasses.replace(config, per_path_send=True)


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
    The order of the sends follows the number of environments per device (`send_order_for`).
    """

    config = config or SimConfig()
    num_devices = 1 if mesh is None else mesh.size

    def batched(params: SimParams, keys: jax.Array, tasks: Task) -> StepInfo:
        chosen = send_order_for(config, keys.shape[0] // num_devices)

        def one(params: SimParams, key: jax.Array, tasks: Task) -> StepInfo:
            return rollout(params, reset(params, key, slots), tasks, policy, chosen)[1]

        return jax.vmap(one, in_axes=(None if share_params else 0, 0, 0))(params, keys, tasks)

    if mesh is None:
        return jax.jit(batched)
    envs = env_sharding(mesh)  # jit refuses an E that the devices do not divide
    return jax.jit(
        batched,
        in_shardings=(replicated(mesh) if share_params else envs, envs, envs),
        out_shardings=envs,
    )

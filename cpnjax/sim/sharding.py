"""The environment axis sharded over devices with `jax.sharding` (one code path for one CPU,
N CPU devices and accelerators).

Environments are independent, so a batch of E environments splits into E / D per device with no
communication in the simulator; a trainer's gradient mean over environments becomes an
all-reduce that XLA inserts (GSPMD). Several CPU devices on one machine:
`XLA_FLAGS=--xla_force_host_platform_device_count=8` before JAX starts.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

ENV_AXIS = "env"


def env_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named `env` over the first `num_devices` devices (all by default)."""
    devices = jax.devices()
    num_devices = len(devices) if num_devices is None else num_devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"num_devices must be in 1..{len(devices)} (the devices JAX sees: "
            f"{devices[0].platform} x {len(devices)}), got {num_devices}; for several CPU "
            "devices set XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX starts"
        )
    return Mesh(np.asarray(devices[:num_devices]), (ENV_AXIS,))


def env_sharding(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Arrays whose `axis` is the environment axis, split over the mesh."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), ENV_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Arrays every device holds whole (scenario parameters, network weights)."""
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(num_envs: int, mesh: Mesh | None) -> None:
    """ValueError unless the environments split evenly over the mesh's devices."""
    if mesh is not None and num_envs % mesh.size:
        raise ValueError(
            f"{num_envs} environments do not split evenly over {mesh.size} devices; "
            "use a multiple of the device count"
        )


def constrain_envs(tree, mesh: Mesh | None, axis: int = 0):
    """Inside jit: every leaf of `tree` is sharded along its environment `axis` (a no-op
    without a mesh)."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, env_sharding(mesh, axis))

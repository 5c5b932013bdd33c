"""Training across processes and hosts with `jax.distributed` (host-only).

A top-level module that imports no JAX code: `jax.distributed.initialize` must run before JAX
computes anything, and importing `cpnjax.train` already does (module constants).

Every process runs the same `cpnjax train` command with its own process id. After
`initialize`, `jax.devices()` lists the devices of all processes, the trainer's environment
axis is split over a mesh of them (`sim.sharding.env_mesh`), and the gradient mean over
environments becomes a cross-process all-reduce that XLA inserts (gloo collectives on CPUs).
Weights stay replicated, so every process holds the same parameters after every update.
"""

from __future__ import annotations

import os

ENV_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def request_host_devices(num_devices: int) -> None:
    """Ask XLA for `num_devices` CPU devices in this process (appended to XLA_FLAGS), so that
    `sim.sharding.env_mesh(num_devices)` can split environments over a CPU's cores. Call before
    JAX is imported; a count already in XLA_FLAGS is kept, and 1 or fewer asks for nothing."""
    flags = os.environ.get("XLA_FLAGS", "")
    if num_devices > 1 and HOST_DEVICES_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {HOST_DEVICES_FLAG}={num_devices}".strip()


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join a multi-process run when asked to, by arguments or by the environment variables
    JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID;
    returns whether it did. Call before JAX computes anything. ValueError (one line) on an
    incomplete or inconsistent set."""
    coordinator = coordinator or os.environ.get(ENV_VARS[0])
    num_processes = num_processes if num_processes is not None else _env_int(ENV_VARS[1])
    process_id = process_id if process_id is not None else _env_int(ENV_VARS[2])
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if not any(given):
        return False
    if not all(given):
        raise ValueError(
            "a multi-process run needs --coordinator HOST:PORT, --num-processes P and "
            f"--process-id I (or {', '.join(ENV_VARS)}); some are missing"
        )
    if ":" not in coordinator:
        raise ValueError(f"--coordinator must be HOST:PORT, got {coordinator!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id must be in 0..{num_processes - 1}, got {process_id} "
            f"(--num-processes {num_processes})"
        )
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    return True


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None

"""Tasks drawn inside jit, one at a time, with the distributions of `scenario.tasks`.

A scenario's stream is a Poisson process with independent marks (access point, architecture,
size), so drawing one task per step from a key gives exactly the law of the host stream: the
trainers use it to see fresh tasks every update without a host round-trip.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from cpnjax.latency import load_latency_table
from cpnjax.scenario import Scenario
from cpnjax.scenario.tasks import arch_pool
from cpnjax.sim.types import Task


@struct.dataclass
class TaskDistribution:
    rate_hz: jax.Array  # () Poisson arrival rate at load scale 1
    num_access_points: jax.Array  # () int32
    arch_pool: jax.Array  # (P,) int32 architectures drawn uniformly
    log_size_range: jax.Array  # (2,) log bytes; equal ends for the io task type


def task_distribution(scenario: Scenario) -> TaskDistribution:
    """The scenario's task law as arrays (host-side)."""
    cfg = scenario.config
    lo, hi = (cfg.io_size_bytes,) * 2 if cfg.task_type == "io" else cfg.size_range_bytes
    return TaskDistribution(
        rate_hz=jnp.asarray(scenario.arrival_rate_hz, jnp.float32),
        num_access_points=jnp.asarray(len(scenario.access_points), jnp.int32),
        arch_pool=jnp.asarray(arch_pool(load_latency_table().flops_m, cfg.task_type), jnp.int32),
        log_size_range=jnp.log(jnp.asarray([lo, hi], jnp.float32)),
    )


def sample_task(dist: TaskDistribution, key: jax.Array, load_scale: jax.Array = 1.0) -> Task:
    """One task: interarrival ~ Exp(rate * load_scale), access point and architecture uniform,
    log size uniform."""
    k_time, k_ap, k_arch, k_size = jax.random.split(key, 4)
    lo, hi = dist.log_size_range[0], dist.log_size_range[1]
    return Task(
        interarrival_s=jax.random.exponential(k_time) / (dist.rate_hz * load_scale),
        access_point=jax.random.randint(k_ap, (), 0, dist.num_access_points),
        arch=jax.random.choice(k_arch, dist.arch_pool),
        size_bytes=jnp.exp(jax.random.uniform(k_size, (), minval=lo, maxval=hi)),
    )


def sample_stream(
    dist: TaskDistribution, key: jax.Array, num_tasks: int, load_scale: jax.Array = 1.0
) -> Task:
    """A stream of `num_tasks` (static) tasks of the law `sample_task` draws: a Task with (T,)
    leaves, like `sim.params.task_arrays` of a host stream."""
    return jax.vmap(lambda k: sample_task(dist, k, load_scale))(jax.random.split(key, num_tasks))

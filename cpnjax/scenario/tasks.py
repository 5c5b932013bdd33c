"""Task generator: NB201 architecture, input bytes, Poisson arrivals (host-only)."""

from __future__ import annotations

import dataclasses

import numpy as np

TASK_TYPES = ("mixed", "io", "compute")


@dataclasses.dataclass(frozen=True)
class TaskStream:
    """A sequence of tasks in arrival order.

    Attributes:
      interarrival_s: (T,) float32 time since the previous task (the first: since time 0).
      access_point: (T,) int32 index into the scenario's access points.
      arch: (T,) int32 NB201 architecture index.
      size_bytes: (T,) float32 input data to move from the access point to the compute node.
    """

    interarrival_s: np.ndarray
    access_point: np.ndarray
    arch: np.ndarray
    size_bytes: np.ndarray

    @property
    def num_tasks(self) -> int:
        return int(self.arch.shape[0])

    @property
    def arrival_s(self) -> np.ndarray:
        """(T,) float64 absolute arrival times."""
        return np.cumsum(self.interarrival_s.astype(np.float64))


def arch_pool(flops_m: np.ndarray, task_type: str) -> np.ndarray:
    """(P,) int64 the architectures a task type draws from, uniformly: every one, or for
    `compute` the heaviest quarter by FLOPs."""
    if task_type == "compute":
        return np.flatnonzero(flops_m >= np.quantile(flops_m, 0.75))
    return np.arange(flops_m.shape[0])


def generate_tasks(
    rng: np.random.Generator,
    num_tasks: int,
    num_access_points: int,
    arrival_rate_hz: float,
    task_type: str,
    flops_m: np.ndarray,
    size_range_bytes: tuple[float, float],
    io_size_bytes: float,
) -> TaskStream:
    """Draw a task stream (paper 4.7 task types).

    * mixed: any architecture, input size log-uniform in `size_range_bytes`.
    * io: any architecture, every input exactly `io_size_bytes` (paper table 15: 100 KB/1 MB/10 MB).
    * compute: the heaviest quarter of architectures by FLOPs, sizes as in mixed.
    """
    if task_type not in TASK_TYPES:
        raise ValueError(
            f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}"
        )
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
    if not arrival_rate_hz > 0:
        raise ValueError(f"arrival rate must be positive, got {arrival_rate_hz}")
    lo, hi = size_range_bytes
    if not 0 < lo <= hi:
        raise ValueError(f"size range must satisfy 0 < low <= high, got {size_range_bytes}")
    if task_type == "compute":
        arch = rng.choice(arch_pool(flops_m, task_type), size=num_tasks)
    else:
        arch = rng.integers(0, flops_m.shape[0], size=num_tasks)
    if task_type == "io":
        size = np.full(num_tasks, io_size_bytes, dtype=np.float64)
    else:
        size = np.exp(rng.uniform(np.log(lo), np.log(hi), size=num_tasks))
    return TaskStream(
        interarrival_s=rng.exponential(1.0 / arrival_rate_hz, size=num_tasks).astype(np.float32),
        access_point=rng.integers(0, num_access_points, size=num_tasks).astype(np.int32),
        arch=arch.astype(np.int32),
        size_bytes=size.astype(np.float32),
    )

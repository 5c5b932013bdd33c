"""Pure-JAX simulator of FIFO links and FIFO compute servers."""

from cpnjax.sim.env import (
    SIMPLEX_TOL,
    Policy,
    arrive,
    candidates,
    observe,
    observe_idle,
    reset,
    rollout,
    split_is_valid,
    step,
    task_class,
)
from cpnjax.sim.params import make_params, permuted_tasks, task_arrays
from cpnjax.sim.types import Action, Obs, SimConfig, SimParams, SimState, StepInfo, Task
from cpnjax.sim.wrappers import make_batched_rollout

__all__ = [
    "SIMPLEX_TOL",
    "Action",
    "Obs",
    "Policy",
    "SimConfig",
    "SimParams",
    "SimState",
    "StepInfo",
    "Task",
    "arrive",
    "candidates",
    "make_batched_rollout",
    "make_params",
    "permuted_tasks",
    "observe",
    "observe_idle",
    "reset",
    "rollout",
    "split_is_valid",
    "step",
    "task_arrays",
    "task_class",
]

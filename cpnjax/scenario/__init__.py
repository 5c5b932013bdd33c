"""Seeded CPN instances: devices, access points, background traffic, task streams."""

from cpnjax.scenario.background import background_traffic, gravity_traffic_matrix
from cpnjax.scenario.scenario import Scenario, ScenarioConfig, make_scenario
from cpnjax.scenario.tasks import TASK_TYPES, TaskStream, generate_tasks

__all__ = [
    "TASK_TYPES",
    "Scenario",
    "ScenarioConfig",
    "TaskStream",
    "background_traffic",
    "generate_tasks",
    "gravity_traffic_matrix",
    "make_scenario",
]

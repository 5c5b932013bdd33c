"""Pytrees of the gymnax environment: EnvParams (what a scenario and an episode law are) apart
from EnvState (one episode in progress), as gymnax keeps them.

Every EnvParams leaf is an array, so params of several scenarios of one padded size stack and
vmap (`make_params(..., all_links=True)` and a common `max_hops` give one size per topology).
"""

from __future__ import annotations

import jax
from flax import struct
from gymnax.environments import environment

from cpnjax.sim import Obs, SimParams, SimState, Task
from cpnjax.sim.tasks import TaskDistribution


@struct.dataclass
class EnvParams:
    """One scenario and the law of its episodes.

    An episode starts from an idle network and schedules `max_steps_in_episode` tasks. It draws
    its arrival load uniformly from `load_range` (the Poisson rate scales with load / `load`)
    and its mean background utilisation uniformly from `background_util_range`; background
    scales as the scenario builder scales it (`scenario.background.background_traffic`): by
    u / `background_util_mean`, but never past `max_background_util` on the busiest link.
    """

    sim: SimParams
    tasks: TaskDistribution
    max_steps_in_episode: jax.Array  # () int32 tasks per episode
    load: jax.Array  # () the scenario's load (the task distribution's rate is at this load)
    load_range: jax.Array  # (2,) each episode's load ~ U(lo, hi)
    background_util_mean: jax.Array  # () the scenario's mean link utilisation (every link)
    background_util_max: jax.Array  # () its busiest link's
    max_background_util: jax.Array  # () no link busier than this with background alone
    background_util_range: jax.Array  # (2,) each episode's mean utilisation ~ U(lo, hi)
    reward_scale_s: jax.Array  # () reward = -response_s / reward_scale_s


@struct.dataclass
class EnvState(environment.EnvState):
    """`time` (inherited, () int32): tasks scheduled in this episode."""

    sim: SimState
    task: Task  # the task that has arrived and waits for a decision
    obs: Obs  # what the controller sees of it (observed once, on arrival)
    load_scale: jax.Array  # () this episode's arrival rate / the scenario's
    background_scale: jax.Array  # () this episode's background bit rate / the scenario's

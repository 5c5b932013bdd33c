"""`make(topology, ...)` -> (CPNEnv, EnvParams), as `gymnax.make` returns them (host-side)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from cpnjax.envs.cpn_env import CPNEnv
from cpnjax.envs.types import EnvParams
from cpnjax.network import SHIPPED_TOPOLOGIES
from cpnjax.policies import greedy_joint
from cpnjax.scenario import Scenario, ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, make_params, reset, rollout, task_arrays
from cpnjax.sim.tasks import task_distribution

ENV_NAMES = {
    "abilene": "Abilene",
    "ebone": "EBONE",
    "sprintlink": "Sprintlink",
    "tiscali": "Tiscali",
    "uscarrier": "UsCarrier",
    "kdl": "Kdl",
    "asn2k": "ASN2k",
    "b4": "B4",
}
assert set(ENV_NAMES) == set(SHIPPED_TOPOLOGIES)
SCENARIO_OPTIONS = tuple(f.name for f in dataclasses.fields(ScenarioConfig) if f.name != "topology")
REWARD_SCALE_TASKS = 100


def make(
    topology: str = "abilene",
    *,
    flat: bool = False,
    seed: int = 0,
    episode_tasks: int = 100,
    load_range: tuple[float, float] | None = None,
    background_util_range: tuple[float, float] | None = None,
    reward_scale_s: float | None = None,
    sim_config: SimConfig | None = None,
    **scenario_options,
) -> tuple[CPNEnv, EnvParams]:
    """The CPN scheduling environment on one scenario.

    Args:
      topology: a shipped name (`cpnjax.network.SHIPPED_TOPOLOGIES`) or a topology JSON path.
      flat: one Box observation and a Box(N + K) action (`codec`), for generic trainers.
      seed: the scenario's seed (devices, access points, background, `make_scenario`).
      episode_tasks: tasks per episode.
      load_range, background_util_range: (lo, hi) each episode's load and mean background
        utilisation are drawn from; default: the scenario's own, every episode alike.
      reward_scale_s: reward = -response_s / reward_scale_s. Default: greedy-joint's mean
        response on the scenario's fixed 100-task validation stream, so that rewards are of
        order one on every topology (what the trainer's normalisation does with its first
        rollout).
      sim_config: the simulator's switches (exact FIFO by default).
      **scenario_options: any other `ScenarioConfig` field (load, background_util, task_type,
        num_candidates, num_paths, max_hops, ...).
    """
    unknown = sorted(set(scenario_options) - set(SCENARIO_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}; make() takes flat, seed, episode_tasks, "
            "load_range, background_util_range, reward_scale_s, sim_config and the "
            f"ScenarioConfig fields {', '.join(SCENARIO_OPTIONS)}"
        )
    if episode_tasks < 1:
        raise ValueError(f"episode_tasks must be >= 1, got {episode_tasks}")
    config = dataclasses.replace(
        ScenarioConfig.default(), topology=str(topology), **scenario_options
    )
    scenario = make_scenario(config, seed)
    params = env_params(scenario, episode_tasks, load_range, background_util_range, reward_scale_s)
    cand = scenario.candidates
    env = CPNEnv(
        params,
        num_candidates=int(cand.node.shape[-1]),
        num_paths=int(cand.path_mask.shape[-1]),
        flat=flat,
        sim_config=sim_config,
        name=ENV_NAMES.get(str(topology).lower(), scenario.topology.name),
    )
    env.scenario = scenario
    return env, params


def env_params(
    scenario: Scenario,
    episode_tasks: int = 100,
    load_range: tuple[float, float] | None = None,
    background_util_range: tuple[float, float] | None = None,
    reward_scale_s: float | None = None,
) -> EnvParams:
    """EnvParams of a scenario (host-side; see `make`)."""
    cfg = scenario.config
    util = scenario.background_bps / scenario.topology.capacity_bps
    util_mean = float(util.mean())
    load_range = _range(load_range, (cfg.load, cfg.load), "load_range", np.inf, positive=True)
    background_util_range = _range(
        background_util_range, (util_mean, util_mean), "background_util_range", 1.0, positive=False
    )
    sim = make_params(scenario, all_links=True)
    if reward_scale_s is None:
        reward_scale_s = greedy_mean_response_s(scenario, sim)
    if not (np.isfinite(reward_scale_s) and reward_scale_s > 0):
        raise ValueError(
            f"reward_scale_s must be a positive number of seconds, got {reward_scale_s}"
        )
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return EnvParams(
        sim=sim,
        tasks=task_distribution(scenario),
        max_steps_in_episode=jnp.asarray(episode_tasks, jnp.int32),
        load=f32(cfg.load),
        load_range=f32(load_range),
        background_util_mean=f32(util_mean),
        background_util_max=f32(util.max()),
        max_background_util=f32(cfg.max_background_util),
        background_util_range=f32(background_util_range),
        reward_scale_s=f32(reward_scale_s),
    )


def greedy_mean_response_s(scenario: Scenario, sim_params) -> float:
    """Greedy-joint's mean response (s) on the scenario's validation stream, from idle."""
    tasks = task_arrays(scenario.validation_tasks(REWARD_SCALE_TASKS))
    return float(_greedy_mean_ms(sim_params, tasks)) / 1e3


@jax.jit
def _greedy_mean_ms(sim_params, tasks):
    state = reset(sim_params, jax.random.key(0))
    return rollout(sim_params, state, tasks, greedy_joint, SimConfig())[1].response_s.mean() * 1e3


def _range(value, default, name: str, below: float, positive: bool) -> tuple[float, float]:
    """(lo, hi) with 0 <= lo <= hi < below (0 < lo if `positive`), else ValueError."""
    pair = default if value is None else tuple(float(v) for v in value)
    ok = len(pair) == 2 and 0.0 <= pair[0] <= pair[1] < below and (pair[0] > 0 or not positive)
    if not ok:
        bound = "0 < lo" if positive else "0 <= lo"
        raise ValueError(f"{name} must be (lo, hi) with {bound} <= hi < {below}, got {value}")
    return pair

"""A trained agent read back from its run directory, as a deterministic policy (host-side)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cpnjax.policies.learned import learned_policy
from cpnjax.sim import Policy
from cpnjax.train import checkpoint
from cpnjax.train.actor_critic import make_network
from cpnjax.train.dqn import DQNConfig, dqn_policy, make_q_network
from cpnjax.train.run import RunSpec, agent_name


@dataclasses.dataclass(frozen=True)
class Agent:
    name: str  # rlms | mlp | dqn | rlms-apg: its name in tables
    policy: Policy
    spec: RunSpec
    scenario_size: dict


def load_agent(run_dir: Path) -> Agent:
    """The latest checkpoint of a `cpnjax train` run; CheckpointError if it is none."""
    stored = checkpoint.read_config(run_dir)
    spec = RunSpec.from_json(stored["spec"])
    params = checkpoint.restore_params(run_dir)
    size = stored["scenario_size"]
    if isinstance(spec.train, DQNConfig):
        policy = dqn_policy(make_q_network(spec.train, size["num_paths"]), params)
    else:
        policy = learned_policy(make_network(spec.train), params, spec.train.split_cut)
    return Agent(agent_name(spec.train), policy, spec, size)


def check_scenario(agent: Agent, size: dict, run_dir: Path) -> None:
    """The MLP reads a flat vector of N x K features and DQN's split grid has K columns:
    refuse another (N, K). SyncGNN's networks are per vertex and serve any size."""
    keys = ("num_candidates", "num_paths")
    mine = {k: agent.scenario_size[k] for k in keys}
    theirs = {k: size[k] for k in keys}
    if agent.spec.train.agent in ("mlp", "dqn") and mine != theirs:
        raise checkpoint.CheckpointError(
            f"{run_dir}: a {agent.spec.train.agent} agent trained for {mine} cannot schedule a"
            f" scenario with {theirs}"
        )

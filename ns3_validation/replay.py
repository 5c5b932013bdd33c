"""Replay API: a scenario and any policy's per-task decisions, played packet by packet in NS-3.

    result = replay(scenario, Decisions.of(run_policy(scenario, "greedy")))
    result.result        # a cpnjax PolicyResult: per-path transmission, wait, compute, response
    result.complete      # (T,) whether every byte arrived and the task finished computing

Each replay runs in its own worker process (NS-3 imported once there) with a timeout;
`replay_many` runs several in parallel (local threads, or Ray tasks: `cluster.play_many`) and
reports a failed one without losing the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from cpnjax.evaluate import PolicyResult
from cpnjax.latency import LatencyPredictor
from cpnjax.scenario import Scenario
from ns3_validation.cluster import play, play_many
from ns3_validation.plan import Decisions, Ns3Settings, build_plan


@dataclasses.dataclass(frozen=True)
class Ns3Result:
    """What NS-3 measured for one replay.

    result: per-task latencies in the format of `cpnjax evaluate` (ms); NaN where a task did
      not complete (see `complete`).
    complete: (T,) bool. probe_delay_ms: (T, N, K) mean one-way delay of the 3 probes on each
      candidate path (NaN where the candidate or path does not exist).
    counters: packet counts (sent, lost task / background packets, routing drops).
    wall_s: seconds in the worker: "import" (NS-3), "setup", "run" (Simulator::Run), "worker".
    """

    result: PolicyResult
    complete: np.ndarray
    probe_delay_ms: np.ndarray
    counters: dict
    wall_s: dict

    @property
    def lost_packets(self) -> int:
        c = self.counters
        return int(c["lost_task_packets"] + c["lost_background_packets"] + c["routing_drops"])

    @property
    def incomplete_tasks(self) -> int:
        return int((~self.complete).sum())


def replay(
    scenario: Scenario,
    decisions: Decisions,
    settings: Ns3Settings | None = None,
    policy: str = "replay",
    predictor: LatencyPredictor | None = None,
    timeout_s: float = 1800.0,
) -> Ns3Result:
    """Play the decisions in NS-3 and return per-task results.

    Raises:
      ReplayInputError: decisions that do not fit the scenario (checked before NS-3 starts).
      Ns3RunError: the worker crashed or timed out.
    """
    plan = build_plan(scenario, decisions, settings, predictor)
    return parse_result(scenario, plan, decisions, play(plan, timeout_s), policy)


def replay_many(
    jobs: Sequence[tuple[Scenario, Decisions, str]],
    settings: Ns3Settings | None = None,
    max_workers: int = 2,
    timeout_s: float = 1800.0,
    ray_address: str | None = None,
) -> list[Ns3Result | Exception]:
    """Replay (scenario, decisions, policy name) jobs in parallel: `max_workers` local worker
    processes, or Ray tasks with `ray_address` (`cluster.play_many`). A job that fails yields
    its exception in place of a result; the others are unaffected."""
    plans: list[dict | Exception] = []
    for scenario, decisions, _ in jobs:
        try:
            plans.append(build_plan(scenario, decisions, settings))
        except ValueError as err:  # decisions that do not fit: this job fails before NS-3
            plans.append(err)
    playable = [p for p in plans if not isinstance(p, Exception)]
    raws = iter(play_many(playable, timeout_s, max_workers, ray_address))
    out: list[Ns3Result | Exception] = []
    for (scenario, decisions, policy), plan in zip(jobs, plans, strict=True):
        raw = plan if isinstance(plan, Exception) else next(raws)
        ok = not isinstance(raw, Exception)
        out.append(parse_result(scenario, plan, decisions, raw, policy) if ok else raw)
    return out


def parse_result(
    scenario: Scenario, plan: dict, decisions: Decisions, raw: dict, policy: str
) -> Ns3Result:
    """Absolute NS-3 times -> per-task latencies relative to each task's arrival (ms)."""
    tasks = plan["tasks"]
    arrival = np.array([t["arrival_s"] for t in tasks])
    sent = np.array([t["bytes"] for t in tasks], np.float64)  # (T, K)
    path_done = np.array(raw["path_done_s"], np.float64)
    data_done, start, end = (
        np.array(raw[k], np.float64) for k in ("data_done_s", "start_s", "end_s")
    )

    def since(t, ref):
        return np.where((t >= 0) & (ref >= 0), (t - ref) * 1e3, np.nan)

    path_ms = np.where(sent > 0, since(path_done, arrival[:, None]), 0.0)
    result = PolicyResult(
        policy=policy,
        node=np.array([t["node"] for t in tasks]),
        node_slot=np.asarray(decisions.node_slot),
        split=np.asarray(decisions.split, np.float64),
        path_transmission_ms=path_ms,
        transmission_ms=since(data_done, arrival),
        wait_ms=since(start, data_done),
        compute_ms=since(end, start),
        response_ms=since(end, arrival),
    )
    _, _, n_cand, k_paths = scenario.candidates.path_mask.shape
    probe = np.array(raw["probe_delay_s"], np.float64).reshape(len(tasks), n_cand, k_paths)
    return Ns3Result(
        result=result,
        complete=end >= 0,
        probe_delay_ms=np.where(probe >= 0, probe * 1e3, np.nan),
        counters=raw["counters"],
        wall_s=raw["wall_s"],
    )

"""Run several policies on the same task stream; per-task results, tables and plots."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from cpnjax.io import atomic_csv, atomic_text
from cpnjax.policies import POLICIES, get_policy
from cpnjax.scenario import Scenario
from cpnjax.sim import Policy, SimConfig, make_params, reset, rollout, task_arrays
from cpnjax.sim.dynamics import SLOTS
from cpnjax.sim.wrappers import send_order_for

PER_TASK_FIELDS = ("transmission_ms", "wait_ms", "compute_ms", "response_ms")


@dataclasses.dataclass(frozen=True)
class PolicyResult:
    """Per-task outcome of one policy. Arrays are (T,) except split and path_transmission_ms
    (T, K). node_slot and split are the decisions (what `ns3_validation` replays)."""

    policy: str
    node: np.ndarray
    node_slot: np.ndarray
    split: np.ndarray
    path_transmission_ms: np.ndarray
    transmission_ms: np.ndarray
    wait_ms: np.ndarray
    compute_ms: np.ndarray
    response_ms: np.ndarray


def resolve_policy(name: str, scenario: Scenario | None = None) -> tuple[str, Policy]:
    """(label, policy) of a baseline name or of a `cpnjax train` run directory (label: rlms,
    mlp or dqn). With a scenario, an agent that cannot schedule it is refused."""
    if name in POLICIES:
        return name, get_policy(name)
    path = Path(name)
    if path.is_dir():
        from cpnjax.train.agent import check_scenario, load_agent
        from cpnjax.train.run import scenario_size

        agent = load_agent(path)
        if scenario is not None:
            check_scenario(agent, scenario_size(scenario), path)
        return agent.name, agent.policy
    raise ValueError(
        f"unknown policy {name!r}; known: {', '.join(POLICIES)} or a training run directory"
    )


def policy_rollout(policy: str, sim_config: SimConfig | None = None):
    """The jitted rollout of a policy (name or run directory): run(params, state, tasks) ->
    (state, StepInfo)."""
    return _jitted_rollout(resolve_policy(policy)[1], sim_config)


def _jitted_rollout(fn: Policy, sim_config: SimConfig | None):
    sim_config = send_order_for(sim_config or SimConfig(), num_envs=1)
    return jax.jit(lambda p, s, t: rollout(p, s, t, fn, sim_config))


def run_policy(
    scenario: Scenario,
    policy: str,
    seed: int = 0,
    sim_config: SimConfig | None = None,
    slots: int = SLOTS,
) -> PolicyResult:
    """Run one named policy over the scenario's task stream (one jit of the whole rollout),
    with `slots` jobs remembered per link and server.

    Raises:
      ValueError: unknown policy, or the policy produced an action off the simplex / on a
        missing candidate (the simulator rejects it and reports NaN).
    """
    label, fn = resolve_policy(policy, scenario)
    run = _jitted_rollout(fn, sim_config)
    params = make_params(scenario)
    tasks = task_arrays(scenario.tasks)
    _, info = run(params, reset(params, jax.random.key(seed), slots), tasks)
    info = jax.device_get(info)
    bad = np.flatnonzero(np.isnan(info.response_s))
    if bad.size:
        raise ValueError(f"policy {policy!r} produced an invalid action for task {bad[0]}")
    ms = lambda x: np.asarray(x, np.float64) * 1e3  # noqa: E731
    return PolicyResult(
        policy=label,
        node=np.asarray(info.node),
        node_slot=np.asarray(info.node_slot),
        split=np.asarray(info.split, np.float64),
        path_transmission_ms=ms(info.path_transmission_s),
        transmission_ms=ms(info.transmission_s),
        wait_ms=ms(info.wait_s),
        compute_ms=ms(info.compute_s),
        response_ms=ms(info.response_s),
    )


def evaluate(
    scenario: Scenario, policies: Sequence[str], seed: int = 0, progress: bool = True
) -> list[PolicyResult]:
    """Every policy on the same scenario and task stream. Two agents of one kind are labelled
    by their directory names."""
    labels = [resolve_policy(name)[0] for name in policies]  # fail before any work
    bar = tqdm(policies, desc="policies", disable=not progress, unit="policy")
    results = []
    for name in bar:
        bar.set_postfix_str(name)
        results.append(run_policy(scenario, name, seed))
    for i, r in enumerate(results):
        if labels.count(r.policy) > 1:
            results[i] = dataclasses.replace(r, policy=Path(policies[i]).name)
    return results


def summary_rows(results: Sequence[PolicyResult]) -> list[dict]:
    rows = []
    for r in results:
        rows.append(
            {
                "policy": r.policy,
                "mean_response_ms": float(r.response_ms.mean()),
                "p50_response_ms": float(np.percentile(r.response_ms, 50)),
                "p99_response_ms": float(np.percentile(r.response_ms, 99)),
                "mean_transmission_ms": float(r.transmission_ms.mean()),
                "mean_wait_ms": float(r.wait_ms.mean()),
                "mean_compute_ms": float(r.compute_ms.mean()),
            }
        )
    return rows


def markdown_table(rows: Sequence[dict], scenario: Scenario, reference: str | None = None) -> str:
    """A table like paper table 3: mean latencies, and the reference policy's improvement
    (baseline - reference) / baseline over every other policy."""
    names = [r["policy"] for r in rows]
    if reference is None:
        reference = (
            "greedy"
            if "greedy" in names
            else min(rows, key=lambda r: r["mean_response_ms"])["policy"]
        )
    ref = next(r for r in rows if r["policy"] == reference)["mean_response_ms"]
    s = scenario.summary()
    lines = [
        f"# {s['topology']}: {s['num_tasks']} tasks, seed {scenario.seed}",
        "",
        f"Access points {s['access_points']}; background utilisation mean "
        f"{s['background_util_mean']:.2f}, max {s['background_util_max']:.2f}; "
        f"task type {scenario.config.task_type}, load {scenario.config.load}.",
        "",
        *_predictor_lines(s["latency_predictor"], set(s["devices_per_node"].values())),
        f"| policy | mean response (ms) | p99 (ms) | transmission (ms) | wait (ms) | compute (ms) "
        f"| {reference} improvement |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gain = (r["mean_response_ms"] - ref) / r["mean_response_ms"] * 100
        lines.append(
            f"| {r['policy']} | {r['mean_response_ms']:.2f} | {r['p99_response_ms']:.2f} "
            f"| {r['mean_transmission_ms']:.2f} | {r['mean_wait_ms']:.2f} "
            f"| {r['mean_compute_ms']:.2f} "
            f"| {'-' if r['policy'] == reference else f'{gain:.2f}%'} |"
        )
    return "\n".join(lines) + "\n"


def _predictor_lines(report: dict, deployed: set) -> list[str]:
    """A line on how sure the latency predictor is of each deployed new device (if any)."""
    new = [
        f"{d} ({r['known_from']}: {r['level']} confidence, cross-validated R^2 {r['cv_r2']:.2f})"
        for d, r in report.items()
        if d in deployed and "cv_r2" in r
    ]
    return [f"New devices' compute latency predicted by {'; '.join(new)}.", ""] if new else []


def plot_results(results: Sequence[PolicyResult], path: Path, title: str) -> None:
    """Per-task response latency per policy (paper fig. 15-18) and the mean breakdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
    for r in results:
        ax1.plot(
            np.arange(len(r.response_ms)), r.response_ms, lw=1.2, marker=".", ms=3, label=r.policy
        )
    ax1.set_xlabel("task index")
    ax1.set_ylabel("response latency (ms)")
    ax1.set_title(title)
    ax1.legend(ncol=len(results), fontsize=8)
    ax1.grid(alpha=0.3)
    names = [r.policy for r in results]
    bottom = np.zeros(len(results))
    for field, label in zip(
        ("transmission_ms", "wait_ms", "compute_ms"),
        ("transmission", "wait", "compute"),
        strict=True,
    ):
        vals = np.array([getattr(r, field).mean() for r in results])
        ax2.bar(names, vals, bottom=bottom, label=label)
        bottom += vals
    ax2.set_ylabel("mean latency (ms)")
    ax2.set_title("mean response, by part")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(
    out_dir: Path, scenario: Scenario, results: Sequence[PolicyResult], config: dict
) -> None:
    """summary.csv, per_task.csv, table.md, per_task_latency.png and config.json, each written
    atomically (temp file + rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(results)
    atomic_csv(out_dir / "summary.csv", rows)
    arrival = scenario.tasks.arrival_s
    per_task = []
    for r in results:
        for i in range(len(r.response_ms)):
            row = {
                "policy": r.policy,
                "task": i,
                "arrival_s": f"{arrival[i]:.6f}",
                "access_point": int(scenario.access_points[scenario.tasks.access_point[i]]),
                "arch": int(scenario.tasks.arch[i]),
                "size_bytes": float(scenario.tasks.size_bytes[i]),
                "node": int(r.node[i]),
            }
            for p in range(r.path_transmission_ms.shape[1]):
                row[f"path{p}_transmission_ms"] = float(r.path_transmission_ms[i, p])
            for f in PER_TASK_FIELDS:
                row[f] = float(getattr(r, f)[i])
            per_task.append(row)
    atomic_csv(out_dir / "per_task.csv", per_task)
    atomic_text(out_dir / "table.md", markdown_table(rows, scenario))
    atomic_text(out_dir / "config.json", json.dumps(config, indent=2, default=str))
    tmp = out_dir / ".per_task_latency.tmp.png"
    plot_results(results, tmp, f"{scenario.topology.name}: response latency per task")
    os.replace(tmp, out_dir / "per_task_latency.png")

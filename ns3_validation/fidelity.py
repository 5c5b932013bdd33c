"""How far is the simulator from NS-3? The same tasks and decisions in both, compared per task;
and the paper-table-3 comparison of policies measured in NS-3 next to the simulator.

Validation scenarios are scaled so that a run stays in minutes (NS-3's cost is the background
packets, proportional to link rate x simulated time): every link capacity x 0.1 and task data
x 0.1 (0.1-1 MB instead of 1-10 MB). Transmission times 8 B / c keep their values, so the
latency ratios the paper is about are unchanged; only per-packet times grow 10x (a 9000-byte
packet on a 1 Gbit/s link: 72 us, still small next to transmissions of 1-30 ms).

Loads (arrival load as in `ScenarioConfig.load`, mean background utilisation): mid is the
operating point `cpnjax evaluate` uses by default (0.1, 0.3); low (0.05, 0.2); high (0.3, 0.5),
where base1 (every task to the lowest-latency device) overloads the links into that node.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from scipy.stats import spearmanr

from cpnjax.evaluate import PolicyResult, policy_rollout, resolve_policy, run_policy
from cpnjax.io import atomic_csv, atomic_text
from cpnjax.scenario import Scenario, ScenarioConfig, make_scenario
from cpnjax.sim import (
    Action,
    SimConfig,
    arrive,
    make_batched_rollout,
    make_params,
    observe,
    permuted_tasks,
    reset,
    step,
    task_arrays,
)
from ns3_validation.cluster import play
from ns3_validation.plan import Decisions, Ns3Settings, build_plan
from ns3_validation.replay import Ns3Result, parse_result, replay_many

LOADS = {"low": (0.05, 0.2), "mid": (0.1, 0.3), "high": (0.3, 0.5)}
VALIDATION_SCALE = 0.1


def validation_config(
    topology: str, load: str, num_tasks: int, task_load_scale: float = 1.0, **overrides
) -> ScenarioConfig:
    """The scaled scenario of a fidelity run (see module docstring); `task_load_scale`
    multiplies the named load's task load (0.1: tasks ten times sparser)."""
    if load not in LOADS:
        raise ValueError(f"load must be one of {', '.join(LOADS)}, got {load!r}")
    task_load, background = LOADS[load]
    task_load *= task_load_scale
    lo, hi = ScenarioConfig().size_range_bytes
    return dataclasses.replace(
        ScenarioConfig(),
        topology=topology,
        num_tasks=num_tasks,
        load=task_load,
        background_util=background,
        capacity_scale=VALIDATION_SCALE,
        size_range_bytes=(lo * VALIDATION_SCALE, hi * VALIDATION_SCALE),
        io_size_bytes=ScenarioConfig().io_size_bytes * VALIDATION_SCALE,
        **overrides,
    )


def relative_errors(sim: np.ndarray, ns3: np.ndarray) -> np.ndarray:
    """|sim - ns3| / ns3 per task."""
    return np.abs(sim - ns3) / np.abs(ns3)


def fidelity_metrics(sim: PolicyResult, ns3: Ns3Result) -> dict:
    """Errors of the simulator against NS-3 over the tasks NS-3 completed; the incomplete ones
    are counted, never dropped silently."""
    ok = ns3.complete
    n = ns3.result
    rel_resp = relative_errors(sim.response_ms[ok], n.response_ms[ok])
    rel_tx = relative_errors(sim.transmission_ms[ok], n.transmission_ms[ok])
    used = (sim.split > 0)[ok] & (n.path_transmission_ms[ok] > 0)  # a path may round to 0 B
    rel_path = relative_errors(sim.path_transmission_ms[ok][used], n.path_transmission_ms[ok][used])
    return {
        "tasks": int(len(ok)),
        "completed_tasks": int(ok.sum()),
        "incomplete_tasks": ns3.incomplete_tasks,
        "lost_packets": ns3.lost_packets,
        "lost_task_packets": int(ns3.counters["lost_task_packets"]),
        "mape_transmission": float(rel_tx.mean()),
        "mape_response": float(rel_resp.mean()),
        "mape_path_transmission": float(rel_path.mean()),
        "p50_rel_err": float(np.percentile(rel_resp, 50)),
        "p90_rel_err": float(np.percentile(rel_resp, 90)),
        "p99_rel_err": float(np.percentile(rel_resp, 99)),
        "bias_transmission": float(
            np.mean((sim.transmission_ms[ok] - n.transmission_ms[ok]) / n.transmission_ms[ok])
        ),
        "mae_wait_ms": float(np.abs(sim.wait_ms[ok] - n.wait_ms[ok]).mean()),
        **distribution_errors(sim.response_ms[ok], n.response_ms[ok]),
        "mean_response_ms_sim": float(sim.response_ms[ok].mean()),
        "mean_response_ms_ns3": float(n.response_ms[ok].mean()),
        "mean_transmission_ms_sim": float(sim.transmission_ms[ok].mean()),
        "mean_transmission_ms_ns3": float(n.transmission_ms[ok].mean()),
    }


def distribution_errors(sim_ms: np.ndarray, ns3_ms: np.ndarray) -> dict:
    """How far the simulator's latency *distribution* is from NS-3's (the comparison of
    Parsimon, m3 and DeepQueueNet): |stat(sim) - stat(NS-3)| / stat(NS-3) for the mean, p50,
    p90 and p99 of response latency over the same tasks."""
    stats = {
        "mean": np.mean,
        "p50": lambda x: np.percentile(x, 50),
        "p90": lambda x: np.percentile(x, 90),
        "p99": lambda x: np.percentile(x, 99),
    }
    return {
        f"{name}_latency_err": float(abs(f(sim_ms) - f(ns3_ms)) / abs(f(ns3_ms)))
        for name, f in stats.items()
    }


def probe_error(
    scenario: Scenario, ns3: Ns3Result, seed: int, sim_config: SimConfig | None = None
) -> float:
    """MAPE of the simulator's mean probe delay (noise off) against NS-3's 3 measured probes,
    over every candidate path of every task; `sim_config`: the run's switches (noise off)."""
    params = make_params(scenario)
    tasks = task_arrays(scenario.tasks)
    config = dataclasses.replace(sim_config or SimConfig(), probe_noise=False)
    decisions = ns3.result

    def body(state, xs):
        task, slot, split = xs
        state = arrive(state, task)
        obs = observe(params, state, task, config)
        state, _ = step(params, state, task, Action(slot, split), config)
        return state, jnp.where(obs.path_mask, obs.path_delay_s, jnp.nan)

    xs = (
        tasks,
        jnp.asarray(decisions.node_slot, jnp.int32),
        jnp.asarray(decisions.split, jnp.float32),
    )
    _, delay = jax.jit(lambda s: jax.lax.scan(body, s, xs))(reset(params, jax.random.key(seed)))
    sim_ms = np.asarray(delay, np.float64) * 1e3
    ok = np.isfinite(sim_ms) & np.isfinite(ns3.probe_delay_ms)
    return float(relative_errors(sim_ms[ok], ns3.probe_delay_ms[ok]).mean())


def time_simulator(
    scenario: Scenario,
    policy: str,
    seed: int,
    repeats: int = 5,
    sim_config: SimConfig | None = None,
) -> dict:
    """Wall time of the jitted rollout of all tasks: compile (first call) and the best of
    `repeats` further calls."""
    run = policy_rollout(policy, sim_config)
    params = make_params(scenario)
    tasks = task_arrays(scenario.tasks)
    state = reset(params, jax.random.key(seed))
    t0 = time.perf_counter()
    jax.block_until_ready(run(params, state, tasks))
    compile_s = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(params, state, tasks))
        best = min(best, time.perf_counter() - t0)
    return {"compile_s": compile_s, "run_s": best}


def batched_throughput(
    scenario: Scenario,
    policy: str,
    num_envs: int = 1024,
    min_time_s: float = 1.0,
    sim_config: SimConfig | None = None,
    mesh: Mesh | None = None,
) -> float:
    """Task-steps/s of the simulator running `policy` on `num_envs` environments at once (each a
    permutation of the scenario's tasks), steady state after compile; with a `mesh`
    (`cpnjax.sim.sharding.env_mesh`) the environments are split over its devices."""
    run = make_batched_rollout(resolve_policy(policy, scenario)[1], sim_config, mesh=mesh)
    params = make_params(scenario)
    tasks = permuted_tasks(scenario.tasks, num_envs, seed=0)
    keys = jax.random.split(jax.random.key(0), num_envs)
    jax.block_until_ready(run(params, keys, tasks))
    reps, start = 0, time.perf_counter()
    while reps == 0 or time.perf_counter() - start < min_time_s:
        jax.block_until_ready(run(params, keys, tasks))
        reps += 1
    return reps * num_envs * scenario.tasks.num_tasks / (time.perf_counter() - start)


def per_task_rows(scenario: Scenario, sim: PolicyResult, ns3: Ns3Result) -> list[dict]:
    rows = []
    tasks = scenario.tasks
    for i in range(tasks.num_tasks):
        row = {
            "task": i,
            "arrival_s": round(float(tasks.arrival_s[i]), 6),
            "access_point": int(scenario.access_points[tasks.access_point[i]]),
            "node": int(sim.node[i]),
            "size_bytes": float(tasks.size_bytes[i]),
            "complete": bool(ns3.complete[i]),
        }
        for k in range(sim.split.shape[1]):
            row[f"split{k}"] = round(float(sim.split[i, k]), 6)
            row[f"sim_path{k}_ms"] = float(sim.path_transmission_ms[i, k])
            row[f"ns3_path{k}_ms"] = float(ns3.result.path_transmission_ms[i, k])
        for field in ("transmission_ms", "wait_ms", "compute_ms", "response_ms"):
            row[f"sim_{field}"] = float(getattr(sim, field)[i])
            row[f"ns3_{field}"] = float(getattr(ns3.result, field)[i])
        row["rel_err_response"] = float(
            abs(sim.response_ms[i] - ns3.result.response_ms[i]) / ns3.result.response_ms[i]
        )
        rows.append(row)
    return rows


def plot_scatter(sim: PolicyResult, ns3: Ns3Result, path: Path, title: str) -> None:
    """Simulator vs NS-3 per task, transmission and response, with y = x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = ns3.complete
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, field, label in zip(
        axes, ("transmission_ms", "response_ms"), ("transmission", "response"), strict=True
    ):
        x, y = getattr(ns3.result, field)[ok], getattr(sim, field)[ok]
        hi = max(x.max(), y.max()) * 1.05
        ax.plot([0, hi], [0, hi], color="k", lw=0.8, label="y = x")
        ax.fill_between([0, hi], [0, 0.9 * hi], [0, 1.1 * hi], color="0.85", label="±10%")
        ax.scatter(x, y, s=9, alpha=0.7)
        mape = relative_errors(y, x).mean() * 100
        ax.set_title(f"{label} latency (MAPE {mape:.1f}%)")
        ax.set_xlabel("NS-3 (ms)")
        ax.set_ylabel("cpnjax simulator (ms)")
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclasses.dataclass(frozen=True)
class FidelityRun:
    """The simulator side of one fidelity run, and the NS-3 plan of its decisions."""

    scenario: Scenario
    policy: str
    settings: Ns3Settings
    sim_config: SimConfig
    sim: PolicyResult
    timing: dict  # time_simulator's, with the batched throughput
    decisions: Decisions
    plan: dict


def matrix_sim_config(config: dict) -> SimConfig:
    """The simulator's switches of a stored matrix, from its config.json (as
    `experiments/ns3_fidelity.py` wrote it; a key it lacks is off)."""
    return SimConfig(
        background_noise=config.get("background_noise", False),
        coupled_chunks=config.get("coupled", False),
    )


def prepare_fidelity(
    config: ScenarioConfig,
    policy: str,
    seed: int,
    settings: Ns3Settings | None = None,
    sim_config: SimConfig | None = None,
) -> FidelityRun:
    """Run `policy` in the simulator, time it, and plan the NS-3 replay of its decisions."""
    settings = settings or Ns3Settings()
    sim_config = sim_config or SimConfig()
    scenario = make_scenario(config, seed)
    sim = run_policy(scenario, policy, seed, sim_config)
    timing = time_simulator(scenario, policy, seed, sim_config=sim_config)
    timing["task_steps_per_s"] = batched_throughput(scenario, policy, sim_config=sim_config)
    decisions = Decisions.of(sim)
    plan = build_plan(scenario, decisions, settings)
    return FidelityRun(scenario, policy, settings, sim_config, sim, timing, decisions, plan)


def finish_fidelity(run: FidelityRun, raw: dict, out_dir: Path) -> dict:
    """Compare the simulator with NS-3's raw result; write per_task.csv, summary.json,
    config.json and scatter.png to out_dir; return the summary."""
    scenario, sim, timing = run.scenario, run.sim, run.timing
    ns3 = parse_result(scenario, run.plan, run.decisions, raw, run.policy)
    summary = fidelity_metrics(sim, ns3)
    summary["mape_probe_delay"] = probe_error(scenario, ns3, scenario.seed, run.sim_config)
    ns3_wall = ns3.wall_s["setup"] + ns3.wall_s["run"]
    summary.update(
        {
            "ns3_wall_s": ns3_wall,
            "ns3_run_s": ns3.wall_s["run"],
            "ns3_import_s": ns3.wall_s["import"],
            "sim_wall_s": timing["run_s"],
            "sim_compile_s": timing["compile_s"],
            "speedup": ns3_wall / timing["run_s"],
            # per task-step: the batched simulator against NS-3's tasks per second of wall
            "sim_task_steps_per_s": (steps_per_s := timing["task_steps_per_s"]),
            "ns3_tasks_per_s": (ns3_rate := len(sim.node) / ns3_wall),
            "speedup_per_task": steps_per_s / ns3_rate,
            "counters": ns3.counters,
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_csv(out_dir / "per_task.csv", per_task_rows(scenario, sim, ns3))
    atomic_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    write_config(
        out_dir,
        scenario,
        run.settings,
        command="fidelity",
        policy=run.policy,
        sim_config=dataclasses.asdict(run.sim_config),
    )
    tmp = out_dir / ".scatter.tmp.png"
    plot_scatter(sim, ns3, tmp, f"{scenario.topology.name}, {run.policy}, {len(sim.node)} tasks")
    tmp.replace(out_dir / "scatter.png")
    return summary


def run_fidelity(
    config: ScenarioConfig,
    policy: str,
    seed: int,
    out_dir: Path,
    settings: Ns3Settings | None = None,
    timeout_s: float = 1800.0,
    sim_config: SimConfig | None = None,
) -> dict:
    """Run `policy` in the simulator, replay its decisions in NS-3, write per_task.csv,
    summary.json, config.json and scatter.png to out_dir; return the summary. `sim_config`:
    the simulator's switches (default `SimConfig()`)."""
    run = prepare_fidelity(config, policy, seed, settings, sim_config)
    return finish_fidelity(run, play(run.plan, timeout_s), out_dir)


def run_policies(
    config: ScenarioConfig,
    policies: list[str],
    seed: int,
    out_dir: Path,
    settings: Ns3Settings | None = None,
    max_workers: int = 2,
    timeout_s: float = 1800.0,
    ray_address: str | None = None,
) -> dict:
    """Every policy in the simulator and in NS-3 on the same tasks; a table like paper table 3
    from both, and the Spearman correlation of the two rankings by mean response latency.
    `ray_address`: run the NS-3 replays as Ray tasks (`cluster.play_many`)."""
    settings = settings or Ns3Settings()
    scenario = make_scenario(config, seed)
    sims = [run_policy(scenario, p, seed) for p in policies]
    jobs = [(scenario, Decisions.of(s), s.policy) for s in sims]
    ns3s = replay_many(jobs, settings, max_workers, timeout_s, ray_address)
    rows, failures = [], {}
    for sim, ns3 in zip(sims, ns3s, strict=True):
        p = sim.policy
        row = {"policy": p, "sim_mean_response_ms": float(sim.response_ms.mean())}
        if isinstance(ns3, Exception):
            failures[p] = str(ns3)
            row.update({"ns3_mean_response_ms": float("nan"), "incomplete_tasks": -1})
        else:
            m = fidelity_metrics(sim, ns3)
            row.update(
                {
                    "ns3_mean_response_ms": m["mean_response_ms_ns3"],
                    "sim_mean_transmission_ms": m["mean_transmission_ms_sim"],
                    "ns3_mean_transmission_ms": m["mean_transmission_ms_ns3"],
                    "mape_response": m["mape_response"],
                    "incomplete_tasks": m["incomplete_tasks"],
                    "lost_packets": m["lost_packets"],
                    "ns3_wall_s": ns3.wall_s["setup"] + ns3.wall_s["run"],
                }
            )
        rows.append(row)
    ok = [r for r in rows if np.isfinite(r["ns3_mean_response_ms"])]
    rho = (
        float(
            spearmanr(
                [r["sim_mean_response_ms"] for r in ok], [r["ns3_mean_response_ms"] for r in ok]
            ).statistic
        )
        if len(ok) >= 2
        else float("nan")
    )
    summary = {"spearman": rho, "policies": rows, "failures": failures}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_csv(out_dir / "summary.csv", rows)
    atomic_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    atomic_text(out_dir / "table.md", policies_table(rows, scenario, rho))
    write_config(
        out_dir, scenario, settings, command="policies", policies=policies, ray=ray_address
    )
    tmp = out_dir / ".policies.tmp.png"
    plot_policies(rows, tmp, f"{scenario.topology.name}: mean response, simulator vs NS-3")
    tmp.replace(out_dir / "policies.png")
    return summary


def write_config(out_dir: Path, scenario: Scenario, settings: Ns3Settings, **extra) -> None:
    """config.json: the resolved scenario config and seed, the NS-3 settings, and `extra`."""
    resolved = {
        **extra,
        "seed": scenario.seed,
        "scenario": dataclasses.asdict(scenario.config),
        "scenario_summary": scenario.summary(),
        "ns3": dataclasses.asdict(settings),
    }
    atomic_text(out_dir / "config.json", json.dumps(resolved, indent=2, default=str))


def policies_table(rows: list[dict], scenario: Scenario, rho: float) -> str:
    best = {
        side: min(rows, key=lambda r: r[f"{side}_mean_response_ms"])["policy"]
        for side in ("sim", "ns3")
    }
    lines = [
        f"# {scenario.topology.name}: {scenario.tasks.num_tasks} tasks, seed {scenario.seed}, "
        f"load {scenario.config.load}, background {scenario.config.background_util}",
        "",
        "| policy | simulator mean response (ms) | NS-3 mean response (ms) | simulator rank "
        "| NS-3 rank | response MAPE |",
        "|---|---|---|---|---|---|",
    ]
    rank = {
        side: {
            r["policy"]: i + 1
            for i, r in enumerate(sorted(rows, key=lambda r: r[f"{side}_mean_response_ms"]))
        }
        for side in ("sim", "ns3")
    }
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['sim_mean_response_ms']:.2f} | {r['ns3_mean_response_ms']:.2f} "
            f"| {rank['sim'][r['policy']]} | {rank['ns3'][r['policy']]} "
            f"| {100 * r.get('mape_response', float('nan')):.2f}% |"
        )
    lines += [
        "",
        f"Spearman correlation of the two rankings: **{rho:.3f}**. Best policy: simulator "
        f"{best['sim']}, NS-3 {best['ns3']}.",
    ]
    return "\n".join(lines) + "\n"


def plot_policies(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["policy"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, [r["sim_mean_response_ms"] for r in rows], 0.4, label="cpnjax simulator")
    ax.bar(x + 0.2, [r["ns3_mean_response_ms"] for r in rows], 0.4, label="NS-3")
    ax.set_xticks(x, names)
    ax.set_ylabel("mean response latency (ms)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

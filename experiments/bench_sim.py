"""Simulator throughput: task-steps/s against the number of environments, compile time apart
from steady state, and the same model as a NumPy per-task loop in the same run.

A task-step is one task scheduled end to end: arrive, observe (probes with noise), policy,
step (links + compute). Two policies are timed: Base1 (min predicted compute + ECMP; almost all
of its time is the simulator) and greedy-joint (water-filling over every candidate, about 2/3 of
its time is the policy). Every environment has its own task stream. The NumPy reference runs the
same model and greedy-joint with a Python loop per task.

    python experiments/bench_sim.py [--quick] --out results/bench_sim.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, make_batched_rollout, make_params, task_arrays
from cpnjax.sim.reference import simulate_greedy

TOPOLOGIES = ("abilene", "tiscali", "asn2k")
POLICIES = ("base1", "greedy")
NUM_ENVS = (1, 64, 1024, 4096, 8192)


def env_tasks(scenario, num_envs: int, seed: int):
    """(E, T) task streams: each environment a different permutation of the scenario's tasks."""
    tasks = task_arrays(scenario.tasks)
    rng = np.random.default_rng(seed)
    perm = np.stack([rng.permutation(scenario.tasks.num_tasks) for _ in range(num_envs)])
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[perm]), tasks)


def bench_jax(params, tasks, num_envs: int, min_time_s: float, policy: str) -> tuple[float, float]:
    """Returns (compile_s, steps_per_s) for one jitted, vmapped rollout."""
    run = make_batched_rollout(get_policy(policy), SimConfig())
    keys = jax.random.split(jax.random.key(0), num_envs)
    start = time.perf_counter()
    compiled = run.lower(params, keys, tasks).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(params, keys, tasks))  # warm
    reps, start = 0, time.perf_counter()
    while True:
        jax.block_until_ready(compiled(params, keys, tasks))
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time_s:
            break
    num_tasks = tasks.arch.shape[1]
    return compile_s, reps * num_envs * num_tasks / elapsed


def bench_numpy(params, scenario, min_time_s: float) -> float:
    t = scenario.tasks
    reps, start = 0, time.perf_counter()
    while True:
        simulate_greedy(params, t.interarrival_s, t.access_point, t.arch, t.size_bytes)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time_s:
            break
    return reps * t.num_tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks, 1/64/1024 envs")
    parser.add_argument("--out", type=Path, default=Path("results/bench_sim.json"))
    parser.add_argument("--tasks", type=int, default=None, help="tasks per environment")
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    args = parser.parse_args()
    num_tasks = args.tasks or (32 if args.quick else 128)
    env_counts = (1, 64, 1024) if args.quick else NUM_ENVS
    min_time_s = 0.5 if args.quick else 2.0
    config = {
        "num_tasks_per_env": num_tasks,
        "num_envs": env_counts,
        "policies": POLICIES,
        "min_time_s": min_time_s,
        "scenario": None,
    }
    results, numpy_ref = [], {}
    for topo in args.topologies.split(","):
        sc_config = dataclasses.replace(
            ScenarioConfig.default(), topology=topo, num_tasks=num_tasks
        )
        config["scenario"] = dataclasses.asdict(sc_config) | {"topology": "(each of the above)"}
        scenario = make_scenario(sc_config, seed=0)
        params = make_params(scenario)
        numpy_ref[topo] = bench_numpy(params, scenario, min_time_s)
        print(f"{topo:>8} numpy reference: {numpy_ref[topo]:12,.0f} task-steps/s", flush=True)
        for num_envs in env_counts:
            tasks = env_tasks(scenario, num_envs, seed=num_envs)
            for policy in POLICIES:
                compile_s, steps_per_s = bench_jax(params, tasks, num_envs, min_time_s, policy)
                results.append(
                    {
                        "topology": topo,
                        "num_envs": num_envs,
                        "policy": policy,
                        "steps_per_s": steps_per_s,
                        "compile_s": compile_s,
                        "speedup_vs_numpy": steps_per_s / numpy_ref[topo],
                    }
                )
                print(
                    f"{topo:>8} envs {num_envs:5d} {policy:>6}: {steps_per_s:14,.0f} task-steps/s "
                    f"(compile {compile_s:.1f} s, {steps_per_s / numpy_ref[topo]:,.0f}x numpy)",
                    flush=True,
                )
    device = jax.devices()[0]
    report = {
        "results": results,
        "numpy_reference": {
            "steps_per_s": numpy_ref.get("abilene", next(iter(numpy_ref.values()))),
            "per_topology": numpy_ref,
        },
        "device": f"{device.platform}: {device.device_kind} ({jax.device_count()} device(s), "
        f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores)",
        "versions": {
            "jax": jax.__version__,
            "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else jax.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "config": config,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    lines = [
        f"# bench_sim ({report['device']})",
        "",
        f"{num_tasks} tasks per environment; NumPy per-task loop (greedy-joint) in the same run.",
        "",
        "| topology | envs | policy | task-steps/s | compile (s) | x NumPy greedy loop |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['topology']} | {r['num_envs']} | {r['policy']} | {r['steps_per_s']:,.0f} "
            f"| {r['compile_s']:.1f} | {r['speedup_vs_numpy']:,.0f} |"
        )
    lines += ["", "| topology | NumPy task-steps/s |", "|---|---|"]
    lines += [f"| {t} | {v:,.0f} |" for t, v in numpy_ref.items()]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

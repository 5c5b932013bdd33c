"""Simulator throughput: task-steps/s against the number of environments, compile time apart
from steady state, and the same model and policy as a NumPy per-task loop in the same run.

A task-step is one task scheduled end to end: arrive, observe (probes with noise), policy,
step (links + compute). Two policies are timed: Base1 (min predicted compute + ECMP; it reads
no probe, and XLA drops them) and greedy-joint (water-filling on the probes of every
candidate). Every environment has its own task stream. The NumPy reference runs the same model
and policy with a Python loop per task (`cpnjax.sim.reference.simulate`).

    python experiments/bench_sim.py --quick --out results/bench_sim_quick.json   # < 5 min
    python experiments/bench_sim.py --out results/bench_sim.json
    python experiments/bench_sim.py --devices 8 ...   # environments sharded over 8 devices
    python experiments/bench_sim.py --coupled ...     # also SimConfig(coupled_chunks=True)
    python experiments/bench_sim.py --all-links ...   # the training envs' params
    python experiments/bench_sim.py --send-orders ... # both orders of send_chunks

--coupled times each row twice, one sweep (the default) and coupled chunks (two sweeps), back
to back in the same run, each against the NumPy loop of the same model.

--all-links times `make_params(..., all_links=True)`, the params of the training and gymnax
environments: every topology link and the unpacked hop grid, one shape per topology.

--send-orders times each row twice, `SimConfig(per_path_send=False)` (the packed hops) and
`True` (path by path), back to back in the same run; without it the default order is timed.

--devices N splits the environments over N devices (`cpnjax.sim.sharding`); on a CPU it makes
N host devices (XLA_FLAGS=--xla_force_host_platform_device_count=N) before JAX starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import time
from pathlib import Path

from cpnjax.distributed import request_host_devices

TOPOLOGIES = ("abilene", "tiscali", "asn2k")
POLICIES = ("base1", "greedy")
NUM_ENVS = (1, 64, 1024, 4096, 8192)
QUICK = {"abilene": (1, 1024, 4096), "asn2k": (4096,)}


def bench_jax(run, params, keys, tasks, min_time_s: float) -> tuple[float, float]:
    """Returns (compile_s, steps_per_s) of one jitted, vmapped rollout: the compile apart, then
    the best of warm calls for min_time_s (the best, as this machine is shared and noisy). A
    call runs the reset and T tasks per environment."""
    import jax

    start = time.perf_counter()
    compiled = run.lower(params, keys, tasks).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(params, keys, tasks))  # warm
    best, spent = float("inf"), 0.0
    while spent < min_time_s:
        start = time.perf_counter()
        jax.block_until_ready(compiled(params, keys, tasks))
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    num_envs, num_tasks = tasks.arch.shape
    return compile_s, num_envs * num_tasks / best


def bench_numpy(
    params, scenario, policy: str, slots: int, min_time_s: float, coupled: bool = False
) -> float:
    """Task-steps/s of the NumPy per-task loop over the scenario's stream, best of repeats (as
    `bench_jax`)."""
    from cpnjax.sim.reference import simulate

    t = scenario.tasks
    best, spent = float("inf"), 0.0
    while spent < min_time_s:
        start = time.perf_counter()
        stream = (t.interarrival_s, t.access_point, t.arch, t.size_bytes)
        simulate(params, *stream, policy, slots, coupled=coupled)
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return t.num_tasks / best


def label(policy: str, coupled: bool) -> str:
    """The policy's name in the tables, marked when the chunks are coupled."""
    return f"{policy} (coupled)" if coupled else policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Abilene 1/1024/4096, ASN2k 4096")
    parser.add_argument("--out", type=Path, default=Path("results/bench_sim.json"))
    parser.add_argument("--tasks", type=int, default=None, help="tasks per environment")
    parser.add_argument("--topologies", default=None, help="comma list (default: all)")
    parser.add_argument("--envs", default=None, help="comma list of environment counts")
    parser.add_argument("--devices", type=int, default=1, help="shard environments over N")
    parser.add_argument(
        "--slots", type=int, default=None, help="jobs remembered per link/server (default 8)"
    )
    parser.add_argument(
        "--coupled", action="store_true", help="also time SimConfig(coupled_chunks=True)"
    )
    parser.add_argument(
        "--all-links", action="store_true", help="make_params(..., all_links=True) (training)"
    )
    parser.add_argument(
        "--send-orders", action="store_true", help="time both orders of send_chunks"
    )
    args = parser.parse_args()
    request_host_devices(args.devices)  # before JAX starts

    import jax

    from cpnjax.io import atomic_text, package_versions
    from cpnjax.policies import get_policy
    from cpnjax.scenario import ScenarioConfig, make_scenario
    from cpnjax.sim import SimConfig, make_batched_rollout, make_params, permuted_tasks
    from cpnjax.sim.dynamics import SLOTS
    from cpnjax.sim.sharding import env_mesh

    num_tasks = args.tasks or 32
    if args.topologies or args.envs:
        topos = args.topologies.split(",") if args.topologies else TOPOLOGIES
        counts = tuple(int(e) for e in args.envs.split(",")) if args.envs else NUM_ENVS
        grid = {t: counts for t in topos}
    else:
        grid = QUICK if args.quick else {t: NUM_ENVS for t in TOPOLOGIES}
    min_time_s = 1.0 if args.quick else 2.0
    mesh = env_mesh(args.devices) if args.devices > 1 else None
    slots = args.slots or SLOTS
    config = {
        "num_tasks_per_env": num_tasks,
        "grid": grid,
        "policies": POLICIES,
        "min_time_s": min_time_s,
        "num_devices": args.devices,
        "slots": slots,
        "coupled_chunks": [False, True] if args.coupled else [False],
        "all_links": args.all_links,
        "per_path_send": [False, True] if args.send_orders else [None],
        "scenario": dataclasses.asdict(ScenarioConfig.default()) | {"topology": "(each)"},
    }
    results, numpy_ref = [], {}
    wall = time.perf_counter()
    for topo, env_counts in grid.items():
        sc_config = dataclasses.replace(
            ScenarioConfig.default(), topology=topo, num_tasks=num_tasks
        )
        scenario = make_scenario(sc_config, seed=0)
        params = make_params(scenario, all_links=args.all_links)
        numpy_ref[topo] = {
            label(p, c): bench_numpy(params, scenario, p, slots, min_time_s, c)
            for c in config["coupled_chunks"]
            for p in POLICIES
        }
        print(
            f"{topo:>8} numpy loop: "
            + ", ".join(f"{p} {v:,.0f}" for p, v in numpy_ref[topo].items())
            + " task-steps/s",
            flush=True,
        )
        for num_envs in env_counts:
            if mesh is not None and num_envs % mesh.size:
                print(
                    f"{topo:>8} envs {num_envs:5d}: skipped (not a multiple of {mesh.size} devices)"
                )
                continue
            tasks = permuted_tasks(scenario.tasks, num_envs, seed=num_envs)
            keys = jax.random.split(jax.random.key(0), num_envs)
            for coupled, policy, per_path in itertools.product(
                config["coupled_chunks"], POLICIES, config["per_path_send"]
            ):
                sim_config = SimConfig(coupled_chunks=coupled, per_path_send=per_path)
                run = make_batched_rollout(get_policy(policy), sim_config, mesh=mesh, slots=slots)
                compile_s, steps_per_s = bench_jax(run, params, keys, tasks, min_time_s)
                ratio = steps_per_s / numpy_ref[topo][label(policy, coupled)]
                order = {None: "", False: " packed", True: " per-path"}[per_path]
                name = label(policy, coupled) + order
                results.append(
                    {
                        "topology": topo,
                        "num_envs": num_envs,
                        "policy": name,
                        "per_path_send": per_path,
                        "steps_per_s": steps_per_s,
                        "compile_s": compile_s,
                        "speedup_vs_numpy": ratio,
                    }
                )
                print(
                    f"{topo:>8} envs {num_envs:5d} {name:>6}: {steps_per_s:14,.0f} task-steps/s "
                    f"(compile {compile_s:.1f} s, {ratio:,.0f}x numpy {label(policy, coupled)})",
                    flush=True,
                )
    device = jax.devices()[0]
    report = {
        "results": results,
        "numpy_reference": numpy_ref,
        "device": f"{device.platform}: {device.device_kind} ({jax.device_count()} device(s), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        "num_devices": args.devices,
        "wall_s": time.perf_counter() - wall,
        "versions": package_versions() | {"python": platform.python_version()},
        "config": config,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_text(args.out, json.dumps(report, indent=2))
    lines = [
        f"# bench_sim ({report['device']}, environments over {args.devices} device(s), "
        f"{slots} slots{', all links' if args.all_links else ''})",
        "",
        f"{num_tasks} tasks per environment; the NumPy per-task loop of the same policy in the "
        f"same run; {report['wall_s']:.0f} s in all. task-steps/s: warm calls (reset + "
        f"{num_tasks} tasks per environment), the best of repeats; compile apart.",
        "",
        "| topology | envs | policy | task-steps/s | compile (s) | x NumPy loop (same policy) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['topology']} | {r['num_envs']} | {r['policy']} | {r['steps_per_s']:,.0f} "
            f"| {r['compile_s']:.1f} | {r['speedup_vs_numpy']:,.0f} |"
        )
    lines += ["", "| topology | policy | NumPy task-steps/s |", "|---|---|---|"]
    lines += [f"| {t} | {p} | {v:,.0f} |" for t, d in numpy_ref.items() for p, v in d.items()]
    atomic_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()

"""The fidelity matrix: simulator vs NS-3 on the paper's four topologies and NSFNET, three loads,
two policies, one table.

    python experiments/ns3_fidelity.py --out results/ns3_fidelity [--policies base1,greedy]

Each cell is `cpnjax-ns3 fidelity --topology T --policy P --load L --tasks N --seed S` (its
files under OUT/P/T_L/); a cell whose summary.json exists is reused (delete it, or --redo, to
run it again). Cells run one after another; with `--ray [ADDRESS]` the simulator side of every
cell runs here first and the NS-3 runs go to Ray as tasks at once (a local cluster without
ADDRESS), each cell written as its run ends; a failed run is reported and the others kept.
After every cell OUT/summary.md and OUT/summary.json are rewritten, with the resolved config and
package versions in OUT/config.json. With --previous DIR the table shows the change of response
MAPE against DIR/P/T_L/summary.json (or DIR/T_L/summary.json: the matrix before a model change).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cpnjax.io import atomic_text, package_versions
from ns3_validation.cluster import LOCAL, play_many
from ns3_validation.fidelity import (
    LOADS,
    finish_fidelity,
    matrix_sim_config,
    prepare_fidelity,
    run_fidelity,
    validation_config,
)

TOPOLOGIES = ("abilene", "ebone", "sprintlink", "tiscali", "experiments/topologies/nsfnet.json")
POLICIES = ("base1", "greedy")


def cell_config(args, topology: str, load: str):
    """The scenario of a cell: the named load, its task load scaled by --task-load-scale."""
    return validation_config(topology, load, args.tasks, args.task_load_scale)


def cell_dir(out: Path, policy: str, topology: str, load: str) -> Path:
    return out / policy / f"{Path(topology).stem}_{load}"


def table(rows: list[dict], tasks: int, seed: int, task_load_scale: float = 1.0) -> str:
    scaled = "" if task_load_scale == 1.0 else f"; task loads x {task_load_scale:g} in this matrix"
    lines = [
        f"# Simulator vs NS-3: {tasks} tasks per cell, seed {seed}",
        "",
        "Loads (task load, background utilisation): "
        + ", ".join(f"{k} {v}" for k, v in LOADS.items())
        + scaled
        + ". Per task: |sim - NS-3| / NS-3 of each task's response latency (MAPE and its "
        "p50/p90/p99 over tasks; d MAPE: change against the matrix before, in points). "
        "Distribution: |stat(sim) - stat(NS-3)| / stat(NS-3) of the mean, p50, p90 and p99 "
        "response latency over the same tasks. Per-task speedup: the simulator's batched "
        "task-steps/s (1024 environments) over NS-3's tasks per second of wall.",
        "",
        "| topology | load | policy | tx MAPE | resp MAPE | d MAPE | task p50 | task p90 "
        "| task p99 | mean err | p50 err | p90 err | p99 err | probe MAPE "
        "| mean resp sim / NS-3 (ms) | lost pkts | NS-3 (s) | sim task-steps/s "
        "| per-task speedup |",
        "|" + "---|" * 19,
    ]
    for r in rows:
        s = r["summary"]
        if "error" in s:
            lines.append(
                f"| {r['topology']} | {r['load']} | {r['policy']} | NS-3 run failed: "
                f"{s['error']} |" + " |" * 15
            )
            continue
        prev = r.get("previous_mape_response")
        delta = "" if prev is None else f"{100 * (s['mape_response'] - prev):+.2f}"

        def pct(key: str, s: dict = s) -> str:
            return f"{100 * s[key]:.1f}%"

        lines.append(
            f"| {r['topology']} | {r['load']} | {r['policy']} "
            f"| {100 * s['mape_transmission']:.2f}% | {100 * s['mape_response']:.2f}% | {delta} "
            f"| {pct('p50_rel_err')} | {pct('p90_rel_err')} | {pct('p99_rel_err')} "
            f"| {pct('mean_latency_err')} | {pct('p50_latency_err')} | {pct('p90_latency_err')} "
            f"| {pct('p99_latency_err')} | {100 * s['mape_probe_delay']:.2f}% "
            f"| {s['mean_response_ms_sim']:.1f} / {s['mean_response_ms_ns3']:.1f} "
            f"| {s['lost_packets']} | {s['ns3_wall_s']:.1f} | {s['sim_task_steps_per_s']:,.0f} "
            f"| {s['speedup_per_task']:,.0f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/ns3_fidelity"))
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--loads", default=",".join(LOADS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--previous", type=Path, default=None, help="matrix to compare with")
    parser.add_argument("--redo", action="store_true", help="rerun cells that have results")
    parser.add_argument(
        "--background-noise",
        action="store_true",
        help="sample each hop's background wait (SimConfig.background_noise)",
    )
    parser.add_argument(
        "--coupled",
        action="store_true",
        help="a task's paths queue with each other's chunks (SimConfig.coupled_chunks)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        default=None,
        metavar="ADDRESS",
        help="run the NS-3 runs as Ray tasks (a local cluster without ADDRESS)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per NS-3 run")
    parser.add_argument(
        "--task-load-scale",
        type=float,
        default=1.0,
        help="multiply each named load's task load (0.1: tasks ten times sparser)",
    )
    args = parser.parse_args()
    cells = [
        (t, load, p)
        for t in args.topologies.split(",")
        for load in args.loads.split(",")
        for p in args.policies.split(",")
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    config = vars(args) | {"cells": cells, "versions": package_versions()}
    atomic_text(args.out / "config.json", json.dumps(config, indent=2, default=str))
    sim_config = matrix_sim_config(config)
    done: dict[int, dict] = {}  # cell index -> summary (or {"error": ...})

    def publish() -> None:
        rows = [row_of(args, cells[i], done[i]) for i in sorted(done)]
        text = table(rows, args.tasks, args.seed, args.task_load_scale)
        atomic_text(args.out / "summary.md", text)
        atomic_text(args.out / "summary.json", json.dumps(rows, indent=2))

    todo = []
    for i, (topology, load, policy) in enumerate(cells):
        out = cell_dir(args.out, policy, topology, load)
        if (out / "summary.json").exists() and not args.redo:
            done[i] = json.loads((out / "summary.json").read_text())
        else:
            todo.append(i)
    publish()
    if args.ray is None:
        for n, i in enumerate(todo):
            topology, load, policy = cells[i]
            print(f"== [{n + 1}/{len(todo)}] {Path(topology).stem} {load} {policy}", flush=True)
            done[i] = run_fidelity(
                cell_config(args, topology, load),
                policy,
                args.seed,
                cell_dir(args.out, policy, topology, load),
                timeout_s=args.timeout,
                sim_config=sim_config,
            )
            report(cells[i], done[i])
            publish()
    else:
        runs = []
        for n, i in enumerate(todo):
            topology, load, policy = cells[i]
            print(f"== simulator [{n + 1}/{len(todo)}] {Path(topology).stem} {load} {policy}")
            config = cell_config(args, topology, load)
            runs.append(prepare_fidelity(config, policy, args.seed, sim_config=sim_config))

        def finish(j: int, raw) -> None:
            i = todo[j]
            topology, load, policy = cells[i]
            if isinstance(raw, Exception):
                done[i] = {"error": f"{type(raw).__name__}: {raw}"}
            else:
                done[i] = finish_fidelity(runs[j], raw, cell_dir(args.out, policy, topology, load))
            report(cells[i], done[i])
            publish()

        print(f"== NS-3: {len(runs)} runs as Ray tasks ({args.ray})", flush=True)
        play_many([r.plan for r in runs], args.timeout, ray_address=args.ray, on_result=finish)
    rows = [row_of(args, cells[i], done[i]) for i in sorted(done)]
    print(table(rows, args.tasks, args.seed, args.task_load_scale))
    failed = [cells[i] for i in sorted(done) if "error" in done[i]]
    for cell in failed:
        print(f"NS-3 run failed: {cell}: {done[cells.index(cell)]['error']}", file=sys.stderr)
    if failed:
        sys.exit(1)


def report(cell: tuple, summary: dict) -> None:
    topology, load, policy = cell
    shown = {k: v for k, v in summary.items() if k != "counters"}
    print(f"{Path(topology).stem} {load} {policy}: {json.dumps(shown)}", flush=True)


def row_of(args, cell: tuple, summary: dict) -> dict:
    """A matrix row: the cell, its summary, and the previous matrix's response MAPE if given."""
    topology, load, policy = cell
    name = Path(topology).stem
    row = {"topology": name, "load": load, "policy": policy, "summary": summary}
    if args.previous:  # a matrix of this layout (DIR/policy/T_L), or of one policy (DIR/T_L)
        before = cell_dir(args.previous, policy, topology, load) / "summary.json"
        if not before.exists():
            before = args.previous / f"{name}_{load}" / "summary.json"
        if before.exists() and policy == json.loads(
            (before.parent / "config.json").read_text()
        ).get("policy", "base1"):
            row["previous_mape_response"] = json.loads(before.read_text())["mape_response"]
    return row


if __name__ == "__main__":
    main()

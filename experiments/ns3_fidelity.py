"""The fidelity matrix: simulator vs NS-3 on several topologies and loads, one table.

    python experiments/ns3_fidelity.py --out results/ns3_fidelity

Each cell is `cpnjax-ns3 fidelity --topology T --policy P --load L --tasks N --seed S` (its
files under OUT/T_L/); the table is OUT/summary.md with the resolved config in OUT/config.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cpnjax.io import atomic_text
from ns3_validation.fidelity import LOADS, run_fidelity, validation_config

CELLS = [
    ("abilene", "low"),
    ("abilene", "mid"),
    ("abilene", "high"),
    ("tiscali", "low"),
    ("tiscali", "mid"),
    ("tiscali", "high"),
    ("experiments/topologies/nsfnet.json", "low"),
    ("experiments/topologies/nsfnet.json", "mid"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/ns3_fidelity"))
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--policy", default="base1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for topology, load in CELLS:
        name = Path(topology).stem
        print(f"== {name} {load}", flush=True)
        s = run_fidelity(
            validation_config(topology, load, args.tasks),
            args.policy,
            args.seed,
            args.out / f"{name}_{load}",
        )
        rows.append((name, load, s))
        print(json.dumps({k: v for k, v in s.items() if k != "counters"}), flush=True)
    lines = [
        f"# Simulator vs NS-3: {args.policy}, {args.tasks} tasks per cell, seed {args.seed}",
        "",
        "Loads (task load, background utilisation): "
        + ", ".join(f"{k} {v}" for k, v in LOADS.items())
        + ". Relative errors are |sim - NS-3| / NS-3 per task.",
        "",
        "| topology | load | transmission MAPE | response MAPE | p50 | p90 | p99 | probe MAPE "
        "| mean response sim / NS-3 (ms) | lost pkts | incomplete | NS-3 (s) | sim (ms) "
        "| speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, load, s in rows:
        lines.append(
            f"| {name} | {load} | {100 * s['mape_transmission']:.2f}% "
            f"| {100 * s['mape_response']:.2f}% | {100 * s['p50_rel_err']:.1f}% "
            f"| {100 * s['p90_rel_err']:.1f}% | {100 * s['p99_rel_err']:.1f}% "
            f"| {100 * s['mape_probe_delay']:.2f}% "
            f"| {s['mean_response_ms_sim']:.1f} / {s['mean_response_ms_ns3']:.1f} "
            f"| {s['lost_packets']} | {s['incomplete_tasks']} | {s['ns3_wall_s']:.1f} "
            f"| {1e3 * s['sim_wall_s']:.2f} | {s['speedup']:,.0f}x |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_text(args.out / "summary.md", "\n".join(lines) + "\n")
    config = {"cells": CELLS, "tasks": args.tasks, "policy": args.policy, "seed": args.seed}
    atomic_text(args.out / "config.json", json.dumps(config, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

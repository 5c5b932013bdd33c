"""Baselines on several topologies and seeds: is greedy-joint no worse than the best of Base1-4,
and Base3 no worse than Base1 at moderate background load?

    python experiments/compare_baselines.py [--seeds 5] [--tasks 100] \
        --out results/compare_baselines
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cpnjax.evaluate import evaluate, summary_rows
from cpnjax.scenario import ScenarioConfig, make_scenario

POLICIES = ("base1", "base2", "base3", "base4", "greedy")
TOPOLOGIES = ("abilene", "tiscali", str(Path(__file__).parent / "topologies" / "nsfnet.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--load", type=float, default=ScenarioConfig.load)
    parser.add_argument("--background-util", type=float, default=ScenarioConfig.background_util)
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--out", type=Path, default=Path("results/compare_baselines"))
    args = parser.parse_args()
    rows = []
    jobs = [(t, s) for t in args.topologies.split(",") for s in range(args.seeds)]
    for topo, seed in tqdm(jobs, desc="scenarios"):
        config = dataclasses.replace(
            ScenarioConfig.default(),
            topology=topo,
            num_tasks=args.tasks,
            load=args.load,
            background_util=args.background_util,
        )
        scenario = make_scenario(config, seed)
        for r in summary_rows(evaluate(scenario, POLICIES, seed=seed, progress=False)):
            rows.append({"topology": scenario.topology.name, "seed": seed, **r})
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "per_seed.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Baselines, mean response latency (ms) over {args.seeds} seeds x {args.tasks} tasks",
        "",
        f"load {args.load}, background utilisation {args.background_util}",
        "",
        "| topology | "
        + " | ".join(POLICIES)
        + " | greedy <= best Base | Base3 <= Base1 | seeds greedy best |",
        "|---|" + "---|" * (len(POLICIES) + 3),
    ]
    for topo in dict.fromkeys(r["topology"] for r in rows):
        mean = {
            p: np.mean(
                [r["mean_response_ms"] for r in rows if r["topology"] == topo and r["policy"] == p]
            )
            for p in POLICIES
        }
        wins = sum(
            min(
                (r["mean_response_ms"], r["policy"])
                for r in rows
                if r["topology"] == topo and r["seed"] == s
            )[1]
            == "greedy"
            for s in range(args.seeds)
        )
        best_base = min(mean[p] for p in POLICIES[:4])
        lines.append(
            f"| {topo} | "
            + " | ".join(f"{mean[p]:.2f}" for p in POLICIES)
            + f" | {'yes' if mean['greedy'] <= best_base else 'NO'}"
            + f" | {'yes' if mean['base3'] <= mean['base1'] else 'NO'} | {wins}/{args.seeds} |"
        )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    (args.out / "config.json").write_text(json.dumps(vars(args), indent=2, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""gradsplit against water-filling (greedy-joint) and the LP splits (Base3, Base4) in the exact
simulator: mean response over each scenario's own stream, several seeds and two loads.

gradsplit and greedy-joint choose the node by the same rule (lowest predicted response) and
differ in the split: water-filling treats every path on its own (probe delay + bytes / free
capacity), gradsplit optimises the split on the simulator's model of the observed links, where
paths that share a link share its capacity.

    python experiments/compare_gradsplit.py --out results/compare_gradsplit
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from cpnjax.evaluate import run_policy
from cpnjax.io import atomic_csv, atomic_figure, atomic_json, atomic_text, package_versions
from cpnjax.scenario import ScenarioConfig, make_scenario

TOPOLOGIES = ("abilene", "tiscali", "experiments/topologies/nsfnet.json")
POLICIES = ("greedy", "gradsplit", "base3", "base4")


def plot(rows: list[dict], path: Path) -> None:
    """Left: mean response per policy and cell. Right: gradsplit's change against greedy-joint
    per seed (below 0: gradsplit is faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted({(r["topology"], r["load"]) for r in rows})
    labels = [f"{t}\nload {lo}" for t, lo in cells]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(15, 4.2))
    width = 0.8 / len(POLICIES)

    def responses(cell, pol):
        return [
            r["mean_response_ms"]
            for r in rows
            if (r["topology"], r["load"]) == cell and r["policy"] == pol
        ]

    for i, pol in enumerate(POLICIES):
        means = [np.mean(responses(c, pol)) for c in cells]
        ax.bar(np.arange(len(cells)) + i * width, means, width, label=pol, color=f"C{i}")
    ax.set_xticks(np.arange(len(cells)) + 0.4 - width / 2)
    ax.set_xticklabels(labels)
    ax.set_ylabel("mean response (ms), mean over seeds")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    for j, cell in enumerate(cells):
        change = 100 * (
            np.asarray(responses(cell, "gradsplit")) / np.asarray(responses(cell, "greedy")) - 1
        )
        bx.scatter(np.full(change.size, j), change, color="C1")
        bx.plot([j - 0.3, j + 0.3], [change.mean()] * 2, color="k")
    bx.axhline(0.0, color="grey", lw=1)
    bx.set_xticks(np.arange(len(cells)))
    bx.set_xticklabels(labels)
    bx.set_ylabel("gradsplit vs greedy-joint, mean response (%)\nper seed; bar: mean")
    bx.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/compare_gradsplit"))
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--loads", default="0.1,0.5")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--plot-only", action="store_true", help="redraw from OUT/per_seed.csv")
    args = parser.parse_args()
    if args.plot_only:
        with (args.out / "per_seed.csv").open() as f:
            rows = [
                {k: v if k in ("topology", "policy") else float(v) for k, v in r.items()}
                for r in csv.DictReader(f)
            ]
        plot(rows, args.out / "gradsplit.png")
        return
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    start = time.perf_counter()
    rows = []
    for topo in args.topologies.split(","):
        name = Path(topo).stem
        for load in (float(x) for x in args.loads.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                cfg = dataclasses.replace(
                    ScenarioConfig.default(), topology=topo, load=load, num_tasks=args.tasks
                )
                scenario = make_scenario(cfg, seed)
                for pol in POLICIES:
                    t0 = time.perf_counter()
                    result = run_policy(scenario, pol, seed)
                    rows.append(
                        {
                            "topology": name,
                            "load": load,
                            "seed": seed,
                            "policy": pol,
                            "mean_response_ms": float(result.response_ms.mean()),
                            "mean_transmission_ms": float(result.transmission_ms.mean()),
                            "wall_s": time.perf_counter() - t0,
                        }
                    )
                print(json.dumps(rows[-len(POLICIES) :]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_csv(args.out / "per_seed.csv", rows)
    lines = [
        "# gradsplit against water-filling (greedy-joint) and the LP splits, exact simulator",
        "",
        f"Mean response (ms) over each scenario's own {args.tasks}-task stream, mean over seeds "
        f"{args.seeds}; change: gradsplit against greedy-joint, the ratio of means; wins: seeds "
        "where gradsplit's mean is lower.",
        "",
        "| topology | load | greedy | gradsplit | base3 | base4 | change vs greedy | wins |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = []
    for topo in dict.fromkeys(r["topology"] for r in rows):
        for load in dict.fromkeys(r["load"] for r in rows):
            cell = [r for r in rows if r["topology"] == topo and r["load"] == load]
            mean = {
                p: float(np.mean([r["mean_response_ms"] for r in cell if r["policy"] == p]))
                for p in POLICIES
            }
            per = {p: [r["mean_response_ms"] for r in cell if r["policy"] == p] for p in POLICIES}
            wins = sum(g < w for g, w in zip(per["gradsplit"], per["greedy"], strict=True))
            change = mean["gradsplit"] / mean["greedy"] - 1.0
            summary.append(
                {
                    "topology": topo,
                    "load": load,
                    **mean,
                    "change": change,
                    "wins": wins,
                    "seeds": len(per["greedy"]),
                }
            )
            lines.append(
                f"| {topo} | {load} | {mean['greedy']:.2f} | {mean['gradsplit']:.2f} "
                f"| {mean['base3']:.2f} | {mean['base4']:.2f} | {100 * change:+.1f}% "
                f"| {wins}/{len(per['greedy'])} |"
            )
    wall = time.perf_counter() - start
    lines += [
        "",
        f"Command: `python experiments/compare_gradsplit.py --out {args.out}` ({wall:.0f} s)",
        "",
        "versions: " + json.dumps(package_versions()),
    ]
    atomic_json(
        args.out / "summary.json",
        {"cells": summary, "config": config, "versions": package_versions(), "wall_s": wall},
    )
    atomic_text(args.out / "summary.md", "\n".join(lines) + "\n")
    plot(rows, args.out / "gradsplit.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

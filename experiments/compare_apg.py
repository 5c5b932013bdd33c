"""Analytic gradients against the actor-critic: the same SyncGNN network, scenario and validation
stream, trained by PPO (the default `cpnjax train`, as in experiments/train_tables.py) and by
APG (`cpnjax train --algo apg`) with each node-gradient estimator and truncation window.

For every topology: the PPO run's final validation mean; for each APG run, the env steps (and
wall seconds) at which its validation mean first reaches PPO's final, the ratio to the env
steps PPO itself took to first reach it, and APG's final. Both learning curves go in one
figure, against env steps and against wall seconds. Runs already in --runs are reused.

    python experiments/compare_apg.py --out results/compare_apg
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from cpnjax.io import atomic_csv, atomic_figure, atomic_json, atomic_text, package_versions
from cpnjax.scenario import ScenarioConfig
from cpnjax.train import RunSpec, TrainConfig, train_run
from cpnjax.train.analytic_grad import APGConfig
from cpnjax.train.env import EnvConfig
from cpnjax.train.run import compiled

VARIANTS = (
    "expected:1:64",
    "expected:4:64",
    "expected:16:64",
    "score:1:64",
    "expected:1:16:3e-3",
    "score:1:16:3e-3",
)
"""node_grad:window:envs[:lr] of each APG run (lr: --apg-lr when not given)."""


def specs(topology: str, seed: int, args) -> dict[str, RunSpec]:
    scen = dataclasses.replace(ScenarioConfig.default(), topology=topology, load=args.load)
    lo, hi = args.train_load_range
    env = EnvConfig(load_scale_range=(lo / args.load, hi / args.load))
    ppo = dataclasses.replace(TrainConfig.default(), env=env)
    ppo = dataclasses.replace(ppo, num_updates=-(-args.ppo_env_steps // ppo.steps_per_update))
    out = {"ppo": RunSpec(scen, seed, ppo, chunk_updates=5)}
    for variant in args.variants.split(","):
        node_grad, window, envs, *lr = variant.split(":")
        apg = APGConfig(
            node_grad=node_grad,
            rollout_steps=int(window),
            num_envs=int(envs),
            env=env,
            lr=float(lr[0]) if lr else args.apg_lr,
        )
        updates = -(-args.apg_env_steps // apg.steps_per_update)
        apg = dataclasses.replace(apg, num_updates=updates)
        chunk = max(1, updates // 48)
        name = f"apg {node_grad} W={window} E={envs}" + (f" lr={lr[0]}" if lr else "")
        out[name] = RunSpec(scen, seed, apg, chunk_updates=chunk)
    return out


def run(spec: RunSpec, run_dir: Path, baselines: bool) -> tuple[list[dict], dict]:
    if run_dir.exists() and not (run_dir / "curve.csv").exists():
        shutil.rmtree(run_dir)  # stopped before it finished
    if not (run_dir / "curve.csv").exists():
        t0 = time.perf_counter()
        train_run(spec, run_dir, progress=False, score_baselines=baselines)
        print(f"  trained {run_dir} in {time.perf_counter() - t0:.0f} s", flush=True)
        # a process that compiles many runs' programs runs out of LLVM code memory
        compiled.cache_clear()
        jax.clear_caches()
    curve = [
        {k: float(v) for k, v in r.items()} for r in csv.DictReader(open(run_dir / "curve.csv"))
    ]
    return curve, json.loads((run_dir / "config.json").read_text())


def first_reach(curve: list[dict], target: float) -> dict | None:
    return next(
        (
            {"env_steps": r["env_steps"], "wall_s": r["wall_s"]}
            for r in curve
            if r["mean_response_ms"] <= target
        ),
        None,
    )


def plot(curves: dict, baselines: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topos = list(curves)
    fig, axes = plt.subplots(len(topos), 2, figsize=(13, 4.2 * len(topos)), squeeze=False)
    for row, topo in enumerate(topos):
        for col, (key, label) in enumerate((("env_steps", "env steps"), ("wall_s", "wall s"))):
            ax = axes[row, col]
            for i, (name, curve) in enumerate(curves[topo].items()):
                x = [max(r[key], 1.0) for r in curve]
                style = {"color": "k", "lw": 2} if name == "ppo" else {"color": f"C{i}"}
                ax.plot(x, [r["mean_response_ms"] for r in curve], marker=".", label=name, **style)
            ax.axhline(baselines[topo]["greedy"], ls="--", color="grey", label="greedy-joint")
            ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("validation mean response (ms)")
            ax.set_title(f"{topo}")
            ax.grid(alpha=0.3)
            final = curves[topo]["ppo"][-1]["mean_response_ms"]
            lowest = min(r["mean_response_ms"] for c in curves[topo].values() for r in c)
            ax.set_ylim(0.98 * min(lowest, baselines[topo]["greedy"]), 1.15 * final)
        axes[row, 0].legend(fontsize=8)
    fig.tight_layout()
    atomic_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/compare_apg"))
    parser.add_argument("--runs", type=Path, default=Path("runs/compare_apg"))
    parser.add_argument("--topologies", default="abilene,tiscali")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--load", type=float, default=0.1)
    parser.add_argument("--train-load-range", type=float, nargs=2, default=(0.1, 0.5))
    parser.add_argument("--ppo-env-steps", type=int, default=327_680)
    parser.add_argument("--apg-env-steps", type=int, default=32_768)
    parser.add_argument("--apg-lr", type=float, default=1e-3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    rows, curves, baselines = [], {}, {}
    for topo in args.topologies.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            runs = {}
            for name, spec in specs(topo, seed, args).items():
                run_dir = args.runs / topo / f"seed{seed}" / name.replace(" ", "_")
                runs[name] = run(spec, run_dir, baselines=name == "ppo")
            base = runs["ppo"][1]["validation_baselines_ms"]
            ppo_curve = runs["ppo"][0]
            target = ppo_curve[-1]["mean_response_ms"]
            ppo_reach = first_reach(ppo_curve, target)
            for name, (curve, _) in runs.items():
                reach = first_reach(curve, target)
                rows.append(
                    {
                        "topology": topo,
                        "seed": seed,
                        "run": name,
                        "env_steps": curve[-1]["env_steps"],
                        "wall_s": curve[-1]["wall_s"],
                        "final_ms": curve[-1]["mean_response_ms"],
                        "best_ms": min(r["mean_response_ms"] for r in curve),
                        "ppo_final_ms": target,
                        "greedy_ms": base["greedy"],
                        "reach_env_steps": reach and reach["env_steps"],
                        "reach_wall_s": reach and reach["wall_s"],
                        "fewer_env_steps_x": reach
                        and ppo_reach["env_steps"] / max(reach["env_steps"], 1.0),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
            if seed == int(args.seeds.split(",")[0]):
                curves[topo] = {n: c for n, (c, _) in runs.items()}
                baselines[topo] = base
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_csv(args.out / "summary.csv", rows)
    atomic_json(args.out / "config.json", config | {"versions": package_versions()})
    plot(curves, baselines, args.out / "curves.png")

    def fmt(v, spec):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)

    lines = [
        "# APG against PPO: same SyncGNN network, scenario and validation stream",
        "",
        "reach: the env steps (wall s) at which a run's validation mean first gets to PPO's "
        "final; fewer x: PPO's own env steps to first reach it over the run's.",
        "",
        "| topology | seed | run | env steps | wall (s) | final (ms) | PPO final | greedy "
        "| reach env steps | reach wall (s) | fewer x |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        lines.append(
            f"| {r['topology']} | {r['seed']} | {r['run']} | {r['env_steps']:,.0f} "
            f"| {r['wall_s']:.0f} | {r['final_ms']:.2f} | {r['ppo_final_ms']:.2f} "
            f"| {r['greedy_ms']:.2f} | {fmt(r['reach_env_steps'], ',.0f')} "
            f"| {fmt(r['reach_wall_s'], '.0f')} | {fmt(r['fewer_env_steps_x'], '.1f')} |"
        )
    lines += ["", f"Command: `python experiments/compare_apg.py --out {args.out}`", ""]
    lines += ["config: " + json.dumps(config), "", "versions: " + json.dumps(package_versions())]
    atomic_text(args.out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Which actor-critic update trains better, by measurement (Abilene, one scenario).

The paper's update (TD(0) A2C, plain SGD at lr 0.1 for actors and critic, gamma 0.99), the same
A2C with Adam, and PPO-clip with GAE (the default), each for the same env-step budget; also the
discount (gamma 0.99 / 0.9 / 0.5) and the split head without the water-filling prior. Validation
mean response of each run's deterministic policy, beside greedy-joint and the best Base.

    python experiments/compare_algos.py --out results/compare_algos [--env-steps 300000]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from cpnjax.io import atomic_csv, atomic_json, atomic_text, package_versions
from cpnjax.scenario import ScenarioConfig
from cpnjax.train import RunSpec, TrainConfig, train_run

VARIANTS = {
    "ppo (default: gamma 0.5, Adam 1e-3)": {},
    "paper a2c (SGD lr 0.1, gamma 0.99)": "paper",
    "a2c, Adam 1e-3, gamma 0.5": {"algo": "a2c"},
    "ppo, gamma 0.99": {"gamma": 0.99},
    "ppo, gamma 0.9": {"gamma": 0.9},
    "ppo, no water-filling prior": {"split_prior": False},
    "ppo, 2 SyncGNN rounds": {"rounds": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-steps", type=int, default=300_000)
    parser.add_argument("--runs", type=Path, default=Path("runs/compare_algos"))
    parser.add_argument("--out", type=Path, default=Path("results/compare_algos"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scen = dataclasses.replace(ScenarioConfig.default(), topology=args.topology)
    rows = []
    for i, (name, over) in enumerate(VARIANTS.items()):
        base = TrainConfig.paper() if over == "paper" else TrainConfig.default()
        cfg = base if over == "paper" else dataclasses.replace(base, **over)
        cfg = dataclasses.replace(cfg, num_updates=-(-args.env_steps // cfg.steps_per_update))
        run_dir = args.runs / f"v{i}"
        shutil.rmtree(run_dir, ignore_errors=True)
        s = train_run(RunSpec(scen, args.seed, cfg), run_dir, progress=False)
        last, base_ms = s["curve_final"], s["validation_baselines_ms"]
        rows.append(
            {
                "variant": name,
                "env_steps": last["env_steps"],
                "wall_s": last["wall_s"],
                "final_validation_ms": last["mean_response_ms"],
                "greedy_ms": base_ms["greedy"],
                "best_base_ms": min(base_ms[b] for b in ("base1", "base2", "base3", "base4")),
            }
        )
        print(rows[-1], flush=True)
        atomic_csv(args.out / "summary.csv", rows)
    lines = [
        f"# Actor-critic variants on {args.topology} (seed {args.seed}), validation stream",
        "",
        "| variant | env steps | wall (s) | final validation (ms) | greedy-joint (ms) |"
        " best Base (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['env_steps']:,} | {r['wall_s']:.0f} |"
            f" {r['final_validation_ms']:.2f} | {r['greedy_ms']:.2f} |"
            f" {r['best_base_ms']:.2f} |"
        )
    atomic_text(args.out / "summary.md", "\n".join(lines) + "\n")
    atomic_json(
        args.out / "config.json",
        {**{k: str(v) for k, v in vars(args).items()}, "versions": package_versions()},
    )


if __name__ == "__main__":
    main()

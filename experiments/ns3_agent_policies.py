"""The trained agent's decisions replayed in NS-3 beside the baselines (issue 12, item 6).

Trains the SyncGNN agent on the NS-3 validation scenario itself (`validation_config`: capacities
and task data scaled by 0.1, so transmission times keep their values and a packet-level run
takes seconds), then `cpnjax-ns3 policies` with the run directory among the policies: the same
per-task decisions in the simulator and in NS-3, and the Spearman correlation of the rankings.

    python experiments/ns3_agent_policies.py --out results/ns3_policies_abilene_agent
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from cpnjax.train import RunSpec, TrainConfig, train_run
from ns3_validation.cli import main as ns3_main
from ns3_validation.fidelity import validation_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene")
    parser.add_argument("--load", default="mid")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-steps", type=int, default=300_000)
    parser.add_argument("--runs", type=Path, default=Path("runs/ns3_agent"))
    parser.add_argument("--out", type=Path, default=Path("results/ns3_policies_abilene_agent"))
    args = parser.parse_args()
    run_dir = args.runs / f"{args.topology}_{args.load}_seed{args.seed}"
    if not (run_dir / "curve.csv").exists():
        cfg = TrainConfig.default()
        cfg = dataclasses.replace(cfg, num_updates=-(-args.env_steps // cfg.steps_per_update))
        scenario = validation_config(args.topology, args.load, 100)
        train_run(RunSpec(scenario, args.seed, cfg), run_dir, progress=False)
    policies = f"base1,base2,base3,base4,greedy,{run_dir}"
    code = ns3_main(
        [
            "policies",
            "--topology",
            args.topology,
            "--load",
            args.load,
            "--tasks",
            str(args.tasks),
            "--seed",
            str(args.seed),
            "--policies",
            policies,
            "--out",
            str(args.out),
        ]
    )
    raise SystemExit(code)


if __name__ == "__main__":
    main()

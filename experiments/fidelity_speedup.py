"""Per-task speedup of the batched simulator over NS-3, with the simulator timed on a quiet
machine: for every cell of a fidelity matrix, its stored NS-3 wall time against the simulator's
task-steps/s on the same scenario and policy now (`ns3_validation.fidelity.batched_throughput`,
1024 environments).

    python experiments/fidelity_speedup.py --matrix results/ns3_fidelity
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cpnjax.io import atomic_text, package_versions
from cpnjax.scenario import make_scenario
from ns3_validation.fidelity import batched_throughput, matrix_sim_config, validation_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=Path, default=Path("results/ns3_fidelity"))
    parser.add_argument("--envs", type=int, default=1024)
    args = parser.parse_args()
    config = json.loads((args.matrix / "config.json").read_text())
    topologies = {Path(t).stem: t for t in config["topologies"].split(",")}
    rows = []
    for cell in json.loads((args.matrix / "summary.json").read_text()):
        s = cell["summary"]
        scenario = make_scenario(
            validation_config(
                topologies[cell["topology"]],
                cell["load"],
                config["tasks"],
                config.get("task_load_scale", 1.0),
            ),
            config["seed"],
        )
        steps_per_s = batched_throughput(
            scenario, cell["policy"], args.envs, sim_config=matrix_sim_config(config)
        )
        ns3_rate = s["tasks"] / s["ns3_wall_s"]
        rows.append({**{k: cell[k] for k in ("topology", "load", "policy")},
                     "sim_task_steps_per_s": steps_per_s, "ns3_tasks_per_s": ns3_rate,
                     "speedup_per_task": steps_per_s / ns3_rate})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"# Per-task speedup over NS-3 ({args.envs} environments, simulator timed alone)",
        "",
        f"NS-3 wall times from `{args.matrix}/summary.json`.",
        "",
        "| topology | load | policy | sim task-steps/s | NS-3 tasks/s | per-task speedup |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['topology']} | {r['load']} | {r['policy']} | {r['sim_task_steps_per_s']:,.0f} "
            f"| {r['ns3_tasks_per_s']:.1f} | {r['speedup_per_task']:,.0f}x |"
            for r in rows
        ),
    ]
    out = args.matrix / "speedup_quiet"
    atomic_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    meta = {
        "rows": rows,
        "config": vars(args) | {"matrix_config": config},
        "versions": package_versions(),
    }
    atomic_text(out.with_suffix(".json"), json.dumps(meta, indent=2, default=str))
    print(f"wrote {out}.md")


if __name__ == "__main__":
    main()

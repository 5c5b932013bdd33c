"""Per-task speedup of the batched simulator over NS-3, with the simulator timed on a quiet
machine: for every cell of a fidelity matrix, its stored NS-3 wall time against the simulator's
task-steps/s on the same scenario and policy now (`ns3_validation.fidelity.batched_throughput`,
1024 environments by default).

    python experiments/fidelity_speedup.py --matrix results/ns3_fidelity
    python experiments/fidelity_speedup.py --matrix results/ns3_fidelity --envs 4096 --devices 2 \
        --out results/ns3_fidelity/speedup_4096_devices2

--devices N splits the environments over N devices (`cpnjax.sim.sharding`); on a CPU it makes
N host devices (XLA_FLAGS=--xla_force_host_platform_device_count=N) before JAX starts, as
`bench_sim.py --devices` does. Writes OUT.md and OUT.json (default MATRIX/speedup_quiet).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cpnjax.distributed import request_host_devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=Path, default=Path("results/ns3_fidelity"))
    parser.add_argument("--envs", type=int, default=1024)
    parser.add_argument("--devices", type=int, default=1, help="shard environments over N")
    parser.add_argument("--out", type=Path, default=None, help="default MATRIX/speedup_quiet")
    args = parser.parse_args()
    if args.devices < 1 or args.envs % args.devices:
        parser.error(f"--envs {args.envs} must be a multiple of --devices {args.devices} (>= 1)")
    request_host_devices(args.devices)  # before JAX starts

    import jax  # after XLA_FLAGS

    from cpnjax.io import atomic_text, package_versions
    from cpnjax.scenario import make_scenario
    from cpnjax.sim.sharding import env_mesh
    from ns3_validation.fidelity import batched_throughput, matrix_sim_config, validation_config

    mesh = env_mesh(args.devices) if args.devices > 1 else None
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
            scenario, cell["policy"], args.envs, sim_config=matrix_sim_config(config), mesh=mesh
        )
        ns3_rate = s["tasks"] / s["ns3_wall_s"]
        rows.append({**{k: cell[k] for k in ("topology", "load", "policy")},
                     "sim_task_steps_per_s": steps_per_s, "ns3_tasks_per_s": ns3_rate,
                     "speedup_per_task": steps_per_s / ns3_rate})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"# Per-task speedup over NS-3 ({args.envs} environments on {args.devices} "
        f"{jax.devices()[0].platform} device(s), simulator timed alone)",
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
    out = args.out or args.matrix / "speedup_quiet"
    atomic_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    meta = {
        "rows": rows,
        "config": vars(args) | {"matrix_config": config, "num_devices": args.devices},
        "versions": package_versions(),
    }
    atomic_text(out.with_suffix(".json"), json.dumps(meta, indent=2, default=str))
    print(f"wrote {out}.md")


if __name__ == "__main__":
    main()

"""Re-check a stored fidelity matrix after a change to the simulator that should not change its
numbers, without running NS-3 again: every cell's simulator side is run anew and compared with
the per-task rows stored with it.

For each cell (OUT/policy/topology_load/per_task.csv of `experiments/ns3_fidelity.py`): are the
decisions (node and split of every task) the same; how far each task's simulated response
moved (max relative change); and, where the decisions are the same (so NS-3's stored replay is
the replay of the new decisions), the response MAPE and the p99 latency error against the
stored NS-3 latencies, old and new.

    python experiments/fidelity_recheck.py --matrix results/ns3_fidelity \\
        --out results/ns3_fidelity/recheck.md

With --slots M the simulator remembers M jobs per link and server instead of 8: the measured
fidelity of that faster, blurrier setting against the same NS-3 runs (Base1's decisions do not
depend on the state, so its cells always compare; greedy's only where its decisions hold).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from cpnjax.evaluate import run_policy
from cpnjax.io import atomic_text, package_versions
from cpnjax.scenario import make_scenario
from cpnjax.sim import SimConfig
from cpnjax.sim.dynamics import SLOTS
from ns3_validation.fidelity import (
    distribution_errors,
    matrix_sim_config,
    relative_errors,
    validation_config,
)


def stored_rows(cell: Path) -> dict[str, np.ndarray]:
    """The columns of a cell's per_task.csv as arrays (float, 'complete' as bool)."""
    with (cell / "per_task.csv").open() as f:
        rows = list(csv.DictReader(f))
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    out = {k: np.asarray(v, np.float64) for k, v in cols.items() if k != "complete"}
    out["complete"] = np.asarray([v == "True" for v in cols["complete"]])
    return out


def recheck(
    cell: Path,
    topology: str,
    load: str,
    policy: str,
    tasks: int,
    seed: int,
    slots: int,
    task_load_scale: float = 1.0,
    sim_config: SimConfig | None = None,
) -> dict:
    old = stored_rows(cell)
    scenario = make_scenario(validation_config(topology, load, tasks, task_load_scale), seed)
    new = run_policy(scenario, policy, seed, sim_config, slots=slots)
    num_paths = new.split.shape[1]
    old_split = np.stack([old[f"split{k}"] for k in range(num_paths)], axis=1)
    same = bool(
        np.array_equal(new.node, old["node"].astype(int))
        and np.allclose(new.split, old_split, atol=1e-5)
    )
    ok = old["complete"]
    ns3 = old["ns3_response_ms"][ok]
    moved = relative_errors(new.response_ms, old["sim_response_ms"])
    row = {
        "topology": Path(topology).stem,
        "load": load,
        "policy": policy,
        "same_decisions": same,
        "max_rel_change_response": float(moved.max()),
        "mape_response_old": float(relative_errors(old["sim_response_ms"][ok], ns3).mean()),
        "p99_latency_err_old": distribution_errors(old["sim_response_ms"][ok], ns3)[
            "p99_latency_err"
        ],
    }
    if same:
        row["mape_response_new"] = float(relative_errors(new.response_ms[ok], ns3).mean())
        row["p99_latency_err_new"] = distribution_errors(new.response_ms[ok], ns3)[
            "p99_latency_err"
        ]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=Path, default=Path("results/ns3_fidelity"))
    parser.add_argument("--out", type=Path, default=None, help="md (and .json) to write")
    parser.add_argument("--slots", type=int, default=SLOTS, help="jobs remembered per link")
    args = parser.parse_args()
    config = json.loads((args.matrix / "config.json").read_text())
    rows = []
    for topology, load, policy in config["cells"]:
        cell = args.matrix / policy / f"{Path(topology).stem}_{load}"
        if not (cell / "per_task.csv").exists():
            print(f"{cell}: no per_task.csv, skipped", flush=True)
            continue
        rows.append(
            recheck(
                cell,
                topology,
                load,
                policy,
                config["tasks"],
                config["seed"],
                args.slots,
                config.get("task_load_scale", 1.0),
                matrix_sim_config(config),
            )
        )
        print(json.dumps(rows[-1]), flush=True)

    def pct(r: dict, key: str) -> str:
        return f"{100 * r[key]:.2f}%" if key in r else "-"

    lines = [
        f"# Simulator side of `{args.matrix}` re-run with {args.slots} slots (NS-3 latencies "
        "as stored)",
        "",
        "same decisions: node and split of every task as stored; change: max over tasks of the "
        "relative change of the simulated response; MAPE and p99 error against the stored NS-3 "
        "latencies (new: only where the decisions are the same).",
        "",
        "| topology | load | policy | same decisions | max change | resp MAPE old | new "
        "| p99 err old | new |",
        "|" + "---|" * 9,
    ]
    for r in rows:
        lines.append(
            f"| {r['topology']} | {r['load']} | {r['policy']} | {r['same_decisions']} "
            f"| {r['max_rel_change_response']:.1e} | {pct(r, 'mape_response_old')} "
            f"| {pct(r, 'mape_response_new')} | {pct(r, 'p99_latency_err_old')} "
            f"| {pct(r, 'p99_latency_err_new')} |"
        )
    lines += ["", "versions: " + json.dumps(package_versions())]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_text(args.out, text)
        atomic_text(args.out.with_suffix(".json"), json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""`cpnjax-ns3`: the simulator against NS-3.

cpnjax-ns3 fidelity --topology abilene --policy base1 --load mid --tasks 200 --out DIR
cpnjax-ns3 policies --topology abilene --policies base1,base2,base3,base4,greedy --out DIR \
    [--workers W | --ray [ADDRESS]]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cpnjax.cache import enable_caches
from cpnjax.policies import POLICIES
from ns3_validation.cluster import LOCAL
from ns3_validation.fidelity import LOADS, run_fidelity, run_policies, validation_config
from ns3_validation.plan import COMPUTE_ORDERS, TRANSPORTS, Ns3Settings
from ns3_validation.worker import Ns3RunError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topology", default="abilene", help="shipped name or path to a JSON file")
    p.add_argument("--load", default="mid", choices=tuple(LOADS), help="see fidelity.LOADS")
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compute-order", default="arrival", choices=COMPUTE_ORDERS)
    p.add_argument("--flowlet-bytes", type=int, default=Ns3Settings.flowlet_bytes)
    p.add_argument("--transport", default="udp", choices=TRANSPORTS, help="of task data")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per NS-3 run")
    p.add_argument("--out", type=Path, required=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpnjax-ns3", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fid = sub.add_parser("fidelity", help="same tasks and decisions in cpnjax and in NS-3")
    _common(fid)
    fid.add_argument("--policy", default="base1", help=f"one of {','.join(POLICIES)}")
    pol = sub.add_parser("policies", help="paper-table-3 comparison measured in NS-3")
    _common(pol)
    pol.add_argument("--policies", default="base1,base2,base3,base4,greedy")
    pol.add_argument("--workers", type=int, default=2, help="NS-3 runs in parallel")
    pol.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        default=None,
        metavar="ADDRESS",
        help="run each NS-3 replay as a Ray task (a local cluster without ADDRESS)",
    )
    return parser


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES and not Path(p).is_dir()]
    if not names or unknown:
        raise ValueError(
            f"unknown policy {unknown[0] if unknown else '(none given)'!r}; "
            f"known: {', '.join(POLICIES)} or a `cpnjax train` run directory"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    enable_caches()  # a second run loads compiled executables and predictions from disk
    start = time.perf_counter()
    try:
        if args.tasks < 1:
            raise ValueError(f"--tasks must be >= 1, got {args.tasks}")
        settings = Ns3Settings(
            compute_order=args.compute_order,
            flowlet_bytes=args.flowlet_bytes,
            transport=args.transport,
        )
        config = validation_config(args.topology, args.load, args.tasks)
        if args.command == "fidelity":
            (policy,) = _policies(args.policy)
            print(f"cpnjax-ns3: {args.topology}, {policy}, load {args.load}, {args.tasks} tasks")
            s = run_fidelity(config, policy, args.seed, args.out, settings, args.timeout)
            print(
                f"transmission MAPE {100 * s['mape_transmission']:.2f}%  response MAPE "
                f"{100 * s['mape_response']:.2f}%  p50/p90/p99 rel. err. "
                f"{100 * s['p50_rel_err']:.1f}/{100 * s['p90_rel_err']:.1f}/"
                f"{100 * s['p99_rel_err']:.1f}%  probe MAPE {100 * s['mape_probe_delay']:.2f}%"
            )
            print(
                f"NS-3 {s['ns3_wall_s']:.1f} s, simulator {1e3 * s['sim_wall_s']:.2f} ms "
                f"(compile {s['sim_compile_s']:.1f} s): {s['speedup']:,.0f}x; "
                f"lost packets {s['lost_packets']}, incomplete tasks {s['incomplete_tasks']}"
            )
            files = "per_task.csv, summary.json, scatter.png, config.json"
        else:
            policies = _policies(args.policies)
            print(f"cpnjax-ns3: {args.topology}, {len(policies)} policies, load {args.load}")
            s = run_policies(
                config,
                policies,
                args.seed,
                args.out,
                settings,
                args.workers,
                args.timeout,
                args.ray,
            )
            for row in s["policies"]:
                print(
                    f"{row['policy']:>8}  simulator {row['sim_mean_response_ms']:8.2f} ms"
                    f"  NS-3 {row['ns3_mean_response_ms']:8.2f} ms"
                )
            print(f"Spearman of the rankings: {s['spearman']:.3f}")
            for policy, err in s["failures"].items():
                print(f"cpnjax-ns3: NS-3 run for {policy} failed: {err}", file=sys.stderr)
            files = "summary.csv, summary.json, table.md, policies.png, config.json"
        print(f"wrote {args.out}/{{{files}}} ({time.perf_counter() - start:.0f} s)")
    except (ValueError, OSError, Ns3RunError) as err:
        print(f"cpnjax-ns3: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

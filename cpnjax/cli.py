"""`cpnjax` command line: thin wrappers over library functions."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from cpnjax.cache import enable_caches
from cpnjax.latency.model import NEW_DEVICES
from cpnjax.policies import POLICIES

DEFAULT_POLICIES = "base1,base2,base3,base4,greedy"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpnjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="run policies on one scenario and task stream")
    ev.add_argument("--topology", default="abilene", help="shipped name or path to a JSON file")
    ev.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help=f"comma list of {','.join(POLICIES)} or `cpnjax train` run directories",
    )
    ev.add_argument("--tasks", type=int, default=100, help="number of tasks")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--load", type=float, default=None, help="arrival load (see ScenarioConfig)")
    ev.add_argument("--background-util", type=float, default=None, help="mean link utilisation")
    ev.add_argument("--task-type", default="mixed", choices=("mixed", "io", "compute"))
    ev.add_argument("--candidates", type=int, default=5, help="candidate nodes n (paper: 3-7)")
    ev.add_argument("--out", type=Path, default=Path("results/evaluate"))
    ev.add_argument("--no-progress", action="store_true")
    lat = sub.add_parser("latency", help="compute-latency predictor (paper 3.3, tables 5-6)")
    lat_sub = lat.add_subparsers(dest="latency_command", required=True)
    t5 = lat_sub.add_parser("table5", help="TSFT and baselines on new devices from N samples")
    t5.add_argument("--new-devices", default=",".join(NEW_DEVICES))
    t5.add_argument("--samples", default="10,20,50,100", help="comma list of N (>= 10)")
    t5.add_argument("--seed", type=int, default=0)
    t5.add_argument("--network", default="mlp", choices=("mlp", "gcn"), help="residual network")
    t5.add_argument(
        "--brp-samples", type=int, default=900, help="BRP-NAS training samples (0: skip it)"
    )
    t5.add_argument("--out", type=Path, default=Path("results/latency_table5"))
    lo = lat_sub.add_parser(
        "loo", help="leave-one-device-out: every device in turn is new, from N samples"
    )
    lo.add_argument("--samples", default="10", help="comma list of N (>= 10)")
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--devices", default=None, help="comma list (default: every fully measured)")
    lo.add_argument(
        "--folds",
        type=int,
        default=None,
        help="base models, devices split stratified by class (default: one per device)",
    )
    lo.add_argument("--network", default="mlp", choices=("mlp", "gcn"), help="residual network")
    lo.add_argument("--out", type=Path, default=Path("results/latency_loo"))
    ad = lat_sub.add_parser("adapt", help="TSFT-adapt the predictor to a device and save it")
    ad.add_argument("--device", required=True, help="a device of the shipped table")
    ad.add_argument("--samples", type=int, default=50, help="N measurements (>= 10)")
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--network", default="mlp", choices=("mlp", "gcn"))
    ad.add_argument("--out", type=Path, default=None, help="default: predictors/<device>_n<N>")
    tr = sub.add_parser("train", help="train the learned scheduler on one scenario")
    tr.add_argument("--topology", default=None, help="shipped name or JSON path (abilene)")
    tr.add_argument("--agent", default=None, help="syncgnn | mlp | dqn (default syncgnn)")
    tr.add_argument(
        "--algo",
        default=None,
        help="a2c | ppo | apg (analytic gradients through the smooth simulator); default ppo",
    )
    tr.add_argument("--node-grad", default=None, help="apg: expected | score (default expected)")
    tr.add_argument("--window", type=int, default=None, help="apg: tasks per gradient window (1)")
    tr.add_argument("--dqn-reward", default=None, help="bandwidth | latency (default bandwidth)")
    tr.add_argument("--env-steps", type=int, default=None, help="env steps (600k; apg 33k)")
    tr.add_argument("--envs", type=int, default=None, help="parallel environments (256; apg 16)")
    tr.add_argument("--load", type=float, default=None, help="arrival load (ScenarioConfig)")
    tr.add_argument(
        "--load-range",
        default=None,
        help="lo,hi: each training episode's load drawn from this range",
    )
    tr.add_argument("--background-util", type=float, default=None, help="mean link utilisation")
    tr.add_argument("--seed", type=int, default=None, help="scenario and training seed (0)")
    tr.add_argument("--out", type=Path, default=None, help="new run directory")
    tr.add_argument("--resume", type=Path, default=None, help="continue the run in this directory")
    tr.add_argument(
        "--skip-baselines",
        action="store_true",
        help="do not score Base1-4 and greedy-joint on the validation stream",
    )
    tr.add_argument(
        "--coordinator",
        default=None,
        help="multi-process: HOST:PORT of process 0 (jax.distributed)",
    )
    tr.add_argument("--num-processes", type=int, default=None, help="multi-process: P")
    tr.add_argument("--process-id", type=int, default=None, help="multi-process: this one, 0..P-1")
    tr.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        help="also write the curve as TensorBoard event files in this directory",
    )
    tr.add_argument("--no-progress", action="store_true")
    return parser


def train_command(args: argparse.Namespace) -> None:
    from cpnjax.distributed import initialize

    # jax.distributed must start before JAX computes anything (the imports below do)
    distributed = initialize(args.coordinator, args.num_processes, args.process_id)

    from cpnjax.scenario import ScenarioConfig
    from cpnjax.train.actor_critic import AGENTS, ALGOS
    from cpnjax.train.analytic_grad import NODE_GRADS, APGConfig
    from cpnjax.train.checkpoint import read_config
    from cpnjax.train.dqn import REWARDS
    from cpnjax.train.run import RunSpec, config_kind, train_run

    if (args.out is None) == (args.resume is None):
        raise ValueError("give exactly one of --out DIR (new run) or --resume DIR")
    agents = (*AGENTS, "dqn")
    if args.agent is not None and args.agent not in agents:
        raise ValueError(f"unknown agent {args.agent!r}; expected one of {', '.join(agents)}")
    algos = (*ALGOS, "apg")
    if args.algo is not None and args.algo not in algos:
        raise ValueError(f"unknown algo {args.algo!r}; expected one of {', '.join(algos)}")
    if args.node_grad is not None and args.node_grad not in NODE_GRADS:
        raise ValueError(
            f"unknown --node-grad {args.node_grad!r}; expected one of {', '.join(NODE_GRADS)}"
        )
    if args.algo is not None and args.agent == "dqn":
        raise ValueError("--algo applies to the syncgnn and mlp agents, not dqn")
    if args.dqn_reward is not None and args.dqn_reward not in REWARDS:
        raise ValueError(f"unknown --dqn-reward {args.dqn_reward!r}; expected one of {REWARDS}")
    for name in ("env_steps", "envs", "window"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.resume is not None:
        spec = RunSpec.from_json(read_config(args.resume)["spec"])
    else:
        kind = config_kind(args.agent or "syncgnn", args.algo)
        spec = RunSpec(ScenarioConfig.default(), 0, kind.default())
    apg = isinstance(spec.train, APGConfig)
    for flag, value in (("--node-grad", args.node_grad), ("--window", args.window)):
        if value is not None and not apg:
            raise ValueError(f"{flag} applies to --algo apg only")
    scen, train = {}, {}
    for arg, field in (
        ("topology", "topology"),
        ("load", "load"),
        ("background_util", "background_util"),
    ):
        if getattr(args, arg) is not None:
            scen[field] = getattr(args, arg)
    pairs = (
        ("agent", "agent"),
        ("algo", "algo"),
        ("envs", "num_envs"),
        ("dqn_reward", "reward"),
        ("node_grad", "node_grad"),
        ("window", "rollout_steps"),
    )
    for arg, field in pairs:
        if getattr(args, arg) is not None:
            train[field] = getattr(args, arg)
    train_cfg = dataclasses.replace(spec.train, **train)
    if args.load_range is not None:
        lo, hi = _pair(args.load_range, "--load-range")
        load = scen.get("load", spec.scenario.load)
        env = dataclasses.replace(train_cfg.env, load_scale_range=(lo / load, hi / load))
        train_cfg = dataclasses.replace(train_cfg, env=env)
    if args.env_steps is not None:
        updates = -(-args.env_steps // train_cfg.steps_per_update)
        train_cfg = dataclasses.replace(train_cfg, num_updates=updates)
    spec = dataclasses.replace(
        spec,
        scenario=dataclasses.replace(spec.scenario, **scen),
        seed=spec.seed if args.seed is None else args.seed,
        train=train_cfg,
    )
    run_dir = args.resume or args.out
    mesh = None
    if distributed:
        from cpnjax.sim.sharding import env_mesh

        mesh = env_mesh()  # every device of every process
    summary = train_run(
        spec,
        run_dir,
        resume=args.resume is not None,
        progress=not args.no_progress,
        tensorboard=args.tensorboard,
        mesh=mesh,
    )
    last = summary["curve_final"]
    base = summary["validation_baselines_ms"]
    versus = ", ".join(f"{k} {v:.2f}" for k, v in base.items())
    print(
        f"{summary['agent_name']}: validation mean {last['mean_response_ms']:.2f} ms after"
        f" {last['env_steps']:,} env steps, {last['wall_s']:.0f} s"
        + (f" ({versus})" if base else "")
    )
    print(f"wrote {run_dir}/{{config.json, curve.csv, curve.png, checkpoints/}}")


def _pair(text: str, flag: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} must be two numbers lo,hi, got {text!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"{flag} must satisfy 0 < lo <= hi, got {text!r}")
    return lo, hi


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated integers: {text!r}") from None
    if not values:
        raise ValueError(f"{flag} must not be empty")
    return values


def table5_command(args: argparse.Namespace) -> None:
    from cpnjax.latency.model import TrainConfig
    from cpnjax.latency.table5 import run_table5, write_table5

    devices = tuple(d.strip() for d in args.new_devices.split(",") if d.strip())
    samples = _int_list(args.samples, "--samples")
    if not devices:
        raise ValueError("--new-devices must not be empty")
    start = time.perf_counter()
    done = []

    def progress(device, n):
        done.append(device)
        total = len(devices) * (len(samples) + bool(args.brp_samples))
        print(f"  N={n:4d} {device:16s} ({len(done)}/{total})", flush=True)

    if args.brp_samples and not 10 <= args.brp_samples < 15625:
        raise ValueError(f"--brp-samples must be 0 or in 10..15624, got {args.brp_samples}")
    config = TrainConfig(network=args.network)
    rows, info = run_table5(devices, samples, args.seed, config, args.brp_samples, progress)
    resolved = {
        "command": "latency table5",
        "new_devices": list(devices),
        "samples": list(samples),
        "brp_samples": args.brp_samples,
        "seed": args.seed,
        "train_config": dataclasses.asdict(config),
        "wall_s": time.perf_counter() - start,
    }
    write_table5(rows, info, args.out, resolved)
    for n in (*samples, args.brp_samples):
        for method in ("TSFT", "base", "FLOPs", "Layer-wise", "BRP-NAS"):
            sel = [r for r in rows if r["method"] == method and r["samples"] == n]
            if not sel:
                continue
            mse = sum(r["mse"] for r in sel) / len(sel)
            rho = sum(r["spearman"] for r in sel) / len(sel)
            print(f"N={n:4d} {method:10s} mean MSE {mse:.5f}  mean Spearman {rho:.3f}")
    print(f"wrote {args.out}/{{table5.csv, table5.md, spearman_vs_samples.png, config.json}}")


def loo_command(args: argparse.Namespace) -> None:
    from cpnjax.latency.loo import run_loo, verdicts, write_loo
    from cpnjax.latency.model import TrainConfig

    samples = _int_list(args.samples, "--samples")
    devices = None
    if args.devices:
        devices = tuple(d.strip() for d in args.devices.split(",") if d.strip())
    start = time.perf_counter()

    def progress(device, n, done, total):
        print(f"  N={n:4d} {device:24s} ({done}/{total}, {time.perf_counter() - start:.0f} s)",
              flush=True)  # fmt: skip

    config = TrainConfig(network=args.network)
    rows, info = run_loo(devices, samples, args.seed, args.folds, config, progress)
    resolved = {
        "command": "latency loo",
        "devices": sorted({r["device"] for r in rows}),
        "samples": list(samples),
        "seed": args.seed,
        "folds": args.folds,
        "train_config": dataclasses.asdict(config),
        "wall_s": time.perf_counter() - start,
    }
    write_loo(rows, info, args.out, resolved)
    vs = verdicts(rows)
    for n in samples:
        sel = [v for v in vs if v["samples"] == n]
        rho = {m: np.mean([r["spearman"] for r in rows if r["method"] == m and r["samples"] == n])
               for m in ("TSFT", "FLOPs", "Layer-wise")}  # fmt: skip
        mse = np.mean([r["mse"] for r in rows if r["method"] == "TSFT" and r["samples"] == n])
        print(
            f"N={n:4d} mean Spearman TSFT {rho['TSFT']:.3f}, FLOPs {rho['FLOPs']:.3f}, Layer-wise"
            f" {rho['Layer-wise']:.3f}; TSFT mean MSE {mse:.5f}; TSFT >= both fits on"
            f" {sum(v['holds'] for v in sel)}/{len(sel)} devices"
        )
    print(f"wrote {args.out}/{{loo.csv, loo.md, verdicts.csv, tsft_vs_simple.png, config.json}}"
          f" in {resolved['wall_s']:.0f} s")  # fmt: skip


def adapt_command(args: argparse.Namespace) -> None:
    from cpnjax.latency import load_latency_table
    from cpnjax.latency.checkpoint import load_predictor, save_predictor
    from cpnjax.latency.model import TrainConfig, adapt, measured_archs, train_base, train_devices
    from cpnjax.latency.table5 import metrics

    table = load_latency_table()
    arch = measured_archs(args.device, args.samples, args.seed)  # checks device and N
    out = args.out or Path("predictors") / f"{args.device}_n{args.samples}"
    if out.exists():
        raise ValueError(f"{out} exists; choose a new --out")
    start = time.perf_counter()
    config = TrainConfig(network=args.network)
    exclude = tuple(dict.fromkeys((*NEW_DEVICES, args.device)))
    print(f"training the base model (without {', '.join(exclude)}) ...", flush=True)
    base = train_base(table, train_devices(table, exclude), args.seed, config)
    col = table.column_ms(args.device).astype(float)
    predictor = adapt(base, arch, col[arch], args.seed)
    rest = np.setdiff1d(np.flatnonzero(np.isfinite(col)), arch)
    score = metrics(predictor.predict_ms(rest), col[rest])
    info = {
        "command": "latency adapt",
        "device": args.device,
        "samples": args.samples,
        "seed": args.seed,
        "measured_archs": arch.tolist(),
        "unmeasured_score": score,
        "wall_s": time.perf_counter() - start,
    }
    path = save_predictor(predictor, out, info)
    again = load_predictor(path).predict_ms(rest[:100])  # the saved one predicts the same
    assert np.allclose(again, predictor.predict_ms(rest[:100]), rtol=1e-6)
    print(
        f"{args.device}: N={args.samples}, TSFT {predictor.finetune_s:.2f} s (compile included);"
        f" on the {rest.size} unmeasured: MSE {score['mse']:.5f}, Spearman"
        f" {score['spearman']:.3f}, MAPE {100 * score['mape']:.1f}%"
    )
    print(f"  from the {args.samples} measurements alone: {predictor.confidence.describe()}")
    print(f"  residual share {predictor.profile.residual_share:.2f}")
    print(f"wrote {path}/{{predictor.json, state/}}")


def evaluate_command(args: argparse.Namespace) -> None:
    from cpnjax.evaluate import evaluate, summary_rows, write_results
    from cpnjax.scenario import ScenarioConfig, make_scenario

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if not policies:
        raise ValueError(f"no policy given; known: {', '.join(POLICIES)} or a run directory")
    overrides = {"topology": args.topology, "num_tasks": args.tasks, "task_type": args.task_type}
    overrides["num_candidates"] = args.candidates
    if args.load is not None:
        overrides["load"] = args.load
    if args.background_util is not None:
        overrides["background_util"] = args.background_util
    config = dataclasses.replace(ScenarioConfig.default(), **overrides)
    start = time.perf_counter()
    scenario = make_scenario(config, args.seed)
    num_compute = int((scenario.node_device >= 0).sum())
    if args.candidates > num_compute:
        print(
            f"cpnjax: --candidates {args.candidates}: {scenario.topology.name} has "
            f"{num_compute} compute nodes, so each task has {num_compute} candidates "
            f"(the other {args.candidates - num_compute} slots are masked)",
            file=sys.stderr,
        )
    results = evaluate(scenario, policies, seed=args.seed, progress=not args.no_progress)
    resolved = {
        "command": "evaluate",
        "seed": args.seed,
        "policies": policies,
        "scenario": dataclasses.asdict(config),
        "scenario_summary": scenario.summary(),
        "wall_s": time.perf_counter() - start,
    }
    write_results(args.out, scenario, results, resolved)
    for row in summary_rows(results):
        print(
            f"{row['policy']:>8}  mean {row['mean_response_ms']:8.2f} ms"
            f"  p99 {row['p99_response_ms']:8.2f} ms"
            f"  (transmission {row['mean_transmission_ms']:.2f}, wait {row['mean_wait_ms']:.2f},"
            f" compute {row['mean_compute_ms']:.2f})"
        )
    print(
        f"wrote {args.out}/summary.csv, per_task.csv, table.md, per_task_latency.png "
        f"({time.perf_counter() - start:.1f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    enable_caches()  # a second run loads compiled executables and predictions from disk
    try:
        if args.command == "evaluate":
            evaluate_command(args)
        elif args.command == "train":
            train_command(args)
        elif args.command == "latency" and args.latency_command == "table5":
            table5_command(args)
        elif args.command == "latency" and args.latency_command == "loo":
            loo_command(args)
        elif args.command == "latency" and args.latency_command == "adapt":
            adapt_command(args)
    except (ValueError, OSError) as err:  # TopologyError is a ValueError
        print(f"cpnjax: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

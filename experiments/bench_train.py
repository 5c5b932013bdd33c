"""Training throughput against the bare simulator, and the agent's decision time (paper table 14).

* train_steps_per_s: env steps per second of the actor-critic update (rollout with the SyncGNN
  forward pass + the learning step's forward and backward passes), Abilene, `--envs`
  environments, compile apart (steady state over whole chunks of updates).
* sim_steps_per_s: the bare simulator's batched rollout (`make_batched_rollout`, 32 tasks per
  environment) at the same environment count in the same run, with greedy-joint (a policy that
  reads the whole observation, as the agent does) and with Base1 (XLA drops the probes Base1
  never reads, so it is the simulator's upper bound).
* decision_ms_single: one task, jitted, from the simulator state to the action (observe,
  features, network, mode of each head): median wall per call.
* decision_us_batched: the same over a batch of 1024 tasks, per task.

    python experiments/bench_train.py [--quick] --out results/bench_train.json
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import jax
import numpy as np

from cpnjax.io import atomic_json, atomic_text, package_versions
from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, arrive, make_batched_rollout, make_params, observe, reset
from cpnjax.sim.tasks import sample_task, task_distribution
from cpnjax.train import TrainConfig, make_trainer

TOPOLOGIES = ("abilene", "ebone", "sprintlink", "tiscali")
PAPER_DECISION_S = {"abilene": 0.0031, "ebone": 0.0050, "sprintlink": 0.0048, "tiscali": 0.0052}


def steady(fn, *args, min_time_s: float) -> tuple[float, float]:
    """(compile-and-first-call seconds, seconds per steady call) of a jitted fn."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    reps, t0 = 0, time.perf_counter()
    while True:
        jax.block_until_ready(fn(*args))
        reps += 1
        if time.perf_counter() - t0 >= min_time_s:
            return first, (time.perf_counter() - t0) / reps


def bench_training(scenario, num_envs: int, chunk: int, min_time_s: float) -> dict:
    params = make_params(scenario)
    cfg = dataclasses.replace(TrainConfig.default(), num_envs=num_envs)
    trainer = make_trainer(cfg, params, task_distribution(scenario))
    state = jax.jit(trainer.init)(jax.random.key(0))
    run = jax.jit(lambda s: jax.lax.scan(lambda s, _: trainer.update(s), s, None, chunk)[0])
    compile_s, per_chunk = steady(run, state, min_time_s=min_time_s)
    out = {
        "train_compile_s": compile_s,
        "train_steps_per_s": chunk * cfg.steps_per_update / per_chunk,
    }
    tasks = jax.vmap(jax.vmap(lambda k: sample_task(task_distribution(scenario), k)))(
        jax.random.split(jax.random.key(1), (num_envs, 32))
    )
    keys = jax.random.split(jax.random.key(2), num_envs)
    for name in ("greedy", "base1"):
        rollout = make_batched_rollout(get_policy(name), SimConfig())
        _, per = steady(rollout, params, keys, tasks, min_time_s=min_time_s)
        out[f"sim_steps_per_s_{name}"] = num_envs * 32 / per
    out["sim_steps_per_s"] = out["sim_steps_per_s_greedy"]
    out["train_over_sim"] = out["train_steps_per_s"] / out["sim_steps_per_s"]
    return out, trainer, state.params


def bench_decision(scenario, trainer, net_params, batch: int, min_time_s: float) -> dict:
    """Decision time of the trained network: from the observation to the action (features,
    network, mode of each head), and from the simulator state (observe included)."""
    params = make_params(scenario)
    policy = trainer.policy(net_params)
    dist = task_distribution(scenario)

    def observation(key):
        task = sample_task(dist, key)
        state = arrive(reset(params, key), task)
        return state, task, observe(params, state, task, SimConfig())

    keys = jax.random.split(jax.random.key(3), batch)
    states, tasks, obs = jax.jit(jax.vmap(observation))(keys)
    one = jax.tree.map(lambda x: x[0], (states, tasks, obs))
    decide = jax.jit(policy)
    decide_batch = jax.jit(jax.vmap(policy))
    full = jax.jit(lambda s, t: policy(observe(params, s, t, SimConfig())))
    full_batch = jax.jit(jax.vmap(lambda s, t: policy(observe(params, s, t, SimConfig()))))
    _, single_s = steady(decide, one[2], min_time_s=min_time_s)
    _, batch_s = steady(decide_batch, obs, min_time_s=min_time_s)
    _, full_s = steady(full, one[0], one[1], min_time_s=min_time_s)
    _, full_batch_s = steady(full_batch, states, tasks, min_time_s=min_time_s)
    return {
        "decision_ms_single": 1e3 * single_s,
        "decision_us_batched": 1e6 * batch_s / batch,
        "observe_and_decide_ms_single": 1e3 * full_s,
        "observe_and_decide_us_batched": 1e6 * full_batch_s / batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows")
    parser.add_argument("--envs", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path("results/bench_train.json"))
    args = parser.parse_args()
    min_time = 2.0 if args.quick else 6.0
    dev = jax.devices()[0]
    result = {
        "device": f"{dev.platform}: {dev.device_kind} ({jax.device_count()} device(s),"
        f" {platform.machine()}, {jax.local_device_count()} local)",
        "num_envs": args.envs,
        "versions": package_versions(),
        "config": dataclasses.asdict(TrainConfig.default()),
        "topologies": {},
    }
    for topo in TOPOLOGIES:
        scenario = make_scenario(dataclasses.replace(ScenarioConfig.default(), topology=topo), 0)
        if topo == "abilene":
            train, trainer, net_params = bench_training(scenario, args.envs, 5, min_time)
            result.update(train)
            print({k: round(v, 3) for k, v in train.items()}, flush=True)
        else:
            params = make_params(scenario)
            trainer = make_trainer(TrainConfig.default(), params, task_distribution(scenario))
            net_params = jax.jit(trainer.init)(jax.random.key(0)).params
        dec = bench_decision(scenario, trainer, net_params, 1024, min_time)
        result["topologies"][topo] = dec
        print(topo, {k: round(v, 4) for k, v in dec.items()}, flush=True)
    ab = result["topologies"]["abilene"]
    result["decision_ms_single"] = ab["decision_ms_single"]
    result["decision_us_batched"] = ab["decision_us_batched"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_json(args.out, result)
    atomic_text(args.out.with_suffix(".md"), markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def markdown(r: dict) -> str:
    lines = [
        f"# bench_train ({r['device']})",
        "",
        f"Abilene, {r['num_envs']} environments: training {r['train_steps_per_s']:,.0f} env"
        f" steps/s (compile {r['train_compile_s']:.1f} s apart); bare simulator rollout"
        f" {r['sim_steps_per_s_greedy']:,.0f}/s with greedy-joint,"
        f" {r['sim_steps_per_s_base1']:,.0f}/s with Base1; training / simulator (greedy)"
        f" = {r['train_over_sim']:.2f}.",
        "",
        "Decision time (paper table 14): one task from the state at its arrival to the action.",
        "",
        "| topology | obs -> action, single (ms) | obs -> action, batch 1024 (us/task)"
        " | state -> action incl. probes, single (ms) | same, batch 1024 (us/task) | paper (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for topo, d in r["topologies"].items():
        lines.append(
            f"| {topo} | {d['decision_ms_single']:.3f} | {d['decision_us_batched']:.2f}"
            f" | {d['observe_and_decide_ms_single']:.3f} | {d['observe_and_decide_us_batched']:.2f}"
            f" | {1e3 * PAPER_DECISION_S[topo]:.1f} |"
        )
    mean_single = np.mean([d["decision_ms_single"] for d in r["topologies"].values()])
    lines.append(f"| mean | {mean_single:.3f} | | | | 4.5 |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

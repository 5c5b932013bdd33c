"""Where a simulator step's time goes: observe and step apart, and a step's parts.

Each row is a jitted, vmapped `lax.scan` over tasks that runs only that part (its outputs all
used, so XLA drops nothing): arrive; observe (every field read, probes with noise); step with a
fixed action (candidate 0, ECMP); the whole task-step with Base1 and with greedy-joint.

    python experiments/profile_sim.py --topology abilene --envs 4096 --out results/profile_sim.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from cpnjax.io import atomic_text, package_versions
from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import (
    Action,
    SimConfig,
    arrive,
    candidates,
    make_params,
    observe,
    permuted_tasks,
    reset,
    step,
)


def tree_sum(tree) -> jax.Array:
    return sum(jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree.leaves(tree))


def parts(config: SimConfig) -> dict:
    """name -> body(params, state, task) -> (state, () output)."""

    def only_arrive(p, s, t):
        s = arrive(s, t)
        return s, s.time_s

    def only_observe(p, s, t):
        s = arrive(s, t)
        return s.replace(key=jax.random.split(s.key)[0]), tree_sum(observe(p, s, t, config))

    def only_step(p, s, t):
        s = arrive(s, t)
        mask = candidates(p, t).path_mask[0]
        action = Action(node_slot=jnp.int32(0), split=mask / mask.sum())
        s, info = step(p, s, t, action, config)
        return s, info.response_s

    def with_policy(name):
        policy = get_policy(name)

        def body(p, s, t):
            s = arrive(s, t)
            s, info = step(p, s, t, policy(observe(p, s, t, config)), config)
            return s, info.response_s

        return body

    return {
        "arrive": only_arrive,
        "observe": only_observe,
        "step (fixed action)": only_step,
        "base1 task-step": with_policy("base1"),
        "greedy task-step": with_policy("greedy"),
    }


def time_part(body, params, keys, tasks, repeats: int) -> tuple[float, float]:
    """(compile_s, best seconds per call) of the vmapped scan of `body`."""

    def run(params, keys, tasks):
        def one(key, tasks):
            return jax.lax.scan(lambda s, t: body(params, s, t), reset(params, key), tasks)[1]

        return jax.vmap(one)(keys, tasks)

    start = time.perf_counter()
    compiled = jax.jit(run).lower(params, keys, tasks).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(params, keys, tasks))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params, keys, tasks))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene")
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("results/profile_sim.md"))
    args = parser.parse_args()
    cfg = dataclasses.replace(
        ScenarioConfig.default(), topology=args.topology, num_tasks=args.tasks
    )
    scenario = make_scenario(cfg, seed=0)
    params = make_params(scenario)
    tasks = permuted_tasks(scenario.tasks, args.envs, seed=1)
    keys = jax.random.split(jax.random.key(0), args.envs)
    rows = []
    for name, body in parts(SimConfig()).items():
        compile_s, call_s = time_part(body, params, keys, tasks, args.repeats)
        per_step_ms = 1e3 * call_s / args.tasks
        rows.append((name, per_step_ms, 1e6 * call_s / (args.tasks * args.envs), compile_s))
        print(f"{name:>20}: {per_step_ms:8.2f} ms per step of {args.envs} envs", flush=True)
    device = jax.devices()[0]
    lines = [
        f"# profile_sim: {args.topology}, {args.envs} environments ({device.platform}: "
        f"{device.device_kind})",
        "",
        "| part | ms per step (all environments) | us per task-step | compile (s) |",
        "|---|---|---|---|",
        *(f"| {n} | {ms:.2f} | {us:.2f} | {c:.1f} |" for n, ms, us, c in rows),
        "",
        "config: " + json.dumps(vars(args), default=str),
        "",
        "versions: " + json.dumps(package_versions()),
    ]
    atomic_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

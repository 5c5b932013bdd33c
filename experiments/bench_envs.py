"""Environment throughput: the gymnax `CPNEnv` and the Gymnasium `CPNVectorEnv` against the bare
simulator rollout, on one scenario, in the same run.

Three rates, env-steps (= task-steps) per second, compile apart, best of warm calls:
* `sim`: `make_batched_rollout` with Base1 (the simulator alone, as `bench_sim.py`);
* `gymnax`: `CPNEnv.step` (dict spaces, gymnax auto-reset on the episode's end), vmapped over
  the environments and scanned over T steps inside one jit, actions drawn from the action space
  inside the scan (one draw per environment and step), every observation read (summed into an
  output: an agent reads it, and without a reader XLA would drop the probes);
* `gymnasium`: `CPNVectorEnv.step` called from Python once per step, as that API does, with the
  actions drawn before the loop (JAX arrays in and out, no NumPy conversion).

    python experiments/bench_envs.py --out results/bench_envs.json [--envs 1024,4096]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def best_of(fn, min_time_s: float) -> float:
    """Seconds of the fastest of repeated warm calls of fn() (run once before, to warm)."""
    fn()
    best, spent = float("inf"), 0.0
    while spent < min_time_s:
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return best


def bench_one(topology: str, num_envs: int, steps: int, min_time_s: float) -> dict:
    """The three rates (see the module) at one environment count."""
    import jax
    import jax.numpy as jnp

    import cpnjax.envs
    from cpnjax.envs.gymnasium import CPNVectorEnv
    from cpnjax.policies import get_policy
    from cpnjax.sim import SimConfig, make_batched_rollout, make_params, permuted_tasks

    env, env_params = cpnjax.envs.make(topology)
    scenario = env.scenario
    params = make_params(scenario)
    space = env.action_space(env_params)

    # the simulator alone: Base1 over a task stream per environment
    tasks = permuted_tasks(scenario.tasks, num_envs, seed=num_envs)
    tasks = jax.tree.map(lambda x: x[:, :steps], tasks)
    keys = jax.random.split(jax.random.key(0), num_envs)
    run = make_batched_rollout(get_policy("base1"), SimConfig())
    start = time.perf_counter()
    sim_run = run.lower(params, keys, tasks).compile()
    sim_compile = time.perf_counter() - start
    sim_s = best_of(lambda: jax.block_until_ready(sim_run(params, keys, tasks)), min_time_s)

    # gymnax: vmapped step inside a scan
    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, num_envs), env_params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.vmap(space.sample)(jax.random.split(k_act, num_envs))
            obs, state, reward, done, _, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_step, num_envs), state, action, env_params
            )
            # read the observation, as an agent does (else XLA drops the probes)
            seen = sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(obs))
            return state, (reward.mean(), done.sum(), seen)

        return jax.lax.scan(body, state, jax.random.split(k_run, steps))[1]

    start = time.perf_counter()
    gx_run = jax.jit(rollout).lower(jax.random.key(1)).compile()
    gx_compile = time.perf_counter() - start
    gx_s = best_of(lambda: jax.block_until_ready(gx_run(jax.random.key(1))), min_time_s)

    # Gymnasium: one Python call per step (the flat spaces of CPNVectorEnv)
    vec = CPNVectorEnv(num_envs, topology)
    vec.reset(seed=0)
    flat_space = vec.env.action_space(vec.params)
    actions = [
        jax.vmap(flat_space.sample)(jax.random.split(jax.random.key(100 + t), num_envs))
        for t in range(steps)
    ]
    start = time.perf_counter()
    jax.block_until_ready(vec.step(actions[0]))  # compiles
    gym_compile = time.perf_counter() - start

    def gym_loop():
        for action in actions:
            out = vec.step(action)
        jax.block_until_ready(out)

    gym_s = best_of(gym_loop, min_time_s)
    total = num_envs * steps
    return {
        "num_envs": num_envs,
        "steps": steps,
        "sim_base1_steps_per_s": total / sim_s,
        "gymnax_steps_per_s": total / gx_s,
        "gymnasium_steps_per_s": total / gym_s,
        "compile_s": {"sim": sim_compile, "gymnax": gx_compile, "gymnasium": gym_compile},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene")
    parser.add_argument("--envs", default="1024,4096", help="comma list of environment counts")
    parser.add_argument("--steps", type=int, default=32, help="steps per environment per call")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds of warm calls")
    parser.add_argument("--out", type=Path, default=Path("results/bench_envs.json"))
    args = parser.parse_args()

    import jax

    from cpnjax.io import atomic_text, package_versions

    rows, wall = [], time.perf_counter()
    for num_envs in (int(e) for e in args.envs.split(",")):
        rows.append(bench_one(args.topology, num_envs, args.steps, args.min_time))
        print(json.dumps(rows[-1]), flush=True)

    device = jax.devices()[0]
    report = {
        "topology": args.topology,
        "rows": rows,
        "device": f"{device.platform}: {device.device_kind} ({jax.device_count()} device(s), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
        "wall_s": time.perf_counter() - wall,
        "config": vars(args) | {"out": str(args.out)},
        "versions": package_versions(("gymnax", "gymnasium")),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_text(args.out, json.dumps(report, indent=2))
    lines = [
        f"# bench_envs: {args.topology} ({report['device']})",
        "",
        f"env-steps (task-steps) per second, best of warm calls of {args.steps} steps per "
        "environment; compile apart. sim: the simulator alone with Base1, which reads no probe "
        "(XLA drops them). gymnax: CPNEnv.step (auto-reset) vmapped and scanned in one jit, "
        "random actions, every observation read. Gymnasium: "
        "CPNVectorEnv.step from a Python loop, one call per step.",
        "",
        "| envs | sim (Base1) | gymnax | gymnax / sim | Gymnasium | Gymnasium / gymnax "
        "| compile sim / gymnax / Gymnasium (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["compile_s"]
        lines.append(
            f"| {r['num_envs']} | {r['sim_base1_steps_per_s']:,.0f} "
            f"| {r['gymnax_steps_per_s']:,.0f} "
            f"| {r['gymnax_steps_per_s'] / r['sim_base1_steps_per_s']:.2f} "
            f"| {r['gymnasium_steps_per_s']:,.0f} "
            f"| {r['gymnasium_steps_per_s'] / r['gymnax_steps_per_s']:.2f} "
            f"| {c['sim']:.1f} / {c['gymnax']:.1f} / {c['gymnasium']:.1f} |"
        )
    lines += ["", f"versions: {json.dumps(report['versions'])}"]
    atomic_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()

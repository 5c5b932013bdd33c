"""A trainer no one here wrote, training on cpnjax: rejax's PPO on the flat `CPNEnv`, through
the gymnax interface alone.

Every policy is scored on the scenario's fixed 100-task validation stream (what `cpnjax train`
validates on), from an idle network, with one key: rejax PPO (the mean of its Gaussian policy,
clipped to the action box, as the deterministic agent; and its sampled actions), a uniform
random policy over the action space, Base1-4, greedy-joint and, with `--agent DIR`, a
`cpnjax train` run of the same scenario.

    python experiments/external_rejax.py --topology abilene [--quick] [--agent DIR] --out DIR

Writes summary.csv (policy,mean_response_ms), curve.csv and curve.png (the validation mean of
the deterministic rejax policy against env steps, and wall seconds since the first evaluation,
compile excluded) and config.json.

rejax 0.1.3 expects gymnax 0.x's five-value step; the adapter below (`FiveValueStep`) returns
`terminated | truncated` as `done`. It lives here, not in the package: cpnjax's env is gymnax
1.x.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from rejax import PPO

from cpnjax.envs import CPNEnv, make, rollout_stream
from cpnjax.evaluate import resolve_policy
from cpnjax.io import atomic_csv, atomic_json, package_versions
from cpnjax.train.run import mean_response_ms, plot_curve, score_baseline, validation_stream

BASELINES = ("base1", "base2", "base3", "base4", "greedy")
VALIDATION_TASKS = 100


@dataclasses.dataclass(frozen=True)
class Budget:
    total_timesteps: int
    num_envs: int
    num_steps: int
    num_minibatches: int
    num_epochs: int
    eval_freq: int

    @classmethod
    def default(cls) -> Budget:
        return cls(2_000_000, 64, 100, 16, 4, 100_000)

    @classmethod
    def quick(cls) -> Budget:
        return cls(40_000, 16, 50, 4, 2, 10_000)


class FiveValueStep(CPNEnv):
    """CPNEnv whose `step` returns gymnax 0.x's (obs, state, reward, done, info)."""

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = super().step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info


def five_value(env: CPNEnv) -> FiveValueStep:
    return FiveValueStep(
        env.default_params, env.num_candidates, env.num_paths, env.flat, env.sim_config, env._name
    )


def deterministic_act(algo, ts):
    """act(obs, key) of the PPO actor's mean action (observations normalised as in training)."""
    low, high = algo.action_space.low, algo.action_space.high

    def act(obs, key):
        if algo.normalize_observations:
            obs = algo.normalize_obs(ts.obs_rms_state, obs)
        mean = algo.actor.apply(
            ts.actor_ts.params, obs[None], method=lambda m, o: m._action_dist(o).mode()
        )
        return jnp.clip(mean[0], low, high)

    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene", help="shipped name or JSON path")
    parser.add_argument("--seed", type=int, default=0, help="scenario and training seed")
    parser.add_argument("--quick", action="store_true", help="a CPU-seconds budget (tests)")
    parser.add_argument("--agent", type=Path, default=None, help="a cpnjax train run directory")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    budget = Budget.quick() if args.quick else Budget.default()
    args.out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    env, params = make(args.topology, flat=True, seed=args.seed)
    scenario = env.scenario
    val_tasks = validation_stream(scenario, VALIDATION_TASKS)
    key = jax.random.key(args.seed)

    def score_act(act) -> float:
        info, _ = jax.jit(lambda p: rollout_stream(env, p, act, val_tasks, key))(params)
        return float(info.response_s.mean() * 1e3)

    marks: list[tuple[int, float]] = []  # (env steps, host time) at each evaluation

    def mark(step):
        marks.append((int(step), time.perf_counter()))
        print(f"  rejax ppo: {int(step):,} env steps", flush=True)

    def eval_callback(algo, ts, rng):
        info, _ = rollout_stream(env, algo.env_params, deterministic_act(algo, ts), val_tasks, key)
        jax.debug.callback(mark, ts.global_step, ordered=True)
        return ts.global_step, info.response_s.mean() * 1e3

    algo = PPO.create(
        env=five_value(env),
        env_params=params,
        total_timesteps=budget.total_timesteps,
        eval_freq=budget.eval_freq,
        num_envs=budget.num_envs,
        num_steps=budget.num_steps,
        num_minibatches=budget.num_minibatches,
        num_epochs=budget.num_epochs,
        learning_rate=3e-4,
        max_grad_norm=0.5,
        gamma=0.99,
        gae_lambda=0.95,
        ent_coef=0.0,
        normalize_observations=True,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (128, 128)},
    )
    algo = algo.replace(eval_callback=eval_callback)
    train_start = time.perf_counter()
    ts, (steps, val_ms) = jax.jit(algo.train)(jax.random.key(args.seed))
    jax.block_until_ready(val_ms)
    train_s = time.perf_counter() - train_start

    rows = [{"policy": "rejax_ppo", "mean_response_ms": score_act(deterministic_act(algo, ts))}]
    rows.append({"policy": "rejax_ppo_sampled", "mean_response_ms": score_act(algo.make_act(ts))})
    space = env.action_space(params)
    rows.append({"policy": "random", "mean_response_ms": score_act(lambda o, k: space.sample(k))})
    for name in BASELINES:
        ms = float(score_baseline(name)(params.sim, val_tasks, key))
        rows.append({"policy": name, "mean_response_ms": ms})
    if args.agent is not None:
        label, policy = resolve_policy(str(args.agent), scenario)
        ms = float(jax.jit(functools.partial(mean_response_ms, policy))(params.sim, val_tasks, key))
        rows.append({"policy": label, "mean_response_ms": ms})

    t0 = marks[0][1] if marks else train_start
    wall = {s: t - t0 for s, t in marks}
    curve = [
        {
            "env_steps": int(s),
            "wall_s": round(wall.get(int(s), np.nan), 3),
            "mean_response_ms": float(v),
        }
        for s, v in zip(np.asarray(steps), np.asarray(val_ms), strict=True)
    ]
    atomic_csv(args.out / "summary.csv", rows)
    atomic_csv(args.out / "curve.csv", curve)
    baselines = {r["policy"]: r["mean_response_ms"] for r in rows if r["policy"] in BASELINES}
    baselines["random"] = rows[2]["mean_response_ms"]
    title = f"{scenario.topology.name}: rejax PPO on the flat CPNEnv"
    plot_curve(curve, baselines, args.out / "curve.png", title, "rejax PPO (mean action)")
    atomic_json(
        args.out / "config.json",
        {
            "command": "python experiments/external_rejax.py "
            + f"--topology {args.topology} --seed {args.seed}"
            + (" --quick" if args.quick else "")
            + (f" --agent {args.agent}" if args.agent else ""),
            "budget": dataclasses.asdict(budget),
            "ppo": {k: str(v) for k, v in algo.config.items() if k not in ("env", "env_params")},
            "env": env.name,
            "validation_tasks": VALIDATION_TASKS,
            "reward_scale_s": float(params.reward_scale_s),
            "scenario_summary": scenario.summary(),
            "train_s": train_s,
            "wall_s": time.perf_counter() - start,
            "device": str(jax.devices()[0].device_kind),
            "versions": package_versions(("gymnax", "rejax", "distrax")),
        },
    )
    for r in rows:
        print(f"{r['policy']:>18}  {r['mean_response_ms']:8.2f} ms")
    print(
        f"wrote {args.out}/summary.csv, curve.csv, curve.png, config.json (train {train_s:.0f} s)"
    )


if __name__ == "__main__":
    main()

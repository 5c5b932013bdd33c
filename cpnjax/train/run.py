"""A training run on one CPN instance: chunks of jitted updates, validation, checkpoints, curve.

The host loop calls one jitted function, `chunk_updates` updates at a time (compiled once), and
between chunks evaluates the deterministic policy on a fixed validation stream (a host-drawn
stream of `validation_tasks` tasks that neither training, which draws its tasks in JAX, nor the
scenario's own evaluation stream share), saves a checkpoint, and appends a row to the curve.
Base1-4 and greedy-joint are scored on the same validation stream once, before the training
clock starts. Resuming restores the whole TrainState and the curve, so a resumed run ends with
exactly the parameters of an uninterrupted one (same chunks, same program, same inputs).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from cpnjax.io import atomic_csv, atomic_figure, atomic_json, package_versions
from cpnjax.policies import get_policy
from cpnjax.scenario import Scenario, ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, make_params, reset, rollout, task_arrays
from cpnjax.sim.sharding import check_divisible
from cpnjax.sim.tasks import task_distribution
from cpnjax.train import actor_critic, analytic_grad, checkpoint, dqn
from cpnjax.train.actor_critic import TrainConfig
from cpnjax.train.analytic_grad import APGConfig
from cpnjax.train.dqn import DQNConfig
from cpnjax.train.env import EnvConfig

BASELINES = ("base1", "base2", "base3", "base4", "greedy")
AGENT_NAMES = {"syncgnn": "rlms", "mlp": "mlp", "dqn": "dqn"}


def agent_name(config) -> str:
    """The agent's name in tables: rlms, mlp or dqn, with -apg when trained by APG."""
    name = AGENT_NAMES[config.agent]
    return f"{name}-apg" if getattr(config, "algo", None) == "apg" else name


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What a run directory is: scenario, seed, trainer config and the host loop's cadence."""

    scenario: ScenarioConfig
    seed: int
    train: TrainConfig | DQNConfig | APGConfig
    chunk_updates: int = 10  # updates between validations and checkpoints
    validation_tasks: int = 100

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))

    @classmethod
    def from_json(cls, d: dict) -> RunSpec:
        env = d["train"]["env"]
        env = EnvConfig(
            episode_tasks=env["episode_tasks"],
            load_scale_range=tuple(env["load_scale_range"]),
            sim=SimConfig(**env["sim"]),
        )
        kind = config_kind(d["train"]["agent"], d["train"].get("algo"))
        train = kind(**{**d["train"], "env": env})
        scen = {k: tuple(v) if isinstance(v, list) else v for k, v in d["scenario"].items()}
        return cls(
            scenario=ScenarioConfig(**scen),
            seed=d["seed"],
            train=train,
            chunk_updates=d["chunk_updates"],
            validation_tasks=d["validation_tasks"],
        )


def config_kind(agent: str, algo: str | None) -> type:
    """The config class of a trainer: DQN, analytic gradients (algo apg) or actor-critic."""
    if agent == "dqn":
        return DQNConfig
    return APGConfig if algo == "apg" else TrainConfig


def build_trainer(config, sim_params, tasks, mesh: Mesh | None = None) -> actor_critic.Trainer:
    """The actor-critic, APG or DQN trainer, by the config's kind; `mesh`: environments split
    over its devices (actor-critic and APG)."""
    if isinstance(config, DQNConfig):
        if mesh is not None:
            raise ValueError("the dqn agent trains on one device; use syncgnn or mlp with a mesh")
        return dqn.make_trainer(config, sim_params, tasks)
    module = analytic_grad if isinstance(config, APGConfig) else actor_critic
    return module.make_trainer(config, sim_params, tasks, mesh)


class Compiled(NamedTuple):
    init: Callable  # (sim_params, tasks, key) -> state
    chunk: Callable  # (sim_params, tasks, state) -> (state, metrics (chunk_updates,))
    validate: Callable  # (sim_params, tasks, val_tasks, key, net_params) -> () mean ms


@functools.cache
def compiled(
    config: TrainConfig | DQNConfig | APGConfig, chunk_updates: int, mesh: Mesh | None = None
) -> Compiled:
    """The jitted functions of a trainer config. The scenario's arrays are arguments, not
    constants, so one compile serves every scenario of the same array sizes in a process
    (several seeds or loads of one topology)."""

    def init(sim_params, tasks, key):
        return build_trainer(config, sim_params, tasks, mesh).init(key)

    def chunk(sim_params, tasks, state):
        update = build_trainer(config, sim_params, tasks, mesh).update
        return jax.lax.scan(lambda s, _: update(s), state, None, chunk_updates)

    def validate(sim_params, tasks, val_tasks, key, net_params):
        policy = build_trainer(config, sim_params, tasks, mesh).policy(net_params)
        return mean_response_ms(policy, sim_params, val_tasks, key)

    return Compiled(jax.jit(init), jax.jit(chunk), jax.jit(validate))


def mean_response_ms(policy, sim_params, tasks, key) -> jax.Array:
    """() mean response (ms) of a policy on a task stream from an idle network."""
    infos = rollout(sim_params, reset(sim_params, key), tasks, policy, SimConfig())[1]
    return infos.response_s.mean() * 1e3


@functools.cache
def score_baseline(name: str) -> Callable:
    """Jitted (sim_params, tasks, key) -> mean response (ms) of a named baseline."""
    return jax.jit(functools.partial(mean_response_ms, get_policy(name)))


def scenario_size(scenario: Scenario) -> dict:
    """The array sizes a checkpoint is tied to."""
    c = scenario.candidates
    return {
        "num_nodes": scenario.topology.num_nodes,
        "num_links": scenario.topology.num_links,
        "num_candidates": int(c.node.shape[-1]),
        "num_paths": int(c.path_mask.shape[-1]),
        "max_hops": int(c.hop_mask.shape[-1]),
    }


def validation_stream(scenario: Scenario, num_tasks: int):
    """`Scenario.validation_tasks` as Task arrays."""
    return task_arrays(scenario.validation_tasks(num_tasks))


def check_compatible(stored: dict, spec: RunSpec, size: dict, run_dir: Path) -> None:
    """CheckpointError (one line) unless `spec` may continue the run stored in `run_dir`."""
    old = RunSpec.from_json(stored["spec"])
    if old.train.agent != spec.train.agent:
        raise checkpoint.CheckpointError(
            f"{run_dir} holds a {old.train.agent} agent, not {spec.train.agent}"
        )
    if stored["scenario_size"] != size:
        raise checkpoint.CheckpointError(
            f"{run_dir} was trained on a scenario of size {stored['scenario_size']}, not {size}"
        )
    same = dataclasses.replace(
        spec, train=dataclasses.replace(spec.train, num_updates=old.train.num_updates)
    )
    if same != old:
        a, b = old.to_json(), same.to_json()
        diff = _first_difference(a, b)
        raise checkpoint.CheckpointError(f"{run_dir} was made with a different {diff}")


def _first_difference(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if a[k] != b.get(k):
                return _first_difference(a[k], b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')} ({a} vs {b})"


def train_run(
    spec: RunSpec,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
    score_baselines: bool = True,
    tensorboard: Path | None = None,
    mesh: Mesh | None = None,
) -> dict:
    """Train (or continue training) into `run_dir`; returns the summary written to
    config.json. Raises CheckpointError / ValueError on bad input before writing anything.
    score_baselines=False skips Base1-4 and greedy-joint on the validation stream (tests).
    `tensorboard`: also write the curve as TensorBoard scalars there (`train.tensorboard`); a
    resumed run writes the rows it stored first when the directory holds no events yet.
    `mesh`: the environments split over its devices (`sim.sharding.env_mesh`), those of every
    process under `jax.distributed` (`cpnjax.distributed`): each process runs this function;
    process 0 alone writes the files and shows progress, all of them write the checkpoints."""
    spec.train.validate()
    run_dir = Path(run_dir)
    if not resume and (run_dir / checkpoint.CHECKPOINTS).exists():
        raise checkpoint.CheckpointError(f"{run_dir} already holds a run; use --resume")
    stored = checkpoint.read_config(run_dir) if resume else None
    check_divisible(spec.train.num_envs, mesh)
    primary = jax.process_index() == 0
    barrier("train_run checked its run directory")  # before any process writes into it
    scenario = make_scenario(spec.scenario, spec.seed)
    size = scenario_size(scenario)
    if stored is not None:
        check_compatible(stored, spec, size, run_dir)
    # every topology link, so that seeds and loads of one topology share the compile
    sim_params = make_params(scenario, all_links=True)
    dist = task_distribution(scenario)
    val_tasks = validation_stream(scenario, spec.validation_tasks)
    key = jax.random.key(spec.seed)
    fns = compiled(spec.train, spec.chunk_updates, mesh)
    baselines_start = time.perf_counter()
    names = BASELINES if score_baselines else ()
    baselines = {n: float(score_baseline(n)(sim_params, val_tasks, key)) for n in names}
    baselines_s = time.perf_counter() - baselines_start

    def validate(net_params):
        return fns.validate(sim_params, dist, val_tasks, key, net_params)

    def chunk(state):
        return fns.chunk(sim_params, dist, state)

    run_dir.mkdir(parents=True, exist_ok=True)
    mgr = checkpoint.manager(run_dir)
    start = time.perf_counter()
    if stored is not None:
        template = jax.eval_shape(fns.init, sim_params, dist, key)
        state, prog = checkpoint.restore_state(mgr, template)
        curve, wall0 = prog["curve"], prog["wall_s"]
    else:
        state = fns.init(sim_params, dist, key)
        first = float(validate(state.params))
        names = sorted(jax.eval_shape(chunk, state)[1])
        nan_metrics = {k: np.full(1, np.nan) for k in names}
        curve, wall0 = [_row(state, 0, time.perf_counter() - start, first, nan_metrics)], 0.0
    summary = {
        "spec": spec.to_json(),
        "scenario_size": size,
        "scenario_summary": scenario.summary(),
        "agent_name": agent_name(spec.train),
        "validation_baselines_ms": baselines,
        "baselines_eval_s": baselines_s,
        "versions": package_versions(),
        "device": str(jax.devices()[0].device_kind),
        "num_devices": 1 if mesh is None else mesh.size,
        "num_processes": jax.process_count(),
    }
    if primary:
        atomic_json(run_dir / checkpoint.CONFIG_FILE, summary)
    total = math.ceil(spec.train.num_updates / spec.chunk_updates) * spec.chunk_updates
    bar = tqdm(
        total=total,
        initial=int(state.update),
        unit="upd",
        disable=not (progress and primary),
        desc=f"train {spec.train.agent}/{spec.train.algo}",
    )
    best_base = min((baselines[b] for b in BASELINES[:4] if b in baselines), default=np.nan)
    board = None
    if tensorboard is not None and primary:
        from cpnjax.train.tensorboard import CurveWriter

        board = CurveWriter(tensorboard, baselines)
        for row in curve if board.fresh else []:
            board.write(row)
    while int(state.update) < total:
        t0 = time.perf_counter()
        state, metrics = chunk(state)
        val = float(validate(state.params))
        wall = wall0 + time.perf_counter() - start
        steps = int(state.update) * spec.train.steps_per_update
        curve.append(_row(state, spec.train.steps_per_update, wall, val, metrics))
        checkpoint.save(mgr, state, {"curve": curve, "wall_s": wall})
        bar.update(spec.chunk_updates)
        rate = spec.chunk_updates * spec.train.steps_per_update / (time.perf_counter() - t0)
        if board is not None:
            board.write(curve[-1], rate)
        bar.set_postfix_str(
            f"steps {steps:,} ({rate:,.0f}/s) val {val:.2f} ms"
            f" greedy {baselines.get('greedy', np.nan):.2f}"
            f" best Base {best_base:.2f}"
        )
    bar.close()
    mgr.close()
    if board is not None:
        board.close()
    summary["curve_final"] = curve[-1] if curve else None
    summary["within_2pct_of_greedy_at"] = next(
        (
            {"env_steps": r["env_steps"], "wall_s": r["wall_s"]}
            for r in curve
            if r["mean_response_ms"] <= 1.02 * baselines.get("greedy", np.nan)
        ),
        None,
    )
    summary["beats_every_base_at"] = next(
        (
            {"env_steps": r["env_steps"], "wall_s": r["wall_s"]}
            for r in curve
            if r["mean_response_ms"] < best_base
        ),
        None,
    )
    if primary:
        atomic_json(run_dir / checkpoint.CONFIG_FILE, summary)
    if curve and primary:
        atomic_csv(run_dir / "curve.csv", curve)
        plot_curve(
            curve,
            baselines,
            run_dir / "curve.png",
            f"{scenario.topology.name}: {agent_name(spec.train)} ({spec.train.algo})",
        )
    return summary


def barrier(name: str) -> None:
    """Wait for every process under `jax.distributed` (a no-op in one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _row(state, steps_per_update: int, wall_s: float, val_ms: float, metrics: dict) -> dict:
    """One row of curve.csv: the validation mean, then the chunk's mean of each training
    metric (`train_` prefixed)."""
    row = {
        "update": int(state.update),
        "env_steps": int(state.update) * steps_per_update,
        "wall_s": round(wall_s, 3),
        "mean_response_ms": val_ms,
    }
    for k in sorted(metrics):
        row[f"train_{k}"] = float(np.mean(metrics[k]))
    return row


def plot_curve(
    curve: list[dict], baselines: dict, path: Path, title: str, label: str = "agent (greedy mode)"
) -> None:
    """Validation mean response against env steps and wall seconds, baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    y = [r["mean_response_ms"] for r in curve]
    for ax, x_key, label in zip(
        axes, ("env_steps", "wall_s"), ("env steps", "wall seconds"), strict=True
    ):
        ax.plot([r[x_key] for r in curve], y, marker=".", color="k", label=label)
        for i, (name, v) in enumerate(baselines.items()):
            ax.axhline(v, ls="--", lw=1, color=f"C{i}", label=name)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation mean response (ms)")
    axes[0].set_title(title)
    axes[1].legend(fontsize=8)
    values = [*y, *baselines.values()]
    axes[0].set_ylim(0.9 * min(values), 1.05 * max(values))
    fig.tight_layout()
    atomic_figure(fig, path)
    plt.close(fig)

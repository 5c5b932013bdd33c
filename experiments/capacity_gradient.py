"""Gradients for network design: the gradient of mean response latency over a task stream with
respect to every link's capacity and every device model's speed, for a fixed policy, and a check
of it where it matters.

The gradient is taken in the smooth simulator (default temperature) through the whole rollout,
policy included (its decisions are functions of what it observes; the node choice is discrete,
so only its split responds). `cpnjax.sim.params.with_capacity` recomputes what a capacity sets
(background utilisation, the rate left to tasks, the M/D/1 wait), so the gradient sees all of
it. Predicted improvement of adding `--step` (10%) of a link's capacity: -step * dL/d(factor).
Measured: the *exact* simulator re-run with that link at (1 + step) times its capacity. Links
tested: the top 10 by predicted improvement and 10 others drawn at random from the links some
candidate path crosses; Spearman's rank correlation between predicted and measured over those
20, and where the top gradient link ranks among the measured. The same for a device model's
speed (+10%) over the deployed device models. Every link is re-simulated (vmapped), so the
correlation over all links is reported too.

    python experiments/capacity_gradient.py --out results/capacity_gradient
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from cpnjax.io import atomic_csv, atomic_figure, atomic_json, atomic_text, package_versions
from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, make_params, reset, rollout, task_arrays
from cpnjax.sim.params import with_capacity, with_device_speed
from cpnjax.train.analytic_grad import DEFAULT_TEMPERATURE_S


def mean_response_fn(params, tasks, policy, config):
    """(capacity factor (L,), device speed (D,)) -> () mean response (ms) over the task streams
    (tasks: (S, T) leaves, S streams from an idle network each)."""

    def f(factor, speed):
        p = with_capacity(params, params.link_capacity_bps * factor)
        p = with_device_speed(p, speed)

        def one(stream):
            return rollout(p, reset(p, jax.random.key(0)), stream, policy, config)[1].response_s

        return jax.vmap(one)(tasks).mean() * 1e3

    return f


def task_streams(scenario, num_streams: int, seed: int):
    """(S, T) task streams of the scenario's task law (the first is the scenario's own)."""
    num_tasks = scenario.tasks.num_tasks
    streams = [scenario.tasks] + [
        scenario.draw_tasks(np.random.default_rng([seed, 104729, s]), num_tasks)
        for s in range(1, num_streams)
    ]
    arrays = [task_arrays(t) for t in streams]
    return jax.tree.map(lambda *x: jnp.stack(x), *arrays)


def topology_positions(topology, graph) -> dict:
    """Node -> (x, y): lon/lat from the shipped file where it has them, else a seeded layout."""
    import networkx as nx

    path = Path(__file__).resolve().parents[1] / "cpnjax/data/topologies" / f"{topology}.json"
    if path.exists():
        nodes = json.loads(path.read_text())["nodes"]
        if all("lon" in n for n in nodes):
            return {n["id"]: (n["lon"], n["lat"]) for n in nodes}
    return nx.spring_layout(graph, seed=0)


def study(topology: str, args) -> tuple[dict, list[dict], dict]:
    cfg = dataclasses.replace(
        ScenarioConfig.default(), topology=topology, load=args.load, num_tasks=args.tasks
    )
    scenario = make_scenario(cfg, args.seed)
    params = make_params(scenario)
    tasks = task_streams(scenario, args.streams, args.seed)
    policy = get_policy(args.policy)
    smooth = SimConfig(smooth_temp_s=args.temperature, probe_noise=False)
    exact = SimConfig(probe_noise=False)
    num_links = params.link_capacity_bps.shape[0]
    num_devices = params.true_compute_s.shape[1]
    ones_l, ones_d = jnp.ones(num_links), jnp.ones(num_devices)
    t0 = time.perf_counter()
    grad_fn = jax.jit(jax.grad(mean_response_fn(params, tasks, policy, smooth), argnums=(0, 1)))
    g_link, g_dev = (np.asarray(g, np.float64) for g in grad_fn(ones_l, ones_d))
    grad_s = time.perf_counter() - t0
    f_exact = jax.jit(mean_response_fn(params, tasks, policy, exact))
    base = float(f_exact(ones_l, ones_d))
    t0 = time.perf_counter()
    bumped = jax.jit(jax.vmap(lambda f: f_exact(f, ones_d)))(
        ones_l + args.step * jnp.eye(num_links)
    )
    faster = jax.jit(jax.vmap(lambda s: f_exact(ones_l, s)))(
        ones_d + args.step * jnp.eye(num_devices)
    )
    resim_s = time.perf_counter() - t0
    measured_l = base - np.asarray(bumped, np.float64)
    measured_d = base - np.asarray(faster, np.float64)
    predicted_l, predicted_d = -args.step * g_link, -args.step * g_dev

    order = np.argsort(-predicted_l)
    top = order[: args.top]
    rng = np.random.default_rng(args.seed)
    rest = order[args.top :]
    rand = rng.choice(rest, size=min(args.random, rest.size), replace=False)
    tested = np.concatenate([top, rand])
    rho = stats.spearmanr(predicted_l[tested], measured_l[tested]).statistic
    rho_all = stats.spearmanr(predicted_l, measured_l).statistic
    rank_in_tested = int((measured_l[tested] > measured_l[top[0]]).sum()) + 1
    rank_in_all = int((measured_l > measured_l[top[0]]).sum()) + 1
    deployed = np.unique(np.asarray(params.cand_device)[np.asarray(params.cand_mask)])
    rho_dev = stats.spearmanr(predicted_d[deployed], measured_d[deployed]).statistic
    link_ids = np.asarray(params.link_ids)
    topo = scenario.topology
    summary = {
        "topology": topology,
        "policy": args.policy,
        "base_mean_response_ms": base,
        "links": int(num_links),
        "spearman_tested_links": float(rho),
        "spearman_all_links": float(rho_all),
        "top_gradient_link": int(link_ids[top[0]]),
        "top_gradient_link_rank_measured_tested": rank_in_tested,
        "top_gradient_link_rank_measured_all": rank_in_all,
        "spearman_devices": float(rho_dev),
        "devices_deployed": int(deployed.size),
        "gradient_s": grad_s,
        "resimulate_s": resim_s,
    }
    rows = [
        {
            "topology": topology,
            "link": int(link_ids[i]),
            "src": int(topo.src[link_ids[i]]),
            "dst": int(topo.dst[link_ids[i]]),
            "capacity_gbps": float(params.link_capacity_bps[i]) / 1e9,
            "bg_util": float(params.link_bg_util[i]),
            "gradient_ms_per_factor": float(g_link[i]),
            "predicted_ms": float(predicted_l[i]),
            "measured_ms": float(measured_l[i]),
            "tested": "top" if i in top else ("random" if i in rand else ""),
        }
        for i in range(num_links)
    ]
    extra = {
        "scenario": scenario,
        "predicted_l": predicted_l,
        "measured_l": measured_l,
        "tested": tested,
        "top": top,
        "link_ids": link_ids,
        "predicted_d": predicted_d[deployed],
        "measured_d": measured_d[deployed],
    }
    return summary, rows, extra


def plot(results: list, path: Path, step: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    fig, axes = plt.subplots(len(results), 2, figsize=(13, 5.2 * len(results)), squeeze=False)
    for row, (summary, _, x) in enumerate(results):
        topo = x["scenario"].topology
        graph = topo.graph()
        pos = topology_positions(summary["topology"], graph)
        ax = axes[row, 0]
        value = np.zeros(topo.num_links)
        value[x["link_ids"]] = x["predicted_l"]
        edges = [(int(topo.src[i]), int(topo.dst[i])) for i in range(topo.num_links)]
        vmax = max(float(value.max()), 1e-9)
        nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=25, node_color="k")
        art = nx.draw_networkx_edges(
            graph,
            pos,
            edgelist=edges,
            ax=ax,
            edge_color=value,
            edge_cmap=plt.cm.viridis,
            edge_vmin=0.0,
            edge_vmax=vmax,
            width=1.0 + 4.0 * value / vmax,
            arrows=False,
        )
        fig.colorbar(art, ax=ax, label=f"predicted gain of +{step:.0%} capacity (ms)")
        ax.set_title(
            f"{summary['topology']}: capacity gradient of mean response ({summary['policy']})"
        )
        ax.axis("off")
        ax = axes[row, 1]
        t, top = x["tested"], x["top"]
        ax.scatter(x["predicted_l"], x["measured_l"], s=10, color="lightgrey", label="all links")
        ax.scatter(
            x["predicted_l"][t[len(top) :]],
            x["measured_l"][t[len(top) :]],
            color="C1",
            label="10 random links",
        )
        ax.scatter(
            x["predicted_l"][top], x["measured_l"][top], color="C0", label="top 10 by gradient"
        )
        lim = [min(0.0, x["measured_l"].min()), max(x["predicted_l"].max(), x["measured_l"].max())]
        ax.plot(lim, lim, "k--", lw=1)
        ax.set_xlabel("predicted improvement (ms): -step x gradient")
        ax.set_ylabel("measured improvement (ms): exact re-simulation")
        ax.set_title(f"Spearman over the 20 tested: {summary['spearman_tested_links']:.3f}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/capacity_gradient"))
    parser.add_argument("--topologies", default="abilene,tiscali")
    parser.add_argument("--policy", default="greedy")
    parser.add_argument("--load", type=float, default=0.5)
    parser.add_argument("--tasks", type=int, default=200, help="tasks per stream")
    parser.add_argument("--streams", type=int, default=4, help="task streams averaged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=float, default=0.1, help="capacity / speed added")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE_S)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--random", type=int, default=10)
    args = parser.parse_args()
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results = []
    for topo in args.topologies.split(","):
        results.append(study(topo, args))
        print(json.dumps(results[-1][0]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_csv(args.out / "links.csv", [r for _, rows, _ in results for r in rows])
    summaries = [s for s, _, _ in results]
    atomic_json(
        args.out / "summary.json",
        {"results": summaries, "config": config, "versions": package_versions()},
    )
    plot(results, args.out / "capacity_gradient.png", args.step)
    lines = [
        f"# Capacity gradient of mean response ({args.policy}, load {args.load}, "
        f"{args.streams} streams of {args.tasks} tasks, seed {args.seed})",
        "",
        f"Predicted: -{args.step} x d(mean response)/d(capacity factor) in the smooth simulator "
        f"(temperature {args.temperature * 1e3:g} ms); measured: exact re-simulation with the "
        f"link at {1 + args.step:g}x. Tested: top {args.top} links by predicted improvement + "
        f"{args.random} random others.",
        "",
        "| topology | base (ms) | links | Spearman, 20 tested | Spearman, all links "
        "| top link's measured rank (tested / all) | Spearman, device speed |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['topology']} | {s['base_mean_response_ms']:.2f} | {s['links']} "
            f"| {s['spearman_tested_links']:.3f} | {s['spearman_all_links']:.3f} "
            f"| {s['top_gradient_link_rank_measured_tested']} / "
            f"{s['top_gradient_link_rank_measured_all']} "
            f"| {s['spearman_devices']:.3f} ({s['devices_deployed']} devices) |"
        )
    lines += [
        "",
        f"Command: `python experiments/capacity_gradient.py --out {args.out}`",
        "",
        "versions: " + json.dumps(package_versions()),
    ]
    atomic_text(args.out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

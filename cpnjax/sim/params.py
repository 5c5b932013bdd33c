"""Scenario -> SimParams / Task arrays (host-side conversion to jax arrays)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cpnjax.latency import LatencyPredictor, load_latency_table
from cpnjax.scenario import Scenario, TaskStream
from cpnjax.sim.dynamics import ProbeLanes, TaskHops, task_hops
from cpnjax.sim.types import SimParams, Task

PACKET_BYTES = 9000  # jumbo frames: ~6x fewer packets than 1500 B, latency within 0.5%
PROBE_BYTES = 64
BACKGROUND_PACKET_BYTES = 1500


def pack_task_hops(
    path_links: np.ndarray, hop_mask: np.ndarray, num_hops: int | None = None
) -> TaskHops:
    """`dynamics.task_hops` of a batch of candidates, on the host. path_links, hop_mask:
    (..., K, H); num_hops: the packed length T, by default the most real hops of any candidate
    (at least 1). Returns a TaskHops of (..., T) (first and last (..., K))."""
    *batch, num_paths, max_hops = hop_mask.shape
    most = int(np.asarray(hop_mask).reshape(-1, num_paths * max_hops).sum(-1).max(initial=0))
    num_hops = max(most, 1) if num_hops is None else num_hops
    if num_hops < most:
        raise ValueError(f"a candidate has {most} real hops, more than num_hops={num_hops}")
    links = jnp.asarray(path_links, jnp.int32).reshape(-1, num_paths, max_hops)
    mask = jnp.asarray(hop_mask, bool).reshape(links.shape)
    hops = jax.jit(jax.vmap(functools.partial(task_hops, num_hops=num_hops)))(links, mask)
    return jax.tree.map(lambda x: x.reshape(*batch, *x.shape[1:]), hops)


def _first_fit_decreasing(lengths: np.ndarray, lane_hops: int) -> list[list[int]]:
    """Paths (by index) into lanes of `lane_hops` hops: each path, longest first, into the first
    lane with room for it (paths without hops are left out)."""
    lanes: list[list[int]] = []
    room: list[int] = []
    for path in sorted(np.flatnonzero(lengths), key=lambda i: (-lengths[i], i)):
        free = next((i for i, r in enumerate(room) if r >= lengths[path]), len(lanes))
        if free == len(lanes):
            lanes.append([])
            room.append(lane_hops)
        lanes[free].append(int(path))
        room[free] -= int(lengths[path])
    return lanes


def pack_probe_lanes(
    hop_mask: np.ndarray,
    lane_hops: int | None = None,
    num_lanes: int | None = None,
    per_path: bool = False,
) -> ProbeLanes:
    """Pack every candidate path's real hops into lanes for `observe`'s probes, on the host.

    hop_mask: (..., N, K, H). Each (N, K, H) table's paths go into lanes of `lane_hops` (Λ)
    hops by first-fit decreasing, a path never split, and every table is padded to the most
    lanes (P) any needs. By default Λ is the one in [H, 2H] with the fewest P x Λ hops (the
    shorter on a tie); `num_lanes` pads P further (a ValueError if too few). `per_path` gives
    each path its own lane instead, the grid itself (same shapes for every hop_mask of one
    (N, K, H)). Returns a ProbeLanes of (..., P, Λ) (end (..., N, K)).
    """
    hop_mask = np.asarray(hop_mask, bool)
    *batch, num_nodes, num_paths, max_hops = hop_mask.shape
    lengths = hop_mask.sum(-1).reshape(-1, num_nodes * num_paths)  # (tables, N K)
    if not (hop_mask == (np.arange(max_hops) < hop_mask.sum(-1, keepdims=True))).all():
        raise ValueError("a path's real hops must come first (hop_mask of a prefix)")

    def pack(size):
        return [_first_fit_decreasing(table, size) for table in lengths]

    if per_path:
        shape = (*batch, num_nodes * num_paths, max_hops)
        grid = np.arange(num_nodes * num_paths * max_hops).reshape(shape[-2:])
        last = np.where(lengths > 0, grid[:, 0] + lengths - 1, -1)  # (tables, N K)
        return ProbeLanes(
            hop=jnp.asarray(np.broadcast_to(grid, shape), jnp.int32),
            real=jnp.asarray(hop_mask.reshape(shape)),
            start=jnp.asarray(np.broadcast_to(np.arange(max_hops) == 0, shape)),
            end=jnp.asarray(last.reshape(*batch, num_nodes, num_paths), jnp.int32),
            per_path=True,
        )
    if lane_hops is None:  # min keeps the first (shortest) of equals

        def hops(size):  # P x Λ
            return max(map(len, pack(size)), default=1) * size

        lane_hops = min(range(max_hops, 2 * max_hops + 1), key=hops)
    if lane_hops < max_hops:
        raise ValueError(f"lane_hops={lane_hops} is shorter than a path ({max_hops} hops)")
    tables = pack(lane_hops)
    most = max(max(map(len, tables), default=1), 1)
    num_lanes = most if num_lanes is None else num_lanes
    if num_lanes < most:
        raise ValueError(f"the paths need {most} lanes of {lane_hops} hops, not {num_lanes}")
    hop = np.zeros((len(tables), num_lanes, lane_hops), np.int32)
    real = np.zeros(hop.shape, bool)
    start = np.zeros(hop.shape, bool)
    end = np.full((len(tables), num_nodes * num_paths), -1, np.int32)
    for table, lanes in enumerate(tables):
        for lane, paths in enumerate(lanes):
            at = 0
            for path in paths:
                size = lengths[table, path]
                hop[table, lane, at : at + size] = path * max_hops + np.arange(size)
                real[table, lane, at : at + size] = True
                start[table, lane, at] = True
                end[table, path] = lane * lane_hops + at + size - 1
                at += size
    shape = (*batch, num_lanes, lane_hops)
    return ProbeLanes(
        hop=jnp.asarray(hop.reshape(shape)),
        real=jnp.asarray(real.reshape(shape)),
        start=jnp.asarray(start.reshape(shape)),
        end=jnp.asarray(end.reshape(*batch, num_nodes, num_paths)),
    )


def make_params(
    scenario: Scenario,
    predictor: LatencyPredictor | None = None,
    packet_bytes: float = PACKET_BYTES,
    probe_bytes: float = PROBE_BYTES,
    background_packet_bytes: float = BACKGROUND_PACKET_BYTES,
    all_links: bool = False,
) -> SimParams:
    """Static simulator arrays for a scenario.

    The background traffic is a fluid at its mean rate: task bytes get the rest of each link
    (capacity * (1 - u)), and every packet of a task waits behind background packets for the
    M/D/1 mean u / (2 (1 - u)) * (background packet time).

    `predictor` makes the predicted compute latency the observation reads; by default the
    learned one (`LearnedPredictor`): TSFT from `new_device_samples` measurements for the
    scenario's `new_devices`, the base model for the others.

    Only the links that some candidate path crosses are simulated (the others never carry a
    task's bytes): `link_ids` maps the simulator's links to the topology's, and `path_links`
    holds simulator link indices. On ASN2k that is 115 of 8558 links, and the state shrinks with
    it. `all_links` keeps every link of the topology instead (the same numbers), so that the
    params of scenarios on one topology with one padding have the same shapes (one compile);
    the packed hops (`task_hops`) then have all K H positions, and the probes' lanes
    (`pack_probe_lanes`) one path each, not the most real hops of any candidate and the fewest
    lanes (which depend on the scenario).
    """
    topo = scenario.topology
    predictor = predictor or scenario.latency_predictor()
    util = scenario.background_bps / topo.capacity_bps
    if (util >= 1.0).any():
        raise ValueError("background traffic saturates a link (utilisation >= 1)")
    bg_wait = util / (2.0 * (1.0 - util)) * 8.0 * background_packet_bytes / topo.capacity_bps
    pred_ms = predictor.predict_ms(load_latency_table(), scenario.devices)
    cand = scenario.candidates
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    if all_links:
        link_ids = np.arange(topo.num_links)
    else:
        link_ids = np.unique(cand.path_links[cand.hop_mask])
    if link_ids.size == 0:  # every task computes where it arrives: keep one (unused) link
        link_ids = np.zeros(1, np.int64)
    sim_link = np.zeros(topo.num_links, np.int64)
    sim_link[link_ids] = np.arange(link_ids.size)
    path_links = np.where(cand.hop_mask, sim_link[cand.path_links], 0)
    all_hops = cand.hop_mask.shape[-2] * cand.hop_mask.shape[-1]  # K H

    def per_hop(values: np.ndarray, pad: float) -> jax.Array:
        return f32(np.where(cand.hop_mask, values[cand.path_links], pad))

    return SimParams(
        link_ids=jnp.asarray(link_ids, jnp.int32),
        link_capacity_bps=f32(topo.capacity_bps[link_ids]),
        link_rate_bps=f32((topo.capacity_bps * (1.0 - util))[link_ids]),
        link_prop_s=f32(topo.prop_delay_s[link_ids]),
        link_bg_util=f32(util[link_ids]),
        link_bg_wait_s=f32(bg_wait[link_ids]),
        node_device=jnp.asarray(np.maximum(scenario.node_device, 0), jnp.int32),
        cand_node=jnp.asarray(cand.node, jnp.int32),
        cand_mask=jnp.asarray(cand.node_mask),
        path_links=jnp.asarray(path_links, jnp.int32),
        hop_mask=jnp.asarray(cand.hop_mask),
        task_hops=pack_task_hops(path_links, cand.hop_mask, all_hops if all_links else None),
        probe_lanes=pack_probe_lanes(cand.hop_mask, per_path=all_links),
        path_mask=jnp.asarray(cand.path_mask),
        cand_device=jnp.asarray(np.maximum(scenario.node_device, 0)[cand.node], jnp.int32),
        hop_capacity_bps=per_hop(topo.capacity_bps, 1.0),
        hop_rate_bps=per_hop(topo.capacity_bps * (1.0 - util), 1.0),
        hop_prop_s=per_hop(topo.prop_delay_s, 0.0),
        hop_bg_wait_s=per_hop(bg_wait, 0.0),
        hop_bg_util=per_hop(util, 0.0),
        true_compute_s=f32(
            np.nan_to_num(scenario.latency_ms, nan=np.nanmax(scenario.latency_ms)) / 1e3
        ),
        pred_compute_s=f32(pred_ms / 1e3),
        packet_bytes=f32(packet_bytes),
        probe_bytes=f32(probe_bytes),
    )


def task_arrays(tasks: TaskStream) -> Task:
    """The task stream as a Task pytree with a leading (T,) axis."""
    return Task(
        interarrival_s=jnp.asarray(tasks.interarrival_s, jnp.float32),
        access_point=jnp.asarray(tasks.access_point, jnp.int32),
        arch=jnp.asarray(tasks.arch, jnp.int32),
        size_bytes=jnp.asarray(tasks.size_bytes, jnp.float32),
    )


def permuted_tasks(tasks: TaskStream, num_envs: int, seed: int) -> Task:
    """(E, T) task streams for E environments: each a different permutation of `tasks`."""
    rng = np.random.default_rng(seed)
    perm = np.stack([rng.permutation(tasks.num_tasks) for _ in range(num_envs)])
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[perm]), task_arrays(tasks))


def with_capacity(
    params: SimParams,
    capacity_bps: jax.Array,
    background_packet_bytes: float = BACKGROUND_PACKET_BYTES,
) -> SimParams:
    """`params` with the simulated links' line rates replaced by capacity_bps (L,): jittable and
    differentiable, for gradients with respect to network design. Background traffic keeps its
    bit rate, so its utilisation, the rate left to tasks and its M/D/1 wait follow the new
    capacity as `make_params` computes them. Each capacity must stay above its link's background
    bit rate (not checked under jit; `make_params` refuses such a scenario)."""
    background_bps = params.link_bg_util * params.link_capacity_bps
    return with_link_loads(params, capacity_bps, background_bps, background_packet_bytes)


def with_background_scale(
    params: SimParams,
    factor: jax.Array,
    background_packet_bytes: float = BACKGROUND_PACKET_BYTES,
) -> SimParams:
    """`params` with every link's background bit rate times `factor` (): jittable, for episodes
    that draw their background level. The caller keeps every utilisation below 1."""
    background_bps = params.link_bg_util * params.link_capacity_bps * factor
    return with_link_loads(
        params, params.link_capacity_bps, background_bps, background_packet_bytes
    )


def with_link_loads(
    params: SimParams,
    capacity_bps: jax.Array,
    background_bps: jax.Array,
    background_packet_bytes: float = BACKGROUND_PACKET_BYTES,
) -> SimParams:
    """`params` with the simulated links' line rates and background bit rates (each (L,))
    replaced, and what follows from them (utilisation, rate left to tasks, M/D/1 wait, the
    per-hop copies) computed as `make_params` does."""
    util = background_bps / capacity_bps
    rate = capacity_bps - background_bps
    wait = util / (2.0 * (1.0 - util)) * 8.0 * background_packet_bytes / capacity_bps

    def per_hop(values: jax.Array, pad: float) -> jax.Array:
        return jnp.where(params.hop_mask, values[params.path_links], pad)

    return params.replace(
        link_capacity_bps=capacity_bps,
        link_rate_bps=rate,
        link_bg_util=util,
        link_bg_wait_s=wait,
        hop_capacity_bps=per_hop(capacity_bps, 1.0),
        hop_rate_bps=per_hop(rate, 1.0),
        hop_bg_wait_s=per_hop(wait, 0.0),
        hop_bg_util=per_hop(util, 0.0),
    )


def with_device_speed(params: SimParams, speed: jax.Array) -> SimParams:
    """`params` with every device model D computing `speed` (D,) times as fast (its true and
    its predicted latency divided by it): jittable and differentiable."""
    return params.replace(
        true_compute_s=params.true_compute_s / speed[None, :],
        pred_compute_s=params.pred_compute_s / speed[None, :],
    )

"""The environment on one unbatched instance: reset, arrive, observe, step, rollout.

All functions are pure and jit-able; jit/vmap live in `wrappers.py` and entry points.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from cpnjax.lanes import lane_all, lane_argmin, lane_min, lane_sum
from cpnjax.sim.dynamics import (
    SLOTS,
    LinkRows,
    ProbeLanes,
    TaskHops,
    break_input,
    busy_until,
    free_server_slot,
    probe_lane,
    probe_through_hops,
    send_chunks,
    serve_compute,
    settle_server,
    soft_max_masked,
)
from cpnjax.sim.types import Action, Obs, SimConfig, SimParams, SimState, StepInfo, Task

SIMPLEX_TOL = 1e-3
"""A split is accepted when its entries are >= -1e-6, it puts <= 1e-6 on missing paths, and it
sums to 1 within this tolerance."""

Policy = Callable[[Obs], Action]


def reset(params: SimParams, key: jax.Array, slots: int = SLOTS) -> SimState:
    """Idle network and idle compute servers at time 0, remembering `slots` jobs each."""
    links = jnp.zeros((params.num_links, slots), jnp.float32)
    nodes = jnp.zeros((params.num_nodes, slots), jnp.float32)
    return SimState(
        links=LinkRows(
            head_s=links,
            tail_s=links,
            work_s=links,
            impulse_s=links,
            breaks_input=jnp.zeros((params.num_links, 2 * slots), jnp.float32),
            busy_s=jnp.zeros((params.num_links,), jnp.float32),
            pacer_s=jnp.zeros((params.num_links,), jnp.float32),
        ),
        node_job_arrival_s=nodes,
        node_job_compute_s=nodes,
        link_age_s=jnp.zeros((params.num_links,), jnp.float32),
        node_age_s=jnp.zeros((params.num_nodes,), jnp.float32),
        time_s=jnp.zeros((), jnp.float32),
        key=key,
    )


def arrive(state: SimState, task: Task) -> SimState:
    """Advance the clock to the task's arrival: every remembered row ages by interarrival_s."""
    dt = task.interarrival_s
    return state.replace(
        link_age_s=state.link_age_s + dt,
        node_age_s=state.node_age_s + dt,
        time_s=state.time_s + dt,
    )


def task_class(params: SimParams, task: Task) -> jax.Array:
    """() int32 the device class whose candidates predict the lowest compute latency (paper 3.2)."""
    pred = params.pred_compute_s[task.arch][params.cand_device[task.access_point]]  # (C, N)
    pred = jnp.where(params.cand_mask[task.access_point], pred, jnp.inf)
    return lane_argmin(lane_min(pred))


@struct.dataclass
class Candidates:
    """The task's candidate set: the n nodes of its best class and their k paths."""

    node: jax.Array  # (N,) int32
    node_mask: jax.Array  # (N,) bool
    device: jax.Array  # (N,) int32
    links: jax.Array  # (N, K, H) int32
    hop_mask: jax.Array  # (N, K, H) bool
    hops: TaskHops  # (N, T) the real hops packed (`dynamics.task_hops`)
    lanes: ProbeLanes  # (P, Λ) the N x K paths packed for the probes
    path_mask: jax.Array  # (N, K) bool
    capacity_bps: jax.Array  # (N, K, H)
    rate_bps: jax.Array  # (N, K, H)
    prop_s: jax.Array  # (N, K, H)
    bg_wait_s: jax.Array  # (N, K, H)
    bg_util: jax.Array  # (N, K, H)


def candidates(params: SimParams, task: Task) -> Candidates:
    """Slice the task's candidate set out of the (access point, class) tables."""
    a, c = task.access_point, task_class(params, task)
    return Candidates(
        node=params.cand_node[a, c],
        node_mask=params.cand_mask[a, c],
        device=params.cand_device[a, c],
        links=params.path_links[a, c],
        hop_mask=params.hop_mask[a, c],
        hops=jax.tree.map(lambda x: x[a, c], params.task_hops),
        lanes=jax.tree.map(lambda x: x[a, c], params.probe_lanes),
        path_mask=params.path_mask[a, c],
        capacity_bps=params.hop_capacity_bps[a, c],
        rate_bps=params.hop_rate_bps[a, c],
        prop_s=params.hop_prop_s[a, c],
        bg_wait_s=params.hop_bg_wait_s[a, c],
        bg_util=params.hop_bg_util[a, c],
    )


def observe(params: SimParams, state: SimState, task: Task, config: SimConfig) -> Obs:
    """What the controller sees for this task (state already advanced to its arrival)."""
    cand = candidates(params, task)
    hop_mask = cand.hop_mask
    age = state.link_age_s[cand.links]
    busy = state.links.busy_s[cand.links]
    hop_backlog = jnp.where(hop_mask, jnp.maximum(busy - age, 0.0), 0.0)
    compute_wait = busy_until(*node_jobs_now(state, cand.node))
    bg_wait = _probe_bg_wait(cand, state.key, config)
    # A probe is a one-packet chunk through the reserved jobs that reserves nothing; the
    # paths are probed in their packed lanes, and each path's delay read at its last hop.
    lanes = cand.lanes
    links = (state.links, state.link_age_s)
    constants = {  # (N, K, H) each
        "capacity_bps": cand.capacity_bps,
        "bg_util": cand.bg_util,
        "prop_s": cand.prop_s,
        "bg_wait_s": bg_wait,
    }
    if lanes.per_path:  # the (N, K, H) grid itself: nothing to gather
        probe = functools.partial(probe_through_hops, *links, probe_bytes=params.probe_bytes)
        path_delay = jax.vmap(jax.vmap(probe))(cand.links, hop_mask, **constants)
    else:
        probe = functools.partial(probe_lane, *links, probe_bytes=params.probe_bytes)
        packed = {k: v.reshape(-1)[lanes.hop] for k, v in constants.items()}  # (P, Λ) each
        hop_links = cand.links.reshape(-1)[lanes.hop]
        heads = jax.vmap(probe)(hop_links, lanes.real, lanes.start, **packed)
        at_end = heads.reshape(-1)[jnp.maximum(lanes.end, 0)]
        path_delay = jnp.where(lanes.end >= 0, at_end, 0.0)
    return _assemble_obs(params, task, cand, compute_wait, path_delay, hop_backlog)


def observe_idle(params: SimParams, key: jax.Array, task: Task, config: SimConfig) -> Obs:
    """`observe` on an idle network (`reset`, then `arrive` of its first task), without reading
    a link row: no backlog anywhere, so a probe's delay is the sum over its hops of its packet
    time, the background wait and propagation. Same numbers as `observe(params,
    arrive(reset(params, key), task), task, config)` to float rounding wherever background
    leaves every link some capacity (u < 1; tested); for episode resets, which otherwise probe
    every candidate path through empty rows."""
    cand = candidates(params, task)
    hop_mask = cand.hop_mask
    bg_wait = _probe_bg_wait(cand, key, config)
    per_hop = 8.0 * params.probe_bytes / cand.capacity_bps + bg_wait + cand.prop_s
    path_delay = lane_sum(jnp.where(hop_mask, per_hop, 0.0))
    zeros = jnp.zeros(hop_mask.shape, jnp.float32)
    compute_wait = jnp.zeros(cand.node.shape, jnp.float32)
    return _assemble_obs(params, task, cand, compute_wait, path_delay, zeros)


def _probe_bg_wait(cand: Candidates, key: jax.Array, config: SimConfig) -> jax.Array:
    """(N, K, H) the background wait a probe meets at each hop: the M/D/1 mean, or with
    `config.probe_noise` the mean of 3 probes' waits, Gamma(3, 1/3) in units of the mean wait,
    moment-matched by a normal clipped at 0 (one draw per path)."""
    if not config.probe_noise:
        return cand.bg_wait_s
    z = jax.random.normal(key, cand.hop_mask.shape[:-1])
    return cand.bg_wait_s * jnp.maximum(1.0 + z / jnp.sqrt(3.0), 0.0)[..., None]


def _assemble_obs(params, task, cand, compute_wait, path_delay, hop_backlog) -> Obs:
    """The Obs of a task from its candidates and the state-dependent parts: (N,) compute
    wait, (N, K) probe delays, (N, K, H) hop backlogs."""
    free = lane_min(jnp.where(cand.hop_mask, cand.rate_bps, jnp.inf))
    return Obs(
        size_bytes=task.size_bytes,
        cand_mask=cand.node_mask,
        pred_compute_s=params.pred_compute_s[task.arch][cand.device],
        compute_wait_s=compute_wait,
        path_mask=cand.path_mask,
        path_delay_s=jnp.where(cand.path_mask, path_delay, 0.0),
        path_free_bps=jnp.where(cand.path_mask, free, 0.0),
        path_hops=lane_sum(cand.hop_mask.astype(jnp.float32)),
        hop_links=cand.links,
        hop_mask=cand.hop_mask,
        hop_capacity_bps=cand.capacity_bps,
        hop_bg_util=cand.bg_util,
        hop_backlog_s=hop_backlog,
    )


def link_jobs_now(state: SimState, links: jax.Array) -> tuple[jax.Array, ...]:
    """(head, tail, work, impulse) of the jobs on `links` (any int shape S), times relative to
    now: each (*S, M)."""
    return jax.tree.map(lambda x: x[links], state.links).now(state.link_age_s[links])


def refresh_link_caches(state: SimState) -> SimState:
    """`state` with every link row's caches recomputed from its jobs: for states whose jobs were
    edited by hand (the simulator keeps them itself)."""
    rows = state.links
    jobs = (rows.head_s, rows.tail_s, rows.work_s, rows.impulse_s)
    return state.replace(
        links=rows.replace(
            breaks_input=jax.vmap(break_input)(jobs),
            busy_s=busy_until(rows.head_s, rows.work_s),
        )
    )


def node_jobs_now(state: SimState, nodes: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(arrival, compute) of the jobs on servers `nodes` (any int shape S), arrival relative to
    now: each (*S, M)."""
    age = state.node_age_s[nodes][..., None]
    return state.node_job_arrival_s[nodes] - age, state.node_job_compute_s[nodes]


def split_is_valid(split: jax.Array, path_mask: jax.Array) -> jax.Array:
    """() bool: split is on the simplex over the existing paths (see SIMPLEX_TOL)."""
    return (
        lane_all(split >= -1e-6)
        & lane_all(jnp.where(path_mask, 0.0, jnp.abs(split)) <= 1e-6)
        & (jnp.abs(lane_sum(split) - 1.0) <= SIMPLEX_TOL)
    )


def step(
    params: SimParams, state: SimState, task: Task, action: Action, config: SimConfig
) -> tuple[SimState, StepInfo]:
    """Schedule the task now (state already advanced to its arrival).

    An action off the simplex or on a masked candidate is rejected: the state is left unchanged
    and every latency in the info is NaN.
    """
    cand = jax.tree.map(lambda x: x[action.node_slot], candidates(params, task))
    node = cand.node
    path_mask = cand.path_mask
    valid = cand.node_mask & split_is_valid(action.split, path_mask)
    split = jnp.where(path_mask, action.split, 0.0)
    used = split > 0.0

    bg_wait = cand.bg_wait_s
    if config.background_noise:
        k_busy, k_wait = jax.random.split(jax.random.fold_in(state.key, 1))
        busy = jax.random.uniform(k_busy, bg_wait.shape) < cand.bg_util
        wait = (
            jax.random.exponential(k_wait, bg_wait.shape)
            * bg_wait
            / jnp.maximum(cand.bg_util, 1e-9)
        )
        bg_wait = jnp.where(busy, wait, 0.0)
    # paths share links: send_chunks sends them one after the other
    delivered, links, link_age = send_chunks(
        state.links,
        state.link_age_s,
        cand.links,
        cand.hops,
        cand.hop_mask & (used & valid)[:, None],  # a rejected action touches no link
        split * task.size_bytes,
        params.packet_bytes,
        cand.capacity_bps,
        cand.bg_util,
        cand.prop_s,
        bg_wait,
        config.smooth_temp_s,
        config.coupled_chunks,
        config.per_path_send,
    )
    if config.smooth_temp_s is None:
        gate = used.astype(delivered.dtype)
    else:
        gate = jnp.where(used, split / (split + config.gate_eps), 0.0)
    transmission = soft_max_masked(delivered, gate, config.smooth_temp_s)

    compute = params.true_compute_s[task.arch, cand.device]
    arrivals, computes = node_jobs_now(state, node)
    wait = serve_compute(arrivals, computes, transmission, config.smooth_temp_s)
    slot, (arrivals_new, computes_new) = free_server_slot(*settle_server(arrivals, computes))
    arrivals_new = jnp.where(valid, arrivals_new.at[slot].set(transmission), arrivals)
    computes_new = jnp.where(valid, computes_new.at[slot].set(compute), computes)
    # Only the touched rows change (no pass over all links): O(K H M^2) per step.
    new_state = state.replace(
        links=links,
        link_age_s=link_age,
        node_job_arrival_s=state.node_job_arrival_s.at[node].set(arrivals_new),
        node_job_compute_s=state.node_job_compute_s.at[node].set(computes_new),
        node_age_s=state.node_age_s.at[node].set(0.0),
        key=jax.random.split(state.key)[0],
    )
    nan = jnp.full((), jnp.nan, delivered.dtype)
    info = StepInfo(
        node=node,
        node_slot=action.node_slot,
        split=split,
        path_transmission_s=jnp.where(valid, jnp.where(used, delivered, 0.0), nan),
        transmission_s=jnp.where(valid, transmission, nan),
        wait_s=jnp.where(valid, wait, nan),
        compute_s=jnp.where(valid, compute, nan),
        response_s=jnp.where(valid, transmission + wait + compute, nan),
    )
    return new_state, info


def rollout(
    params: SimParams, state: SimState, tasks: Task, policy: Policy, config: SimConfig
) -> tuple[SimState, StepInfo]:
    """Run a policy over a task stream with lax.scan. `tasks` has a leading (T,) axis; the
    returned StepInfo too."""

    def body(state, task):
        state = arrive(state, task)
        action = policy(observe(params, state, task, config))
        return step(params, state, task, action, config)

    return jax.lax.scan(body, state, tasks)

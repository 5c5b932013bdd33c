"""Hand-built simulator params for closed-form tests."""

import jax.numpy as jnp
import numpy as np

from cpnjax.sim import SimParams, Task
from cpnjax.sim.env import refresh_link_caches
from cpnjax.sim.params import pack_probe_lanes, pack_task_hops


def line_params(
    num_hops=2,
    capacity_bps=1e9,
    prop_s=1e-3,
    bg_util=0.0,
    bg_wait_s=0.0,
    compute_s=5e-3,
    packet_bytes=9000.0,
    num_paths=1,
    max_hops=None,
    real_paths=1,
):
    """Access point 0 -> node `num_hops` over a line of links 0..num_hops-1; one candidate
    (class 0, slot 0) with `num_paths` path slots, the first `real_paths` of them copies of that
    line (the rest masked out)."""
    h = max_hops or num_hops
    num_links = num_hops
    links = np.zeros((1, 1, 1, num_paths, h), np.int32)
    hop_mask = np.zeros((1, 1, 1, num_paths, h), bool)
    links[0, 0, 0, :real_paths, :num_hops] = np.arange(num_hops)
    hop_mask[0, 0, 0, :real_paths, :num_hops] = True
    path_mask = np.zeros((1, 1, 1, num_paths), bool)
    path_mask[..., :real_paths] = True
    f = lambda x: jnp.full((num_links,), x, jnp.float32)  # noqa: E731
    node_device = np.zeros(num_hops + 1, np.int32)
    per_hop = lambda x, pad: jnp.asarray(np.where(hop_mask, x, pad), jnp.float32)  # noqa: E731
    return SimParams(
        link_ids=jnp.arange(num_links, dtype=jnp.int32),
        link_capacity_bps=f(capacity_bps),
        link_rate_bps=f(capacity_bps * (1 - bg_util)),
        link_prop_s=f(prop_s),
        link_bg_util=f(bg_util),
        link_bg_wait_s=f(bg_wait_s),
        node_device=jnp.asarray(node_device),
        cand_node=jnp.full((1, 1, 1), num_hops, jnp.int32),
        cand_mask=jnp.ones((1, 1, 1), bool),
        path_links=jnp.asarray(links),
        hop_mask=jnp.asarray(hop_mask),
        task_hops=pack_task_hops(links, hop_mask),
        probe_lanes=pack_probe_lanes(hop_mask),
        path_mask=jnp.asarray(path_mask),
        cand_device=jnp.zeros((1, 1, 1), jnp.int32),
        hop_capacity_bps=per_hop(capacity_bps, 1.0),
        hop_rate_bps=per_hop(capacity_bps * (1 - bg_util), 1.0),
        hop_prop_s=per_hop(prop_s, 0.0),
        hop_bg_wait_s=per_hop(bg_wait_s, 0.0),
        hop_bg_util=per_hop(bg_util, 0.0),
        true_compute_s=jnp.full((1, 1), compute_s, jnp.float32),
        pred_compute_s=jnp.full((1, 1), compute_s, jnp.float32),
        packet_bytes=jnp.asarray(packet_bytes, jnp.float32),
        probe_bytes=jnp.asarray(64.0, jnp.float32),
    )


def task(size_bytes, interarrival_s=0.0):
    return Task(
        interarrival_s=jnp.asarray(interarrival_s, jnp.float32),
        access_point=jnp.asarray(0, jnp.int32),
        arch=jnp.asarray(0, jnp.int32),
        size_bytes=jnp.asarray(size_bytes, jnp.float32),
    )


def fork_params(**kw):
    """`line_params` of two paths into node 3 over three links: path 0 over links 0 and 2, path 1
    over links 1 and 2 (different first links, so different sender pacers; link 2 shared)."""
    params = line_params(num_hops=3, num_paths=2, real_paths=2, **kw)
    links = np.array([[0, 2, 0], [1, 2, 0]], np.int32).reshape(1, 1, 1, 2, 3)
    hop_mask = np.array([[True, True, False]] * 2).reshape(1, 1, 1, 2, 3)
    # the third hop slot is padding now; its constants (those of a real link) are never read
    return params.replace(
        path_links=jnp.asarray(links),
        hop_mask=jnp.asarray(hop_mask),
        task_hops=pack_task_hops(links, hop_mask),
        probe_lanes=pack_probe_lanes(hop_mask),
    )


def with_link_job(state, link, head_s, tail_s, work_s, slot=0, impulse_s=None):
    """state with one job (times relative to now, work in link-seconds) remembered on a link;
    the impulse at its head defaults to all of the work for a point job (tail <= head), else 0."""
    if impulse_s is None:
        impulse_s = work_s if tail_s <= head_s else 0.0
    rows = state.links
    rows = rows.replace(
        head_s=rows.head_s.at[link, slot].set(head_s),
        tail_s=rows.tail_s.at[link, slot].set(tail_s),
        work_s=rows.work_s.at[link, slot].set(work_s),
        impulse_s=rows.impulse_s.at[link, slot].set(impulse_s),
    )
    return refresh_link_caches(state.replace(links=rows))


def with_node_job(state, node, arrival_s, compute_s, slot=0):
    """state with one compute job remembered on a server."""
    return state.replace(
        node_job_arrival_s=state.node_job_arrival_s.at[node, slot].set(arrival_s),
        node_job_compute_s=state.node_job_compute_s.at[node, slot].set(compute_s),
    )


def two_node_params(fast_s=2e-3, slow_s=40e-3, capacity_bps=1e9, prop_s=1e-3):
    """Access point 0 with two candidates (class 0): slot 0 = node 1 over link 0 with a device
    computing in `fast_s`, slot 1 = node 2 over link 1 computing in `slow_s`; one path each."""
    links = np.zeros((1, 1, 2, 1, 1), np.int32)
    links[0, 0, 1] = 1
    hop_mask = np.ones((1, 1, 2, 1, 1), bool)
    f = lambda x: jnp.full((2,), x, jnp.float32)  # noqa: E731
    per_hop = lambda x: jnp.full((1, 1, 2, 1, 1), x, jnp.float32)  # noqa: E731
    compute = jnp.asarray([[fast_s, slow_s]], jnp.float32)
    return SimParams(
        link_ids=jnp.arange(2, dtype=jnp.int32),
        link_capacity_bps=f(capacity_bps),
        link_rate_bps=f(capacity_bps),
        link_prop_s=f(prop_s),
        link_bg_util=f(0.0),
        link_bg_wait_s=f(0.0),
        node_device=jnp.asarray([0, 0, 1], jnp.int32),
        cand_node=jnp.asarray([[[1, 2]]], jnp.int32),
        cand_mask=jnp.ones((1, 1, 2), bool),
        path_links=jnp.asarray(links),
        hop_mask=jnp.asarray(hop_mask),
        task_hops=pack_task_hops(links, hop_mask),
        probe_lanes=pack_probe_lanes(hop_mask),
        path_mask=jnp.ones((1, 1, 2, 1), bool),
        cand_device=jnp.asarray([[[0, 1]]], jnp.int32),
        hop_capacity_bps=per_hop(capacity_bps),
        hop_rate_bps=per_hop(capacity_bps),
        hop_prop_s=per_hop(prop_s),
        hop_bg_wait_s=per_hop(0.0),
        hop_bg_util=per_hop(0.0),
        true_compute_s=compute,
        pred_compute_s=compute,
        packet_bytes=jnp.asarray(9000.0, jnp.float32),
        probe_bytes=jnp.asarray(64.0, jnp.float32),
    )


def one_arch_tasks(rate_hz=5.0, size_bytes=1e6, num_access_points=1):
    """A TaskDistribution of one architecture and a fixed size."""
    from cpnjax.sim.tasks import TaskDistribution

    return TaskDistribution(
        rate_hz=jnp.asarray(rate_hz, jnp.float32),
        num_access_points=jnp.asarray(num_access_points, jnp.int32),
        arch_pool=jnp.zeros((1,), jnp.int32),
        log_size_range=jnp.log(jnp.asarray([size_bytes, size_bytes], jnp.float32)),
    )


def parallel_params(capacities_bps=(1e9, 0.5e9), num_paths=3, prop_s=1e-3, compute_s=5e-3):
    """Access point 0 -> node 1 over disjoint one-hop paths: path k is link k at
    capacities_bps[k]; `num_paths` path slots, the ones beyond the links masked out. One
    candidate (class 0, slot 0), idle, no background."""
    n = len(capacities_bps)
    links = np.zeros((1, 1, 1, num_paths, 1), np.int32)
    links[0, 0, 0, :n, 0] = np.arange(n)
    hop_mask = np.zeros((1, 1, 1, num_paths, 1), bool)
    hop_mask[0, 0, 0, :n] = True
    cap = np.ones((1, 1, 1, num_paths, 1), np.float32)
    cap[0, 0, 0, :n, 0] = capacities_bps
    per_hop = lambda x: jnp.asarray(np.where(hop_mask, x, 0.0), jnp.float32)  # noqa: E731
    zeros = jnp.zeros((n,), jnp.float32)
    return SimParams(
        link_ids=jnp.arange(n, dtype=jnp.int32),
        link_capacity_bps=jnp.asarray(capacities_bps, jnp.float32),
        link_rate_bps=jnp.asarray(capacities_bps, jnp.float32),
        link_prop_s=zeros + prop_s,
        link_bg_util=zeros,
        link_bg_wait_s=zeros,
        node_device=jnp.zeros((2,), jnp.int32),
        cand_node=jnp.ones((1, 1, 1), jnp.int32),
        cand_mask=jnp.ones((1, 1, 1), bool),
        path_links=jnp.asarray(links),
        hop_mask=jnp.asarray(hop_mask),
        task_hops=pack_task_hops(links, hop_mask),
        probe_lanes=pack_probe_lanes(hop_mask),
        path_mask=jnp.asarray(hop_mask[..., 0]),
        cand_device=jnp.zeros((1, 1, 1), jnp.int32),
        hop_capacity_bps=jnp.asarray(cap),
        hop_rate_bps=jnp.asarray(cap),
        hop_prop_s=per_hop(prop_s),
        hop_bg_wait_s=per_hop(0.0),
        hop_bg_util=per_hop(0.0),
        true_compute_s=jnp.full((1, 1), compute_s, jnp.float32),
        pred_compute_s=jnp.full((1, 1), compute_s, jnp.float32),
        packet_bytes=jnp.asarray(9000.0, jnp.float32),
        probe_bytes=jnp.asarray(64.0, jnp.float32),
    )

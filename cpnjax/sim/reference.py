"""The same simulator as a plain NumPy per-task loop (host-only).

A reference to step side by side with the JAX port (tests check they agree) and the baseline of
`experiments/bench_sim.py`. Exact (hard-max) mode, probe noise off, greedy-joint policy.
"""

from __future__ import annotations

import numpy as np

from cpnjax.sim.types import SimParams


def _np(params: SimParams) -> dict:
    return {k: np.asarray(v) for k, v in vars(params).items()}


def water_fill_np(delay, free, mask, size_bytes):
    """NumPy twin of `cpnjax.policies.water_fill` for one candidate. Returns (split, level)."""
    bits = 8.0 * size_bytes
    d = np.where(mask, delay, np.inf)
    order = np.argsort(d, kind="stable")
    ok = np.isfinite(d[order])
    c = np.where(ok, np.where(mask, free, 0.0)[order], 0.0)
    cum_c, cum_cd = np.cumsum(c), np.cumsum(c * np.where(ok, d[order], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.min(np.where(ok, (bits + cum_cd) / np.maximum(cum_c, 1e-30), np.inf))
    share = np.where(mask, free * np.maximum(level - delay, 0.0), 0.0)
    split = share / share.sum() if share.sum() > 0 else mask / mask.sum()
    return split, level


def simulate_greedy(
    params: SimParams, interarrival_s, access_point, arch, size_bytes
) -> np.ndarray:
    """Run greedy-joint over a task stream with a Python loop per task.

    Args:
      params: simulator params (converted to numpy once).
      interarrival_s, access_point, arch, size_bytes: (T,) task stream.

    Returns:
      (T,) response latency in seconds.
    """
    p = _np(params)
    link_busy = np.zeros(p["link_capacity_bps"].shape[0])
    link_from = np.zeros_like(link_busy)
    link_idle, link_before = np.zeros_like(link_busy), np.zeros_like(link_busy)
    node_busy = np.zeros(p["node_device"].shape[0])
    node_from = np.zeros_like(node_busy)
    out = np.empty(len(arch))
    for i in range(len(arch)):
        dt, a, r, size = interarrival_s[i], access_point[i], arch[i], size_bytes[i]
        link_busy, link_from = np.maximum(link_busy - dt, 0.0), np.maximum(link_from - dt, 0.0)
        link_idle, link_before = np.maximum(link_idle - dt, 0.0), np.maximum(link_before - dt, 0.0)
        links_state = (link_from, link_busy, link_idle, link_before)
        node_busy, node_from = np.maximum(node_busy - dt, 0.0), np.maximum(node_from - dt, 0.0)
        # candidate set of the best class
        pred_all = p["pred_compute_s"][r, p["node_device"][p["cand_node"][a]]]
        cls = np.argmin(np.where(p["cand_mask"][a], pred_all, np.inf).min(-1))
        nodes, node_mask = p["cand_node"][a, cls], p["cand_mask"][a, cls]
        links, hop_mask, path_mask = (
            p["path_links"][a, cls],
            p["hop_mask"][a, cls],
            p["path_mask"][a, cls],
        )
        # observation (probe noise off)
        delay = np.zeros(path_mask.shape)
        for n, k in zip(*np.nonzero(path_mask), strict=True):
            path = links[n, k][hop_mask[n, k]]
            delay[n, k] = _send_chunk_np(p, links_state, path, p["probe_bytes"], False)
        free = np.where(hop_mask, p["link_rate_bps"][links], np.inf).min(-1)
        # greedy-joint
        best, best_split, best_pred = -1, None, np.inf
        for n in np.flatnonzero(node_mask):
            split, level = water_fill_np(delay[n], free[n], path_mask[n], size)
            pred = max(level, node_busy[nodes[n]]) + pred_all[cls, n]
            if pred < best_pred:
                best, best_split, best_pred = n, split, pred
        # step
        node = nodes[best]
        delivered = []
        for q in np.flatnonzero(best_split > 0):
            path = links[best, q][hop_mask[best, q]]
            chunk = best_split[q] * size
            delivered.append(_send_chunk_np(p, links_state, path, chunk))
        transmission = max(delivered)
        compute = p["true_compute_s"][r, p["node_device"][node]]
        b0, b1 = node_from[node], node_busy[node]
        if transmission < b0 < b1:  # data in before the reserved compute starts: runs first
            start = transmission
            node_from[node], node_busy[node] = start, max(start + compute, b0) + b1 - b0
        else:
            start = max(transmission, b1)
            node_from[node] = b0 if transmission < b1 else transmission
            node_busy[node] = start + compute
        out[i] = start + compute
    return out


def _send_chunk_np(p: dict, links_state, path, chunk_bytes: float, update: bool = True) -> float:
    """One chunk through FIFO links (state: from, until, idle, idle before; see `dynamics`);
    updates the state in place unless `update` is False (a probe)."""
    link_from, link_busy, link_idle, link_before = links_state
    bits = 8.0 * chunk_bytes
    pkt_bits = 8.0 * min(float(p["packet_bytes"]), chunk_bytes)
    head, tail = 0.0, (bits - pkt_bits) / p["link_capacity_bps"][path[0]]
    for link in path:
        cap, u = p["link_capacity_bps"][link], p["link_bg_util"][link]
        prop, w = p["link_prop_s"][link], p["link_bg_wait_s"][link]
        b0, b1, e, e0 = link_from[link], link_busy[link], link_idle[link], link_before[link]
        work, pkt = bits / cap + u * (tail - head), pkt_bits / cap
        if head < b0 < b1:  # ahead of the reserved block
            mixed = min(max(tail - b0, 0.0), b1 - b0)
            start = max(head, u * head + (1 - u) * e0) + w
            end = max(start + work + mixed, tail + w + pkt)
            until = max(end, b0) + b1 - b0 - mixed
            ours = tail + (end - tail) / (1 - u)
            new = b0, until, max(e + until - b1, ours), max(e0, ours)
        else:
            start = max(head, b1, u * head + (1 - u) * e) + w
            end = max(start + work, tail + w + pkt)
            opens = head >= b1
            new = (head if opens else b0), end, tail + (end - tail) / (1 - u), (e if opens else e0)
        if update:
            link_from[link], link_busy[link], link_idle[link], link_before[link] = new
        head, tail = start + pkt + prop, end + prop
    return tail

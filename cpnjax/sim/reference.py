"""The same simulator as a plain NumPy per-task loop (host-only).

A reference to step side by side with the JAX port (tests check they agree) and the baseline of
`experiments/bench_sim.py`. Exact (hard-max) mode, probe noise off, greedy-joint policy.
"""

from __future__ import annotations

import numpy as np

from cpnjax.sim.dynamics import SLOTS
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


def simulate(
    params: SimParams,
    interarrival_s,
    access_point,
    arch,
    size_bytes,
    policy: str = "greedy",
    slots: int = SLOTS,
    coupled: bool = False,
) -> np.ndarray:
    """Run a policy over a task stream with a Python loop per task.

    Args:
      params: simulator params (converted to numpy once).
      interarrival_s, access_point, arch, size_bytes: (T,) task stream.
      policy: "greedy" (greedy-joint on probes with noise off) or "base1" (min predicted
        compute, ECMP; it reads no probe, so none is sent, as XLA drops them in the JAX run).
      slots: jobs remembered per link and server (as `reset`).
      coupled: a task's paths queue with each other's chunks (`SimConfig.coupled_chunks`).

    Returns:
      (T,) response latency in seconds.
    """
    p = _np(params)
    num_links, num_nodes = p["link_capacity_bps"].shape[0], p["node_device"].shape[0]
    link_jobs = np.zeros((4, num_links, slots))  # head, tail, work, impulse (see `dynamics`)
    pacer = np.zeros(num_links)  # when each link's sender pacer is free
    node_jobs = np.zeros((2, num_nodes, slots))  # arrival, compute
    out = np.empty(len(arch))
    for i in range(len(arch)):
        dt, a, r, size = interarrival_s[i], access_point[i], arch[i], size_bytes[i]
        link_jobs[:2] -= dt
        pacer -= dt
        node_jobs[0] -= dt
        # candidate set of the best class
        pred_all = p["pred_compute_s"][r, p["node_device"][p["cand_node"][a]]]
        cls = np.argmin(np.where(p["cand_mask"][a], pred_all, np.inf).min(-1))
        nodes, node_mask = p["cand_node"][a, cls], p["cand_mask"][a, cls]
        links, hop_mask, path_mask = (
            p["path_links"][a, cls],
            p["hop_mask"][a, cls],
            p["path_mask"][a, cls],
        )
        if policy == "base1":
            best = int(np.argmin(np.where(node_mask, pred_all[cls], np.inf)))
            best_split = path_mask[best] / path_mask[best].sum()
        elif policy == "greedy":
            best, best_split = _greedy_np(
                p,
                link_jobs,
                pacer,
                node_jobs,
                pred_all[cls],
                nodes,
                node_mask,
                links,
                hop_mask,
                path_mask,
                size,
            )
        else:
            raise ValueError(f"policy must be greedy or base1, got {policy!r}")
        # step
        node = nodes[best]
        paths = [links[best, q][hop_mask[best, q]] for q in np.flatnonzero(best_split > 0)]
        chunks = [best_split[q] * size for q in np.flatnonzero(best_split > 0)]
        # the paths that leave by one link share its pacer (see `dynamics`)
        group = {}
        for path, b in zip(paths, chunks, strict=True):
            if len(path):
                group[path[0]] = group.get(path[0], 0.0) + 8.0 * b
        start = {link: max(pacer[link], 0.0) for link in group}
        sent = []
        for path, b in zip(paths, chunks, strict=True):
            sent.append(None)
            if len(path):
                pkt_bits = 8.0 * min(float(p["packet_bytes"]), b)
                cap = p["link_capacity_bps"][path[0]]
                h = start[path[0]]
                sent[-1] = (h, h + (group[path[0]] - pkt_bits) / cap)
        before = link_jobs.copy()
        jobs = [{} for _ in paths]  # per path: link -> its chunk's job there
        for sweep in range(2 if coupled else 1):
            # the second sweep starts again, each path queueing with the later paths' jobs
            link_jobs[:] = before
            later = [{} if sweep == 0 else _merged(jobs[q + 1 :]) for q in range(len(paths))]
            delivered = []
            for q, (path, b) in enumerate(zip(paths, chunks, strict=True)):
                done, jobs[q] = _send_chunk_np(p, link_jobs, path, b, sent=sent[q], extra=later[q])
                delivered.append(done)
        for link, bits in group.items():
            pacer[link] = start[link] + bits / p["link_capacity_bps"][link]
        transmission = max(delivered)
        compute = p["true_compute_s"][r, p["node_device"][node]]
        arrivals, computes = node_jobs[:, node]
        wait = _fifo_backlog_np(arrivals, arrivals, computes, computes, 0.0, transmission, False)
        node_jobs[:, node] = _settle_server_np(node_jobs[:, node])
        slot = _free_server_slot_np(node_jobs[:, node])
        node_jobs[:, node, slot] = transmission, compute
        out[i] = transmission + wait + compute
    return out


def _greedy_np(
    p,
    link_jobs,
    pacer,
    node_jobs,
    pred_compute,
    nodes,
    node_mask,
    links,
    hop_mask,
    path_mask,
    size,
):
    """Greedy-joint on the probes (noise off) of one task's candidates: (slot, split).
    pred_compute: (N,) predicted compute latency of each candidate; pacer: (L,) when each link's
    sender pacer is free (a probe waits for it)."""
    delay = np.zeros(path_mask.shape)
    for n, k in zip(*np.nonzero(path_mask), strict=True):
        path = links[n, k][hop_mask[n, k]]
        probe = float(p["probe_bytes"])
        start = max(pacer[path[0]], 0.0) if len(path) else 0.0
        delay[n, k] = _send_chunk_np(p, link_jobs, path, probe, False, sent=(start, start))
    free = np.where(hop_mask, p["link_rate_bps"][links], np.inf).min(-1)
    best, best_split, best_pred = -1, None, np.inf
    for n in np.flatnonzero(node_mask):
        split, level = water_fill_np(delay[n], free[n], path_mask[n], size)
        busy = _busy_until_np(*node_jobs[:, nodes[n]])
        pred = max(level, busy) + pred_compute[n]
        if pred < best_pred:
            best, best_split, best_pred = n, split, pred
    return best, best_split


def _fifo_backlog_np(head, tail, work, impulse, bg_util, x, inclusive=True) -> float:
    """Backlog (link-s) of a FIFO server at time x: the sup over every job's head and tail s <= x
    of the work that came in over [s, x] minus what the server did ((1 - u)(x - s)), and 0.
    Jobs: an impulse at head, the rest of the work as a fluid over [head, tail]."""
    s = np.concatenate([head, tail])
    s = s[s <= x][:, None]  # (S, 1) candidate starts
    span = tail - head
    rate = np.divide(work - impulse, span, out=np.zeros_like(work), where=span > 0)
    fluid = rate * np.clip(np.minimum(tail, x) - np.maximum(head, s), 0.0, None)
    hit = (head >= s) & ((head < x) | ((head == x) & inclusive))
    came_in = np.sum(np.where(hit, impulse, 0.0) + fluid, axis=1)
    return float(max(0.0, np.max(came_in - (1 - bg_util) * (x - s[:, 0]), initial=0.0)))


def _settle_np(jobs, bg_util) -> np.ndarray:
    """NumPy twin of `dynamics.settle` on one link's (4, M) jobs."""
    head, tail, work, impulse = jobs
    before = (work > 0) & (head < 0)
    done = before & (tail <= 0)
    if not done.any():
        return jobs
    q0 = _fifo_backlog_np(*(np.where(before, x, 0.0) for x in jobs), bg_util, 0.0, False)
    out = jobs.copy()
    for m in np.flatnonzero(before):
        if done[m]:
            out[:, m] = 0.0
        else:  # straddles now: its fluid from 0 on
            left = (work[m] - impulse[m]) * tail[m] / (tail[m] - head[m])
            out[:, m] = 0.0, tail[m], left, 0.0
    out[:, np.argmax(done)] = 0.0, 0.0, q0, q0
    return out


def _free_slot_np(jobs) -> int:
    """NumPy twin of `dynamics.free_slot`: merges in place when full; returns the slot."""
    head, tail, work, impulse = jobs
    if (work <= 0).any():
        return int(np.argmax(work <= 0))
    a, b = np.argsort(tail, kind="stable")[:2]
    first = a if head[a] < head[b] else b
    jobs[:, b] = min(head[a], head[b]), max(tail[a], tail[b]), work[a] + work[b], impulse[first]
    jobs[:, a] = 0.0  # a's job now lives in b
    return int(a)


def _settle_server_np(jobs) -> np.ndarray:
    """NumPy twin of `dynamics.settle_server` on one server's (2, M) jobs."""
    arrival, compute = jobs
    past = (compute > 0) & (arrival < 0)
    if not past.any():
        return jobs
    left = _busy_until_np(arrival, np.where(past, compute, 0.0))
    out = np.where(past, 0.0, jobs)
    out[:, np.argmax(past)] = 0.0, left
    return out


def _free_server_slot_np(jobs) -> int:
    """NumPy twin of `dynamics.free_server_slot`: merges in place when full; returns the slot."""
    arrival, compute = jobs
    if (compute <= 0).any():
        return int(np.argmax(compute <= 0))
    a, b = np.argsort(arrival, kind="stable")[:2]
    (a1, c1), (a2, c2) = sorted([(arrival[a], compute[a]), (arrival[b], compute[b])])
    jobs[:, b] = a2, max(a1 + c1 - a2, 0.0) + c2
    return int(a)


def _busy_until_np(start, work) -> float:
    """Time until a FIFO server has done all remembered work (see `dynamics.busy_until`)."""
    done = [s + work[start >= s].sum() for s, w in zip(start, work, strict=True) if w > 0]
    return max([0.0, *done])


def _merged(per_path: list[dict]) -> dict:
    """link -> the jobs that the given paths' chunks got on it."""
    out = {}
    for jobs in per_path:
        for link, job in jobs.items():
            out.setdefault(link, []).append(job)
    return out


def _send_chunk_np(
    p: dict, link_jobs, path, chunk_bytes: float, update: bool = True, sent=None, extra=None
) -> tuple[float, dict] | float:
    """One chunk through the FIFO links of `path` (see `dynamics`); settles and reserves its job
    on each hop in `link_jobs` (4, L, M) unless `update` is False (a probe). `sent`: (head,
    tail) when the sender hands its first and last packet to the first link (default: now, then
    at line rate). `extra`: link -> more jobs the chunk queues with there that are not in
    `link_jobs` (the task's later paths in the second sweep). Returns when it is delivered, and
    with `update` also link -> the job it got there."""
    bits = 8.0 * chunk_bytes
    pkt_bits = 8.0 * min(float(p["packet_bytes"]), chunk_bytes)
    got = {}
    if len(path) == 0:  # the task computes where it arrives
        return (0.0, got) if update else 0.0
    head, tail = sent or (0.0, (bits - pkt_bits) / p["link_capacity_bps"][path[0]])
    for link in path:
        cap, u = p["link_capacity_bps"][link], p["link_bg_util"][link]
        prop, w = p["link_prop_s"][link], p["link_bg_wait_s"][link]
        work, pkt = bits / cap, pkt_bits / cap
        job = (head, tail, work, pkt if tail > head else work)
        if update:
            link_jobs[:, link] = _settle_np(link_jobs[:, link], u)
            slot = _free_slot_np(link_jobs[:, link])
        others = (extra or {}).get(link, [])
        jobs = [
            np.concatenate([link_jobs[j, link], [o[j] for o in others], [v]])
            for j, v in enumerate(job)
        ]
        q_head = _fifo_backlog_np(*jobs, u, head)
        q_tail = _fifo_backlog_np(*jobs, u, tail)
        if update:
            link_jobs[:, link, slot] = job
            got[link] = job
        head, tail = head + q_head + w + prop, tail + max(q_tail, pkt) + w + prop
    return (tail, got) if update else tail

"""Would the simulator be faster with the environment axis minor? A measured answer.

`vmap` puts the environment axis first: a link row is (E, ..., M) with the 8 slots minor, so a
reduction over the slots reads strided scalars, and the one-hot picks of `free_slot` are
gathers and scatters. This probe writes `dynamics.send_chunks` (hard mode, one sweep: what
Base1's step spends most of its time in) a second time with the environment axis *last*, every
slot a contiguous (E,) vector, and times the two on the same inputs: the rows of Abilene after
a warm-up of Base1 tasks, the next task sent `--repeats` times in a `fori_loop` (the rows
carried, as in a rollout). It checks that both give the same deliveries and rows.

    python experiments/layout_probe.py --envs 4096 --out results/layout_probe.md

The env-minor code is here, not in the package: it is a measurement of a design, not a second
simulator. `tests/test_layout_probe.py` checks that it gives the package's numbers.

What it found (2026-12-03, the 2-core CPU, results/layout_probe.md): env-minor is about 2x
*slower* (0.51x), after three fixes, each one asked for by `profile_sim`'s kernel sources:
(1) values of a row that many slot elements read (an argmin, a fold over the slots) are
recomputed by XLA inside every consumer element unless materialised (`once`); (2) the
`take_along_axis` gather comes out env-major and every consumer transposed it (a flat scalar
gather does not); (3) XLA:CPU does not vectorise a fused concatenate along the slot axis (the
break cache is kept as two halves). What is left are fusions of a few hundred ops that still
recompute per-row values, and the row gathers and scatters, which are scalar loops in either
layout. So the layout is not where the missing 5x is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from cpnjax.io import atomic_text, package_versions
from cpnjax.lanes import fold, lane_argmin, lane_min, lane_sum, slices
from cpnjax.policies import get_policy
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import SimConfig, arrive, candidates, make_params, observe, permuted_tasks, reset
from cpnjax.sim import step as sim_step
from cpnjax.sim.dynamics import LinkRows, _contrib, send_chunks

SLOT = -2  # the slot axis of an env-minor row: (..., M, E)


def once(*xs):
    """Materialise per-row values that many elements read: XLA would otherwise recompute the
    fold that made them inside every consumer element (8x work on a slot axis)."""
    return jax.lax.optimization_barrier(xs)


def slot_sum(x):
    return lane_sum(x, SLOT)


def input_around(jobs, x):
    """(A(x-), A(x+)) of jobs (each (M, E)) at x (E,)."""
    head, tail, work, impulse = jobs
    a_minus = slot_sum(_contrib(head, tail, work, impulse, x[None], inclusive=False))
    return a_minus, a_minus + slot_sum(jnp.where(head == x[None], impulse, 0.0))


def settle_minor(jobs, bg_util, breaks_input):
    """`dynamics.settle` (hard) with the env axis minor: jobs (R, M, E), bg_util (R, E),
    breaks_input: A(s-) at the heads and at the tails, each (R, M, E). No concatenation along
    the slot axis (XLA:CPU does not vectorise a fused concatenate)."""
    head, tail, work, impulse = jobs
    before = head < 0
    zero = jnp.zeros(head.shape[:-2] + head.shape[-1:], head.dtype)  # (R, E)
    a_now = slot_sum(_contrib(head, tail, work, impulse, zero[..., None, :], inclusive=False))
    service = (1 - bg_util)[..., None, :]
    g = [
        jnp.where(s <= 0, a - service * s, jnp.inf)
        for s, a in zip((head, tail), breaks_input, strict=True)
    ]
    q0 = a_now - fold(jnp.minimum, [lane_min(g[0], SLOT), lane_min(g[1], SLOT), a_now])
    q0, a_now = once(q0, a_now)
    live = work > 0
    done = live & before & (tail <= 0)
    straddle = live & before & (tail > 0)
    span = jnp.where(straddle, tail - head, 1.0)
    left = (work - impulse) * tail / span
    # the first done slot keeps the backlog
    first = jnp.cumsum(done.astype(jnp.int32), SLOT) == 1
    keep = done & first
    settled = (
        jnp.where(straddle | done, 0.0, head),
        jnp.where(done, 0.0, tail),
        jnp.where(keep, q0[..., None, :], jnp.where(done, 0.0, jnp.where(straddle, left, work))),
        jnp.where(keep, q0[..., None, :], jnp.where(done | straddle, 0.0, impulse)),
    )
    shift = (q0 - a_now)[..., None, :]
    cache = tuple(
        jnp.where(s > 0, shift + a, 0.0) for s, a in zip(settled[:2], breaks_input, strict=True)
    )
    (any_done,) = once(jnp.any(done, SLOT))
    any_done = any_done[..., None, :]
    return (
        tuple(jnp.where(any_done, x, y) for x, y in zip(settled, jobs, strict=True)),
        tuple(jnp.where(any_done, x, y) for x, y in zip(cache, breaks_input, strict=True)),
    )


def pick(x, hot):
    return slot_sum(jnp.where(hot, x, 0.0))


def free_slot_minor(jobs, breaks_input):
    """`dynamics.free_slot` with the env axis minor: jobs (H, M, E), breaks_input a pair
    (heads, tails) of (H, M, E).
    Returns (slot (H, E), jobs, cache)."""
    head, tail, work, impulse = jobs
    num_slots = head.shape[SLOT]
    ids = jnp.arange(num_slots)[:, None]
    live = work > 0
    (a,) = once(lane_argmin(jnp.where(live, tail, -jnp.inf), SLOT))
    at_a = ids == a[..., None, :]
    (b,) = once(lane_argmin(jnp.where(at_a, jnp.inf, tail), SLOT))
    at_b = ids == b[..., None, :]
    full = jnp.any(at_a & live, SLOT)
    job_a, job_b, full = once(
        tuple(pick(x, at_a) for x in jobs), tuple(pick(x, at_b) for x in jobs), full
    )
    (ha, ta, wa, ia), (hb, tb, wb, ib) = job_a, job_b
    merged = (jnp.minimum(ha, hb), jnp.maximum(ta, tb), wa + wb, jnp.where(ha < hb, ia, ib))
    f = full[..., None, :]
    new_jobs = tuple(
        jnp.where(f & at_b, m[..., None, :], jnp.where(f & at_a, 0.0, x))
        for m, x in zip(merged, jobs, strict=True)
    )

    def change(x):  # x (..., S, E) against the jobs' (..., E)
        e = lambda j: tuple(v[..., None, :] for v in j)  # noqa: E731
        return (
            _contrib(*e(merged), x, inclusive=False)
            - _contrib(*e(job_a), x, inclusive=False)
            - _contrib(*e(job_b), x, inclusive=False)
        )

    heads, tails = (a + change(s) for s, a in zip((head, tail), breaks_input, strict=True))
    at_head = pick(heads, jnp.where((ha < hb)[..., None, :], at_a, at_b))
    at_tail = pick(tails, jnp.where((ta > tb)[..., None, :], at_a, at_b))
    zero = jnp.zeros_like(ha)
    at_zero = (
        slot_sum(_contrib(*jobs, zero[..., None, :], inclusive=False))
        + change(zero[..., None, :])[..., 0, :]
    )
    at_head, at_tail, at_zero = once(at_head, at_tail, at_zero)
    heads = jnp.where(at_a, at_zero[..., None, :], jnp.where(at_b, at_head[..., None, :], heads))
    tails = jnp.where(at_a, at_zero[..., None, :], jnp.where(at_b, at_tail[..., None, :], tails))
    cache = tuple(jnp.where(f, x, y) for x, y in zip((heads, tails), breaks_input, strict=True))
    return a, new_jobs, cache


def chunk_through_hops_minor(hops_jobs, hops_input, hop_mask, sent_s, chunk_bytes, packet_bytes,
                             capacity_bps, bg_util, prop_s, bg_wait_s):  # fmt: skip
    """`dynamics.chunk_through_hops` (hard, no extra jobs), env axis minor: hops_jobs (H, M, E),
    hops_input a pair (heads, tails) of (H, M, E), hop_mask and constants (H, E), sent_s ((E,),
    (E,)), chunk_bytes (E,)."""
    bits = 8.0 * chunk_bytes
    pkt_bits = 8.0 * jnp.minimum(packet_bytes, chunk_bytes)
    head, tail = (jnp.where(hop_mask[0], x, 0.0) for x in sent_s)

    def hop(carry, x):
        head, tail = carry
        jobs, a_old, real, capacity, util, prop, wait = x
        work, pkt = bits / capacity, pkt_bits / capacity
        job = (head, tail, work, jnp.where(tail > head, pkt, work))
        jb = tuple(v[None] for v in job)
        old_breaks = jobs[:2]  # heads, tails: (M, E) each
        a_breaks_old = [
            a + _contrib(*jb, s, inclusive=False) for s, a in zip(old_breaks, a_old, strict=True)
        ]
        (hm, hp), (tm, tp) = once(input_around(jobs, head), input_around(jobs, tail))[0:2]
        at = jnp.stack([head, tail])  # (2, E)
        a_at = jnp.stack([hm, tm]) + _contrib(*jb, at, inclusive=False)
        a_plus = jnp.stack([hp, tp]) + _contrib(*jb, at, inclusive=True)
        service = 1.0 - util
        g_old = [a - service * s for s, a in zip(old_breaks, a_breaks_old, strict=True)]
        g_at = a_at - service * at  # (2, E)

        def g_min_at(x):  # min over breaks s <= x
            old = [
                lane_min(jnp.where(s <= x[None], g, jnp.inf), 0)
                for s, g in zip(old_breaks, g_old, strict=True)
            ]
            new = jnp.where(at <= x[None], g_at, jnp.inf)
            return fold(jnp.minimum, [*old, new[0], new[1]])

        q_head = a_plus[0] - service * head - g_min_at(head)
        q_tail = a_plus[1] - service * tail - g_min_at(tail)
        new_head = head + q_head + wait + prop
        new_tail = tail + jnp.maximum(q_tail, pkt) + wait + prop
        a_breaks = (*a_breaks_old, a_at[0], a_at[1])  # old heads, old tails, chunk head, tail
        return (jnp.where(real, new_head, head), jnp.where(real, new_tail, tail)), (job, a_breaks)

    xs = (hops_jobs, hops_input, hop_mask, capacity_bps, bg_util, prop_s, bg_wait_s)
    xs = (tuple(hops_jobs[i] for i in range(4)), *xs[1:])
    (_, tail), (jobs, a_breaks) = jax.lax.scan(hop, (head, tail), xs)
    return tail, jobs, a_breaks


def busy_minor(start_s, work_s):
    """`dynamics.busy_until` with the env axis minor: start_s, work_s (..., M, E) -> (..., E)."""
    starts, works = slices(start_s, SLOT), slices(work_s, SLOT)
    done = [
        s + fold(jnp.add, [jnp.where(t >= s, w, 0.0) for t, w in zip(starts, works, strict=True)])
        for s in starts
    ]
    done = [jnp.where(w > 0, d, 0.0) for d, w in zip(done, works, strict=True)]
    return jnp.maximum(fold(jnp.maximum, done), 0.0)


def take_rows(x, index):
    """x (N, ..., E) at rows index (R, E) of each env: (R, ..., E)."""
    # flat scalar indices into x: a gather whose output is laid out as (R, ..., E) (the
    # take_along_axis gather comes out env-major, and every consumer transposes it)
    inner = x.shape[1:]
    strides = [math.prod(inner[k + 1 :]) for k in range(len(inner))]
    flat = index.reshape(index.shape[:1] + (1,) * (x.ndim - 2) + index.shape[1:])
    flat = flat * math.prod(inner)
    for k, n in enumerate(inner):
        shape = [1] * x.ndim
        shape[k + 1] = n
        flat = flat + jnp.arange(n).reshape(shape) * strides[k]
    return x.reshape(-1)[flat]


def put_rows(x, index, values, mask):
    """x (N, ..., E) with rows index (R, E) of each env set to values (R, ..., E) where mask
    (R, E): an XLA scatter of single elements (a link is on one hop of a path)."""
    index = jnp.where(mask, index, x.shape[0])
    idx = index.reshape(index.shape[:1] + (1,) * (x.ndim - 2) + index.shape[1:])
    mid = [
        jnp.arange(n).reshape((n,) + (1,) * (x.ndim - 2 - k)) for k, n in enumerate(x.shape[1:-1])
    ]
    env = jnp.arange(x.shape[-1])
    return x.at[(idx, *mid, env)].set(values, mode="drop")


def send_chunks_minor(links, link_age_s, path_links, hop_home, hop_mask, chunk_bytes,
                      packet_bytes, capacity_bps, bg_util, prop_s, bg_wait_s):  # fmt: skip
    """`dynamics.send_chunks` (hard, one sweep), env axis minor: links fields (L, M, E) (the
    break cache a pair (heads, tails) of them, busy and pacer (L, E)), link_age_s (L, E),
    path_links / hop_home / hop_mask / constants (K, H, E), chunk_bytes (K, E)."""
    num_links, num_slots, num_envs = links.head_s.shape
    num_paths, num_hops = path_links.shape[:2]
    flat = path_links.reshape(num_paths * num_hops, num_envs)
    age = take_rows(link_age_s, flat)  # (R, E)
    block = jax.tree.map(lambda x: take_rows(x, flat), links)
    (block, age) = once(block, age)  # else each consumer fuses the gather in again
    jobs = (block.head_s - age[:, None], block.tail_s - age[:, None], block.work_s, block.impulse_s)
    util_flat = bg_util.reshape(flat.shape)
    jobs, cache = settle_minor(jobs, util_flat, block.breaks_input)
    rows = (*jobs, *cache)
    first_link = path_links[:, 0]  # (K, E)
    pacer = jnp.maximum(block.pacer_s.reshape(num_paths, num_hops, -1)[:, 0]
                        - age.reshape(num_paths, num_hops, -1)[:, 0], 0.0)  # fmt: skip
    bits = 8.0 * chunk_bytes
    first = hop_mask[:, 0]
    group = (first_link[:, None] == first_link[None, :]) & first[None, :]  # (K, K, E)
    group_bits = lane_sum(jnp.where(group, bits[None], 0.0), 1)
    pkt_bits = 8.0 * jnp.minimum(packet_bytes, chunk_bytes)
    sent = (pacer, pacer + (group_bits - pkt_bits) / capacity_bps[:, 0])
    pacer_done = pacer + group_bits / capacity_bps[:, 0]
    ids = jnp.arange(num_slots)[:, None]

    def path(rows, x):
        home, real, path_sent, path_bytes, capacity, util, prop, wait = x
        (mine,) = once(tuple(take_rows(r, home) for r in rows))  # (H, M, E) each
        slot, jobs, cache = free_slot_minor(mine[:4], mine[4:])
        delivered, job, a_breaks = chunk_through_hops_minor(
            jobs, cache, real, path_sent, path_bytes, packet_bytes, capacity, util, prop, wait
        )
        at = ids == slot[:, None]  # (H, M, E)
        jobs = tuple(jnp.where(at, v[:, None], r) for r, v in zip(jobs, job, strict=True))
        heads = jnp.where(at, a_breaks[2][:, None], a_breaks[0])
        tails = jnp.where(at, a_breaks[3][:, None], a_breaks[1])
        written = (*jobs, heads, tails)
        rows = tuple(put_rows(r, home, w, real) for r, w in zip(rows, written, strict=True))
        return rows, delivered

    xs = (hop_home, hop_mask, sent, chunk_bytes, capacity_bps, bg_util, prop_s, bg_wait_s)
    rows, delivered = jax.lax.scan(path, rows, xs)
    home = hop_home.reshape(flat.shape)
    real = hop_mask.reshape(flat.shape)
    r_ids = jnp.arange(flat.shape[0])[:, None, None]
    touched = jnp.any((home[None] == r_ids) & real[None], 1)  # (R, E)
    pacers = block.pacer_s - age  # (R, E)
    first_home = hop_home[:, 0]  # (K, E)
    set_pacer = (first_home[None] == r_ids) & first[None]  # (R, K, E)
    # paths that leave by one link share its pacer: their pacer_done are equal
    done_at = jnp.max(jnp.where(set_pacer, pacer_done[None], -jnp.inf), 1)
    pacers = jnp.where(jnp.any(set_pacer, 1), done_at, pacers)
    new = LinkRows(*rows[:4], (rows[4], rows[5]), busy_minor(rows[0], rows[2]), pacers)
    # back to the state: an XLA scatter over (link, env)
    idx = jnp.where(touched, flat, num_links)
    env = jnp.broadcast_to(jnp.arange(num_envs), flat.shape)

    def back(x, b):
        if x.ndim == 2:
            return x.at[idx, env].set(b, mode="drop")
        return x.at[idx[:, None], jnp.arange(x.shape[1])[:, None], env[:, None]].set(b, mode="drop")

    links = jax.tree.map(back, links, new)
    return delivered, links, back(link_age_s, jnp.zeros_like(age))


# ---------------------------------------------------------------------------------------------


def warm_state(topology: str, num_envs: int, warm_tasks: int):
    """(params, states after warm_tasks Base1 tasks, the next task) for num_envs envs."""
    cfg = dataclasses.replace(ScenarioConfig(), topology=topology)
    scenario = make_scenario(cfg, seed=0)
    params = make_params(scenario)
    tasks = permuted_tasks(scenario.tasks, num_envs, seed=1)
    keys = jax.random.split(jax.random.key(0), num_envs)
    config = SimConfig()
    policy = get_policy("base1")

    def one(key, tasks):
        def body(s, t):
            s = arrive(s, t)
            return sim_step(params, s, t, policy(observe(params, s, t, config)), config)[0], None

        warm = jax.tree.map(lambda x: x[:warm_tasks], tasks)
        s = jax.lax.scan(body, reset(params, key), warm)[0]
        nxt = jax.tree.map(lambda x: x[warm_tasks], tasks)
        s = arrive(s, nxt)
        action = policy(observe(params, s, nxt, config))
        cand = jax.tree.map(lambda x: x[action.node_slot], candidates(params, nxt))
        split = jnp.where(cand.path_mask, action.split, 0.0)
        args = (
            s.link_age_s,
            cand.links,
            (cand.hops, cand.hops.grid_home),
            cand.hop_mask & (split > 0)[:, None],
            split * nxt.size_bytes,
            cand.capacity_bps,
            cand.bg_util,
            cand.prop_s,
            cand.bg_wait_s,
        )
        return s.links, args

    links, args = jax.jit(jax.vmap(one))(keys, tasks)
    return params, links, args


def major_fn(packet_bytes, repeats):
    def run(links, args):
        age, path_links, home, mask, chunk, cap, util, prop, wait = args

        def body(_, carry):
            links, age, acc = carry
            d, links, age = jax.vmap(
                lambda lk, a, pl, h, m, c, cp, u, p, w: send_chunks(
                    lk, a, pl, h[0], m, c, packet_bytes, cp, u, p, w, None
                )
            )(links, age, path_links, home, mask, chunk, cap, util, prop, wait)
            return links, age, acc + d

        return jax.lax.fori_loop(0, repeats, body, (links, age, jnp.zeros(chunk.shape)))

    return jax.jit(run)


def to_minor(x):
    return jnp.moveaxis(x, 0, -1)


def links_to_minor(links):
    """Env-major LinkRows -> env-minor, the break cache split into (heads, tails)."""
    minor = jax.tree.map(to_minor, links)
    m = links.head_s.shape[-1]
    return minor.replace(breaks_input=(minor.breaks_input[:, :m], minor.breaks_input[:, m:]))


def links_to_major(links):
    major = jax.tree.map(lambda x: jnp.moveaxis(x, -1, 0), links)
    return major.replace(breaks_input=jnp.concatenate(major.breaks_input, -1))


def minor_fn(packet_bytes, repeats):
    def run(links, args):
        age, path_links, home, mask, chunk, cap, util, prop, wait = args

        def body(_, carry):
            links, age, acc = carry
            d, links, age = send_chunks_minor(
                links, age, path_links, home[1], mask, chunk, packet_bytes, cap, util, prop, wait
            )
            return links, age, acc + d

        return jax.lax.fori_loop(0, repeats, body, (links, age, jnp.zeros(chunk.shape)))

    return jax.jit(run)


def best_time(fn, *args, tries: int) -> float:
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def max_differences(out_major, out_minor) -> dict[str, float]:
    """Largest |env-major - env-minor| of the outputs of `major_fn` and `minor_fn`."""
    (links_a, age_a, sent_a), (links_b, age_b, sent_b) = out_major, out_minor
    rows = zip(jax.tree.leaves(links_a), jax.tree.leaves(links_to_major(links_b)), strict=True)
    return {
        "delivered (summed over the repeats)": float(
            jnp.max(jnp.abs(sent_a - jnp.moveaxis(sent_b, -1, 0)))
        ),
        "rows": max(float(jnp.max(jnp.abs(a - b))) for a, b in rows),
        "ages": float(jnp.max(jnp.abs(age_a - jnp.moveaxis(age_b, -1, 0)))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="abilene")
    parser.add_argument("--envs", type=int, default=4096)
    parser.add_argument("--warm-tasks", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    params, links, send_args = warm_state(args.topology, args.envs, args.warm_tasks)
    packet = params.packet_bytes
    minor_links = links_to_minor(links)
    minor_args = jax.tree.map(to_minor, send_args)
    major, minor = major_fn(packet, args.repeats), minor_fn(packet, args.repeats)
    out_major = major(links, send_args)
    out_minor = minor(minor_links, minor_args)
    diff = max_differences(out_major, out_minor)
    print("max |major - minor|:", diff, flush=True)
    times = {"env-major (vmap, package)": [], "env-minor (probe)": []}
    for _ in range(args.rounds):  # alternate, so that both see the same host
        times["env-major (vmap, package)"].append(best_time(major, links, send_args, tries=1))
        times["env-minor (probe)"].append(best_time(minor, minor_links, minor_args, tries=1))
    sends = args.envs * args.repeats
    rows = []
    for name, ts in times.items():
        rows.append((name, min(ts), sends / min(ts)))
        print(f"{name}: {1e3 * min(ts) / args.repeats:.2f} ms per send of all envs, "
              f"{sends / min(ts):,.0f} task-sends/s", flush=True)  # fmt: skip
    ratio = rows[0][1] / rows[1][1]
    print(f"env-minor speed-up: {ratio:.2f}x", flush=True)
    if args.out:
        device = jax.devices()[0]
        lines = [
            f"# layout_probe: {args.topology}, {args.envs} environments ({device.platform}: "
            f"{device.device_kind})",
            "",
            "`dynamics.send_chunks` (hard mode, one sweep) on the rows after "
            f"{args.warm_tasks} Base1 tasks, the next task sent {args.repeats} times in a "
            "`fori_loop` (rows carried); the two layouts alternate, best of "
            f"{args.rounds}.",
            "",
            "| layout | ms per send (all environments) | task-sends/s |",
            "|---|---|---|",
            *(f"| {n} | {1e3 * t / args.repeats:.2f} | {r:,.0f} |" for n, t, r in rows),
            "",
            f"env-minor / env-major speed-up: **{ratio:.2f}x**; max |difference|: "
            + ", ".join(f"{k} {v:.2e}" for k, v in diff.items()),
            "",
            f"config: {json.dumps(vars(args))}",
            "",
            f"versions: {json.dumps(package_versions())}",
        ]
        atomic_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()

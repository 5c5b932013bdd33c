"""Pure latency math of FIFO links and FIFO compute servers (no state handling, no jit).

Times are relative to the task's arrival (now = 0). A task's data on one path is a chunk of B
bytes cut into packets of P bytes. The sender feeds it to the first link at that link's line
rate. On hop j (link l: line rate c, background utilisation u, propagation d, mean wait of a
packet behind background packets w) the chunk's first packet is ready at h_j and its last at t_j,
and the link serves everything FIFO; background arrives as a fluid at rate u c, and the part of
it that arrives while the chunk arrives (in [h_j, t_j]) is interleaved with it:

    starts      s_j = max(h_j, busy_until_l) + w
    ends        e_j = max(s_j + (8B + u c (t_j - h_j)) / c,   (backlogged: chunk + interleaved
                                                                background at line rate)
                      t_j + w + 8P/c)                         (fed by the hop before)
    h_{j+1}     = s_j + 8P/c + d                              (first packet stored, forwarded)
    t_{j+1}     = e_j + d                                     (last packet)

with h_0 = 0 and t_0 = 8(B - P)/c_0 (line-rate pacing at the sender). This is store-and-forward
pipelining of packets across hops through FIFO queues shared with background traffic (measured
against NS-3 by `ns3_validation`).

Each link remembers the interval of task work reserved on it, [busy_from, busy_until] relative
to now (one interval per link: reservations merge). A later chunk whose first packet gets to the
link before the reserved work does is served first, FIFO by arrival, and pushes the reserved
work back (the earlier task's reported latency stays as computed at its arrival); otherwise it
queues behind busy_until. Without the "ahead" case a task scheduled now would wait for bytes of
an earlier task that are still several hops upstream. Paths of one task are sent one after the
other through the shared intervals. Compute servers work the same way (FIFO by data arrival).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_max2(a: jax.Array, b: jax.Array, temp_s: float | None) -> jax.Array:
    """max(a, b), or its log-sum-exp smoothing with temperature temp_s (>= the max)."""
    if temp_s is None:
        return jnp.maximum(a, b)
    return temp_s * jnp.logaddexp(a / temp_s, b / temp_s)


def soft_max_masked(x: jax.Array, weight: jax.Array, temp_s: float | None) -> jax.Array:
    """max of x over entries with weight > 0 (hard), or temp * log sum weight * exp(x / temp).

    Args:
      x: (K,) values. weight: (K,) in [0, 1]; 0 excludes an entry. At least one weight > 0.
    """
    if temp_s is None:
        return jnp.max(jnp.where(weight > 0, x, -jnp.inf))
    return temp_s * jax.nn.logsumexp(x / temp_s, b=weight)


def _ahead_gate(head, busy_from, busy_until, temp_s):
    """1 where a chunk (or task) arrives before the reserved work on a link (or server) starts,
    else 0; in smooth mode a sigmoid of the margin."""
    reserved = busy_until > busy_from
    if temp_s is None:
        return ((head < busy_from) & reserved).astype(head.dtype)
    return jax.nn.sigmoid((busy_from - head) / temp_s) * reserved


def send_chunk(
    links_state: tuple[jax.Array, ...],
    links: jax.Array,
    hop_mask: jax.Array,
    chunk_bytes: jax.Array,
    packet_bytes: jax.Array,
    capacity_bps: jax.Array,
    bg_util: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
    temp_s: float | None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Send one chunk along one path.

    Args:
      links_state: (busy_from_s, busy_until_s, idle_s, idle_before_s), each (L,), relative to
        now: the block of task work reserved earlier reaches each link at busy_from and has left
        by busy_until; idle_s is when the queue, with the background behind that work, is
        empty; idle_before_s when what was queued ahead of the block is.
      links: (H,) int link ids of the path's hops. hop_mask: (H,) bool, real hops.
      chunk_bytes: () bytes on this path; packet_bytes: () packet size.
      capacity_bps, bg_util, prop_s, bg_wait_s: (H,) constants of the path's hops (see module
        docstring); any values on padded hops.

    Returns:
      delivered_s: () when the last byte reaches the path's end.
      links_state: the updated (L,) arrays.
    """
    num_links = links_state[0].shape[0]
    idx = jnp.where(hop_mask, links, num_links)  # padded hops point past the end
    gathered = tuple(x.at[idx].get(mode="fill", fill_value=0.0) for x in links_state)
    delivered, new = chunk_through_hops(
        gathered,
        hop_mask,
        chunk_bytes,
        packet_bytes,
        capacity_bps,
        bg_util,
        prop_s,
        bg_wait_s,
        temp_s,
    )
    links_state = tuple(
        x.at[idx].set(v, mode="drop") for x, v in zip(links_state, new, strict=True)
    )
    return delivered, links_state


def chunk_through_hops(
    hops_state: tuple[jax.Array, ...],
    hop_mask: jax.Array,
    chunk_bytes: jax.Array,
    packet_bytes: jax.Array,
    capacity_bps: jax.Array,
    bg_util: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
    temp_s: float | None,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """The hop recursion of `send_chunk` on the path's own (H,) link states.

    Returns (delivered_s (), the new (busy_from_s, busy_until_s, idle_s, idle_before_s), each
    (H,)).
    """
    busy_from, busy_until, idle, idle_before = hops_state
    bits = 8.0 * chunk_bytes
    pkt_bits = 8.0 * jnp.minimum(packet_bytes, chunk_bytes)
    head = jnp.zeros_like(bits)
    tail = (bits - pkt_bits) / capacity_bps[0]
    new_from, new_until, new_idle, new_before = [], [], [], []
    for j in range(hop_mask.shape[0]):  # static, small: unrolled
        b0, b1, e, e0 = busy_from[j], busy_until[j], idle[j], idle_before[j]
        u, w = bg_util[j], bg_wait_s[j]
        pkt = pkt_bits / capacity_bps[j]
        work = bits / capacity_bps[j] + u * (tail - head)
        # Behind the reserved block: after its last packet, and after the background queued
        # behind it (a backlog drains at rate 1 - u while background keeps arriving).
        start_q = soft_max2(soft_max2(head, b1, temp_s), u * head + (1 - u) * e, temp_s) + w
        end_q = soft_max2(start_q + work, tail + w + pkt, temp_s)
        idle_q = tail + (end_q - tail) / (1 - u)
        opens = head >= b1  # the block's task work has left: ours starts a new block
        # Ahead of the block: behind only what was queued before it; block work arriving
        # before our last packet is interleaved, the rest is pushed back.
        reserved = b1 - b0
        mixed = jnp.clip(tail - b0, 0.0, reserved)
        start_a = soft_max2(head, u * head + (1 - u) * e0, temp_s) + w
        end_a = soft_max2(start_a + work + mixed, tail + w + pkt, temp_s)
        until_a = soft_max2(end_a, b0, temp_s) + reserved - mixed
        # What is queued ahead of the block now includes us; the block still starts arriving
        # at b0, and its end (and the link's idle time) move by how far we pushed it.
        idle_ours = tail + (end_a - tail) / (1 - u)
        from_a, before_a = b0, soft_max2(e0, idle_ours, temp_s)
        idle_a = soft_max2(e + (until_a - b1), idle_ours, temp_s)
        g = _ahead_gate(head, b0, b1, temp_s)
        start = g * start_a + (1 - g) * start_q
        end = g * end_a + (1 - g) * end_q
        new_from.append(g * from_a + (1 - g) * jnp.where(opens, head, b0))
        new_until.append(g * until_a + (1 - g) * end_q)
        new_idle.append(g * idle_a + (1 - g) * idle_q)
        new_before.append(g * before_a + (1 - g) * jnp.where(opens, e, e0))
        real = hop_mask[j]
        head = jnp.where(real, start + pkt + prop_s[j], head)
        tail = jnp.where(real, end + prop_s[j], tail)
    new = tuple(jnp.stack(x) for x in (new_from, new_until, new_idle, new_before))
    return tail, new


def serve_compute(
    busy_from_s: jax.Array,
    busy_until_s: jax.Array,
    arrival_s: jax.Array,
    compute_s: jax.Array,
    temp_s: float | None,
) -> tuple[jax.Array, ...]:
    """FIFO compute server in order of data arrival, non-preemptive. Work reserved earlier runs
    in [busy_from, busy_until]. A task whose data is all in at arrival_s before that interval
    starts runs first (and pushes the reserved work back); otherwise it waits until busy_until.

    Returns (wait_s, busy_from_s, busy_until_s) for this server, relative to now.
    """
    g = _ahead_gate(arrival_s, busy_from_s, busy_until_s, temp_s)
    start_q = soft_max2(arrival_s, busy_until_s, temp_s)
    from_q = jnp.where(arrival_s < busy_until_s, busy_from_s, arrival_s)
    until_a = soft_max2(arrival_s + compute_s, busy_from_s, temp_s) + busy_until_s - busy_from_s
    start = g * arrival_s + (1 - g) * start_q
    new_from = g * arrival_s + (1 - g) * from_q
    new_until = g * until_a + (1 - g) * (start_q + compute_s)
    return start - arrival_s, new_from, new_until

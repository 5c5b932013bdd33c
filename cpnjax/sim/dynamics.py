"""Pure latency math of FIFO links and FIFO compute servers (no state handling, no jit).

Times are relative to the task's arrival (now = 0). A task's data on one path is a chunk of B
bytes cut into packets of P bytes. On hop j (link l: line rate c, rate left by background r,
propagation d, mean wait behind background packets w) the chunk

    starts      s_j = max(head_j, busy_l) + w          (FIFO behind earlier task bytes)
    ends        e_j = max(s_j + 8B/r, tail_j + w + 8P/c)  (link-bound, or fed by the hop before)
    head_{j+1}  = s_j + 8P/c + d                       (first packet stored and forwarded)
    tail_{j+1}  = e_j + d                              (last packet)

with head_0 = tail_0 = 0. This is store-and-forward pipelining of packets across hops: the chunk
takes the slowest hop's serialisation once, plus one packet time and one propagation per hop.
Link l stays busy until e_j; later tasks queue behind it (FIFO). The chunk is delivered at
tail_after_last_hop. Paths of one task are sent one after the other through the shared busy
vector, so a link used by two paths of the task carries both chunks back to back.
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


def send_chunk(
    link_busy_s: jax.Array,
    links: jax.Array,
    hop_mask: jax.Array,
    chunk_bytes: jax.Array,
    packet_bytes: jax.Array,
    capacity_bps: jax.Array,
    rate_bps: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
    temp_s: float | None,
) -> tuple[jax.Array, jax.Array]:
    """Send one chunk along one path.

    Args:
      link_busy_s: (L,) busy time of every link, relative to now.
      links: (H,) int link ids of the path's hops. hop_mask: (H,) bool, real hops.
      chunk_bytes: () bytes on this path; packet_bytes: () packet size.
      capacity_bps, rate_bps, prop_s, bg_wait_s: (H,) constants of the path's hops (see module
        docstring); any values on padded hops.

    Returns:
      delivered_s: () when the last byte reaches the path's end.
      link_busy_s: (L,) updated busy times.
    """
    num_links = link_busy_s.shape[0]
    idx = jnp.where(hop_mask, links, num_links)  # padded hops point past the end
    busy = link_busy_s.at[idx].get(mode="fill", fill_value=0.0)
    bits = 8.0 * chunk_bytes
    pkt_bits = 8.0 * jnp.minimum(packet_bytes, chunk_bytes)
    head = jnp.zeros_like(bits)
    tail = jnp.zeros_like(bits)
    ends = []
    for j in range(links.shape[0]):  # static, small: unrolled
        start = soft_max2(head, busy[j], temp_s) + bg_wait_s[j]
        end = soft_max2(
            start + bits / rate_bps[j], tail + bg_wait_s[j] + pkt_bits / capacity_bps[j], temp_s
        )
        real = hop_mask[j]
        head = jnp.where(real, start + pkt_bits / capacity_bps[j] + prop_s[j], head)
        tail = jnp.where(real, end + prop_s[j], tail)
        ends.append(end)
    link_busy_s = link_busy_s.at[idx].set(jnp.stack(ends), mode="drop")
    return tail, link_busy_s


def serve_compute(
    node_busy_s: jax.Array, arrival_s: jax.Array, compute_s: jax.Array, temp_s: float | None
) -> tuple[jax.Array, jax.Array]:
    """FIFO compute server: a task whose data is all in at arrival_s waits until the server is
    idle, then computes for compute_s. Returns (wait_s, busy_after_s) relative to now."""
    start = soft_max2(arrival_s, node_busy_s, temp_s)
    return start - arrival_s, start + compute_s

"""Pure latency math of FIFO links and FIFO compute servers (no state handling, no jit).

Times are relative to the task's arrival (now = 0). Work on a link is counted in seconds of its
line rate ("link-seconds": bits / capacity).

**Links: fluid FIFO with packet edges.** A task's data on one path is a chunk of B bytes cut
into packets of P bytes. At each hop the chunk is a *job*: its first packet is ready at the link
at head time h, its last at tail time t; in between the rest arrives evenly. So the job puts
an impulse of one packet time at h and the remaining work as a fluid over [h, t]. Background
arrives as a fluid at utilisation u and takes that share of the line, leaving rate 1 - u
(link-seconds per second) for the jobs, served FIFO. The backlog just after time x is the
Lindley/Reich formula over the jobs' cumulative input A:

    Q(x) = sup_{s <= x} [A(x+) - A(s-) - (1 - u)(x - s)]

With piecewise-linear input the sup is reached at a breakpoint (some job's head or tail), so
Q is exact for the fluid and costs O(M) per breakpoint for M remembered jobs. The chunk's first
packet leaves at h + Q(h) + w, its last at t + max(Q(t), one packet) + w, where w is the mean
wait of a packet behind background packets (M/D/1). Propagation d is added to reach the next hop.
At the first hop the sender's pacer hands the bytes over at line rate (as the NS-3 harness's
`cpn::Pacer`, one FIFO per sending interface): a task starts when the bytes of earlier tasks on
that interface are all handed over (h = max(0, pacer)), and its paths that leave by the same
interface are interleaved, so each spans the group's bytes G: t = h + 8(G - P)/c.

Each link remembers M jobs (head, tail, work, impulse), so FIFO by arrival holds across tasks
and hops. A chunk that gets to a link before bytes of an earlier task (still upstream) is
served first, and gaps between reservations stay idle. The earlier task's latency stays as
reported at its own scheduling; only its reservation is pushed back in Q. Paths of one task are
sent one after the other, so each sees the jobs of the paths sent before it; with coupled chunks
(`SimConfig.coupled_chunks`) a second sweep lets each also queue with those sent after it
(`send_chunks`).

**Bounded memory.** Before a chunk is reserved on a link, the input that came before now is
folded into one impulse at now holding the backlog (`settle`: exact, since the queue is Markov
in its backlog, and it frees the slots of jobs that are all in). Only when M jobs are still to
arrive are the two earliest merged into one (`free_slot`: work conserved, timing blurred).
Compute servers do the same (`settle_server` exact, `free_server_slot` exact from the later
arrival on).

**Compute servers: FIFO in order of data arrival, non-preemptive.** A task whose data is all
in at a waits for the work that arrived before it: wait = Q(a-) over the server's remembered
jobs (arrival, compute), exact for a single FIFO server.

Smooth mode (temperature T) replaces each max by a log-sum-exp and the server's "arrived
before me" by a sigmoid, so that response latency is smooth in the split ratios.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from cpnjax.lanes import (
    lane_any,
    lane_argmax,
    lane_argmin,
    lane_logsumexp,
    lane_max,
    lane_min,
    lane_sum,
    slices,
)

SLOTS = 8
"""Jobs remembered per link and per compute server (the oldest is forgotten first)."""


@struct.dataclass
class LinkRows:
    """The jobs remembered on links (see the module docstring), two caches of each row, kept
    by `send_chunks` when it writes the row, and the link's sender pacer. Shapes (..., M) per
    link, times relative to when the row was written."""

    head_s: jax.Array  # (..., M) when each job's first packet is ready at the link
    tail_s: jax.Array  # (..., M) when its last packet is
    work_s: jax.Array  # (..., M) its bits / line rate
    impulse_s: jax.Array  # (..., M) the part of the work that arrives at head
    breaks_input: jax.Array  # (..., 2M) `break_input` of the row (time-shift invariant)
    busy_s: jax.Array  # (...,) `busy_until` of the row
    pacer_s: jax.Array  # (...,) when the sender's pacer on this link has handed over its bytes

    def now(self, age_s: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """(head, tail, work, impulse) relative to now, for rows of age `age_s` (...)."""
        age = age_s[..., None]
        return self.head_s - age, self.tail_s - age, self.work_s, self.impulse_s


def _one_hot(index: jax.Array, size: int) -> jax.Array:
    """(..., size) bool, True at `index` (...): a select instead of a dynamic gather/scatter."""
    return jnp.arange(size) == index[..., None]


def _pick(x: jax.Array, hot: jax.Array) -> jax.Array:
    """x[..., i] where hot[..., i] (one True per row)."""
    return lane_sum(jnp.where(hot, x, 0))


def soft_max2(a: jax.Array, b: jax.Array, temp_s: float | None) -> jax.Array:
    """max(a, b), or its log-sum-exp smoothing with temperature temp_s (>= the max)."""
    if temp_s is None:
        return jnp.maximum(a, b)
    return temp_s * jnp.logaddexp(a / temp_s, b / temp_s)


def soft_max_masked(
    x: jax.Array, weight: jax.Array, temp_s: float | None, axis=-1, reduce: bool = False
) -> jax.Array:
    """max of x over entries with weight > 0 (hard), or temp * log sum weight * exp(x / temp).

    Args:
      x: values. weight: same shape, in [0, 1]; 0 excludes an entry. At least one weight > 0
        along `axis`.
    """
    if temp_s is None:
        return (jnp.max if reduce else lane_max)(jnp.where(weight > 0, x, -jnp.inf), axis)
    if reduce:
        return temp_s * jax.nn.logsumexp(x / temp_s, axis, b=weight)
    return temp_s * lane_logsumexp(x / temp_s, weight, axis)


def _contrib(head, tail, work, impulse, x, inclusive: bool):
    """Work (link-s) one job has put in by time x (its impulse counted at x when `inclusive`).
    The job's fields broadcast against x."""
    span = tail - head
    rate = jnp.where(span > 0, (work - impulse) / jnp.where(span > 0, span, 1.0), 0.0)
    arrived = (head <= x) if inclusive else (head < x)
    return jnp.where(arrived, impulse, 0.0) + rate * jnp.clip(x - head, 0.0, jnp.maximum(span, 0.0))


def _input(head, tail, work, impulse, x, inclusive: bool):
    """Cumulative work (link-s) the jobs have put in by time x (impulses at x counted when
    `inclusive`). head, tail, work, impulse: (J,); x: (X,). Returns (X,).

    One job at a time (J is short), so that no (X, J) array is built (see `cpnjax.lanes`)."""
    total = jnp.zeros_like(x)
    jobs = zip(slices(head), slices(tail), slices(work), slices(impulse), strict=True)
    for h, t, w, imp in jobs:
        total = total + _contrib(
            h[..., None], t[..., None], w[..., None], imp[..., None], x, inclusive
        )
    return total


def _input_around(jobs, x: jax.Array, reduce: bool = False) -> tuple[jax.Array, jax.Array]:
    """(A(x-), A(x+)) of one link's jobs (each (M,)) at one time x (): O(M), the fluid part
    computed once for both. `reduce` sums with a reduce instead of lanes (see `settle`)."""
    total = (lambda v: jnp.sum(v, -1)) if reduce else lane_sum
    head, tail, work, impulse = jobs
    a_minus = total(_contrib(head, tail, work, impulse, x, inclusive=False))
    return a_minus, a_minus + total(jnp.where(head == x, impulse, 0.0))


def _min_before(g: jax.Array, breaks: jax.Array, live: jax.Array, at: jax.Array) -> jax.Array:
    """(X,) min of g over the live breaks s <= x, for each x in `at` (X,): +inf where there is
    none. g, breaks, live: (S,)."""
    before = (breaks[None, :] <= at[:, None]) & live  # (X, S)
    return lane_min(jnp.where(before, jnp.broadcast_to(g, before.shape), jnp.inf))


def fifo_backlog(
    head: jax.Array,
    tail: jax.Array,
    work: jax.Array,
    impulse: jax.Array,
    bg_util: jax.Array,
    query: jax.Array,
    temp_s: float | None,
    with_input: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Backlog Q(x) in link-seconds just after each query time x (see module docstring).

    Args:
      head, tail, work, impulse: (J,) the jobs (0 work: an empty slot); `impulse` <= `work` of
        it arrives at head (one packet, or all of it if tail <= head), the rest as a fluid.
      bg_util: () background utilisation u.
      query: (X,) times; each must be a job's head or tail (so Q >= 0 without a clamp).

    Returns (X,); with `with_input` also (2J,) A(s-) at the breaks s = (heads, tails), what
    `break_input` gives (the link cache of `SimState`).
    """
    breaks = jnp.concatenate([head, tail])  # (S,) where the sup can be reached
    # g(s) = A(s-) - (1 - u) s; Q(x) = A(x+) - (1 - u) x - min_{s <= x} g(s)
    a_breaks = _input(head, tail, work, impulse, breaks, inclusive=False)
    g = a_breaks - (1 - bg_util) * breaks
    a_x = _input(head, tail, work, impulse, query, inclusive=True) - (1 - bg_util) * query
    before = (breaks[None, :] <= query[:, None]).astype(g.dtype)  # (X, S)
    g_min = -soft_max_masked(-jnp.broadcast_to(g, before.shape), before, temp_s)
    return (a_x - g_min, a_breaks) if with_input else a_x - g_min


def break_input(jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array]) -> jax.Array:
    """(2M,) A(s-), the work one link's jobs have put in strictly before each of their breaks
    s = (heads, tails). Invariant to a shift of time, so `SimState` keeps it per row as a cache
    that makes `settle` and a probe O(M) instead of O(M^2). jobs: (head, tail, work, impulse),
    each (M,)."""
    head, tail, work, impulse = jobs
    return _input(head, tail, work, impulse, jnp.concatenate([head, tail]), inclusive=False)


@struct.dataclass
class ProbeLanes:
    """Where `observe` probes each candidate path: the real hops of a task's N x K paths packed
    into P lanes of Λ hops, whole paths one after the other in a lane (first-fit decreasing,
    `params.pack_probe_lanes`), so that a probe round runs P x Λ hops instead of N x K x H.
    Fields (..., P, Λ) except `end` (..., N, K). `per_path`: one lane per path, the (N, K, H)
    grid itself (P = N K, Λ = H), which `observe` probes without gathering into lanes."""

    hop: jax.Array  # int32 flat index (n K H + k H + h) of the hop into the (N, K, H) grid
    real: jax.Array  # bool: a hop (False on a lane's padding)
    start: jax.Array  # bool: the first hop of its path
    end: jax.Array  # (..., N, K) int32 flat position (p Λ + j) of each path's last hop, -1: none
    per_path: bool = struct.field(pytree_node=False, default=False)


def _probe_hop(links, link_age_s, head, link, real, probe_bytes, capacity, util, prop, wait):
    """() a one-packet probe's head after one hop (`probe_lane`): it gets to link `link` at
    `head`, and crosses it if `real`."""
    # each hop's row is gathered here, in the scan, so that no (Λ, ...) block is transposed
    row = jax.tree.map(lambda r: r[link], links)
    h, t, w, imp = row.now(link_age_s[link])
    a_minus, a_plus = _input_around((h, t, w, imp), head)
    service = 1.0 - util
    breaks = jnp.concatenate([h, t])
    g = jnp.where(breaks <= head, row.breaks_input - service * breaks, jnp.inf)
    g_min = jnp.minimum(a_minus - service * head, lane_min(g))
    backlog = 8.0 * probe_bytes / capacity + a_plus - service * head - g_min
    return jnp.where(real, head + backlog + wait + prop, head)


def _probe_start(links: LinkRows, link_age_s: jax.Array, link: jax.Array, real: jax.Array):
    """() when a path's probe leaves: when its first link's pacer is free, 0 without hops."""
    return jnp.where(real, jnp.maximum(links.pacer_s[link] - link_age_s[link], 0.0), 0.0)


def probe_lane(
    links: LinkRows,
    link_age_s: jax.Array,
    hop_links: jax.Array,
    hop_mask: jax.Array,
    path_start: jax.Array,
    probe_bytes: jax.Array,
    capacity_bps: jax.Array,
    bg_util: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
) -> jax.Array:
    """(Λ,) when one-packet probes of paths laid one after the other in a lane have crossed
    each hop: `chunk_through_hops` for a chunk of one packet that reserves nothing, in O(M) per
    hop from the rows' `break_input` cache. A path's probe leaves when its first link's pacer is
    free (the harness queues probes on the pacer).

    A probe's head is its tail, so its backlog at a hop is the link's at its arrival h plus
    itself: Q(h) = p + A(h+) - r h - min(A(h-) - r h, min_{s <= h} [A(s-) - r s]), r = 1 - u.

    Args:
      links: the (L, M) rows of every link; link_age_s: (L,) their ages.
      hop_links: (Λ,) int link id of each hop; hop_mask: (Λ,) real hops; path_start: (Λ,) the
        first hop of a path (a start that is not a real hop starts a path without hops: 0).
      probe_bytes: (); capacity_bps, bg_util, prop_s, bg_wait_s: (Λ,) the hops' constants.
    """

    def hop(head, x):
        link, real, start, *constants = x
        head = jnp.where(start, _probe_start(links, link_age_s, link, real), head)
        head = _probe_hop(links, link_age_s, head, link, real, probe_bytes, *constants)
        return head, head

    xs = (hop_links, hop_mask, path_start, capacity_bps, bg_util, prop_s, bg_wait_s)
    return jax.lax.scan(hop, jnp.zeros((), jnp.float32), xs)[1]


def probe_through_hops(
    links: LinkRows,
    link_age_s: jax.Array,
    hop_links: jax.Array,
    hop_mask: jax.Array,
    probe_bytes: jax.Array,
    capacity_bps: jax.Array,
    bg_util: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
) -> jax.Array:
    """() when a one-packet probe reaches the end of one path: `probe_lane` of a lane that holds
    that path alone, keeping only the last head. hop_links, hop_mask: (H,); the constants (H,)."""

    def hop(head, x):
        return _probe_hop(links, link_age_s, head, x[0], x[1], probe_bytes, *x[2:]), None

    start = _probe_start(links, link_age_s, hop_links[0], hop_mask[0])
    xs = (hop_links, hop_mask, capacity_bps, bg_util, prop_s, bg_wait_s)
    return jax.lax.scan(hop, start, xs)[0]


def chunk_through_hops(
    hops_jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    hops_input: jax.Array,
    hop_mask: jax.Array,
    sent_s: tuple[jax.Array, jax.Array],
    chunk_bytes: jax.Array,
    packet_bytes: jax.Array,
    capacity_bps: jax.Array,
    bg_util: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
    temp_s: float | None,
    extra_jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """Send one chunk along one path through the jobs already reserved on its hops.

    `fifo_backlog` of the hop's jobs with the chunk's appended, at the chunk's head and tail, in
    O(M) per hop from the rows' `break_input` cache: the chunk only adds its own input at the
    old breaks, and the old jobs' input at its two breaks is one pass over them.

    Args:
      hops_jobs: (head_s, tail_s, work_s, impulse_s), each (H, M): the jobs remembered on each
        hop's link. hops_input: (H, 2M) their `break_input`.
      hop_mask: (H,) bool, real hops.
      sent_s: (head, tail), (): when the sender hands the chunk's first and last packet to the
        first link (see the module docstring; `send_chunks` works them out).
      chunk_bytes: () bytes on this path; packet_bytes: () packet size.
      capacity_bps, bg_util, prop_s, bg_wait_s: (H,) constants of the path's hops (any values
        on padded hops).
      extra_jobs: (head_s, tail_s, work_s, impulse_s), each (H, X), or None: more jobs on each
        hop that the chunk queues with but that are not in the rows (0 work: none), the other
        chunks of the task in `send_chunks`' second sweep. They change the delivery time only,
        not the returned job or cache.

    Returns:
      delivered_s: () when the last byte reaches the path's end.
      job: (head_s, tail_s, work_s, impulse_s), each (H,): this chunk's job on each hop.
      breaks_input: (H, 2M + 2) A(s-) at the breaks (heads, tails) of each hop's jobs with the
        chunk's appended (index M and 2M + 1).
    """
    bits = 8.0 * chunk_bytes
    pkt_bits = 8.0 * jnp.minimum(packet_bytes, chunk_bytes)
    # a path without hops (the task computes where it arrives) delivers at once
    head, tail = (jnp.where(hop_mask[0], x, 0.0) for x in sent_s)

    def hop(carry, x):
        jobs, a_old, real, capacity, util, prop, wait, extra = x
        job, a_breaks, (new_head, new_tail) = through_hop(
            *carry, jobs, a_old, bits, pkt_bits, capacity, util, prop, wait, temp_s, extra
        )
        head, tail = carry
        return (jnp.where(real, new_head, head), jnp.where(real, new_tail, tail)), (job, a_breaks)

    # A scan, not a Python loop: each hop's times are materialised once (an unrolled chain is
    # fused into one kernel that recomputes the earlier hops for every later one).
    xs = (hops_jobs, hops_input, hop_mask, capacity_bps, bg_util, prop_s, bg_wait_s, extra_jobs)
    (_, tail), (jobs, a_breaks) = jax.lax.scan(hop, (head, tail), xs)
    return tail, jobs, a_breaks


def through_hop(
    head: jax.Array,
    tail: jax.Array,
    jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    a_old: jax.Array,
    bits: jax.Array,
    pkt_bits: jax.Array,
    capacity: jax.Array,
    util: jax.Array,
    prop: jax.Array,
    wait: jax.Array,
    temp_s: float | None,
    extra: tuple[jax.Array, jax.Array, jax.Array, jax.Array] | None = None,
) -> tuple[tuple[jax.Array, ...], jax.Array, tuple[jax.Array, jax.Array]]:
    """One hop of `chunk_through_hops`: a chunk (bits, first packet pkt_bits) ready at the link
    from head to tail (), through the link's jobs (each (M,)) with their `break_input` a_old
    (2M,), and the extra jobs (each (X,)) if any. Returns (its job on the link, (2M + 2,) A(s-)
    at the breaks with its own (index M and 2M + 1), (head, tail) at the next hop)."""
    work, pkt = bits / capacity, pkt_bits / capacity
    job = (head, tail, work, jnp.where(tail > head, pkt, work))
    at = jnp.stack([head, tail])  # the chunk's breaks
    # A(s-) of the old jobs and the chunk at the old breaks and at the chunk's
    a_breaks_old = a_old + _contrib(*job, jnp.concatenate(jobs[:2]), inclusive=False)
    old_minus, old_plus = jax.vmap(_input_around, in_axes=(None, 0))(jobs, at)
    a_at = old_minus + _contrib(*job, at, inclusive=False)
    num_slots = a_old.shape[-1] // 2
    a_breaks = jnp.concatenate(
        [a_breaks_old[:num_slots], a_at[:1], a_breaks_old[num_slots:], a_at[1:]]
    )
    breaks = jnp.concatenate([jobs[0], head[None], jobs[1], tail[None]])
    # Q(x) = A(x+) - r x - min_{s <= x} [A(s-) - r s] at the chunk's head and tail
    service = 1.0 - util
    a_plus = old_plus + _contrib(*job, at, inclusive=True)
    q_breaks, q_input, live = breaks, a_breaks, jnp.ones(breaks.shape, bool)
    if extra is not None:  # the extra jobs' input and their breaks join the query
        x_breaks = jnp.concatenate(extra[:2])
        x_minus = jax.vmap(_input_around, in_axes=(None, 0))(jobs, x_breaks)[0]
        x_input = x_minus + _contrib(*job, x_breaks, inclusive=False)
        x_input = x_input + _input(*extra, x_breaks, inclusive=False)
        x_live = jnp.tile(extra[2] > 0, 2)
        q_input = a_breaks + _input(*extra, breaks, inclusive=False)
        a_plus = a_plus + _input(*extra, at, inclusive=True)
        if temp_s is None:  # hard: the two sets' mins apart (see below)
            x_min = _min_before(x_input - service * x_breaks, x_breaks, x_live, at)
        else:
            q_breaks = jnp.concatenate([breaks, x_breaks])
            q_input = jnp.concatenate([q_input, x_input])
            live = jnp.concatenate([live, x_live])
    g = q_input - service * q_breaks
    before = ((q_breaks[None, :] <= at[:, None]) & live).astype(g.dtype)  # (2, S)
    g_min = -soft_max_masked(-jnp.broadcast_to(g, before.shape), before, temp_s)
    if extra is not None and temp_s is None:
        # The min over one concatenated set of breaks fuses into a scalar loop, 5x slower
        # on the coupled step. The smooth mode keeps the one set: its log-sum-exp taken
        # apart and recombined was not smooth in the split ratios (finite differences
        # jumped by 0.5 of the slope on the APG loss).
        g_min = jnp.minimum(g_min, x_min)
    q_head, q_tail = a_plus - service * at - g_min
    new_head = head + q_head + wait + prop
    new_tail = tail + soft_max2(q_tail, pkt, temp_s) + wait + prop
    return job, a_breaks, (new_head, new_tail)


def settle(
    jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    bg_util: jax.Array,
    temp_s: float | None,
    breaks_input: jax.Array | None = None,
) -> tuple[tuple[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """Fold the input that came before now (0) into one impulse at 0 holding the backlog Q(0-).

    Exact for every later query (the fluid queue is Markov in its backlog), and it frees the
    slots of jobs that are all in. A job that straddles 0 keeps its fluid from 0 on, with no
    impulse. Nothing changes unless some job is all in before now (head < 0, tail <= 0), whose
    slot then holds the backlog.

    Q(0-) = A(0-) - min_{s <= 0} [A(s-) - (1 - u) s] over the breaks s and 0 itself (input
    before now is all from jobs with head < 0), O(M) from `break_input` (computed when not given).
    The settled row's cache follows in O(M): it has no input before 0, and after 0 the old input
    plus the backlog, so A'(s-) = Q(0-) + A(s-) - A(0-) at a break s > 0 (an unchanged one).

    Args:
      jobs: (head, tail, work, impulse), each (M,): one link's jobs. bg_util: () utilisation.
      breaks_input: (2M,) `break_input(jobs)`, if known.

    Returns the settled (head, tail, work, impulse), each (M,), and their (2M,) `break_input`.
    """
    head, tail, work, impulse = jobs
    if breaks_input is None:
        breaks_input = break_input(jobs)
    before = head < 0  # input strictly before now
    zero = jnp.zeros((1,), head.dtype)
    # The row's scalars (A(0-), Q(0-), which slot keeps it, whether any job is done) are used by
    # every element of the settled row: XLA recomputes lane folds in each such element, so they
    # are reduces here (a reduce is computed once).
    a_now = _input_around(jobs, zero[0], reduce=True)[0][None]  # (1,) A(0-)
    breaks = jnp.concatenate([head, tail, zero, zero])  # now counted twice, as it always was
    g = jnp.concatenate([breaks_input, a_now, a_now]) - (1 - bg_util) * breaks
    at_or_before = (breaks <= 0).astype(g.dtype)
    q0 = (a_now + soft_max_masked(-g, at_or_before, temp_s, reduce=True))[0]
    live = work > 0
    done = live & before & (tail <= 0)  # an impulse at 0 (a settled backlog) is not before
    straddle = live & before & (tail > 0)
    span = jnp.where(straddle, tail - head, 1.0)
    left = (work - impulse) * tail / span  # the straddler's fluid after 0
    keep = _one_hot(jnp.argmax(done.astype(jnp.int32)), head.shape[-1])  # holds the backlog
    settled = (
        jnp.where(straddle | done, 0.0, head),
        jnp.where(done, 0.0, tail),
        jnp.where(keep, q0, jnp.where(done, 0.0, jnp.where(straddle, left, work))),
        jnp.where(keep, q0, jnp.where(done | straddle, 0.0, impulse)),
    )
    new_breaks = jnp.concatenate(settled[:2])
    cache = jnp.where(new_breaks > 0, q0 + breaks_input - a_now, 0.0)
    any_done = jnp.any(done)
    return (
        tuple(jnp.where(any_done, x, y) for x, y in zip(settled, jobs, strict=True)),
        jnp.where(any_done, cache, breaks_input),
    )


def free_slot(
    jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    breaks_input: jax.Array | None = None,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """A slot for a new job: an empty one (0 work), else merge the two jobs whose tails come
    first into one (heads min, tails max, work summed, the earlier head's impulse: work is
    conserved, its timing blurred) and empty the other.

    The row's cache follows in O(M): at every break the merged job's input replaces the two
    jobs' (the emptied slot's breaks are at 0).

    Args:
      jobs: (head, tail, work, impulse), each (M,).
      breaks_input: (2M,) `break_input(jobs)`, if known.

    Returns (slot () int32, the updated jobs, their (2M,) `break_input`).
    """
    head, tail, work, impulse = jobs
    if breaks_input is None:
        breaks_input = break_input(jobs)
    num_slots = tail.shape[-1]
    live = work > 0
    a = lane_argmin(jnp.where(live, tail, -jnp.inf))
    b = lane_argmin(jnp.where(jnp.arange(num_slots) == a, jnp.inf, tail))
    full = live[a]  # the earliest-tail live job is only chosen when no slot is empty
    # Gathers and scatters, not one-hot selects: XLA would recompute a and b in every element.
    job_a, job_b = ([x[i] for x in jobs] for i in (a, b))
    (ha, ta, wa, ia), (hb, tb, wb, ib) = job_a, job_b
    merged = (jnp.minimum(ha, hb), jnp.maximum(ta, tb), wa + wb, jnp.where(ha < hb, ia, ib))
    # a's job now lives in b: a is emptied (else the next query would count its work twice)
    a_or_none = jnp.where(full, a, num_slots)
    b_or_none = jnp.where(full, b, num_slots)
    new_jobs = tuple(
        x.at[a_or_none].set(0.0, mode="drop").at[b_or_none].set(m, mode="drop")
        for m, x in zip(merged, jobs, strict=True)
    )

    def change(x):  # what the merge changes in A(x-)
        return (
            _contrib(*merged, x, inclusive=False)
            - _contrib(*job_a, x, inclusive=False)
            - _contrib(*job_b, x, inclusive=False)
        )

    cache = breaks_input + change(jnp.concatenate([head, tail]))
    # the merged job's breaks are a head and a tail of a or b; the emptied slot's are at 0
    at_head = cache[jnp.where(ha < hb, a, b)]
    at_tail = cache[num_slots + jnp.where(ta > tb, a, b)]
    zero = jnp.zeros((), head.dtype)
    at_zero = _input_around(jobs, zero)[0] + change(zero)
    cache = cache.at[jnp.stack([a, a + num_slots, b, b + num_slots])].set(
        jnp.stack([at_zero, at_zero, at_head, at_tail])
    )
    return a, new_jobs, jnp.where(full, cache, breaks_input)


def free_server_slot(
    arrival: jax.Array, compute: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """A compute server's slot for a new job: an empty one, else merge its two earliest jobs
    into one at the later arrival a2 holding what is left then (max(a1 + c1 - a2, 0) + c2), which
    is exact from a2 on. arrival, compute: (M,). Returns (slot, the (M,) arrays)."""
    live = compute > 0
    a = lane_argmin(jnp.where(live, arrival, -jnp.inf))
    at_a = _one_hot(a, arrival.shape[-1])
    at_b = _one_hot(lane_argmin(jnp.where(at_a, jnp.inf, arrival)), arrival.shape[-1])
    full = lane_any(at_a & live)
    arr_a, arr_b, c_a, c_b = (_pick(x, at) for x in (arrival, compute) for at in (at_a, at_b))
    first, second = jnp.minimum(arr_a, arr_b), jnp.maximum(arr_a, arr_b)
    c_first = jnp.where(arr_a <= arr_b, c_a, c_b)
    c_second = c_a + c_b - c_first
    merged = (second, jnp.maximum(first + c_first - second, 0.0) + c_second)
    return a, tuple(
        jnp.where(full & at_b, m[..., None], x)
        for m, x in zip(merged, (arrival, compute), strict=True)
    )


def settle_server(arrival: jax.Array, compute: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A compute server's `settle`: jobs that arrived before now become one job at 0 holding
    the work left (exact for a FIFO server). arrival, compute: (M,)."""
    live = compute > 0
    past = live & (arrival < 0)
    left = busy_until(arrival, jnp.where(past, compute, 0.0))
    keep = _one_hot(lane_argmax(past.astype(jnp.int32)), arrival.shape[-1])
    arrival_new = jnp.where(past, 0.0, arrival)
    compute_new = jnp.where(keep, left[..., None], jnp.where(past, 0.0, compute))
    any_past = lane_any(past)
    return (
        jnp.where(any_past, arrival_new, arrival),
        jnp.where(any_past, compute_new, compute),
    )


@struct.dataclass
class TaskHops:
    """The real hops of a candidate's K paths packed into one sequence of T (path-major, in
    path order), the order in which `send_chunks` sends them: the padded hops of the (K, H) grid
    are left out, and T is padded only to the most real hops of any candidate. Made by
    `task_hops`; each field (..., T) except `first` and `last` (..., K) and `grid_home`
    (..., K, H)."""

    flat: jax.Array  # int32 index into the (K, H) hops (k H + h); 0 on padding
    path: jax.Array  # int32 path of each hop; K on padding
    start: jax.Array  # bool: the first hop of its path
    home: jax.Array  # int32 where the hop's link's rows are kept: the first hop on that link
    valid: jax.Array  # bool: a hop (False on padding)
    first: jax.Array  # (..., K) int32 position of each path's first hop, -1 if it has none
    last: jax.Array  # (..., K) int32 position of its last hop, -1 if it has none
    grid_home: jax.Array  # (..., K, H) int32 the homes in the (K, H) grid (`grid_homes`)


def grid_homes(path_links: jax.Array, hop_mask: jax.Array) -> jax.Array:
    """(K, H) int32: the flat index (k H + h) of the first real hop on each hop's link, for
    rows kept per (K, H) hop (a padded hop is its own). path_links, hop_mask: (K, H)."""
    flat, real = path_links.reshape(-1), hop_mask.reshape(-1)
    same = (flat[:, None] == flat[None, :]) & real[None, :]
    own = jnp.arange(flat.shape[0], dtype=jnp.int32)
    return (
        jnp.where(real, jnp.argmax(same, axis=1), own).astype(jnp.int32).reshape(path_links.shape)
    )


def task_hops(path_links: jax.Array, hop_mask: jax.Array, num_hops: int) -> TaskHops:
    """Pack the real hops of K paths (path_links, hop_mask: (K, H)) into `num_hops` positions
    (at least the number of real hops; `params.make_params` uses the largest over candidates).
    Jittable; vmap it for a batch of candidates."""
    num_paths, max_hops = hop_mask.shape
    real = hop_mask.reshape(-1)
    pos = jnp.where(real, jnp.cumsum(real) - 1, num_hops)
    flat = jnp.zeros(num_hops, jnp.int32).at[pos].set(jnp.arange(real.size), mode="drop")
    valid = jnp.arange(num_hops) < jnp.sum(real)
    path = jnp.where(valid, flat // max_hops, num_paths).astype(jnp.int32)
    link = jnp.where(valid, path_links.reshape(-1)[flat], -1)
    same = (link[:, None] == link[None, :]) & valid[:, None]  # [t', t]: t' on t's link
    own = jnp.arange(num_hops, dtype=jnp.int32)
    home = jnp.where(valid, jnp.argmax(same, axis=0), own).astype(jnp.int32)
    none = jnp.full((1,), num_paths + 1, jnp.int32)
    start = valid & (path != jnp.concatenate([none, path[:-1]]))
    end = valid & (path != jnp.concatenate([path[1:], none]))
    on_path = path[None, :] == jnp.arange(num_paths)[:, None]  # (K, T)

    def position(flag):
        hit = on_path & flag[None, :]
        return jnp.where(jnp.any(hit, 1), jnp.argmax(hit, 1), -1).astype(jnp.int32)

    grid_home = grid_homes(path_links, hop_mask)
    return TaskHops(flat, path, start, home, valid, position(start), position(end), grid_home)


def send_chunks(
    links: LinkRows,
    link_age_s: jax.Array,
    path_links: jax.Array,
    hops: TaskHops,
    hop_mask: jax.Array,
    chunk_bytes: jax.Array,
    packet_bytes: jax.Array,
    capacity_bps: jax.Array,
    bg_util: jax.Array,
    prop_s: jax.Array,
    bg_wait_s: jax.Array,
    temp_s: float | None,
    coupled: bool = False,
    per_path: bool | None = None,
) -> tuple[jax.Array, LinkRows, jax.Array]:
    """Send a task's K chunks one after the other along their paths and reserve their jobs.

    The rows of the paths' hops are gathered once and settled once (`settle` is idempotent);
    each link's rows are then kept at one home hop (the first on that link). Each hop in turn
    reads its row from its home, frees a slot on it (`free_slot`), passes the chunk through it
    (`through_hop`) and writes the row back to its home, so that a later path sees an earlier
    one's job on a shared link. Each path starts when its first link's pacer is free, and the
    paths that leave by one link share that pacer (module docstring). The written rows, with
    their caches and pacers, go back to the state in one scatter.

    Two orders give the same numbers (tested). Packed (`per_path` False): one scan over the T
    real hops of `hops` (path by path), a slot freed in each of its steps. Per path (True): a
    scan over the K paths of the (K, H) grid, each freeing the slots of its H hops at once (a
    path crosses a link at most once) and then scanning them. The packed order leaves out the
    padded hops: fewer hop steps, faster with many environments (1.37x on Abilene, 4096); the
    per-path one has fewer, larger steps, faster where the number of kernels sets the time, one
    environment (results/bench_sim_small_envs), or where packing drops nothing. By default
    (None) the packed order is taken where it leaves out some hop (T < K H); the batched
    rollouts set it by the number of environments (`wrappers.send_order_for`).

    A path sent first never sees the chunks sent after it, though in a FIFO those of their bits
    that get to a shared link before its own are served first: it is delivered too early (18-30%
    on EBONE, results/ns3_fidelity_sparse/diagnosis.md). With `coupled`
    (`SimConfig.coupled_chunks`) the paths are sent twice: a second sweep starts again from the
    settled rows and sends each path as before, now also queueing with the jobs that the later
    paths' chunks got on the same link in the first sweep (`later_chunks`). One is kept: on the
    four cells of the fidelity matrix tried (a NumPy prototype), a third sweep moved no
    response MAPE by more than 0.01 points.

    Args:
      links: the (L, M) rows of every link, times relative to when each row was written.
      link_age_s: (L,) time since each link's row was written.
      path_links: (K, H) int link ids of each path's hops (any id on padded hops).
      hops: the candidate's `task_hops` (T,). hop_mask: (K, H) bool, the hops to use (False on
        padded hops and on a path that carries nothing). chunk_bytes: (K,).
      capacity_bps, bg_util, prop_s, bg_wait_s: (K, H) constants of the hops.
      packet_bytes: () packet size; temp_s: smooth-mode temperature (None: exact).
      per_path: the order (above); None: packed where T < K H.

    Returns (delivered_s (K,): when each chunk's last byte reaches its path's end, 0 for a path
    that carries nothing; the updated rows; the updated ages: the used rows are rewritten
    relative to now, age 0).
    """
    num_links = links.head_s.shape[0]
    num_paths, max_hops = path_links.shape
    if per_path is None:
        per_path = hops.flat.shape[-1] >= num_paths * max_hops
    # the order's positions: each a hop of the (K, H) grid (`flat`), with its link's home
    if per_path:
        flat = jnp.arange(num_paths * max_hops)
        home, real = hops.grid_home.reshape(-1), hop_mask.reshape(-1)
        first_hop = jnp.arange(num_paths) * max_hops
    else:
        flat, home, first_hop = hops.flat, hops.home, jnp.maximum(hops.first, 0)
        real = hop_mask.reshape(-1)[flat] & hops.valid

    def placed(x):  # (K, H) -> the positions'
        return x.reshape(-1) if per_path else x.reshape(-1)[flat]

    hop_links = placed(path_links)
    age = link_age_s[hop_links][:, None]
    block = jax.tree.map(lambda x: x[hop_links], links)
    jobs = (block.head_s - age, block.tail_s - age, block.work_s, block.impulse_s)  # (T, M)
    settled = jax.vmap(settle, in_axes=(0, 0, None, 0))(
        jobs, placed(bg_util), temp_s, block.breaks_input
    )
    settled = (*settled[0], settled[1])
    # The sender's pacer on each path's first link: a path starts when it is free, and the paths
    # that leave by one link share it (their bytes interleaved, each spanning the group's).
    first_link = path_links[:, 0]
    pacer = jnp.maximum(links.pacer_s[first_link] - link_age_s[first_link], 0.0)  # (K,)
    bits = 8.0 * chunk_bytes
    first = hop_mask[:, 0]
    group = (first_link[:, None] == first_link[None, :]) & first[None, :]
    group_bits = lane_sum(jnp.where(group, bits[None, :], 0.0))  # (K,)
    pkt_bits = 8.0 * jnp.minimum(packet_bytes, chunk_bytes)
    sent = (pacer, pacer + (group_bits - pkt_bits) / capacity_bps[:, 0])
    pacer_done = pacer + group_bits / capacity_bps[:, 0]
    hop_constants = (capacity_bps, bg_util, prop_s, bg_wait_s)
    if per_path:
        sweep = _sweep_per_path(
            settled, home, hop_mask, sent, chunk_bytes, packet_bytes, hop_constants, temp_s
        )
    else:
        sweep = _sweep_packed(
            settled, hops, real, sent, bits, pkt_bits, tuple(map(placed, hop_constants)), temp_s
        )
    rows, delivered, jobs = sweep(None)
    if coupled and num_paths > 1:  # second sweep: each path queues with later ones
        extra = later_chunks(jobs, home, flat // max_hops, real, num_paths)
        rows, delivered, _ = sweep(extra)
    # a home row goes back to the state if some chunk went through it
    num_hops = home.shape[0]
    touched = jnp.zeros(num_hops, bool).at[home].max(real)
    idx = jnp.where(touched, hop_links, num_links)
    pacers = block.pacer_s - age[:, 0]  # relative to now, as the rows
    start_home = jnp.where(first, home[first_hop], num_hops)
    pacers = pacers.at[start_home].set(pacer_done, mode="drop")
    new = LinkRows(*rows, busy_s=busy_until(rows[0], rows[2]), pacer_s=pacers)
    links = jax.tree.map(lambda x, b: x.at[idx].set(b, mode="drop"), links, new)
    return delivered, links, link_age_s.at[idx].set(0.0, mode="drop")


def _reserve(jobs, job, a_breaks, slot):
    """Write a chunk's job (() x 4) into slot () of a row's jobs ((M,) x 4) and return the row
    with its (2M,) cache: `through_hop`'s (2M + 2,) A(s-), the chunk's breaks moved to where its
    job goes."""
    num_slots = jobs[0].shape[-1]
    jobs = tuple(r.at[slot].set(v) for r, v in zip(jobs, job, strict=True))
    cache = jnp.concatenate([a_breaks[:num_slots], a_breaks[num_slots + 1 : -1]])
    cache = cache.at[jnp.stack([slot, slot + num_slots])].set(a_breaks[num_slots :: num_slots + 1])
    return (*jobs, cache)


def _sweep_packed(settled, hops, real, sent, bits, pkt_bits, constants, temp_s):
    """`send_chunks`' sweep in the packed order: returns sweep(extra) -> (rows, (K,) delivered,
    the (T,) x 4 jobs), extra the (T, K - 1) x 4 `later_chunks` or None."""

    def hop(carry, x):
        rows, head, tail = carry
        home, use, start, path, capacity, util, prop, wait, extra = x
        # a path's first hop: its chunk is handed over by the sender
        head = jnp.where(start, jnp.where(use, sent[0][path], 0.0), head)
        tail = jnp.where(start, jnp.where(use, sent[1][path], 0.0), tail)
        mine = tuple(r[home] for r in rows)  # (M,) x 4, (2M,)
        slot, jobs, cache = free_slot(mine[:4], mine[4])
        job, a_breaks, (new_head, new_tail) = through_hop(
            head, tail, jobs, cache, bits[path], pkt_bits[path],
            capacity, util, prop, wait, temp_s, extra,
        )  # fmt: skip
        written = _reserve(jobs, job, a_breaks, slot)
        written = tuple(jnp.where(use, w, m) for w, m in zip(written, mine, strict=True))
        rows = tuple(r.at[home].set(w) for r, w in zip(rows, written, strict=True))
        head, tail = jnp.where(use, new_head, head), jnp.where(use, new_tail, tail)
        return (rows, head, tail), (tail, job)

    xs = (hops.home, real, hops.start, hops.path, *constants)
    zero = jnp.zeros((), jnp.float32)

    def sweep(extra):
        (rows, _, _), (tails, jobs) = jax.lax.scan(hop, (settled, zero, zero), (*xs, extra))
        return rows, jnp.where(hops.last >= 0, tails[jnp.maximum(hops.last, 0)], 0.0), jobs

    return sweep


def _sweep_per_path(settled, home, hop_mask, sent, chunk_bytes, packet_bytes, constants, temp_s):
    """`send_chunks`' sweep path by path over the (K, H) grid: returns sweep(extra) -> (rows,
    (K,) delivered, the (K H,) x 4 jobs), extra the (K H, K - 1) x 4 `later_chunks` or None."""
    num_paths, max_hops = hop_mask.shape

    def path(rows, x):
        path_home, path_mask, path_sent, path_bytes, capacity, util, prop, wait, extra = x
        mine = tuple(r[path_home] for r in rows)  # (H, M) x 4, (H, 2M)
        slot, jobs, cache = jax.vmap(free_slot)(mine[:4], mine[4])
        delivered, job, a_breaks = chunk_through_hops(
            jobs, cache, path_mask, path_sent, path_bytes, packet_bytes,
            capacity, util, prop, wait, temp_s, extra,
        )  # fmt: skip
        written = jax.vmap(_reserve)(jobs, job, a_breaks, slot)
        written = tuple(
            jnp.where(path_mask[:, None], w, m) for w, m in zip(written, mine, strict=True)
        )
        rows = tuple(r.at[path_home].set(w) for r, w in zip(rows, written, strict=True))
        return rows, (delivered, job)

    def by_path(x):  # (K H, ...) -> (K, H, ...)
        return x.reshape(num_paths, max_hops, *x.shape[1:])

    xs = (by_path(home), hop_mask, sent, chunk_bytes, *constants)

    def sweep(extra):
        extra = None if extra is None else jax.tree.map(by_path, extra)
        rows, (delivered, jobs) = jax.lax.scan(path, settled, (*xs, extra))
        return rows, delivered, tuple(j.reshape(-1) for j in jobs)

    return sweep


def later_chunks(
    jobs: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    home: jax.Array,
    path: jax.Array,
    real: jax.Array,
    num_paths: int,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The jobs of the later paths of a task on each hop's link: what each hop queues with in
    `send_chunks`' second sweep.

    Args:
      jobs: (head_s, tail_s, work_s, impulse_s), each (T,): the job each hop's chunk got in the
        first sweep, at the positions of `send_chunks`' order.
      home: (T,) the positions' homes (two hops share a link when they share a home); path: (T,)
        the path of each; real: (T,) bool, the hops used.

    Returns (head_s, tail_s, work_s, impulse_s), each (T, K - 1): at [t, x] the job of path
    path[t] + 1 + x on the link of hop t, all 0 (no job) where that path does not cross it,
    carries nothing there or does not exist. A path crosses a link at most once.
    """
    home = jnp.where(real, home, -1)
    same = (home[:, None] == home[None, :]) & real[:, None]  # [t, t']: t' on t's link
    later = path[None, :] - path[:, None] - 1  # [t, t']: x of t' seen from t
    wanted = same[:, :, None] & (later[:, :, None] == jnp.arange(num_paths - 1))  # (T, T', X)

    def pick(field):  # (T,) -> (T, X)
        return lane_sum(jnp.where(wanted, field[None, :, None], 0.0), axis=1)

    return tuple(pick(f) for f in jobs)


def serve_compute(
    job_arrival_s: jax.Array,
    job_compute_s: jax.Array,
    arrival_s: jax.Array,
    temp_s: float | None,
) -> jax.Array:
    """() wait of a task whose data is all in at arrival_s at a FIFO server (by data arrival,
    non-preemptive) that has the (M,) remembered jobs (arrival, compute; 0 compute: empty).
    Earlier-reserved jobs arriving at the same instant go first."""
    a = job_arrival_s
    if temp_s is None:
        ahead = (a <= arrival_s).astype(a.dtype)
    else:
        ahead = jax.nn.sigmoid((arrival_s - a) / temp_s)
    # Q(x-) = max(0, max_{j ahead} [sum_{i ahead, a_i >= a_j} c_i - (x - a_j)])
    later = a[None, :] >= a[:, None]  # later[j, i]: a_i >= a_j
    backlog = lane_sum(jnp.where(later, ahead * job_compute_s, 0.0)) - (arrival_s - a)
    if temp_s is None:
        return soft_max2(soft_max_masked(backlog, ahead, temp_s), 0.0, temp_s)
    # The weights enter as logs (log-sigmoid): a weight that underflows next to the largest
    # backlog would make the log-sum-exp's gradient 0 * inf (NaN) under heavy load.
    log_ahead = jax.nn.log_sigmoid((arrival_s - a) / temp_s)
    soft = temp_s * lane_logsumexp(backlog / temp_s + log_ahead, jnp.ones_like(a))
    return soft_max2(soft, 0.0, temp_s)


def busy_until(start_s: jax.Array, work_s: jax.Array) -> jax.Array:
    """(...,) time from now until a FIFO server has done all remembered work (0 if idle):
    max(0, max_j [start_j + sum_{i: start_i >= start_j} work_i]). start_s, work_s: (..., M);
    background is not counted."""
    later = start_s[..., None, :] >= start_s[..., :, None]  # [..., j, i]
    done = start_s + lane_sum(jnp.where(later, work_s[..., None, :], 0.0))
    return jnp.maximum(lane_max(jnp.where(work_s > 0, done, 0.0)), 0.0)

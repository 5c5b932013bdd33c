"""The queue math of `cpnjax.sim.dynamics` against its own definitions: settling the past and
merging jobs must not change what later chunks and tasks see (or conserve work where it may)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cpnjax.sim.dynamics import (
    break_input,
    chunk_through_hops,
    fifo_backlog,
    free_server_slot,
    free_slot,
    serve_compute,
    settle,
    settle_server,
)
from cpnjax.sim.params import pack_probe_lanes, pack_task_hops

BG_UTIL = 0.3
PACKET_S = 0.3


def random_jobs(rng, m=8):
    """(head, tail, work, impulse), each (m,): jobs before, across and after now (0), some
    empty, some point jobs, one settled-style impulse exactly at 0."""
    head = rng.uniform(-10, 5, m)
    tail = head + rng.uniform(0, 6, m) * (rng.random(m) < 0.8)
    work = rng.uniform(0.1, 4, m) * (rng.random(m) < 0.9)
    head[0] = tail[0] = 0.0
    impulse = np.where(tail > head, np.minimum(PACKET_S, work), work)
    return tuple(jnp.asarray(x, jnp.float32) for x in (head, tail, work, impulse))


def backlog_seen_by_a_new_job(jobs, head_s, tail_s):
    """(2,) backlog at the head and tail of a 1 link-second job added at [head_s, tail_s]."""
    new = (head_s, tail_s, 1.0, PACKET_S)
    both = tuple(jnp.append(x, v) for x, v in zip(jobs, new, strict=True))
    return np.asarray(fifo_backlog(*both, BG_UTIL, jnp.array([head_s, tail_s]), None))


@pytest.mark.parametrize("seed", range(40))
def test_settling_the_past_changes_no_later_backlog(seed):
    rng = np.random.default_rng(seed)
    jobs = random_jobs(rng)
    settled, _ = settle(jobs, BG_UTIL, None)
    for _ in range(3):
        head = rng.uniform(0, 8)
        tail = head + rng.uniform(0, 3)
        np.testing.assert_allclose(
            backlog_seen_by_a_new_job(settled, head, tail),
            backlog_seen_by_a_new_job(jobs, head, tail),
            atol=1e-5,
        )


def test_settling_frees_the_slots_of_jobs_that_are_all_in():
    # Three jobs all in before now with a backlog left; one still to come.
    jobs = tuple(
        jnp.array(x, jnp.float32)
        for x in (
            [-3.0, -2.0, -1.0, 2.0],  # head
            [-3.0, -2.0, -1.0, 3.0],  # tail
            [1.0, 1.5, 1.5, 1.0],  # work
            [1.0, 1.5, 1.5, 0.1],  # impulse
        )
    )
    (head, tail, work, impulse), _ = settle(jobs, 0.0, None)
    # Served at rate 1: the first is done at -2; 1.5 at -2, 0.5 left at -1, + 1.5; 1 left now.
    np.testing.assert_allclose(work, [1.0, 0.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(impulse, [1.0, 0.0, 0.0, 0.1], atol=1e-6)
    np.testing.assert_allclose(head, [0.0, 0.0, 0.0, 2.0])


def test_a_settled_backlog_survives_the_next_settle():
    # The backlog parked at exactly now is not "before now": settling again keeps it.
    jobs = tuple(
        jnp.array(x, jnp.float32)
        for x in ([0.0, -1.0, 0.0], [0.0, -0.5, 0.0], [2.0, 0.2, 0.0], [2.0, 0.05, 0.0])
    )
    again, _ = settle(jobs, 0.0, None)
    # The small job (0.05 at -1, then 0.15 over half a second) has drained by now.
    np.testing.assert_allclose(again[2], [2.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        backlog_seen_by_a_new_job(again, 0.0, 1.0), backlog_seen_by_a_new_job(jobs, 0.0, 1.0)
    )


def test_a_full_link_merges_its_two_earliest_jobs_and_conserves_work():
    rng = np.random.default_rng(0)
    head = jnp.asarray(rng.uniform(0, 5, 4), jnp.float32)
    jobs = (head, head + 1.0, jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.full((4,), 0.1))
    slot, merged, _ = free_slot(jobs)
    a, b = np.argsort(np.asarray(jobs[1]))[:2]
    assert int(slot) == a  # freed for the new job
    # The other of the two holds both: their span and their summed work.
    assert float(merged[0][b]) == pytest.approx(min(float(jobs[0][a]), float(jobs[0][b])))
    assert float(merged[1][b]) == pytest.approx(max(float(jobs[1][a]), float(jobs[1][b])))
    assert float(merged[2][b]) == pytest.approx(float(jobs[2][a] + jobs[2][b]))
    # Conserved, and the freed slot is empty: the next query must not count a's work twice.
    assert float(jnp.sum(merged[2])) == pytest.approx(10.0)
    assert float(merged[2][slot]) == 0.0 and float(merged[3][slot]) == 0.0
    # With an empty slot nothing merges.
    jobs = tuple(x.at[2].set(0.0) for x in jobs)
    slot, same, _ = free_slot(jobs)
    assert int(slot) == 2
    for a, b in zip(same, jobs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(10))
def test_settling_a_compute_server_changes_no_later_wait(seed):
    rng = np.random.default_rng(seed)
    arrival = jnp.asarray(rng.uniform(-5, 3, 8), jnp.float32)
    compute = jnp.asarray(rng.uniform(0.2, 2, 8) * (rng.random(8) < 0.9), jnp.float32)
    settled = settle_server(arrival, compute)
    for x in rng.uniform(0, 6, 4):
        assert float(serve_compute(*settled, x, None)) == pytest.approx(
            float(serve_compute(arrival, compute, x, None)), abs=1e-5
        )


def test_merging_a_full_server_is_exact_after_the_later_arrival():
    arrival = jnp.array([1.0, 2.0, 4.0])
    compute = jnp.array([3.0, 1.0, 1.0])
    slot, merged = free_server_slot(arrival, compute)
    assert int(slot) == 0
    # Job 0 runs 1..4, job 1 4..5: one job at 2 holding 3 s.
    np.testing.assert_allclose(merged[0][1:], [2.0, 4.0])
    np.testing.assert_allclose(merged[1][1:], [3.0, 1.0])
    for x in (2.5, 4.5, 7.0):
        merged_rest = (merged[0].at[0].set(0.0), merged[1].at[0].set(0.0))
        assert float(serve_compute(*merged_rest, x, None)) == pytest.approx(
            float(serve_compute(arrival, compute, x, None))
        )


def test_settle_is_jit_and_vmap_friendly():
    rng = np.random.default_rng(1)
    batch = [random_jobs(rng) for _ in range(3)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *batch)
    out, _ = jax.jit(jax.vmap(settle, in_axes=(0, None, None)))(stacked, BG_UTIL, None)
    for i, jobs in enumerate(batch):
        for a, b in zip(settle(jobs, BG_UTIL, None)[0], out, strict=True):
            np.testing.assert_allclose(a, b[i], atol=1e-6)


def test_task_hops_pack_the_real_hops_and_keep_each_link_at_its_first():
    links = np.array([[0, 1, 2], [0, 3, 0], [5, 1, 0]])
    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 1, 0]], bool)
    hops = pack_task_hops(links, mask, num_hops=9)  # two positions of padding
    np.testing.assert_array_equal(hops.flat[:7], [0, 1, 2, 3, 4, 6, 7])
    np.testing.assert_array_equal(hops.path, [0, 0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(hops.valid, [1] * 7 + [0] * 2)
    np.testing.assert_array_equal(hops.start, [1, 0, 0, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(hops.home, [0, 1, 2, 0, 4, 5, 1, 7, 8])  # padding: its own
    np.testing.assert_array_equal(hops.first, [0, 3, 5])
    np.testing.assert_array_equal(hops.last, [2, 4, 6])
    # batched over leading axes, one packing each, to the most real hops of any (7)
    both = pack_task_hops(np.stack([links, links[::-1]]), np.stack([mask, mask[::-1]]))
    np.testing.assert_array_equal(both.home[0], hops.home[:7])
    np.testing.assert_array_equal(both.home[1], [0, 1, 2, 3, 2, 1, 6])
    # a path without hops has no first or last; too few positions are refused
    empty = pack_task_hops(links, mask & np.array([[1], [0], [1]], bool))
    np.testing.assert_array_equal(empty.first, [0, -1, 3])
    np.testing.assert_array_equal(empty.last, [2, -1, 4])
    with pytest.raises(ValueError, match="7 real hops"):
        pack_task_hops(links, mask, num_hops=6)


def test_probe_lanes_pack_whole_paths_longest_first():
    # N = 2 candidates x K = 2 paths of 3, 1, 2 and 0 hops (H = 3)
    mask = np.arange(3) < np.array([[3, 1], [2, 0]])[..., None]
    lanes = pack_probe_lanes(mask)  # lanes of 3 and of 6 both take 6 hops: the shorter wins
    np.testing.assert_array_equal(lanes.hop, [[0, 1, 2], [6, 7, 3]])  # flat n K H + k H + h
    np.testing.assert_array_equal(lanes.real, np.ones((2, 3), bool))
    np.testing.assert_array_equal(lanes.start, [[1, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(lanes.end, [[2, 5], [4, -1]])  # p Λ + j; -1: no hops
    wide = pack_probe_lanes(mask, lane_hops=4, num_lanes=3)  # the 1-hop path fits lane 0
    np.testing.assert_array_equal(wide.hop, [[0, 1, 2, 3], [6, 7, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(wide.real.sum(-1), [4, 2, 0])
    np.testing.assert_array_equal(wide.end, [[2, 3], [5, -1]])
    both = pack_probe_lanes(np.stack([mask, mask[::-1]]))  # one packing per table
    np.testing.assert_array_equal(both.end[0], lanes.end)
    np.testing.assert_array_equal(both.hop[1], [[6, 7, 8], [0, 1, 9]])
    np.testing.assert_array_equal(both.end[1], [[4, -1], [2, 5]])
    grid = pack_probe_lanes(mask, per_path=True)  # a lane per path: the (N, K, H) grid
    assert grid.per_path and not lanes.per_path
    np.testing.assert_array_equal(grid.hop, np.arange(12).reshape(4, 3))
    np.testing.assert_array_equal(grid.real, mask.reshape(4, 3))
    np.testing.assert_array_equal(grid.start, np.arange(3) == np.zeros((4, 1)))
    np.testing.assert_array_equal(grid.end, [[2, 3], [7, -1]])
    with pytest.raises(ValueError, match="shorter than a path"):
        pack_probe_lanes(mask, lane_hops=2)
    with pytest.raises(ValueError, match="need 2 lanes"):
        pack_probe_lanes(mask, num_lanes=1)
    with pytest.raises(ValueError, match="prefix"):
        pack_probe_lanes(mask[..., ::-1])


@pytest.mark.parametrize("seed", range(20))
def test_settle_and_free_slot_keep_the_row_cache_exact(seed):
    # The O(M) updates of `break_input` agree with recomputing it from the new jobs.
    rng = np.random.default_rng(seed)
    jobs = random_jobs(rng)
    if seed % 2:  # a full row: free_slot merges
        jobs = (jobs[0], jobs[1], jnp.where(jobs[2] > 0, jobs[2], 0.5), jobs[3])
    cache = break_input(jobs)
    settled, settled_cache = settle(jobs, BG_UTIL, None, cache)
    np.testing.assert_allclose(settled_cache, break_input(settled), atol=1e-5)
    slot, freed, freed_cache = free_slot(settled, settled_cache)
    np.testing.assert_allclose(freed_cache, break_input(freed), atol=1e-5)
    assert float(freed[2][slot]) == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_a_chunk_hop_from_the_cache_equals_the_full_backlog_formula(seed):
    # One hop: the O(M) chunk query against fifo_backlog of the jobs with the chunk appended.
    rng = np.random.default_rng(seed)
    jobs, _ = settle(random_jobs(rng), BG_UTIL, None)
    slot, jobs, cache = free_slot(jobs)
    capacity, size = 1e9, float(rng.uniform(1e5, 5e6))
    one = lambda x: jnp.asarray([x], jnp.float32)  # noqa: E731
    start = float(rng.uniform(0, 2))  # the sender's pacer is busy until then
    sent = (jnp.float32(start), jnp.float32(start + 8 * (size - 9000.0) / capacity))
    delivered, job, a_breaks = chunk_through_hops(
        tuple(x[None] for x in jobs),
        cache[None],
        jnp.array([True]),
        sent,
        jnp.float32(size),
        jnp.float32(9000.0),
        one(capacity),
        one(BG_UTIL),
        one(0.0),
        one(0.0),
        None,
    )
    head, tail, work, impulse = (float(x[0]) for x in job)
    both = tuple(jnp.append(x, v) for x, v in zip(jobs, (head, tail, work, impulse), strict=True))
    q, full_breaks = fifo_backlog(*both, BG_UTIL, jnp.array([head, tail]), None, with_input=True)
    np.testing.assert_allclose(a_breaks[0], full_breaks, rtol=1e-5, atol=1e-6)
    pkt = 8 * 9000.0 / capacity
    np.testing.assert_allclose(float(delivered), tail + max(float(q[1]), pkt), rtol=1e-5)


def test_smooth_server_wait_has_finite_gradients_when_a_weight_underflows():
    # Random servers of 8 jobs around the task's arrival: where the largest backlog's "ahead"
    # weight is tiny, the log-sum-exp over weights had a 0 * inf (NaN) gradient (~0.2% of such
    # draws before the weights entered as log-sigmoids).
    from cpnjax.sim.dynamics import serve_compute

    temp, n = 3e-4, 50_000
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    arrivals = jax.random.uniform(k1, (n, 8), minval=-0.3, maxval=0.3)
    computes = jax.random.uniform(k2, (n, 8), maxval=0.2) * (jax.random.uniform(k4, (n, 8)) < 0.7)
    x = jax.random.uniform(k3, (n,), minval=-0.1, maxval=0.3)

    def wait(a, c, x):
        return serve_compute(a, c, x, temp)

    grads = jax.jit(jax.vmap(jax.grad(wait, argnums=(0, 1, 2))))(arrivals, computes, x)
    for g in grads:
        assert np.isfinite(np.asarray(g)).all()

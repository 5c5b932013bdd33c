import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import fork_params, line_params, task, with_link_job, with_node_job
from hypothesis import given, settings
from hypothesis import strategies as st

from cpnjax.policies import base1, base2, greedy_joint
from cpnjax.scenario import ScenarioConfig, make_scenario
from cpnjax.sim import (
    Action,
    SimConfig,
    arrive,
    candidates,
    make_batched_rollout,
    make_params,
    observe,
    observe_idle,
    reset,
    rollout,
    step,
    task_arrays,
)
from cpnjax.sim.dynamics import busy_until, probe_through_hops
from cpnjax.sim.params import with_background_scale

HARD = SimConfig(probe_noise=False)
ONE_PATH = Action(node_slot=jnp.asarray(0, jnp.int32), split=jnp.array([1.0]))


def run_one(params, t, state=None, action=ONE_PATH, config=HARD):
    state = reset(params, jax.random.key(0)) if state is None else state
    state = arrive(state, t)
    return step(params, state, t, action, config)


def test_coupled_chunks_on_a_single_path_change_nothing():
    # one path has no later path to queue with (and once crashed on an empty fold)
    params = line_params(num_hops=2)
    _, one = run_one(params, task(1e6))
    _, coupled = run_one(params, task(1e6), config=dataclasses.replace(HARD, coupled_chunks=True))
    assert float(coupled.response_s) == float(one.response_s)


def test_one_task_on_an_idle_path_matches_a_hand_computation():
    # 2 hops of 1 Gbit/s, 1 ms each, 1 MB in 9000 B packets, 5 ms compute:
    # last byte leaves hop 1 at 8 ms; hop 2 is fed one packet (72 us) behind: 8.072 ms,
    # plus 2 x 1 ms propagation = 10.072 ms transmission; response 15.072 ms.
    params = line_params(num_hops=2)
    _, info = run_one(params, task(1e6))
    assert float(info.transmission_s) == pytest.approx(10.072e-3, rel=1e-5)
    assert float(info.wait_s) == 0.0
    assert float(info.response_s) == pytest.approx(15.072e-3, rel=1e-5)


def test_background_interleaved_in_fifo_order_and_its_mean_wait():
    params = line_params(num_hops=1, bg_util=0.5, bg_wait_s=1e-4)
    _, info = run_one(params, task(1e6))
    # Paced at 1 Gbit/s, the last packet is handed over at 7.928 ms; the background that arrived
    # meanwhile (0.5 x 7.928 ms of line time) is served before it, FIFO: 0.1 ms wait + 8 ms +
    # 3.964 ms, + 1 ms propagation.
    assert float(info.transmission_s) == pytest.approx(13.064e-3, rel=1e-5)


def test_background_noise_draws_each_hop_wait_with_the_mean_wait():
    # One hop at u = 0.5, mean wait 0.1 ms: the drawn wait is 0 half of the time, else
    # exponential with mean 0.2 ms, so the mean transmission is the default's constant one.
    params = line_params(num_hops=1, bg_util=0.5, bg_wait_s=1e-4)
    noisy = dataclasses.replace(HARD, background_noise=True)
    keys = jax.random.split(jax.random.key(1), 4000)
    one = lambda k: run_one(params, task(1e6), reset(params, k), config=noisy)[1]  # noqa: E731
    tx = np.asarray(jax.jit(jax.vmap(one))(keys).transmission_s)
    mean_tx = float(run_one(params, task(1e6))[1].transmission_s)
    wait = tx - (mean_tx - 1e-4)
    idle = np.abs(wait) < 1e-7
    assert idle.mean() == pytest.approx(0.5, abs=0.03)
    assert wait.mean() == pytest.approx(1e-4, rel=0.06)
    assert wait[~idle].mean() == pytest.approx(2e-4, rel=0.06)


def test_fifo_link_waits_behind_a_known_backlog():
    # 4 ms of an earlier task's bytes all queued at the link now: they go first.
    params = line_params(num_hops=1)
    state = with_link_job(reset(params, jax.random.key(0)), 0, 0.0, 0.0, 4e-3)
    _, info = run_one(params, task(1e6), state=state)
    assert float(info.transmission_s) == pytest.approx((4 + 8 + 1) * 1e-3, rel=1e-5)


def link_busy_until(state, link=0):
    return float(busy_until(state.links.head_s[link], state.links.work_s[link]))


def test_a_chunk_that_gets_to_a_link_before_reserved_work_is_served_first():
    # An earlier task's 3 ms of bytes (still upstream) reach the link evenly from 5 ms to 8 ms.
    # 100 kB at 1 Gbit/s take 0.8 ms: done long before 5 ms, so no wait, and the reservation
    # stands.
    params = line_params(num_hops=1)
    state = with_link_job(reset(params, jax.random.key(0)), 0, 5e-3, 8e-3, 3e-3, impulse_s=0.072e-3)
    new_state, info = run_one(params, task(1e5), state=state)
    assert float(info.transmission_s) == pytest.approx(1.8e-3, rel=1e-5)
    jobs = sorted(
        zip(
            *(
                np.asarray(x[0])
                for x in (
                    new_state.links.head_s,
                    new_state.links.tail_s,
                    new_state.links.work_s,
                )
            ),
            strict=True,
        )
    )
    assert jobs[-1] == pytest.approx((5e-3, 8e-3, 3e-3), rel=1e-6)  # still arrives as before
    assert jobs[-2] == pytest.approx((0.0, 0.728e-3, 0.8e-3), rel=1e-5, abs=1e-9)  # ours
    # 1 MB (8 ms) overlaps it: its head is there first. Its last packet is handed over at
    # 7.928 ms; by then the earlier task has put in one packet (0.072 ms) at 5 ms and
    # 2.928 / 3 x (3 - 0.072) ms since, served before it: 7.928 + 8 + 2.929728 - 7.928 + 1.
    new_state, info = run_one(params, task(1e6), state=state)
    assert float(info.transmission_s) == pytest.approx(11.929728e-3, rel=1e-5)
    assert link_busy_until(new_state) == pytest.approx(11e-3, rel=1e-5)


def test_compute_serves_in_order_of_data_arrival():
    # An earlier task's data gets to the server at 20 ms and computes 50 ms. This task's data
    # is in at 9 ms and computes 5 ms: it runs first (9-14 ms); the server is done at 70 ms.
    params = line_params(num_hops=1, compute_s=5e-3)
    state = with_node_job(reset(params, jax.random.key(0)), 1, 20e-3, 50e-3)
    node_busy_until = lambda s: float(  # noqa: E731
        busy_until(s.node_job_arrival_s[1], s.node_job_compute_s[1])
    )
    new_state, info = run_one(params, task(1e6), state=state)
    assert float(info.wait_s) == 0.0
    assert node_busy_until(new_state) == pytest.approx(70e-3, rel=1e-6)
    # With 15 ms of compute it overlaps: the earlier task waits 4 ms, done at 74 ms.
    params = line_params(num_hops=1, compute_s=15e-3)
    new_state, info = run_one(params, task(1e6), state=state)
    assert float(info.wait_s) == 0.0
    assert node_busy_until(new_state) == pytest.approx(74e-3, rel=1e-6)
    # Behind a 50 ms job whose data came in at 0 ms, data in at 9 ms waits 41 ms.
    state = with_node_job(reset(params, jax.random.key(0)), 1, 0.0, 50e-3)
    _, info = run_one(params, task(1e6), state=state)
    assert float(info.wait_s) == pytest.approx(41e-3, rel=1e-5)


def test_fifo_compute_waits_for_the_task_ahead():
    params = line_params(num_hops=1, compute_s=50e-3)
    state, first = run_one(params, task(1e6))
    _, second = run_one(params, task(1e6, interarrival_s=10e-3), state=state)
    # first: data in at 9 ms, computes until 59 ms. second arrives at 10 ms; its link is free
    # again at 10 ms -> data in at 19 ms (relative 9 ms), waits until 59 ms: 40 ms.
    assert float(first.wait_s) == 0.0
    assert float(second.transmission_s) == pytest.approx(9e-3, rel=1e-5)
    assert float(second.wait_s) == pytest.approx(40e-3, rel=1e-4)


def test_bytes_are_conserved_on_a_shared_link():
    # Two copies of the same one-hop path: the link must carry both halves back to back,
    # exactly the time of the whole task.
    params = line_params(num_hops=1, num_paths=2, real_paths=2)
    halves = Action(node_slot=jnp.asarray(0, jnp.int32), split=jnp.array([0.5, 0.5]))
    whole = Action(node_slot=jnp.asarray(0, jnp.int32), split=jnp.array([1.0, 0.0]))
    s_halves, i_halves = run_one(params, task(1e6), action=halves)
    s_whole, i_whole = run_one(params, task(1e6), action=whole)
    assert link_busy_until(s_halves) == pytest.approx(8e-3, rel=1e-5)
    assert link_busy_until(s_whole) == pytest.approx(8e-3, rel=1e-5)
    # The sender interleaves the halves: both end when the whole would (8 + 1 ms).
    assert float(i_halves.transmission_s) == pytest.approx(9e-3, rel=1e-5)
    assert float(i_whole.transmission_s) == pytest.approx(9e-3, rel=1e-5)


def test_a_tasks_paths_queue_with_each_other_on_a_shared_link():
    # 1 MB split 3:1 over two paths that meet on link 2 (1 Gbit/s, 1 ms, 9000 B packets).
    # Both chunks get to link 2 from 1.072 ms on at line rate, path 1's until 3.0 ms, path
    # 0's until 7.0 ms: 8 ms of work from 1.072 ms on, so path 0's last byte, the last in
    # FIFO, leaves at 9.072 ms and arrives at 10.072 ms; path 1's leaves behind the bits of
    # both that came before 3.0 ms (2.072 ms backlog): 6.072 ms. Sent one after the other
    # without coupling, path 0 never sees path 1's bits: 8.072 ms.
    params = fork_params()
    split = Action(node_slot=jnp.asarray(0, jnp.int32), split=jnp.array([0.75, 0.25]))
    both = dataclasses.replace(HARD, coupled_chunks=True)
    _, coupled = run_one(params, task(1e6), action=split, config=both)
    _, alone = run_one(params, task(1e6), action=split, config=HARD)
    np.testing.assert_allclose(coupled.path_transmission_s, [10.072e-3, 6.072e-3], rtol=1e-5)
    np.testing.assert_allclose(alone.path_transmission_s, [8.072e-3, 6.072e-3], rtol=1e-5)
    # with an equal split both chunks leave link 2 together, at the end of its 8 ms of work
    halves = Action(node_slot=jnp.asarray(0, jnp.int32), split=jnp.array([0.5, 0.5]))
    _, equal = run_one(params, task(1e6), action=halves, config=both)
    np.testing.assert_allclose(equal.path_transmission_s, [10.072e-3, 10.072e-3], rtol=1e-5)


def test_a_task_queues_behind_earlier_tasks_at_the_sender():
    # The sender's pacer (as the NS-3 harness's) hands a 1 MB task over in 8 ms. A 100 kB task
    # arriving 0.4 ms later starts at 7.6 ms (relative), is handed over by 8.328 ms, and gets
    # through the idle link one packet (72 us) and 1 ms later: 9.4 ms, not 2.5 ms
    # (interleaved with the first task's bytes).
    from cpnjax.sim.reference import simulate

    params = line_params(num_hops=1)
    state, first = run_one(params, task(1e6))
    _, second = run_one(params, task(1e5, interarrival_s=0.4e-3), state=state)
    assert float(first.transmission_s) == pytest.approx(9e-3, rel=1e-5)
    assert float(second.transmission_s) == pytest.approx(9.4e-3, rel=1e-5)
    reference = simulate(params, [0.0, 0.4e-3], [0, 0], [0, 0], [1e6, 1e5], "base1")
    np.testing.assert_allclose(reference, [first.response_s, second.response_s], rtol=1e-5)
    # The pacer of a link it only crosses later (transit) does not hold a task back.
    params = line_params(num_hops=2)
    state = reset(params, jax.random.key(0))
    rows = state.links
    state = state.replace(links=rows.replace(pacer_s=rows.pacer_s.at[1].set(5e-3)))
    _, info = run_one(params, task(1e6), state=state)
    assert float(info.transmission_s) == pytest.approx(10.072e-3, rel=1e-5)


def scenario(topology="abilene", seed=0, **kw):
    cfg = dataclasses.replace(ScenarioConfig.test(), topology=topology, **kw)
    return make_scenario(cfg, seed)


def test_one_compile_serves_two_scenarios_of_one_padded_size():
    a = scenario(seed=0, max_hops=8, access_points=(0, 8))
    b = scenario(seed=1, max_hops=8, access_points=(3, 9))
    pa, pb = make_params(a, all_links=True), make_params(b, all_links=True)
    chex.assert_trees_all_equal_shapes(pa, pb)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(p, s, t):
        return rollout(p, s, t, greedy_joint, SimConfig())

    for sc, p in ((a, pa), (b, pb)):
        _, info = run(p, reset(p, jax.random.key(0)), task_arrays(sc.tasks))
        assert np.isfinite(np.asarray(info.response_s)).all()


def test_simulating_only_the_used_links_changes_no_number():
    sc = scenario()
    used, full = make_params(sc), make_params(sc, all_links=True)
    assert used.num_links < full.num_links == sc.topology.num_links
    # every simulated link is a topology link with its own constants
    ids = np.asarray(used.link_ids)
    np.testing.assert_array_equal(used.link_capacity_bps, np.asarray(full.link_capacity_bps)[ids])
    hop_mask = np.asarray(used.hop_mask)
    np.testing.assert_array_equal(
        ids[np.asarray(used.path_links)][hop_mask], np.asarray(full.path_links)[hop_mask]
    )
    tasks = task_arrays(sc.tasks)
    infos = [
        rollout(p, reset(p, jax.random.key(0)), tasks, greedy_joint, SimConfig())[1]
        for p in (used, full)
    ]
    chex.assert_trees_all_close(*infos, rtol=1e-6)


def test_vmap_over_environments_equals_a_python_loop():
    sc = scenario()
    params = make_params(sc)
    tasks = task_arrays(sc.tasks)
    keys = jax.random.split(jax.random.key(3), 4)
    shifted = jax.tree.map(lambda x: jnp.stack([jnp.roll(x, i) for i in range(4)]), tasks)
    run = lambda k, t: rollout(params, reset(params, k), t, base1, SimConfig())[1].response_s  # noqa: E731
    batched = make_batched_rollout(base1)(params, keys, shifted).response_s
    looped = jnp.stack(
        [jax.jit(run)(keys[i], jax.tree.map(lambda x, i=i: x[i], shifted)) for i in range(4)]
    )
    np.testing.assert_allclose(np.asarray(batched), np.asarray(looped), rtol=1e-6)


def test_padding_hops_leaves_real_outputs_unchanged():
    tight = scenario(access_points=(0, 8))
    padded = scenario(access_points=(0, 8), max_hops=tight.candidates.max_hops + 4)
    outs = []
    for sc in (tight, padded):
        p = make_params(sc)
        _, info = jax.jit(lambda p, s, t: rollout(p, s, t, greedy_joint, SimConfig()))(
            p, reset(p, jax.random.key(0)), task_arrays(sc.tasks)
        )
        outs.append(np.asarray(info.response_s))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6)


def three_path_setup():
    sc = scenario(access_points=(0, 8))
    params = make_params(sc)
    t = jax.tree.map(lambda x: x[0], task_arrays(sc.tasks))
    state = arrive(reset(params, jax.random.key(0)), t)
    obs = observe(params, state, t, HARD)
    slot = int(np.flatnonzero(np.asarray(obs.path_mask).all(-1))[0])  # a candidate with 3 paths
    return params, state, t, slot


@pytest.mark.parametrize("coupled", [False, True])
def test_gradients_match_finite_differences_in_smooth_mode(coupled):
    params, state, t, slot = three_path_setup()
    smooth = SimConfig(smooth_temp_s=1e-3, probe_noise=False, coupled_chunks=coupled)

    def response(logits):
        split = jax.nn.softmax(logits)
        action = Action(node_slot=jnp.asarray(slot, jnp.int32), split=split)
        return step(params, state, t, action, smooth)[1].response_s * 1e3  # ms

    logits = jnp.array([0.3, -0.2, 0.1])
    grad = jax.grad(response)(logits)
    assert np.abs(np.asarray(grad)).max() > 1e-3  # useful, not vanishing
    eps = 1e-2
    for i in range(3):
        e = jnp.zeros(3).at[i].set(eps)
        fd = (response(logits + e) - response(logits - e)) / (2 * eps)
        assert float(grad[i]) == pytest.approx(float(fd), rel=0.05, abs=2e-3)


def test_hard_mode_response_is_piecewise_differentiable_in_the_split():
    params, state, t, slot = three_path_setup()

    def response(split):
        action = Action(node_slot=jnp.asarray(slot, jnp.int32), split=split)
        return step(params, state, t, action, HARD)[1].response_s

    g = jax.grad(response)(jnp.array([0.5, 0.3, 0.2]))
    assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0


@settings(max_examples=25, deadline=None)
@given(
    split=st.lists(st.floats(-0.5, 1.5), min_size=3, max_size=3),
)
def test_off_simplex_splits_are_rejected(split):
    params, state, t, slot = three_path_setup()
    split = np.asarray(split, np.float32)
    on_simplex = (split >= -1e-6).all() and abs(split.sum() - 1) <= 1e-3  # env.SIMPLEX_TOL
    action = Action(node_slot=jnp.asarray(slot, jnp.int32), split=jnp.asarray(split))
    new_state, info = step(params, state, t, action, HARD)
    if on_simplex:
        assert np.isfinite(float(info.response_s)) and float(info.response_s) >= 0
    else:
        assert np.isnan(float(info.response_s))
        chex.assert_trees_all_equal(
            (new_state.links, new_state.node_job_compute_s),
            (state.links, state.node_job_compute_s),
        )


@settings(max_examples=20, deadline=None)
@given(
    util_lo=st.floats(0.0, 0.8),
    extra=st.floats(0.0, 0.15),
    split0=st.floats(0.05, 0.9),
    size=st.floats(1e4, 2e7),
    backlog=st.floats(0.0, 0.05),
)
def test_more_background_never_lowers_latency_and_latency_is_non_negative(
    util_lo, extra, split0, size, backlog
):
    params, state, t, slot = three_path_setup()
    t = t.replace(size_bytes=jnp.asarray(size, jnp.float32))
    # an earlier task's bytes queued on every link now, `backlog` seconds of them
    state = with_link_job(state, slice(None), 0.0, 0.0, backlog, slot=-1)
    cap = params.hop_capacity_bps
    split = jnp.array([split0, (1 - split0) / 2, (1 - split0) / 2])
    action = Action(node_slot=jnp.asarray(slot, jnp.int32), split=split)
    out = []
    for u in (util_lo, util_lo + extra):
        p = params.replace(
            hop_rate_bps=cap * (1 - u),
            hop_bg_util=jnp.full_like(cap, u),
            hop_bg_wait_s=u / (2 * (1 - u)) * 12000.0 / cap,
        )
        info = step(p, state, t, action, HARD)[1]
        for field in ("transmission_s", "wait_s", "compute_s", "response_s"):
            assert float(getattr(info, field)) >= 0.0
        assert (np.asarray(info.path_transmission_s) >= 0).all()
        out.append(float(info.response_s))
    assert out[1] >= out[0] * (1 - 1e-6)


def test_same_seed_same_result():
    a = scenario(seed=5)
    b = scenario(seed=5)
    np.testing.assert_array_equal(a.tasks.size_bytes, b.tasks.size_bytes)
    np.testing.assert_array_equal(a.background_bps, b.background_bps)
    assert a.devices == b.devices


@pytest.mark.parametrize(
    ("topology", "policy", "coupled"),
    [
        ("abilene", "greedy", True),
        ("tiscali", "greedy", True),
        ("abilene", "base1", True),
        ("abilene", "base1", False),
    ],
)
def test_jax_simulator_matches_the_numpy_reference(topology, policy, coupled):
    from cpnjax.sim.reference import simulate

    sc = scenario(topology, seed=2, num_tasks=40, load=0.5)
    params = make_params(sc)
    fn = {"greedy": greedy_joint, "base1": base1}[policy]
    config = dataclasses.replace(HARD, coupled_chunks=coupled)
    _, info = jax.jit(lambda p, s, t: rollout(p, s, t, fn, config))(
        params, reset(params, jax.random.key(0)), task_arrays(sc.tasks)
    )
    t = sc.tasks
    stream = (params, t.interarrival_s, t.access_point, t.arch, t.size_bytes, policy)
    ref = simulate(*stream, coupled=coupled)
    np.testing.assert_allclose(np.asarray(info.response_s), ref, rtol=2e-3)
    if policy == "base1":  # it splits every task over all paths, some of which meet
        other = simulate(*stream, coupled=not coupled)
        assert np.max(np.abs(other - ref) / ref) > 1e-2


def test_a_task_computed_where_it_arrives_has_no_transmission():
    from cpnjax.sim.reference import simulate

    sc = scenario(seed=0, num_tasks=30, access_points_compute=True)
    params = make_params(sc)
    tasks = task_arrays(sc.tasks)
    for fn, name in ((base2, "nearest"), (greedy_joint, "greedy")):
        _, info = jax.jit(lambda p, s, t, fn=fn: rollout(p, s, t, fn, HARD))(
            params, reset(params, jax.random.key(0)), tasks
        )
        local = np.asarray(info.node) == sc.access_points[np.asarray(sc.tasks.access_point)]
        assert local.any(), name
        np.testing.assert_array_equal(np.asarray(info.transmission_s)[local], 0.0)
        assert np.all(np.asarray(info.response_s) < 1.0), name
    _, info = jax.jit(lambda p, s, t: rollout(p, s, t, base1, HARD))(
        params, reset(params, jax.random.key(0)), tasks
    )
    t = sc.tasks
    ref = simulate(params, t.interarrival_s, t.access_point, t.arch, t.size_bytes, "base1")
    np.testing.assert_allclose(np.asarray(info.response_s), ref, rtol=2e-3)


def test_same_key_same_rollout_and_different_keys_different_probes():
    sc = scenario(background_util=0.6)
    params = make_params(sc)
    tasks = task_arrays(sc.tasks)
    run = make_batched_rollout(greedy_joint)
    keys = jnp.stack([jax.random.key(1), jax.random.key(1)])
    both = jax.tree.map(lambda x: jnp.stack([x, x]), tasks)
    info = run(params, keys, both)
    np.testing.assert_array_equal(np.asarray(info.response_s[0]), np.asarray(info.response_s[1]))
    t0 = jax.tree.map(lambda x: x[0], tasks)
    states = [arrive(reset(params, jax.random.key(k)), t0) for k in (1, 2)]
    obs = [observe(params, s, t0, SimConfig()) for s in states]
    assert not np.allclose(np.asarray(obs[0].path_delay_s), np.asarray(obs[1].path_delay_s))


def test_task_types():
    from cpnjax.latency import load_latency_table

    flops = load_latency_table().flops_m
    io = scenario(task_type="io", io_size_bytes=1e5, num_tasks=50).tasks
    assert (io.size_bytes == 1e5).all()
    heavy = scenario(task_type="compute", num_tasks=200).tasks
    mixed = scenario(task_type="mixed", num_tasks=200).tasks
    assert flops[heavy.arch].min() >= np.quantile(flops, 0.75)
    assert flops[heavy.arch].mean() > flops[mixed.arch].mean()
    assert (np.diff(mixed.arrival_s) > 0).all()
    with pytest.raises(ValueError, match="unknown task type"):
        scenario(task_type="video")


@pytest.mark.parametrize("topology", ["b4", "ebone", "sprintlink", "uscarrier", "kdl", "asn2k"])
def test_every_shipped_topology_simulates(topology):
    sc = scenario(topology, seed=1, num_tasks=8)
    params = make_params(sc)
    _, info = jax.jit(lambda p, s, t: rollout(p, s, t, greedy_joint, SimConfig()))(
        params, reset(params, jax.random.key(0)), task_arrays(sc.tasks)
    )
    response = np.asarray(info.response_s)
    assert np.isfinite(response).all() and (response > 0).all()
    assert (np.asarray(info.transmission_s) > 0).all()


def test_the_observation_reads_the_predictor_not_the_ground_truth():
    from cpnjax.latency import OraclePredictor

    sc = scenario(access_points=(0, 8))
    t = jax.tree.map(lambda x: x[0], task_arrays(sc.tasks))
    preds = []
    for predictor in (None, OraclePredictor()):
        params = make_params(sc, predictor)
        obs = observe(params, arrive(reset(params, jax.random.key(0)), t), t, HARD)
        cand = np.asarray(candidates(params, t).device)
        truth = np.asarray(params.true_compute_s)[int(t.arch), cand]
        preds.append((np.asarray(obs.pred_compute_s), truth))
    (learned_pred, truth), (oracle_pred, _) = preds
    np.testing.assert_allclose(oracle_pred, truth, rtol=1e-6)
    assert not np.allclose(learned_pred, truth, rtol=1e-4)  # a prediction, not the measurement


def test_the_default_prediction_is_the_learned_predictor_new_devices_from_n_measurements():
    from scipy.stats import spearmanr

    from cpnjax.latency import LearnedPredictor, load_latency_table

    sc = scenario(access_points=(0, 8))
    params = make_params(sc)
    pred = np.asarray(params.pred_compute_s)
    truth = np.asarray(params.true_compute_s)
    for d, name in enumerate(sc.devices):  # every device, known or new, is ranked well
        assert spearmanr(pred[:, d], truth[:, d])[0] > 0.9, name
    # A new device's column is its TSFT predictor from new_device_samples measurements:
    # fewer measurements give another prediction.
    new = sc.devices.index("gold_6226")
    assert "gold_6226" in sc.config.new_devices
    few = LearnedPredictor(sc.config.new_devices, samples=10)
    pred_few = few.predict_ms(load_latency_table(), sc.devices)[:, new] / 1e3
    assert not np.allclose(pred_few, pred[:, new], rtol=1e-3)
    tsft = LearnedPredictor(sc.config.new_devices, sc.config.new_device_samples)
    assert tsft.device_predictor("gold_6226").finetune_s > 0  # adapted, not the base model
    assert tsft.device_predictor("titanx_1").finetune_s == 0.0  # known to the base model


@pytest.mark.parametrize("topology", ["abilene", "sprintlink"])
def test_probes_in_packed_lanes_equal_one_probe_per_path(topology):
    """observe probes the N x K paths packed in lanes (`pack_probe_lanes`); each path's delay
    is what a probe of that path alone gives, on networks busy with earlier tasks."""
    sc = scenario(topology, seed=3, num_tasks=30, load=0.8)
    params = make_params(sc)
    assert params.probe_lanes.hop.size < params.path_links.size  # fewer hops than the grid
    tasks = task_arrays(sc.tasks)

    @jax.jit
    def both(params, tasks):
        def one(state, t):
            state = arrive(state, t)
            obs = observe(params, state, t, HARD)
            cand = candidates(params, t)
            probe = functools.partial(
                probe_through_hops, state.links, state.link_age_s, probe_bytes=params.probe_bytes
            )
            alone = jax.vmap(jax.vmap(probe))(
                cand.links,
                cand.hop_mask,
                capacity_bps=cand.capacity_bps,
                bg_util=cand.bg_util,
                prop_s=cand.prop_s,
                bg_wait_s=cand.bg_wait_s,
            )
            idle = observe_idle(params, state.key, t, HARD).path_delay_s
            state, _ = step(params, state, t, greedy_joint(obs), HARD)
            return state, (obs.path_delay_s, alone, idle)

        return jax.lax.scan(one, reset(params, jax.random.key(0)), tasks)[1]

    packed, alone, idle = both(params, tasks)
    assert float(jnp.max(packed - idle)) > 1e-4  # some probes queue behind earlier tasks
    np.testing.assert_allclose(packed, alone, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize(
    ("topology", "coupled", "temp_s"),
    [("abilene", False, None), ("ebone", True, None), ("abilene", True, 1e-3)],
)
def test_the_two_send_orders_give_the_same_numbers(topology, coupled, temp_s):
    """send_chunks path by path over the (K, H) grid and packed over the real hops: the same
    rollout (every latency, the final rows) and, in smooth mode, the same gradients."""
    sc = scenario(topology, seed=1, num_tasks=40, load=0.8)
    params = make_params(sc)
    assert params.task_hops.flat.shape[-1] < params.path_links[..., 0, :, :].size  # packs
    tasks = task_arrays(sc.tasks)
    config = SimConfig(probe_noise=False, coupled_chunks=coupled, smooth_temp_s=temp_s)

    @functools.partial(jax.jit, static_argnums=0)
    def run(per_path, params, tasks):
        cfg = dataclasses.replace(config, per_path_send=per_path)
        state, info = rollout(params, reset(params, jax.random.key(0)), tasks, base1, cfg)
        t = jax.tree.map(lambda x: x[-1], tasks)  # one more task, into the busy network
        state = arrive(state, t)
        slot = jnp.argmax(candidates(params, t).path_mask.sum(-1))

        def response(logits):
            action = Action(node_slot=slot, split=jax.nn.softmax(logits))
            return step(params, state, t, action, cfg)[1].response_s

        return info, state.links, jax.grad(response)(jnp.array([0.3, -0.2, 0.1]))

    (info_p, links_p, grad_p), (info_k, links_k, grad_k) = (
        run(per_path, params, tasks) for per_path in (True, False)
    )
    shared = np.asarray(info_p.split > 0).sum(-1) > 1
    assert shared.mean() > 0.5  # base1 splits most tasks, over paths that meet
    chex.assert_trees_all_close(info_p, info_k, rtol=1e-6, atol=1e-9)
    chex.assert_trees_all_close(links_p, links_k, rtol=1e-6, atol=1e-9)
    if temp_s is not None:
        assert float(jnp.abs(grad_k).max()) > 0.0
        np.testing.assert_allclose(grad_p, grad_k, rtol=1e-4, atol=1e-9)


def test_the_send_order_follows_the_number_of_environments_unless_set():
    from cpnjax.sim.wrappers import FEW_ENVS, send_order_for

    assert send_order_for(SimConfig(), 1).per_path_send is True
    assert send_order_for(SimConfig(), FEW_ENVS).per_path_send is True
    assert send_order_for(SimConfig(), FEW_ENVS + 1).per_path_send is None  # by shape
    packed = SimConfig(per_path_send=False, coupled_chunks=True)
    assert send_order_for(packed, 1) == packed


@pytest.mark.parametrize("topology", ["abilene", "tiscali"])
@pytest.mark.parametrize("probe_noise", [False, True])
def test_the_idle_observation_equals_observing_a_reset_network(topology, probe_noise):
    """observe_idle (episode resets) gives observe's numbers on a just-reset network, for every
    task of a stream, its first interarrival included, at the scenario's background and at a
    heavier one (the busiest link at 95%)."""
    sc = make_scenario(dataclasses.replace(ScenarioConfig.test(), topology=topology), seed=2)
    config = SimConfig(probe_noise=probe_noise)
    tasks = task_arrays(sc.tasks)
    keys = jax.random.split(jax.random.key(5), sc.tasks.num_tasks)
    base = make_params(sc)
    heavier = 0.95 / float(jnp.max(base.hop_bg_util))
    assert heavier > 1.0

    @jax.jit
    @functools.partial(jax.vmap, in_axes=(None, 0, 0))
    def both(params, key, t):
        seen = observe(params, arrive(reset(params, key), t), t, config)
        return seen, observe_idle(params, key, t, config)

    for params in (base, with_background_scale(base, heavier)):
        seen, idle = both(params, keys, tasks)
        assert float(jnp.max(seen.path_delay_s)) > 0.0  # probes cross real hops
        for name in seen.__dataclass_fields__:
            a, b = getattr(seen, name), getattr(idle, name)
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9, err_msg=name)

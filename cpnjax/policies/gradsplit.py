"""gradsplit: split ratios by gradient descent on the simulator's own differentiable latency
model, evaluated on what the controller observes (no ground truth).

For each candidate, the controller builds a *belief* of the links its paths cross from the
observation alone: each link holds one job at now with the observed backlog (`hop_backlog_s`)
as its work, its measured background utilisation and its line rate; the sender's pacer is
idle. Propagation and the waits behind background packets are not observed one by one, but the
probes carry them: each path gets the offset probe delay (observed) - probe delay (belief),
clipped at 0. The predicted transmission of a split x is then the simulator's own `send_chunks`
of the task's bytes x * B over the belief (paths that share a link see each other's bytes, as
in the simulator), plus the offsets, max over the used paths.

Optimisation: mirror descent (exponentiated gradient) on the simplex of the candidate's paths,
`steps` steps of the smooth model (temperature `temp_s`), each along the gradient scaled to a
max-norm of 1, from the water-filling split mixed 90/10 with the uniform one. Every iterate and
its cut version (shares below `cut` dropped) is scored by the *exact* model; the best of them
and of the water-filling split itself is kept, so the optimised prediction is never worse than
water-filling's under the belief. The node is the candidate with the lowest predicted response,
max(transmission, compute wait) + predicted compute, as greedy-joint picks it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cpnjax.policies.splits import water_fill
from cpnjax.sim import Action, Obs
from cpnjax.sim.dynamics import (
    SLOTS,
    LinkRows,
    break_input,
    busy_until,
    grid_homes,
    probe_through_hops,
    send_chunks,
    soft_max_masked,
    task_hops,
)
from cpnjax.sim.params import PACKET_BYTES, PROBE_BYTES

STEPS = 20
STEP_SIZE = 0.5
TEMP_S = 3e-4  # the simulator's default smooth temperature (results/gradient_quality)
CUT = 0.02
GATE_EPS = 1e-3


def belief(obs: Obs, slot: jax.Array):
    """The links of one candidate's paths as the controller believes them.

    Returns (rows: LinkRows with R = K*H rows of SLOTS jobs, home: (K, H) int row of each hop;
    hops of one link share a row)."""
    links, mask = obs.hop_links[slot], obs.hop_mask[slot]
    flat, real = links.reshape(-1), mask.reshape(-1)
    home = grid_homes(links, mask)
    zeros = jnp.zeros((flat.shape[0], SLOTS), jnp.float32)
    work = zeros.at[:, 0].set(jnp.where(real, obs.hop_backlog_s[slot].reshape(-1), 0.0))
    jobs = (zeros, zeros, work, work)  # one point job at now holding the backlog
    rows = LinkRows(
        *jobs,
        breaks_input=jax.vmap(break_input)(jobs),
        busy_s=busy_until(zeros, work),
        pacer_s=jnp.zeros(flat.shape[0], jnp.float32),
    )
    return rows, home


def predicted_transmission(
    obs: Obs,
    slot: jax.Array,
    split: jax.Array,
    temp_s: float | None,
    packet_bytes: float = PACKET_BYTES,
    probe_bytes: float = PROBE_BYTES,
) -> jax.Array:
    """() the belief model's transmission time of the task on candidate `slot` with `split`
    (K,) (exact with temp_s None, else smooth at that temperature)."""
    rows, home = belief(obs, slot)
    mask = obs.hop_mask[slot]
    capacity, util = obs.hop_capacity_bps[slot], obs.hop_bg_util[slot]
    age = jnp.zeros(home.size, jnp.float32)
    zero = jnp.zeros_like(capacity)
    probe = jax.vmap(
        functools.partial(probe_through_hops, rows, age, probe_bytes=jnp.float32(probe_bytes))
    )
    model_probe = probe(
        home, mask, capacity_bps=capacity, bg_util=util, prop_s=zero, bg_wait_s=zero
    )
    offset = jnp.maximum(obs.path_delay_s[slot] - model_probe, 0.0)
    used = obs.path_mask[slot] & (split > 0.0)
    delivered, _, _ = send_chunks(
        rows,
        age,
        home,
        task_hops(home, mask, num_hops=mask.size),
        mask & used[:, None],
        split * obs.size_bytes,
        jnp.float32(packet_bytes),
        capacity,
        util,
        zero,
        zero,
        temp_s,
    )
    if temp_s is None:
        gate = used.astype(delivered.dtype)
    else:
        gate = jnp.where(used, split / (split + GATE_EPS), 0.0)
    return soft_max_masked(delivered + offset, gate, temp_s)


def optimise_split(
    obs: Obs,
    slot: jax.Array,
    steps: int = STEPS,
    step_size: float = STEP_SIZE,
    temp_s: float = TEMP_S,
    cut: float = CUT,
) -> tuple[jax.Array, jax.Array]:
    """(split (K,) on the simplex over the candidate's paths, its exact predicted transmission)
    by mirror descent on the smooth belief model (see the module docstring)."""
    mask = obs.path_mask[slot]
    m = mask.astype(jnp.float32)
    uniform = m / jnp.maximum(m.sum(), 1.0)
    wf, _ = water_fill(obs.path_delay_s[slot], obs.path_free_bps[slot], mask, obs.size_bytes)
    smooth = jax.grad(lambda x: predicted_transmission(obs, slot, x, temp_s))
    exact = functools.partial(predicted_transmission, obs, slot, temp_s=None)

    def cut_split(x):
        kept = jnp.where(x >= cut, x, 0.0)
        return jnp.where(kept.sum() > 0, kept / jnp.maximum(kept.sum(), 1e-30), x)

    def better(best, x):
        value = exact(x)
        take = value < best[1]
        return jnp.where(take, x, best[0]), jnp.where(take, value, best[1])

    def body(carry, _):
        x, best = carry
        g = jnp.where(mask, smooth(x), 0.0)
        g = g / jnp.maximum(jnp.abs(g).max(), 1e-30)
        x = jnp.where(mask, x * jnp.exp(-step_size * g), 0.0)
        x = x / x.sum()
        best = better(better(best, x), cut_split(x))
        return (x, best), None

    start = 0.9 * wf + 0.1 * uniform
    best = better((wf, exact(wf)), start)
    (_, best), _ = jax.lax.scan(body, (start, best), None, steps)
    return best


def gradsplit(obs: Obs, steps: int = STEPS) -> Action:
    """The gradsplit policy: every candidate's split optimised, then the candidate with the
    lowest predicted response."""
    slots = jnp.arange(obs.cand_mask.shape[0], dtype=jnp.int32)
    split, transmission = jax.vmap(lambda s: optimise_split(obs, s, steps))(slots)
    predicted = jnp.maximum(transmission, obs.compute_wait_s) + obs.pred_compute_s
    slot = jnp.argmin(jnp.where(obs.cand_mask, predicted, jnp.inf)).astype(jnp.int32)
    return Action(node_slot=slot, split=split[slot])

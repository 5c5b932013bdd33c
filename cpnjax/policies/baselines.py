"""The paper's baselines (4.1.3) and greedy-joint, as pure functions Obs -> Action.

Node rules: min predicted compute latency (Base1, Base3) or nearest by hop count, ties broken by
probe delay (Base2, Base4). Split rules: ECMP (Base1, Base2) or min-MLU LP (Base3, Base4).
Greedy-joint: for every candidate the water-filling split under the observed probe delays and
free capacities, then the candidate whose predicted response max(transmission, queue wait) +
predicted compute is lowest. Every rule reads only the observation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cpnjax.policies.gradsplit import gradsplit
from cpnjax.policies.splits import LP_INTERVAL_S, ecmp_split, mlu_rows, mlu_split, water_fill
from cpnjax.sim import Action, Obs, Policy


def min_compute_slot(obs: Obs) -> jax.Array:
    """() int32 candidate with the lowest predicted compute latency."""
    return jnp.argmin(jnp.where(obs.cand_mask, obs.pred_compute_s, jnp.inf)).astype(jnp.int32)


def nearest_slot(obs: Obs) -> jax.Array:
    """() int32 candidate with the fewest hops on its shortest path; ties: lowest probe delay."""
    hops = jnp.where(obs.path_mask, obs.path_hops, jnp.inf).min(-1)
    delay = jnp.where(obs.path_mask, obs.path_delay_s, jnp.inf).min(-1)
    key = jnp.where(obs.cand_mask, hops + jnp.clip(delay, 0.0, 0.999), jnp.inf)
    return jnp.argmin(key).astype(jnp.int32)


def with_ecmp(slot: jax.Array, obs: Obs) -> Action:
    return Action(node_slot=slot, split=ecmp_split(obs.path_mask[slot]))


def with_lp(slot: jax.Array, obs: Obs, interval_s: float = LP_INTERVAL_S) -> Action:
    base, coef, real = mlu_rows(obs, slot, interval_s)
    split = mlu_split(base, coef, real, obs.path_mask[slot], obs.path_hops[slot])
    return Action(node_slot=slot, split=split)


def base1(obs: Obs) -> Action:
    return with_ecmp(min_compute_slot(obs), obs)


def base2(obs: Obs) -> Action:
    return with_ecmp(nearest_slot(obs), obs)


def base3(obs: Obs) -> Action:
    return with_lp(min_compute_slot(obs), obs)


def base4(obs: Obs) -> Action:
    return with_lp(nearest_slot(obs), obs)


def greedy_joint(obs: Obs) -> Action:
    split, level = jax.vmap(water_fill, in_axes=(0, 0, 0, None))(
        obs.path_delay_s, obs.path_free_bps, obs.path_mask, obs.size_bytes
    )
    predicted = jnp.maximum(level, obs.compute_wait_s) + obs.pred_compute_s
    slot = jnp.argmin(jnp.where(obs.cand_mask, predicted, jnp.inf)).astype(jnp.int32)
    return Action(node_slot=slot, split=split[slot])


POLICIES: dict[str, Policy] = {
    "base1": base1,
    "base2": base2,
    "base3": base3,
    "base4": base4,
    "greedy": greedy_joint,
    "gradsplit": gradsplit,
}


def get_policy(name: str) -> Policy:
    """Look up a baseline by name; ValueError with the known names otherwise."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    return POLICIES[name]


def lp_policy(node_rule: str, interval_s: float) -> Policy:
    """Base3/Base4 with a custom TE interval."""
    rule = {"min_compute": min_compute_slot, "nearest": nearest_slot}[node_rule]
    return lambda obs: with_lp(rule(obs), obs, interval_s)


__all__ = [
    "POLICIES",
    "base1",
    "base2",
    "base3",
    "base4",
    "get_policy",
    "greedy_joint",
    "lp_policy",
    "min_compute_slot",
    "nearest_slot",
]

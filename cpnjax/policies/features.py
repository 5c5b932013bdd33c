"""Observation -> normalised vertex features of the task's scheduling graph.

Every time enters as log1p(t / 1 ms), capacities as log(bps / 1 Gbit/s), sizes as
log(bytes / 1 MB), hops / 10: values of order one on every topology, so one network serves all.
The water-filling split (`splits.water_fill`, what greedy-joint uses) is computed from the same
observation and given as a feature and as the split head's prior; nothing here reads ground
truth.

Shapes: N candidates, K paths per candidate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from cpnjax.policies.splits import water_fill
from cpnjax.sim import Obs

MS = 1e-3
NUM_CANDIDATE_FEATURES = 7
NUM_PATH_FEATURES = 6


@struct.dataclass
class GraphFeatures:
    """Vertex features of one task's graph (compute vertices and their path vertices)."""

    candidate: jax.Array  # (N, NUM_CANDIDATE_FEATURES)
    path: jax.Array  # (N, K, NUM_PATH_FEATURES)
    cand_mask: jax.Array  # (N,) bool
    path_mask: jax.Array  # (N, K) bool: existing paths of real candidates
    prior_split: jax.Array  # (N, K) water-filling split of each candidate (0 on missing paths)


def _log_ms(t_s: jax.Array) -> jax.Array:
    return jnp.log1p(jnp.maximum(t_s, 0.0) / MS)


def graph_features(obs: Obs) -> GraphFeatures:
    """Features of one observation (unbatched)."""
    path_mask = obs.path_mask & obs.cand_mask[:, None]
    split, level_s = jax.vmap(water_fill, in_axes=(0, 0, 0, None))(
        obs.path_delay_s, obs.path_free_bps, path_mask, obs.size_bytes
    )
    level_s = jnp.where(obs.cand_mask, level_s, 0.0)
    predicted_s = jnp.maximum(level_s, obs.compute_wait_s) + obs.pred_compute_s
    best_s = jnp.min(jnp.where(obs.cand_mask, predicted_s, jnp.inf))
    free_bps = jnp.maximum(obs.path_free_bps, 1.0)
    alone_s = obs.path_delay_s + 8.0 * obs.size_bytes / free_bps  # whole task on this path
    backlog_s = jnp.where(obs.hop_mask, obs.hop_backlog_s, 0.0).max(-1)
    num_paths = obs.path_mask.shape[-1]
    size = jnp.log(obs.size_bytes / 1e6)
    candidate = jnp.stack(
        [
            _log_ms(obs.pred_compute_s),
            _log_ms(obs.compute_wait_s),
            _log_ms(level_s),
            _log_ms(predicted_s),
            jnp.log(jnp.maximum(predicted_s, MS) / jnp.maximum(best_s, MS)),
            jnp.broadcast_to(size, obs.cand_mask.shape),
            path_mask.sum(-1) / num_paths,
        ],
        axis=-1,
    )
    path = jnp.stack(
        [
            _log_ms(obs.path_delay_s),
            jnp.log(free_bps / 1e9),
            obs.path_hops / 10.0,
            _log_ms(backlog_s),
            _log_ms(alone_s),
            split,
        ],
        axis=-1,
    )
    cand_mask = obs.cand_mask
    return GraphFeatures(
        candidate=jnp.where(cand_mask[:, None], candidate, 0.0),
        path=jnp.where(path_mask[..., None], path, 0.0),
        cand_mask=cand_mask,
        path_mask=path_mask,
        prior_split=jnp.where(path_mask, split, 0.0),
    )

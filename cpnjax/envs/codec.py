"""What the environment shows and what it accepts: observations encoded from the simulator's
`Obs`, and actions decoded into the simulator's `Action`, in a dict form and a flat form.

Observation (dict): `candidate` (N, 7) and `path` (N, K, 6) float32 vertex features of the
task's scheduling graph (`policies.features.graph_features`: log-millisecond times, log-Gbit/s
rates, the water-filling split), `path_mask` (N, K) bool (existing paths of real candidates),
`action_mask` (N,) bool (real candidates) and `time_left` () float32 (fraction of the episode
still to come). Flat: the same values, masks as 0/1, concatenated in that order.

Action (dict): `node` int, a candidate slot, and `split` (K,) non-negative weights over that
candidate's paths. Every value is accepted:
* the weights are normalised over the node's existing paths; weights on missing paths, NaN and
  negative weights count as 0, weights above 1e30 (+inf too) as 1e30; all zero: equal split;
* a node outside `action_mask` (or outside 0..N-1) is scheduled on slot 0, the candidate nearest
  the access point by hops (always a real one), and flagged `invalid_action`.
Action (flat): a vector in [-1, 1]^(N + K) (values outside are clipped, NaN read as 0): N node
scores, the node is the argmax over `action_mask`; K split logits z, the split is the softmax of
SPLIT_LOGIT_SCALE * z over the node's existing paths with shares below `SPLIT_CUT` cut to
exactly 0 and the rest renormalised (`policies.distributions.split_of_logits`): a split must be
able to put exactly zero on a slow path, since transmission is the maximum over used paths.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cpnjax.policies.distributions import SPLIT_CUT, split_of_logits
from cpnjax.policies.features import NUM_CANDIDATE_FEATURES, NUM_PATH_FEATURES, graph_features
from cpnjax.sim import Action, Obs

SPLIT_LOGIT_SCALE = 5.0
MAX_WEIGHT = 1e30  # larger split weights (+inf too) count as this: 1 / MAX_WEIGHT stays normal
OBS_KEYS = ("candidate", "path", "path_mask", "action_mask", "time_left")


def encode(obs: Obs, time_left: jax.Array) -> dict[str, jax.Array]:
    """The dict observation of one task (unbatched)."""
    f = graph_features(obs)
    return {
        "candidate": f.candidate.astype(jnp.float32),
        "path": f.path.astype(jnp.float32),
        "path_mask": f.path_mask,
        "action_mask": f.cand_mask,
        "time_left": jnp.asarray(time_left, jnp.float32),
    }


def flatten(observation: dict[str, jax.Array]) -> jax.Array:
    """(flat_size(N, K),) float32: the dict observation's values in OBS_KEYS order."""
    return jnp.concatenate([jnp.ravel(observation[k]).astype(jnp.float32) for k in OBS_KEYS])


def flat_size(num_candidates: int, num_paths: int) -> int:
    n, k = num_candidates, num_paths
    return n * NUM_CANDIDATE_FEATURES + n * k * NUM_PATH_FEATURES + n + n * k + 1


def decode_dict(action: dict, obs: Obs) -> tuple[Action, jax.Array]:
    """(the simulator's action, () bool invalid_action) for a dict action (see the module)."""
    num_candidates = obs.cand_mask.shape[-1]
    node = jnp.asarray(action["node"]).astype(jnp.int32)
    inside = (node >= 0) & (node < num_candidates)
    clipped = jnp.clip(node, 0, num_candidates - 1)
    valid = inside & obs.cand_mask[clipped]
    slot = jnp.where(valid, clipped, 0)
    return Action(
        node_slot=slot, split=normalise_split(action["split"], obs.path_mask[slot])
    ), ~valid


def normalise_split(weights: jax.Array, path_mask: jax.Array) -> jax.Array:
    """(K,) split on the simplex over `path_mask` (>= 1 path) from any weights (K,)."""
    w = jnp.nan_to_num(jnp.asarray(weights, jnp.float32), nan=0.0, posinf=MAX_WEIGHT)
    w = jnp.where(path_mask, jnp.clip(w, 0.0, MAX_WEIGHT), 0.0)
    w = w / jnp.maximum(w.max(), 1e-30)  # in [0, 1], so the sum is finite
    total = w.sum()
    equal = path_mask / jnp.maximum(path_mask.sum(), 1)
    return jnp.where(total > 0.0, w / jnp.where(total > 0.0, total, 1.0), equal)


def decode_flat(action: jax.Array, obs: Obs) -> tuple[Action, jax.Array]:
    """(the simulator's action, () bool False) for a flat action (see the module)."""
    num_candidates = obs.cand_mask.shape[-1]
    a = jnp.clip(jnp.nan_to_num(jnp.asarray(action, jnp.float32), nan=0.0), -1.0, 1.0)
    scores, logits = a[:num_candidates], a[num_candidates:]
    slot = jnp.argmax(jnp.where(obs.cand_mask, scores, -jnp.inf)).astype(jnp.int32)
    split = split_of_logits(SPLIT_LOGIT_SCALE * logits, obs.path_mask[slot], SPLIT_CUT)
    return Action(node_slot=slot, split=split), jnp.zeros((), bool)

"""The actor's action distribution: a categorical node and a cut logistic-normal split.

The action is (node, z): node ~ Categorical(softmax(node_logits)) over the real candidates, and
z (K,) the split logits of that node, z_k ~ Normal(split_mean[node, k], sigma) independently on
its existing paths (missing paths: z_k = 0, no density). The environment applies the split

    split = cut(softmax(z over existing paths)),  cut: shares below `cut` -> 0, renormalise,

a deterministic map, so log pi(node, z) = log softmax(node_logits)[node]
+ sum_{existing k} log N(z_k; mean_k, sigma) is the exact log-density of the action the
policy gradient needs. Why logistic-normal with a cut rather than Dirichlet: transmission is the
maximum over the *used* paths, so a split must be able to put exactly zero on a path (a
Dirichlet or softmax sample never does, and 0.1% on a slow path costs that path's whole delay;
see shared/notes/training-probe.md); the cut gives exact zeros while the density stays the
Gaussian's, and its mean can be centred on a closed-form prior (water-filling). The largest
share is >= 1/K > cut, so every split keeps at least one path and passes `split_is_valid`.

Greedy (deterministic) action: the mode of each head, argmax node and z = mean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cpnjax.policies.networks import NEG, PolicyOutput
from cpnjax.sim import Action

SPLIT_CUT = 0.05
LOG_SQRT_2PI = 0.5 * jnp.log(2.0 * jnp.pi)


def split_of_logits(z: jax.Array, path_mask: jax.Array, cut: float = SPLIT_CUT) -> jax.Array:
    """(K,) split on the simplex over `path_mask` from logits z (K,)."""
    share = jax.nn.softmax(jnp.where(path_mask, z, NEG))
    share = jnp.where(path_mask & (share >= cut), share, 0.0)
    return share / share.sum()


def sample(out: PolicyOutput, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(node () int32, z (K,)) drawn from the policy."""
    k_node, k_split = jax.random.split(key)
    node = jax.random.categorical(k_node, out.node_logits).astype(jnp.int32)
    mask = out.path_mask[node]
    noise = jax.random.normal(k_split, mask.shape) * jnp.exp(out.split_log_std)
    return node, jnp.where(mask, out.split_mean[node] + noise, 0.0)


def mode(out: PolicyOutput) -> tuple[jax.Array, jax.Array]:
    """(node, z) of the deterministic policy: the mode of each head."""
    node = jnp.argmax(out.node_logits).astype(jnp.int32)
    return node, out.split_mean[node]


def log_prob(out: PolicyOutput, node: jax.Array, z: jax.Array) -> jax.Array:
    """() log pi(node, z | s)."""
    log_p_node = jax.nn.log_softmax(out.node_logits)[node]
    mask = out.path_mask[node]
    std = jnp.exp(out.split_log_std)
    per_path = -0.5 * ((z - out.split_mean[node]) / std) ** 2 - out.split_log_std - LOG_SQRT_2PI
    return log_p_node + jnp.where(mask, per_path, 0.0).sum()


def entropy(out: PolicyOutput) -> jax.Array:
    """() entropy of the node head plus the expected entropy of the split head."""
    p = jax.nn.softmax(out.node_logits)
    log_p = jax.nn.log_softmax(out.node_logits)
    node_h = -jnp.where(out.cand_mask, p * log_p, 0.0).sum()
    per_path = 0.5 + LOG_SQRT_2PI + out.split_log_std
    split_h = (p * out.path_mask.sum(-1)).sum() * per_path
    return node_h + split_h


def to_action(out: PolicyOutput, node: jax.Array, z: jax.Array, cut: float = SPLIT_CUT) -> Action:
    """The simulator's action for (node, z)."""
    return Action(node_slot=node, split=split_of_logits(z, out.path_mask[node], cut))

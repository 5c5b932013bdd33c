"""The learned scheduler's networks (flax + jraph): SyncGNN (paper 3.4.1) and the MLP ablation,
with the actor-critic heads.

The scheduling graph of one task (`scheduling_graph`) is a padded `jraph.GraphsTuple` of static
size: N compute vertices, N*K path vertices and one padding vertex, with an edge path -> compute
for every path slot. Edges of missing paths (and every path of a masked candidate) join the
padding vertex to itself, jraph's padding convention, so they reach no real vertex. One compile
serves every scenario with the same (N, K); environments are batched with vmap.

One SyncGNN round is the paper's exchange, m_i = sum_j M(h_c_i, h_p_j) and
h_c_i' = h_c_i + U(h_c_i, m_i), followed by a path update h_p_j' = h_p_j + P(h_p_j, h_c_i')
so that the split head, which reads path vertices, sees its node's context (the paper updates
compute vertices only; without this the split head would see unfused path features).

Shapes: N candidates, K paths, D hidden width.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
from flax import struct

from cpnjax.policies.features import GraphFeatures

PRIOR_FLOOR = 1e-3
"""A path the prior gives 0 starts at logit log(1e-3) relative to a path it gives everything."""
NEG = -1e9


@struct.dataclass
class PolicyOutput:
    node_logits: jax.Array  # (N,) masked candidates at NEG
    split_mean: jax.Array  # (N, K) mean of the split logits (missing paths: 0, unused)
    split_log_std: jax.Array  # () log standard deviation of every split logit
    value: jax.Array  # () V(s), in normalised reward units
    cand_mask: jax.Array  # (N,) bool
    path_mask: jax.Array  # (N, K) bool


def scheduling_graph(h_candidate: jax.Array, h_path: jax.Array, f: GraphFeatures):
    """Padded GraphsTuple of one task: nodes (N + N*K + 1, D), edges (N*K, 1) = 1 on real
    paths, senders = path vertex, receivers = its compute vertex."""
    n, k, d = h_path.shape
    pad = n + n * k
    nodes = jnp.concatenate([h_candidate, h_path.reshape(n * k, d), jnp.zeros((1, d))])
    real = f.path_mask.reshape(-1)
    path_vertex = n + jnp.arange(n * k)
    owner = jnp.repeat(jnp.arange(n), k)
    num_real = real.sum().astype(jnp.int32)
    return jraph.GraphsTuple(
        nodes=nodes,
        edges=real[:, None].astype(nodes.dtype),
        senders=jnp.where(real, path_vertex, pad),
        receivers=jnp.where(real, owner, pad),
        n_node=jnp.array([n + n * k, 1]),
        n_edge=jnp.stack([num_real, n * k - num_real]),
        globals=None,
    )


class MLP(nn.Module):
    width: int
    depth: int = 2
    out: int | None = None

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = nn.relu(nn.Dense(self.width)(x))
        return nn.Dense(self.out or self.width)(x)


class SyncGNN(nn.Module):
    """Vertex embeddings of one task's graph: (h_c (N, D), h_p (N, K, D))."""

    hidden: int = 32
    rounds: int = 1

    @nn.compact
    def __call__(self, f: GraphFeatures):
        n, k = f.path_mask.shape
        h_c = MLP(self.hidden, 1)(f.candidate)
        h_p = MLP(self.hidden, 1)(f.path)
        for r in range(self.rounds):
            graph = scheduling_graph(h_c, h_p, f)
            nodes = graph.nodes
            message = MLP(self.hidden, 1, name=f"message_{r}")(
                jnp.concatenate([nodes[graph.receivers], nodes[graph.senders]], -1)
            )
            m = jraph.segment_sum(
                message * graph.edges, graph.receivers, num_segments=nodes.shape[0]
            )[:n]
            h_c = h_c + MLP(self.hidden, 1, name=f"update_{r}")(jnp.concatenate([h_c, m], -1))
            context = jnp.broadcast_to(h_c[:, None, :], h_p.shape)
            h_p = h_p + MLP(self.hidden, 1, name=f"path_update_{r}")(
                jnp.concatenate([h_p, context], -1)
            )
        return h_c, h_p


class FlatMLP(nn.Module):
    """The ablation: the same features flattened through one MLP, read out per vertex."""

    hidden: int = 32

    @nn.compact
    def __call__(self, f: GraphFeatures):
        n, k = f.path_mask.shape
        x = jnp.concatenate([f.candidate.reshape(-1), f.path.reshape(-1)])
        z = MLP(4 * self.hidden, 2)(x)
        h_c = nn.Dense(n * self.hidden)(nn.relu(z)).reshape(n, self.hidden)
        h_p = nn.Dense(n * k * self.hidden)(nn.relu(z)).reshape(n, k, self.hidden)
        return h_c, h_p


class ActorCritic(nn.Module):
    """Node actor, split actor and critic on one encoder (`syncgnn` or `mlp`).

    split_prior: centre the split logits on log(water-filling split) (the network learns a
    residual, zero at init); False learns the split from scratch.
    """

    encoder: str = "syncgnn"
    hidden: int = 32
    rounds: int = 1
    split_prior: bool = True
    init_log_std: float = -0.7

    @nn.compact
    def __call__(self, f: GraphFeatures, time_left: jax.Array = 1.0) -> PolicyOutput:
        """time_left: () the fraction of the episode still to come; only the critic reads it
        (an episode's value depends on how many tasks remain)."""
        if self.encoder == "syncgnn":
            h_c, h_p = SyncGNN(self.hidden, self.rounds)(f)
        elif self.encoder == "mlp":
            h_c, h_p = FlatMLP(self.hidden)(f)
        else:
            raise ValueError(f"unknown encoder {self.encoder!r}; expected syncgnn or mlp")
        node_logits = MLP(self.hidden, 1, out=1, name="node_head")(h_c)[..., 0]
        residual = nn.Dense(1, kernel_init=nn.initializers.zeros, name="split_head")(nn.relu(h_p))[
            ..., 0
        ]
        prior = jnp.log(jnp.maximum(f.prior_split, PRIOR_FLOOR)) if self.split_prior else 0.0
        mask = f.cand_mask[:, None].astype(h_c.dtype)
        pooled = jnp.concatenate(
            [
                (h_c * mask).sum(0) / jnp.maximum(mask.sum(), 1.0),
                jnp.where(mask > 0, h_c, NEG).max(0),
                jnp.reshape(time_left, (1,)).astype(h_c.dtype),
            ]
        )
        value = MLP(self.hidden, 2, out=1, name="critic")(pooled)[0]
        log_std = self.param("split_log_std", nn.initializers.constant(self.init_log_std), ())
        return PolicyOutput(
            node_logits=jnp.where(f.cand_mask, node_logits, NEG),
            split_mean=jnp.where(f.path_mask, prior + residual, 0.0),
            split_log_std=log_std,
            value=value,
            cand_mask=f.cand_mask,
            path_mask=f.path_mask,
        )

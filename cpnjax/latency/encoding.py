"""NAS-Bench-201 cell encoding of paper 3.3: adjacency matrix + one-hot operation matrix.

An NB201 cell string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` puts one operation on each of the
6 edges i -> j (0 <= i < j <= 3) of a 4-node cell. We encode it as a graph of *layers*, one per
operation, as the paper (and BRP-NAS) do: node 0 is the cell input, nodes 1-6 the edge
operations in string order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3), node 7 the cell output.
adjacency[a, b] = 1 when layer a feeds layer b (the edge of a ends where the edge of b starts).

Operation columns, in the paper's order: none, conv1x1, conv3x3, avgpool3x3, skip; then two
columns marking the input and output nodes.
"""

from __future__ import annotations

import functools
import re

import numpy as np

OPS = ("none", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "skip_connect")
"""Operation names in column order (NB201 spelling)."""
NUM_NODES = 8
NUM_FEATURES = len(OPS) + 2  # + input marker + output marker
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""(from, to) cell node of each op layer 1..6, in string order."""

_OP = r"([^|~]+)"
_CELL = re.compile(rf"^\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|$")


def _layer_adjacency() -> np.ndarray:
    adj = np.zeros((NUM_NODES, NUM_NODES), np.float32)
    for a, (src, _) in enumerate(EDGES, start=1):
        if src == 0:
            adj[0, a] = 1.0  # cell input feeds the edges that start at node 0
    for a, (_, dst_a) in enumerate(EDGES, start=1):
        for b, (src_b, _) in enumerate(EDGES, start=1):
            if dst_a == src_b:
                adj[a, b] = 1.0
        if dst_a == 3:
            adj[a, NUM_NODES - 1] = 1.0  # edges into node 3 feed the cell output
    return adj


ADJACENCY = _layer_adjacency()
"""(8, 8) the layer graph: the same for every NB201 cell (a `none` op is a layer that outputs 0)."""


def parse_ops(arch_str: str) -> tuple[str, ...]:
    """The 6 edge operations of an NB201 cell string, in string order.

    Raises:
      ValueError: the string is not an NB201 cell or names an unknown operation.
    """
    m = _CELL.match(arch_str)
    if m is None:
        raise ValueError(f"not an NB201 cell string: {arch_str!r} (expected |op~0|+|op~0|op~1|+..)")
    ops = m.groups()
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        raise ValueError(f"unknown operation(s) {unknown} in {arch_str!r}; known: {', '.join(OPS)}")
    return ops


def encode(arch_str: str) -> tuple[np.ndarray, np.ndarray]:
    """One cell: (adjacency (8, 8), operations (8, 7)) float32 (see module docstring)."""
    ops = np.zeros((NUM_NODES, NUM_FEATURES), np.float32)
    ops[0, len(OPS)] = 1.0
    ops[NUM_NODES - 1, len(OPS) + 1] = 1.0
    for a, op in enumerate(parse_ops(arch_str), start=1):
        ops[a, OPS.index(op)] = 1.0
    return ADJACENCY.copy(), ops


def encode_all(arch_strs) -> np.ndarray:
    """Operation matrices of many cells: (num_archs, 8, 7) float32 (the adjacency is `ADJACENCY`
    for all of them). Vectorised over the 6 edge positions."""
    arch_strs = np.asarray(arch_strs)
    op_index = np.empty((arch_strs.shape[0], len(EDGES)), np.int64)
    for k, s in enumerate(arch_strs):
        op_index[k] = [OPS.index(op) for op in parse_ops(str(s))]
    out = np.zeros((arch_strs.shape[0], NUM_NODES, NUM_FEATURES), np.float32)
    out[:, 0, len(OPS)] = 1.0
    out[:, NUM_NODES - 1, len(OPS) + 1] = 1.0
    rows = np.arange(arch_strs.shape[0])[:, None]
    out[rows, np.arange(1, 7)[None, :], op_index] = 1.0
    return out


@functools.cache
def shipped_ops() -> np.ndarray:
    """(15625, 8, 7) operation matrices of every shipped NB201 architecture (cached, read-only)."""
    from cpnjax.latency.table import load_latency_table

    out = encode_all(load_latency_table().arch_str)
    out.setflags(write=False)
    return out


def op_counts(ops: np.ndarray) -> np.ndarray:
    """(..., 5) how many of the 6 layers use each operation (for the layer-wise baseline)."""
    return ops[..., 1:7, : len(OPS)].sum(axis=-2)


def additive_design(arch: np.ndarray) -> np.ndarray:
    """(len(arch), 6) float64 for shipped architecture indices: how many of the 6 layers use
    each operation, and a 1 (the design of an additive, per-operation latency model)."""
    counts = op_counts(shipped_ops()[np.asarray(arch)]).astype(np.float64)
    return np.column_stack([counts, np.ones(len(counts))])

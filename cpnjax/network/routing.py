"""Shortest-path routing of a traffic matrix onto links (host-only, numpy/scipy)."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from cpnjax.network.topology import Topology


def route_traffic_matrix(topology: Topology, demand_bps: np.ndarray) -> np.ndarray:
    """Route every demand on its shortest path by routing weight; return per-link load.

    Args:
      topology: the network (weights are OSPF weights or 1 per hop).
      demand_bps: (num_nodes, num_nodes) offered rate from row node to column node, bit/s.

    Returns:
      (num_links,) load on each directed link in bit/s.

    All sources are processed at once: each source's shortest-path tree is walked from the
    farthest node inwards, so a node's subtree demand is pushed onto its parent link once.
    """
    n = topology.num_nodes
    if demand_bps.shape != (n, n):
        raise ValueError(f"demand matrix must be {(n, n)}, got {demand_bps.shape}")
    weights = csr_matrix((topology.weight, (topology.src, topology.dst)), shape=(n, n))
    dist, pred = dijkstra(weights, directed=True, return_predecessors=True)
    link_of = np.full((n, n), -1, dtype=np.int64)
    link_of[topology.src, topology.dst] = np.arange(topology.num_links)

    subtree = np.array(demand_bps, dtype=np.float64, copy=True)
    np.fill_diagonal(subtree, 0.0)
    order = np.argsort(-dist, axis=1, kind="stable")  # farthest first in each row
    rows = np.arange(n)
    load = np.zeros(topology.num_links, dtype=np.float64)
    for j in range(n - 1):  # the last column of `order` is the source itself
        v = order[:, j]
        parent = pred[rows, v]
        ok = parent >= 0
        r, v, parent = rows[ok], v[ok], parent[ok]
        flow = subtree[r, v]
        subtree[r, parent] += flow
        np.add.at(load, link_of[parent, v], flow)
    return load

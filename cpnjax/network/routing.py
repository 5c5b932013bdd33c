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
    dist, pred = _shortest_path_trees(topology)
    link_of = _link_of(topology)

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


def shortest_path_links(topology: Topology, pairs) -> list[list[int]]:
    """For each (src, dst) in `pairs`, the link ids of the path `route_traffic_matrix` uses
    ([] where dst is unreachable)."""
    _, pred = _shortest_path_trees(topology)
    link_of = _link_of(topology)
    routes = []
    for src, dst in pairs:
        links, v = [], int(dst)
        while v != src and pred[src, v] >= 0:
            links.append(int(link_of[pred[src, v], v]))
            v = int(pred[src, v])
        routes.append(links[::-1] if v == src else [])
    return routes


def _shortest_path_trees(topology: Topology):
    """Dijkstra by routing weight from every node: (dist, pred), each (n, n), as scipy gives."""
    n = topology.num_nodes
    weights = csr_matrix((topology.weight, (topology.src, topology.dst)), shape=(n, n))
    return dijkstra(weights, directed=True, return_predecessors=True)


def _link_of(topology: Topology) -> np.ndarray:
    """(n, n) link id from u to v, -1 where there is none."""
    n = topology.num_nodes
    link_of = np.full((n, n), -1, dtype=np.int64)
    link_of[topology.src, topology.dst] = np.arange(topology.num_links)
    return link_of

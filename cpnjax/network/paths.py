"""k loopless shortest paths and candidate filtering (paper 3.2), padded to static arrays.

Host-only (networkx); the result is a `CandidateTable` of plain numpy arrays that the simulator
indexes under jit.
"""

from __future__ import annotations

import dataclasses
import itertools

import networkx as nx
import numpy as np

from cpnjax.network.topology import Topology


@dataclasses.dataclass(frozen=True)
class CandidateTable:
    """For each access point a and device class c: the n nearest compute nodes of class c and the
    k loopless shortest paths (by propagation delay) from a to each of them.

    Shapes (A access points, C classes, N candidates, K paths, H hops):
      node: (A, C, N) int32 candidate node id, 0 where masked.
      node_mask: (A, C, N) bool.
      path_links: (A, C, N, K, H) int32 link id of each hop, 0 where masked.
      hop_mask: (A, C, N, K, H) bool, True on the real hops of a real path.
      path_mask: (A, C, N, K) bool, True where the path exists (some pairs have < K paths).
    """

    node: np.ndarray
    node_mask: np.ndarray
    path_links: np.ndarray
    hop_mask: np.ndarray
    path_mask: np.ndarray

    @property
    def max_hops(self) -> int:
        return int(self.path_links.shape[-1])


def k_shortest_paths(graph: nx.DiGraph, source: int, target: int, k: int) -> list[list[int]]:
    """Up to k loopless shortest paths from source to target, each a list of link ids, shortest
    first by total propagation delay (Yen's algorithm via networkx). A node to itself has one
    empty path."""
    if source == target:
        return [[]]
    paths = itertools.islice(nx.shortest_simple_paths(graph, source, target, weight="delay"), k)
    return [[graph.edges[u, v]["link"] for u, v in itertools.pairwise(p)] for p in paths]


def nearest_nodes(topology: Topology, graph: nx.DiGraph, source: int, nodes: np.ndarray, n: int):
    """The n nodes of `nodes` nearest to `source` by hop count; ties broken by propagation delay,
    then node id. Returns an int array of length <= n."""
    hops = nx.single_source_shortest_path_length(graph, source)
    delay = nx.single_source_dijkstra_path_length(graph, source, weight="delay")
    order = sorted((int(v) for v in nodes), key=lambda v: (hops[v], delay[v], v))
    return np.asarray(order[:n], dtype=np.int64)


def class_candidates(
    topology: Topology, graph: nx.DiGraph, source: int, node_class: np.ndarray, cls: int, n: int
) -> np.ndarray:
    """Paper 3.2 filter: the n nearest nodes of class `cls`. When the class has fewer than n
    nodes, the set is filled up with the nearest computing nodes of the other classes, so a
    class with one device still offers n choices."""
    own = nearest_nodes(topology, graph, source, np.flatnonzero(node_class == cls), n)
    if len(own) == n:
        return own
    others = np.flatnonzero((node_class >= 0) & (node_class != cls))
    fill = nearest_nodes(topology, graph, source, others, n - len(own))
    return np.concatenate([own, fill])


def build_candidate_table(
    topology: Topology,
    access_points: np.ndarray,
    node_class: np.ndarray,
    num_classes: int,
    num_candidates: int = 5,
    num_paths: int = 3,
    max_hops: int | None = None,
) -> CandidateTable:
    """Candidate compute nodes and their paths, padded to (A, C, N, K, H).

    Args:
      topology: the network.
      access_points: (A,) node ids where tasks arrive.
      node_class: (num_nodes,) device class of each node, -1 where the node does not compute.
      num_classes: C.
      num_candidates: n nearest nodes of the task's class (paper: 3-7, default 5).
      num_paths: k paths per (access point, node) pair (paper: 3).
      max_hops: pad hops to this budget (for one compile across scenarios); default = longest path.
    """
    if not 1 <= num_candidates:
        raise ValueError(f"num_candidates must be >= 1, got {num_candidates}")
    if not 1 <= num_paths:
        raise ValueError(f"num_paths must be >= 1, got {num_paths}")
    graph = topology.graph()
    num_ap = len(access_points)
    shape = (num_ap, num_classes, num_candidates)
    node = np.zeros(shape, dtype=np.int32)
    node_mask = np.zeros(shape, dtype=bool)
    paths: dict[tuple[int, int, int], list[list[int]]] = {}
    for a, ap in enumerate(access_points):
        for c in range(num_classes):
            if not (node_class == c).any():
                continue  # class absent: no candidates, never the best class
            chosen = class_candidates(topology, graph, int(ap), node_class, c, num_candidates)
            node[a, c, : len(chosen)] = chosen
            node_mask[a, c, : len(chosen)] = True
            for i, v in enumerate(chosen):
                paths[(a, c, i)] = k_shortest_paths(graph, int(ap), int(v), num_paths)
    longest = max((len(p) for ps in paths.values() for p in ps), default=0)
    num_hops = max(longest, 1) if max_hops is None else max_hops
    if longest > num_hops:
        raise ValueError(f"a candidate path has {longest} hops, more than max_hops={num_hops}")
    path_links = np.zeros((*shape, num_paths, num_hops), dtype=np.int32)
    hop_mask = np.zeros((*shape, num_paths, num_hops), dtype=bool)
    path_mask = np.zeros((*shape, num_paths), dtype=bool)
    for (a, c, i), ps in paths.items():
        for p, links in enumerate(ps):
            path_links[a, c, i, p, : len(links)] = links
            hop_mask[a, c, i, p, : len(links)] = True
            path_mask[a, c, i, p] = True
    return CandidateTable(node, node_mask, path_links, hop_mask, path_mask)

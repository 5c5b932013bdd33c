"""Topologies, k shortest paths, candidate filtering and shortest-path routing (host-only)."""

from cpnjax.network.paths import CandidateTable, build_candidate_table, k_shortest_paths
from cpnjax.network.routing import route_traffic_matrix, shortest_path_links
from cpnjax.network.topology import (
    SHIPPED_TOPOLOGIES,
    Topology,
    TopologyError,
    load_topology,
    topology_from_dict,
)

__all__ = [
    "SHIPPED_TOPOLOGIES",
    "CandidateTable",
    "Topology",
    "TopologyError",
    "build_candidate_table",
    "k_shortest_paths",
    "load_topology",
    "route_traffic_matrix",
    "shortest_path_links",
    "topology_from_dict",
]

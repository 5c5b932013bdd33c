"""Topology: directed links with capacity and propagation delay (host-only, numpy/networkx).

A topology is loaded by name from the JSON files shipped in `cpnjax/data/topologies/` or from any
JSON file in the same schema:

    {"name": ..., "num_nodes": n (optional), "capacity_unit": "..." (optional),
     "edges": [{"src": u, "dst": v, <capacity>, "prop_delay_ms"?, "dist_km"?, "weight"?}, ...]}

where <capacity> is one of `capacity_bps`, `capacity_kbps`, `capacity_mbps`, or `capacity` together
with a top-level `capacity_unit`.

Unit mapping (documented choice, so that the paper's regime holds: task transmission and compute
latency both of order 1-30 ms, links not saturated by background traffic alone):

* `capacity_unit` naming a unit (`bps`, `kbps`, `Mbps`, `Gbps`, any case, first word) is used as is.
* The Rocketfuel topologies from CFR-RL (ebone, sprintlink, tiscali) state no unit; their values
  run 25..500, and we read 1 unit = 20 Mbit/s, so links are 0.5-10 Gbit/s like Abilene's
  2.5/10 Gbit/s OC-48/OC-192 links.
* The Teal/NCFlow topologies (b4, uscarrier, kdl, asn2k) are unitless; we read 1 unit = 10 Mbit/s
  (B4 50 Gbit/s, UsCarrier median 4.5 Gbit/s, ASN2k median 7.5 Gbit/s).
* Propagation delay: `prop_delay_ms` if given, else `dist_km / 200` (light in fibre, 200 km/ms),
  else the median of the topology's known delays, else `default_prop_delay_ms` (2 ms, about
  400 km of fibre) for topologies that carry no geography at all.
* Routing weight (for background traffic): `weight` (OSPF) if given, else 1 (hop count).
"""

from __future__ import annotations

import dataclasses
import json
import math
from importlib import resources
from pathlib import Path

import networkx as nx
import numpy as np

SHIPPED_TOPOLOGIES = (
    "abilene",
    "ebone",
    "sprintlink",
    "tiscali",
    "uscarrier",
    "kdl",
    "asn2k",
    "b4",
)

UNITLESS_CAPACITY_BPS = {
    "ebone": 20e6,
    "sprintlink": 20e6,
    "tiscali": 20e6,
    "b4": 10e6,
    "uscarrier": 10e6,
    "kdl": 10e6,
    "asn2k": 10e6,
}
_UNIT_BPS = {"bps": 1.0, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9}
_FIBRE_KM_PER_MS = 200.0
DEFAULT_PROP_DELAY_MS = 2.0


CAPACITY_RANGE_BPS = (1.0, 1e15)
"""Link capacities the simulator accepts (1 bit/s to 1 Pbit/s): float32 keeps 7 digits of every
time computed from them (a 9000-byte packet at 1 Pbit/s: 7.2e-11 s, far from float32's
subnormals); a capacity of 1e300 or a subnormal one is refused at load."""
DELAY_RANGE_MS = (1e-9, 1e6)
"""Non-zero propagation delays the simulator accepts (1 ps to 1000 s)."""


class TopologyError(ValueError):
    """A topology file or name that cannot be turned into a usable network."""


@dataclasses.dataclass(frozen=True)
class Topology:
    """A directed network. Link i goes from `src[i]` to `dst[i]`.

    Attributes:
      name: human-readable name.
      num_nodes: number of vertices, ids 0..num_nodes-1.
      src, dst: (num_links,) int64 endpoints.
      capacity_bps: (num_links,) float64 link rate in bit/s.
      prop_delay_s: (num_links,) float64 one-way propagation delay in seconds.
      weight: (num_links,) float64 routing weight used for background shortest paths.
    """

    name: str
    num_nodes: int
    src: np.ndarray
    dst: np.ndarray
    capacity_bps: np.ndarray
    prop_delay_s: np.ndarray
    weight: np.ndarray

    @property
    def num_links(self) -> int:
        return int(self.src.shape[0])

    def graph(self) -> nx.DiGraph:
        """networkx view; edge attribute `link` is the link index."""
        g = nx.DiGraph()
        g.add_nodes_from(range(self.num_nodes))
        for i in range(self.num_links):
            g.add_edge(
                int(self.src[i]),
                int(self.dst[i]),
                link=i,
                delay=float(self.prop_delay_s[i]),
                weight=float(self.weight[i]),
            )
        return g


def load_topology(name_or_path: str | Path, capacity_unit_bps: float | None = None) -> Topology:
    """Load a shipped topology by name (see SHIPPED_TOPOLOGIES) or a JSON file in the schema.

    Args:
      name_or_path: a shipped name (case-insensitive) or a path to a `.json` file.
      capacity_unit_bps: override the bit/s value of one unit of a unitless `capacity`.

    Raises:
      TopologyError: unknown name, unreadable/malformed file, bad capacity, disconnected network.
    """
    key = str(name_or_path).strip().lower()
    if key in SHIPPED_TOPOLOGIES:
        text = resources.files("cpnjax.data").joinpath(f"topologies/{key}.json").read_text()
        source_key = key
    else:
        path = Path(name_or_path)
        if path.suffix.lower() != ".json" or not path.is_file():
            raise TopologyError(
                f"unknown topology {str(name_or_path)!r}: expected one of "
                f"{', '.join(SHIPPED_TOPOLOGIES)} or an existing .json file"
            )
        text = path.read_text()
        source_key = path.stem.lower()
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise TopologyError(
            f"{name_or_path}: not valid JSON ({err.msg}, line {err.lineno})"
        ) from None
    return topology_from_dict(spec, default_name=source_key, capacity_unit_bps=capacity_unit_bps)


def topology_from_dict(
    spec: dict, default_name: str = "topology", capacity_unit_bps: float | None = None
) -> Topology:
    """Build and validate a Topology from the parsed JSON schema (see module docstring)."""
    if not isinstance(spec, dict):
        raise TopologyError("topology JSON must be an object with an 'edges' list")
    edges = spec.get("edges")
    if not isinstance(edges, list) or not edges:
        raise TopologyError("topology has no 'edges' list (or it is empty)")
    name = str(spec.get("name", default_name))
    unit_bps = _capacity_unit_bps(spec, name, default_name, capacity_unit_bps)

    src, dst, cap, delay, weight = [], [], [], [], []
    for i, edge in enumerate(edges):
        if not isinstance(edge, dict) or "src" not in edge or "dst" not in edge:
            raise TopologyError(f"edge {i} must be an object with 'src' and 'dst'")
        u, v = edge["src"], edge["dst"]
        if not (_is_int(u) and _is_int(v)) or u < 0 or v < 0:
            raise TopologyError(f"edge {i}: 'src' and 'dst' must be non-negative integers")
        if u == v:
            raise TopologyError(f"edge {i}: self-loop at node {u}")
        src.append(int(u))
        dst.append(int(v))
        cap.append(_edge_capacity_bps(edge, i, unit_bps))
        delay.append(_edge_delay_ms(edge, i))
        w = edge.get("weight", 1.0)
        if not _is_finite_number(w) or w <= 0:
            raise TopologyError(f"edge {i}: 'weight' must be a positive number, got {w!r}")
        weight.append(float(w))

    num_nodes = int(spec.get("num_nodes", 0) or 0)
    if isinstance(spec.get("nodes"), list):
        num_nodes = max(num_nodes, len(spec["nodes"]))
    num_nodes = max(num_nodes, max(src) + 1, max(dst) + 1)
    pairs = list(zip(src, dst, strict=True))
    if len(set(pairs)) != len(pairs):
        dup = next(p for p in pairs if pairs.count(p) > 1)
        raise TopologyError(f"duplicate directed edge {dup[0]}->{dup[1]}")

    delay_ms = np.array([np.nan if d is None else d for d in delay], dtype=np.float64)
    known = delay_ms[~np.isnan(delay_ms)]
    fill = float(np.median(known)) if known.size else DEFAULT_PROP_DELAY_MS
    delay_ms = np.where(np.isnan(delay_ms), fill, delay_ms)

    topo = Topology(
        name=name,
        num_nodes=num_nodes,
        src=np.asarray(src, dtype=np.int64),
        dst=np.asarray(dst, dtype=np.int64),
        capacity_bps=np.asarray(cap, dtype=np.float64),
        prop_delay_s=delay_ms / 1e3,
        weight=np.asarray(weight, dtype=np.float64),
    )
    if not nx.is_strongly_connected(topo.graph()):
        parts = nx.number_strongly_connected_components(topo.graph())
        raise TopologyError(f"topology {name!r} is disconnected ({parts} strongly connected parts)")
    return topo


def _capacity_unit_bps(spec: dict, name: str, key: str, override: float | None) -> float | None:
    if override is not None:
        if not _is_finite_number(override) or override <= 0:
            raise TopologyError(f"capacity_unit_bps must be positive, got {override!r}")
        return float(override)
    unit = spec.get("capacity_unit")
    if isinstance(unit, str) and unit.split():
        first = unit.split()[0].strip("()[],;:").lower()
        if first in _UNIT_BPS:
            return _UNIT_BPS[first]
    for candidate in (key, name.lower()):
        if candidate in UNITLESS_CAPACITY_BPS:
            return UNITLESS_CAPACITY_BPS[candidate]
    return None  # only an error if some edge uses a bare 'capacity'


def _edge_capacity_bps(edge: dict, i: int, unit_bps: float | None) -> float:
    """The edge's capacity in bit/s, within CAPACITY_RANGE_BPS."""
    bps = _raw_capacity_bps(edge, i, unit_bps)
    lo, hi = CAPACITY_RANGE_BPS
    if not lo <= bps <= hi:
        raise TopologyError(
            f"edge {i}: capacity {bps:.6g} bit/s is outside {lo:g}..{hi:g} bit/s, the range the "
            "simulator's float32 arithmetic holds faithfully"
        )
    return bps


def _raw_capacity_bps(edge: dict, i: int, unit_bps: float | None) -> float:
    for field, scale in (("capacity_bps", 1.0), ("capacity_kbps", 1e3), ("capacity_mbps", 1e6)):
        if field in edge:
            return _positive(edge[field], i, field) * scale
    if "capacity" in edge:
        if unit_bps is None:
            raise TopologyError(
                f"edge {i} has a bare 'capacity' but the file has no recognised top-level "
                "'capacity_unit' (bps, kbps, Mbps or Gbps)"
            )
        return _positive(edge["capacity"], i, "capacity") * unit_bps
    raise TopologyError(
        f"edge {i} has no capacity (capacity_bps, capacity_kbps, capacity_mbps or capacity)"
    )


def _edge_delay_ms(edge: dict, i: int) -> float | None:
    """The edge's propagation delay in ms (None: not given): 0 or within DELAY_RANGE_MS."""
    ms = _raw_delay_ms(edge, i)
    lo, hi = DELAY_RANGE_MS
    if ms is not None and ms != 0.0 and not lo <= ms <= hi:
        raise TopologyError(
            f"edge {i}: propagation delay {ms:.6g} ms is outside 0 or {lo:g}..{hi:g} ms, the "
            "range the simulator's float32 arithmetic holds faithfully"
        )
    return ms


def _raw_delay_ms(edge: dict, i: int) -> float | None:
    if "prop_delay_ms" in edge:
        d = edge["prop_delay_ms"]
        if not _is_finite_number(d) or d < 0:
            raise TopologyError(f"edge {i}: 'prop_delay_ms' must be >= 0, got {d!r}")
        return float(d)
    if "dist_km" in edge and edge["dist_km"] is not None:
        d = edge["dist_km"]
        if not _is_finite_number(d) or d < 0:
            raise TopologyError(f"edge {i}: 'dist_km' must be >= 0, got {d!r}")
        return float(d) / _FIBRE_KM_PER_MS
    return None


def _positive(value, i: int, field: str) -> float:
    if not _is_finite_number(value) or value <= 0:
        raise TopologyError(f"edge {i}: '{field}' must be a positive number, got {value!r}")
    return float(value)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_finite_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

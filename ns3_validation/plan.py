"""A scenario and per-task decisions as a replay plan for NS-3: plain JSON, built on the host
(no NS-3 import), run by `ns3_validation.run` in a worker process.

What NS-3 gets (and how it maps to the simulator):
* links: the scenario's directed links, capacities and propagation delays (FIFO, DropTail);
* background: the scenario's background demand matrix, one Poisson packet source per node,
  each packet pinned to the shortest path by routing weight (the routes that made
  `scenario.background_bps`); packets of `background_packet_bytes` on the wire (+2 B PPP), at
  a rate that puts exactly `scenario.background_bps` on every link;
* tasks: at its arrival (after `warmup_s` of background alone), 3 probes on each candidate path
  of its class, then `size_bytes` split over the chosen node's paths by the decided ratios;
* compute: each task's measured latency on its node's device (the simulator's ground truth).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from cpnjax.latency import LatencyPredictor
from cpnjax.network import shortest_path_links
from cpnjax.scenario import Scenario
from cpnjax.sim import make_params, task_arrays
from cpnjax.sim.env import SIMPLEX_TOL, task_class

BG_FLAG = 255
IP_UDP_HEADER_BYTES = 28
PPP_HEADER_BYTES = 2
COMPUTE_ORDERS = ("arrival", "dispatch")
TRANSPORTS = ("udp", "tcp")
ACK_FLAG = 128
"""With TCP, the acks of path flag f are pinned to the reverse path as flag ACK_FLAG + f."""
IP_TCP_HEADER_BYTES = 52  # IPv4 20 + TCP 20 + timestamp option 12


class ReplayInputError(ValueError):
    """Decisions or settings that do not fit the scenario."""


@dataclasses.dataclass(frozen=True)
class Ns3Settings:
    """How a scenario is played in NS-3.

    packet_bytes: IP packet size of task data (jumbo frames, as the simulator's packets).
    probe_bytes: IP size of a probe; background_packet_bytes: IP size of a background packet.
    flowlet_bytes: a task's bytes are cut into flowlets of this size (the last one shorter),
      assigned to paths by smooth weighted round robin over the split ratios.
    queue_packets: DropTail limit of every device queue.
    compute_order: "arrival": a compute server serves tasks in the order their last byte
      arrived (FIFO, work-conserving); "dispatch": in the order the controller sent them.
    warmup_s: background alone before the first task.
    drain_s: the run stops at the latest this long after the last arrival (tasks not finished by
      then are reported incomplete).
    seed: NS-3 random stream seed (background arrivals).
    transport: "udp" (default): task data paced at the first link's line rate, flowlets over
      the paths; "tcp": one connection per used path (ns-3.44 default: CUBIC; segments filling a
      `packet_bytes` IP packet), acks on the reverse path; probes and background stay UDP.
    """

    packet_bytes: int = 9000
    probe_bytes: int = 64
    background_packet_bytes: int = 1500
    flowlet_bytes: int = 65536
    queue_packets: int = 20_000
    compute_order: str = "arrival"
    warmup_s: float = 0.02
    drain_s: float = 60.0
    seed: int = 1
    transport: str = "udp"

    def __post_init__(self):
        if self.transport not in TRANSPORTS:
            raise ReplayInputError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if self.compute_order not in COMPUTE_ORDERS:
            raise ReplayInputError(
                f"compute_order must be one of {COMPUTE_ORDERS}, got {self.compute_order!r}"
            )
        for name in ("packet_bytes", "probe_bytes", "background_packet_bytes"):
            if not IP_UDP_HEADER_BYTES < getattr(self, name) <= 9000:
                raise ReplayInputError(f"{name} must be in 29..9000, got {getattr(self, name)}")
        if self.flowlet_bytes < 1 or self.queue_packets < 1:
            raise ReplayInputError("flowlet_bytes and queue_packets must be >= 1")


@dataclasses.dataclass(frozen=True)
class Decisions:
    """Per-task decisions: node_slot (T,) int into the task's candidates, split (T, K)."""

    node_slot: np.ndarray
    split: np.ndarray

    @classmethod
    def of(cls, result) -> Decisions:
        """From a `cpnjax.evaluate.PolicyResult` (or anything with node_slot and split)."""
        return cls(np.asarray(result.node_slot), np.asarray(result.split, np.float64))


def task_classes(scenario: Scenario, predictor: LatencyPredictor | None = None) -> np.ndarray:
    """(T,) device class of each task, as the simulator chooses it (paper 3.2)."""
    params = make_params(scenario, predictor)
    tasks = task_arrays(scenario.tasks)
    return np.asarray(jax.vmap(task_class, in_axes=(None, 0))(params, tasks))


def validate_decisions(scenario: Scenario, decisions: Decisions, classes: np.ndarray) -> None:
    """Raise ReplayInputError (one line) unless every decision is a valid action."""
    cand = scenario.candidates
    num_tasks = scenario.tasks.num_tasks
    slot, split = np.asarray(decisions.node_slot), np.asarray(decisions.split, np.float64)
    _, _, n_cand, k_paths = cand.path_mask.shape
    if slot.shape != (num_tasks,) or split.shape != (num_tasks, k_paths):
        raise ReplayInputError(
            f"decisions must be node_slot ({num_tasks},) and split ({num_tasks}, {k_paths}) for "
            f"this scenario, got {slot.shape} and {split.shape}"
        )
    if not np.issubdtype(slot.dtype, np.integer) or (slot < 0).any() or (slot >= n_cand).any():
        raise ReplayInputError(f"node_slot must be integers in 0..{n_cand - 1}")
    if not np.isfinite(split).all():
        raise ReplayInputError(
            f"split of task {np.flatnonzero(~np.isfinite(split).all(1))[0]} is not finite"
        )
    ap = scenario.tasks.access_point
    node_ok = cand.node_mask[ap, classes, slot]
    path_mask = cand.path_mask[ap, classes, slot]
    on_simplex = (
        (split >= -1e-6).all(1)
        & (np.where(path_mask, 0.0, np.abs(split)) <= 1e-6).all(1)
        & (np.abs(split.sum(1) - 1.0) <= SIMPLEX_TOL)
    )
    if not node_ok.all():
        t = int(np.flatnonzero(~node_ok)[0])
        raise ReplayInputError(f"task {t}: candidate slot {slot[t]} does not exist")
    if not on_simplex.all():
        t = int(np.flatnonzero(~on_simplex)[0])
        raise ReplayInputError(
            f"task {t}: split {np.round(split[t], 4).tolist()} is not on the simplex over its "
            f"{int(path_mask[t].sum())} existing paths"
        )


def path_bytes(size_bytes: float, split: np.ndarray) -> list[int]:
    """Integer bytes per path summing to round(size_bytes); the rounding remainder goes to the
    path with the largest share."""
    total = int(round(float(size_bytes)))
    split = np.clip(split, 0.0, None)
    share = np.floor(split / split.sum() * total).astype(np.int64)
    share[int(np.argmax(split))] += total - int(share.sum())
    return share.tolist()


def build_plan(
    scenario: Scenario,
    decisions: Decisions,
    settings: Ns3Settings | None = None,
    predictor: LatencyPredictor | None = None,
) -> dict:
    """The JSON-able replay plan (see module docstring). Validates the decisions first."""
    settings = settings or Ns3Settings()
    classes = task_classes(scenario, predictor)
    validate_decisions(scenario, decisions, classes)
    topo, cand, tasks = scenario.topology, scenario.candidates, scenario.tasks
    _, _, n_cand, k_paths = cand.path_mask.shape

    pins = {}  # (src, dst, flag) -> links
    for a, ap in enumerate(scenario.access_points):
        for c, n, k in zip(*np.nonzero(cand.path_mask[a]), strict=True):
            node = int(cand.node[a, c, n])
            links = cand.path_links[a, c, n, k][cand.hop_mask[a, c, n, k]]
            pins[(int(ap), node, int(k))] = [int(x) for x in links]

    demand = scenario.background_demand_bps
    pairs = [(int(s), int(d)) for s, d in zip(*np.nonzero(demand > 0), strict=True)]
    for (s, d), links in zip(pairs, shortest_path_links(topo, pairs), strict=True):
        pins[(s, d, BG_FLAG)] = links
    bg_wire_bits = 8.0 * (settings.background_packet_bytes + PPP_HEADER_BYTES)
    background = []
    for s in range(topo.num_nodes):
        dsts = np.flatnonzero(demand[s] > 0)
        if dsts.size:
            background.append(
                {
                    "node": s,
                    "packets_per_s": float(demand[s, dsts].sum() / bg_wire_bits),
                    "dsts": dsts.tolist(),
                    "weights": demand[s, dsts].tolist(),
                }
            )

    compute_s = np.nan_to_num(scenario.latency_ms, nan=np.nanmax(scenario.latency_ms)) / 1e3
    arrival = tasks.arrival_s
    plan_tasks = []
    for t in range(tasks.num_tasks):
        a, c, n = int(tasks.access_point[t]), int(classes[t]), int(decisions.node_slot[t])
        node = int(cand.node[a, c, n])
        probes = [
            [int(cand.node[a, c, m]), int(k), int(m * k_paths + k)]
            for m in range(n_cand)
            for k in range(k_paths)
            if cand.node_mask[a, c, m] and cand.path_mask[a, c, m, k]
        ]
        plan_tasks.append(
            {
                "arrival_s": float(settings.warmup_s + arrival[t]),
                "src": int(scenario.access_points[a]),
                "node": node,
                "compute_s": float(compute_s[tasks.arch[t], scenario.node_device[node]]),
                "bytes": path_bytes(tasks.size_bytes[t], decisions.split[t]),
                "probes": probes,
            }
        )
    return {
        "settings": dataclasses.asdict(settings),
        "topology": {
            "name": topo.name,
            "num_nodes": int(topo.num_nodes),
            "src": topo.src.tolist(),
            "dst": topo.dst.tolist(),
            "capacity_bps": topo.capacity_bps.tolist(),
            "prop_delay_s": topo.prop_delay_s.tolist(),
        },
        "pins": [[s, d, f, links] for (s, d, f), links in pins.items()],
        "background": background,
        "tasks": plan_tasks,
        "num_slots": int(n_cand * k_paths),
        "num_paths": int(k_paths),
        "stop_s": float(settings.warmup_s + arrival[-1] + settings.drain_s),
    }

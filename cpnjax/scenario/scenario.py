"""A seeded CPN instance: topology + device per compute node + access points + background traffic
+ candidate table + task stream (host-only)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from cpnjax.latency import (
    DEFAULT_DEVICE_POOL,
    DEVICE_CLASSES,
    LatencyTable,
    LearnedPredictor,
    load_latency_table,
)
from cpnjax.latency.model import NEW_DEVICES
from cpnjax.network import CandidateTable, Topology, build_candidate_table, load_topology
from cpnjax.scenario.background import background_traffic
from cpnjax.scenario.tasks import TaskStream, generate_tasks


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
    """Everything that defines a scenario, apart from the seed.

    `load` sets the Poisson arrival rate as a fraction of the smaller of two capacities:
    compute, num_candidates / (mean compute time over the deployed devices), the rate one
    candidate set's servers sustain if tasks spread evenly; and network, num_access_points *
    (smallest residual out-capacity of an access point) / (mean task bits), the rate at which the
    most constrained access point's links fill up. load = 1 saturates the scarcer of the two.
    """

    topology: str = "abilene"
    num_tasks: int = 100
    task_type: str = "mixed"
    load: float = 0.1
    background_util: float = 0.3  # mean link utilisation of background traffic
    max_background_util: float = 0.9  # no link busier than this with background alone
    access_points: tuple[int, ...] | None = None  # None: 2-4 drawn by the seed
    access_points_compute: bool = False  # access points also host a device
    class_probs: tuple[float, float, float] = (0.45, 0.45, 0.10)  # gpu, cpu, other
    num_candidates: int = 5
    num_paths: int = 3
    max_hops: int | None = None  # pad paths to this many hops (one compile across scenarios)
    size_range_bytes: tuple[float, float] = (1e6, 10e6)
    io_size_bytes: float = 1e6
    capacity_unit_bps: float | None = None  # override for unitless capacities
    capacity_scale: float = 1.0  # multiply every link capacity (scaled-down validation runs)
    # Devices that join the network new: the controller knows them from this many measurements
    # (a TSFT-adapted predictor); the other devices are known to the base predictor.
    new_devices: tuple[str, ...] = NEW_DEVICES
    new_device_samples: int = 50

    @classmethod
    def default(cls) -> ScenarioConfig:
        return cls()

    @classmethod
    def test(cls) -> ScenarioConfig:
        return cls(num_tasks=20)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One CPN instance.

    Attributes:
      config, seed: what made it.
      topology: the network.
      access_points: (A,) node ids where tasks arrive.
      devices: (D,) names of the device models that may be deployed (columns of the latency
        arrays): the whole default pool, so that shapes do not depend on the seed.
      device_class: (D,) class index into DEVICE_CLASSES.
      node_device: (num_nodes,) column into `devices` of each node, -1 where it does not compute.
      latency_ms: (num_archs, D) measured latency (the simulator's ground truth).
      background_bps: (num_links,) background load on each link.
      background_demand_bps: (num_nodes, num_nodes) the background demand that makes it, routed
        on shortest paths by routing weight (`network.shortest_path_links`).
      candidates: padded candidate nodes and paths per (access point, class).
      arrival_rate_hz: the Poisson rate of the task stream (config.load times the capacity rate).
      tasks: the task stream.
    """

    config: ScenarioConfig
    seed: int
    topology: Topology
    access_points: np.ndarray
    devices: tuple[str, ...]
    device_class: np.ndarray
    node_device: np.ndarray
    latency_ms: np.ndarray
    background_bps: np.ndarray
    background_demand_bps: np.ndarray
    candidates: CandidateTable
    arrival_rate_hz: float
    tasks: TaskStream

    def draw_tasks(self, rng: np.random.Generator, num_tasks: int) -> TaskStream:
        """Another stream of this scenario's task law (its arrival rate, access points, task
        type and sizes), drawn from `rng`."""
        cfg = self.config
        return generate_tasks(
            rng,
            num_tasks,
            len(self.access_points),
            self.arrival_rate_hz,
            cfg.task_type,
            load_latency_table().flops_m,
            cfg.size_range_bytes,
            cfg.io_size_bytes,
        )

    def validation_tasks(self, num_tasks: int) -> TaskStream:
        """A fixed stream of this scenario's task law, seeded apart from its own stream: what
        `cpnjax train` validates on and what `cpnjax.envs` scales its reward by."""
        return self.draw_tasks(np.random.default_rng([self.seed, 7919]), num_tasks)

    @property
    def node_class(self) -> np.ndarray:
        """(num_nodes,) device class of each node, -1 where it does not compute."""
        return np.where(self.node_device >= 0, self.device_class[self.node_device], -1)

    def latency_predictor(self) -> LearnedPredictor:
        """The predictor the controller uses by default: TSFT from `new_device_samples`
        measurements for the config's new devices, the base model for the others."""
        return LearnedPredictor(self.config.new_devices, self.config.new_device_samples)

    def summary(self) -> dict:
        """What the scenario is, for config files: with how each device's latency is predicted
        and how sure the predictor is of it (`LearnedPredictor.report`)."""
        util = self.background_bps / self.topology.capacity_bps
        return {
            "topology": self.topology.name,
            "num_nodes": self.topology.num_nodes,
            "num_links": self.topology.num_links,
            "access_points": [int(a) for a in self.access_points],
            "devices_per_node": {
                int(v): self.devices[d] for v, d in enumerate(self.node_device) if d >= 0
            },
            "background_util_mean": float(util.mean()),
            "background_util_max": float(util.max()),
            "num_tasks": self.tasks.num_tasks,
            "latency_predictor": self.latency_predictor().report(self.devices),
        }


def make_scenario(config: ScenarioConfig, seed: int, table: LatencyTable | None = None) -> Scenario:
    """Draw a scenario. Same config and seed give the same scenario."""
    _validate(config)
    table = table or load_latency_table()
    topology = load_topology(config.topology, config.capacity_unit_bps)
    if config.capacity_scale != 1.0:
        topology = dataclasses.replace(
            topology, capacity_bps=topology.capacity_bps * config.capacity_scale
        )
    rng = np.random.default_rng(seed)
    n = topology.num_nodes

    if config.access_points is None:
        num_ap = int(rng.integers(2, 5))
        access_points = np.sort(rng.choice(n, size=min(num_ap, n - 1), replace=False))
    else:
        access_points = np.asarray(config.access_points, dtype=np.int64)
        if access_points.min() < 0 or access_points.max() >= n:
            raise ValueError(f"access points {config.access_points} outside nodes 0..{n - 1}")
    computes = np.ones(n, dtype=bool)
    if not config.access_points_compute:
        computes[access_points] = False

    devices, device_class, node_device = _draw_devices(rng, computes, config.class_probs)
    latency_ms = np.stack([table.column_ms(d) for d in devices], axis=1).astype(np.float32)
    node_class = np.where(node_device >= 0, device_class[np.maximum(node_device, 0)], -1)
    candidates = build_candidate_table(
        topology,
        access_points,
        node_class,
        num_classes=len(DEVICE_CLASSES),
        num_candidates=config.num_candidates,
        num_paths=config.num_paths,
        max_hops=config.max_hops,
    )
    background_tm, background = background_traffic(
        topology, config.background_util, config.max_background_util, rng, _shipped_key(config)
    )
    rate_hz = config.load * _capacity_rate_hz(
        config, topology, access_points, latency_ms, node_device, background
    )
    tasks = generate_tasks(
        rng,
        config.num_tasks,
        len(access_points),
        rate_hz,
        config.task_type,
        table.flops_m,
        config.size_range_bytes,
        config.io_size_bytes,
    )
    return Scenario(
        config=config,
        seed=seed,
        topology=topology,
        access_points=access_points,
        devices=devices,
        device_class=device_class,
        node_device=node_device,
        latency_ms=latency_ms,
        background_bps=background,
        background_demand_bps=background_tm,
        candidates=candidates,
        arrival_rate_hz=float(rate_hz),
        tasks=tasks,
    )


def _draw_devices(rng: np.random.Generator, computes: np.ndarray, class_probs):
    """A device model for every computing node: class by `class_probs`, model uniformly within
    the class's pool. The device columns are the whole pool in a fixed order (so scenarios of
    one topology size share array shapes). Returns (devices, device_class, node_device)."""
    devices = tuple(d for c in DEVICE_CLASSES for d in DEFAULT_DEVICE_POOL[c])
    device_class = np.array(
        [i for i, c in enumerate(DEVICE_CLASSES) for _ in DEFAULT_DEVICE_POOL[c]], dtype=np.int32
    )
    probs = np.asarray(class_probs, dtype=np.float64)
    node_cls = rng.choice(len(DEVICE_CLASSES), size=computes.shape[0], p=probs / probs.sum())
    node_device = np.full(computes.shape[0], -1, dtype=np.int32)
    for v in np.flatnonzero(computes):
        pool = np.flatnonzero(device_class == node_cls[v])
        node_device[v] = pool[rng.integers(len(pool))]
    return devices, device_class, node_device


def _capacity_rate_hz(config, topology, access_points, latency_ms, node_device, background):
    """Task rate (Hz) at which the scarcer of compute and access-point network capacity fills."""
    mean_compute_s = float(np.nanmean(latency_ms[:, node_device[node_device >= 0]])) / 1e3
    compute_hz = config.num_candidates / mean_compute_s
    lo, hi = config.size_range_bytes
    mean_bits = 8.0 * (
        config.io_size_bytes
        if config.task_type == "io"
        else (hi - lo) / max(np.log(hi / lo), 1e-12)
    )
    residual = topology.capacity_bps - background
    out_bps = min(residual[topology.src == a].sum() for a in access_points)
    network_hz = len(access_points) * out_bps / mean_bits
    return min(compute_hz, network_hz)


def _shipped_key(config: ScenarioConfig) -> str:
    return Path(config.topology).stem.lower()


def _validate(config: ScenarioConfig) -> None:
    if config.num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1, got {config.num_tasks}")
    if not config.capacity_scale > 0:
        raise ValueError(f"capacity_scale must be positive, got {config.capacity_scale}")
    if not config.load > 0:
        raise ValueError(f"load must be positive, got {config.load}")
    if not 1 <= config.num_candidates:
        raise ValueError(f"num_candidates must be >= 1, got {config.num_candidates}")
    probs = np.asarray(config.class_probs, dtype=np.float64)
    if probs.shape != (len(DEVICE_CLASSES),) or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"class_probs must be 3 non-negative weights, got {config.class_probs}")

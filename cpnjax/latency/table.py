"""The shipped NAS-Bench-201 latency table (host-only): 15625 architectures x 40 devices."""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources

import numpy as np

DEVICE_CLASSES = ("gpu", "cpu", "other")
"""Device classes of paper 4.1.1: GPUs, CPU servers, and other accelerators/edge devices."""

DEFAULT_DEVICE_POOL = {
    # Batch-1 latency of the five GPU models of paper 4.1.1 (a task is one inference request).
    "gpu": ("1080ti_1", "2080ti_1", "titan_rtx_1", "titanx_1", "titanxp_1"),
    # The HELP Xeon servers. The paper's i7-7820X exists only in LatBench, which misses ~350
    # architectures and is lower-confidence (shared/data README), so it is not in the default pool.
    "cpu": ("gold_6226", "gold_6240", "silver_4114", "silver_4210r"),
    "other": ("fpga", "raspi4", "eyeriss"),
}


LOO_CLASSES = ("gpu", "cpu", "mobile", "embedded")
"""Finer device classes for per-class reports: desktop GPUs, server/desktop CPUs, phones
(mobile SoCs), and embedded processors and accelerators (Raspberry Pi, FPGA, Eyeriss, Jetson,
Edge TPU)."""
_HELP_CLASS = {
    "essential_ph_1": "mobile", "pixel2": "mobile", "pixel3": "mobile", "samsung_a50": "mobile",
    "samsung_s7": "mobile", "eyeriss": "embedded", "fpga": "embedded", "raspi4": "embedded",
}  # fmt: skip


def device_class(name: str) -> str:
    """The class (one of LOO_CLASSES) of a device of the shipped table, from its name."""
    name = str(name)
    if name.startswith("latbench_"):
        kind = name.split("_")[1:3]  # e.g. ["mobile", "cpu"], ["desktop", "gpu"]
        return kind[1] if kind[0] == "desktop" else kind[0]
    if name in _HELP_CLASS:
        return _HELP_CLASS[name]
    if name.startswith(("gold_", "silver_")):
        return "cpu"
    if any(chip in name for chip in ("1080ti", "2080ti", "titan")):
        return "gpu"
    raise ValueError(f"no device class known for {name!r}")


@dataclasses.dataclass(frozen=True)
class LatencyTable:
    """Measured latency of every NB201 architecture on every device.

    Attributes:
      arch_str: (num_archs,) NB201 architecture strings in the official index order.
      devices: (num_devices,) device names.
      device_source: (num_devices,) "HELP" or "BRP-NAS LatBench".
      latency_ms: (num_archs, num_devices) float32, NaN where not measured.
      flops_m: (num_archs,) analytic CIFAR-10 MFLOPs.
      params_m: (num_archs,) analytic CIFAR-10 parameters in millions.
      hw_embedding_index: (10,) HELP's reference-architecture indices.
    """

    arch_str: np.ndarray
    devices: np.ndarray
    device_source: np.ndarray
    latency_ms: np.ndarray
    flops_m: np.ndarray
    params_m: np.ndarray
    hw_embedding_index: np.ndarray

    @property
    def num_archs(self) -> int:
        return int(self.arch_str.shape[0])

    def device_index(self, name: str) -> int:
        hits = np.flatnonzero(self.devices == name)
        if hits.size == 0:
            raise ValueError(f"unknown device {name!r}; known: {', '.join(self.devices)}")
        return int(hits[0])

    def column_ms(self, name: str) -> np.ndarray:
        """(num_archs,) latency of every architecture on one device, ms."""
        return self.latency_ms[:, self.device_index(name)]


@functools.cache
def load_latency_table() -> LatencyTable:
    """Load `cpnjax/data/compute/nb201_latency.npz` (cached; read-only arrays)."""
    with resources.files("cpnjax.data").joinpath("compute/nb201_latency.npz").open("rb") as f:
        z = np.load(f, allow_pickle=False)
        table = LatencyTable(
            arch_str=z["arch_str"],
            devices=z["devices"],
            device_source=z["device_source"],
            latency_ms=z["latency_ms"],
            flops_m=z["flops_M_cifar10"],
            params_m=z["params_M_cifar10"],
            hw_embedding_index=z["help_hw_embedding_index"],
        )
    for arr in dataclasses.astuple(table):
        arr.setflags(write=False)
    return table

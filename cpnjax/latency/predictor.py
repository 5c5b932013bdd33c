"""What the controller believes a task's compute latency is (host-only).

The simulator's observation never reads the measured latency: it reads a table of predicted
latency (num_archs, num_devices) made by a `LatencyPredictor`. The learned predictor of paper 3.3
(base model + TSFT) plugs in here; until then `DeviceMeanPredictor` is the placeholder.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from cpnjax.latency.table import LatencyTable


class LatencyPredictor(Protocol):
    def predict_ms(self, table: LatencyTable, devices: tuple[str, ...]) -> np.ndarray:
        """(num_archs, len(devices)) predicted latency (ms) of every architecture per device."""
        ...


class DeviceMeanPredictor:
    """Predicts, for every architecture, the device's mean measured latency (ignores the arch)."""

    def predict_ms(self, table: LatencyTable, devices: tuple[str, ...]) -> np.ndarray:
        means = np.array([np.nanmean(table.column_ms(d)) for d in devices], dtype=np.float32)
        return np.broadcast_to(means, (table.num_archs, len(devices))).copy()


class OraclePredictor:
    """Predicts the measured latency itself (an upper bound on any predictor; for ablations)."""

    def predict_ms(self, table: LatencyTable, devices: tuple[str, ...]) -> np.ndarray:
        cols = [table.column_ms(d) for d in devices]
        return np.stack(cols, axis=1).astype(np.float32)

"""Baselines of paper table 5 fitted on the same N measurements of a new device (host-only).

* FLOPs: latency = a * FLOPs + b, least squares (paper ref. [38]).
* Layer-wise: latency = sum over the 5 operations of (count in the cell) * (per-op latency)
  + a constant, least squares: per-operation latencies summed, no cross-layer optimisation
  (paper ref. [39]).
"""

from __future__ import annotations

import numpy as np

from cpnjax.latency.encoding import op_counts, shipped_ops
from cpnjax.latency.table import load_latency_table


def _design(columns: list[np.ndarray]) -> np.ndarray:
    return np.column_stack([*columns, np.ones_like(columns[0])])


class FlopsFit:
    """latency_ms = a * MFLOPs + b on the measured architectures."""

    def __init__(self, arch: np.ndarray, latency_ms: np.ndarray):
        flops = load_latency_table().flops_m.astype(np.float64)
        self.coef, *_ = np.linalg.lstsq(_design([flops[arch]]), latency_ms, rcond=None)

    def predict_ms(self, arch: np.ndarray) -> np.ndarray:
        flops = load_latency_table().flops_m.astype(np.float64)
        return _design([flops[arch]]) @ self.coef


class LayerwiseFit:
    """latency_ms = sum_op count_op * t_op + t_0 on the measured architectures (minimum-norm
    least squares: the 6 op counts of a cell sum to 6, so the constant is not identifiable
    on its own)."""

    def __init__(self, arch: np.ndarray, latency_ms: np.ndarray):
        counts = op_counts(shipped_ops()[arch]).astype(np.float64)
        self.coef, *_ = np.linalg.lstsq(_design(list(counts.T)), latency_ms, rcond=None)

    def predict_ms(self, arch: np.ndarray) -> np.ndarray:
        counts = op_counts(shipped_ops()[arch]).astype(np.float64)
        return _design(list(counts.T)) @ self.coef

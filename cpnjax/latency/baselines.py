"""Baselines of paper table 5 fitted on the measurements of a new device (host-only, except
BRP-NAS which trains a network).

* FLOPs: latency = a * FLOPs + b, least squares (paper ref. [38]).
* Layer-wise: latency = sum over the 5 operations of (count in the cell) * (per-op latency)
  + a constant, least squares: per-operation latencies summed, no cross-layer optimisation
  (paper ref. [39]).
"""

from __future__ import annotations

import numpy as np

from cpnjax.latency.encoding import additive_design
from cpnjax.latency.table import load_latency_table


def _flops_design(arch: np.ndarray) -> np.ndarray:
    flops = load_latency_table().flops_m.astype(np.float64)[np.asarray(arch)]
    return np.column_stack([flops, np.ones_like(flops)])


class FlopsFit:
    """latency_ms = a * MFLOPs + b on the measured architectures."""

    def __init__(self, arch: np.ndarray, latency_ms: np.ndarray):
        self.coef, *_ = np.linalg.lstsq(_flops_design(arch), latency_ms, rcond=None)

    def predict_ms(self, arch: np.ndarray) -> np.ndarray:
        return _flops_design(arch) @ self.coef


class LayerwiseFit:
    """latency_ms = sum_op count_op * t_op + t_0 on the measured architectures (minimum-norm
    least squares: the 6 op counts of a cell sum to 6, so the constant is not identifiable
    on its own)."""

    def __init__(self, arch: np.ndarray, latency_ms: np.ndarray):
        self.coef, *_ = np.linalg.lstsq(additive_design(arch), latency_ms, rcond=None)

    def predict_ms(self, arch: np.ndarray) -> np.ndarray:
        return additive_design(arch) @ self.coef


class BrpNasFit:
    """BRP-NAS (Dudziak et al. 2020): a GCN over the cell's layer graph trained end to end from
    scratch on the new device's measurements alone (no other device, no additive part).

    The GCN is `model.ResidualGCN` with a zero device embedding; the target is the latency
    standardised by its own mean and std. `train_s` is the wall time of training, `compile_s`
    that of compiling it (apart, as for TSFT).
    """

    def __init__(self, arch, latency_ms, seed: int = 0, steps: int = 4000, lr: float = 1e-3):
        import time

        import jax
        import jax.numpy as jnp

        from cpnjax.latency import model as m

        latency_ms = np.asarray(latency_ms, np.float64)
        self.mean_ms, self.std_ms = float(latency_ms.mean()), float(latency_ms.std()) or 1.0
        self.config = m.TrainConfig(network="gcn", hidden=128, depth=4, batch=64)
        module = self.config.module()
        ops, emb = self._inputs(arch)
        target = jnp.asarray((latency_ms - self.mean_ms) / self.std_ms, jnp.float32)
        k_init, k_fit = jax.random.split(jax.random.key(seed))
        params = module.init(k_init, ops[:1], emb[:1])
        args = (params, module, ops, emb, target, jnp.ones_like(target), steps, lr, 64, k_fit)
        t0 = time.perf_counter()
        fit = m._fit_jit.lower(*args).compile()
        self.compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.params, _ = fit(params, ops, emb, target, jnp.ones_like(target), k_fit)
        jax.block_until_ready(self.params)
        self.train_s = time.perf_counter() - t0

    @staticmethod
    def _inputs(arch):
        import jax.numpy as jnp

        from cpnjax.latency.encoding import shipped_ops

        ops = jnp.asarray(shipped_ops()[np.asarray(arch)])
        return ops, jnp.zeros((ops.shape[0], 10), jnp.float32)

    def predict_ms(self, arch: np.ndarray) -> np.ndarray:
        from cpnjax.latency import model as m

        out = m._apply_jit(self.config.module(), self.params, *self._inputs(arch))
        return np.asarray(out, np.float64) * self.std_ms + self.mean_ms

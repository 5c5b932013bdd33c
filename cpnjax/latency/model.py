"""The compute-latency predictor of paper 3.3: a base model f(X, V_h; theta) over the NB201
cell encoding and a device embedding, and TSFT (two-stage fine-tuning) for a new device.

Device features (works for a device never seen in training, HELP's hardware embedding): the
measured latency of HELP's 10 reference architectures on the device, standardised (minus their
mean, over their std). The target is standardised the same way, so the model predicts the
*shape* of a device's latency over architectures and the reference mean/std put it back in ms.
A new device is described by measurements only.

Layer-wise features: NB201 cells share one layer graph (`encoding.ADJACENCY`), so a cell is the
(6, 5) one-hot of its edge operations; the base model is an MLP over those 30 numbers and the
10-number device embedding. (The jraph GCN alternative the issue asks to compare is not built yet:
no measurement says which wins.)
"""

from __future__ import annotations

import dataclasses
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cpnjax.latency.encoding import OPS, shipped_ops
from cpnjax.latency.table import LatencyTable, load_latency_table

NEW_DEVICES = ("titan_rtx_256", "gold_6226", "fpga", "raspi4", "eyeriss")
"""The paper's five new devices (table 5)."""
VALIDATION_DEVICES = ("2080ti_256", "titan_rtx_32", "gold_6240", "pixel2")
"""Held out of base training to choose hyper-parameters (one per device family)."""
ARCHS_PER_TRAIN_DEVICE = 900


def train_devices(table: LatencyTable, exclude=NEW_DEVICES) -> tuple[str, ...]:
    """HELP devices (complete measurements) not excluded and not for validation: 18 by default."""
    skip = set(exclude) | set(VALIDATION_DEVICES)
    return tuple(
        str(d)
        for d, src in zip(table.devices, table.device_source, strict=True)
        if src == "HELP" and str(d) not in skip
    )


def arch_features(arch: np.ndarray) -> np.ndarray:
    """(len(arch), 30) the one-hot operations of the 6 edge layers of each architecture index."""
    ops = shipped_ops()[np.asarray(arch)]
    return ops[:, 1:7, : len(OPS)].reshape(len(arch), -1)


@dataclasses.dataclass(frozen=True)
class DeviceScale:
    """Standardisation of one device from its reference-architecture latencies (ms)."""

    mean_ms: float
    std_ms: float
    embedding: np.ndarray  # (10,) standardised reference latencies

    @classmethod
    def from_reference(cls, ref_ms: np.ndarray) -> DeviceScale:
        ref_ms = np.asarray(ref_ms, np.float64)
        if ref_ms.shape != (10,) or not np.isfinite(ref_ms).all():
            raise ValueError("a device needs finite latencies of the 10 reference architectures")
        std = float(ref_ms.std()) or 1.0
        return cls(float(ref_ms.mean()), std, ((ref_ms - ref_ms.mean()) / std).astype(np.float32))

    def to_target(self, ms: np.ndarray) -> np.ndarray:
        return ((np.asarray(ms, np.float64) - self.mean_ms) / self.std_ms).astype(np.float32)

    def to_ms(self, target: np.ndarray) -> np.ndarray:
        return np.asarray(target, np.float64) * self.std_ms + self.mean_ms


class LatencyMLP(nn.Module):
    """f(X, V_h): (B, 30) operations and (B, 10) device embedding -> (B,) standardised latency."""

    hidden: int = 256
    depth: int = 3

    @nn.compact
    def __call__(self, ops: jax.Array, device: jax.Array) -> jax.Array:
        h = jnp.concatenate([ops, device], axis=-1)
        for _ in range(self.depth):
            h = nn.relu(nn.Dense(self.hidden)(h))
        return nn.Dense(1)(h)[..., 0]


def _fit(params, model, ops, emb, target, weight, steps: int, lr: float, batch: int, key):
    """Adam on weighted MSE for `steps` minibatch steps (one jitted lax.scan)."""
    tx = optax.adam(lr)
    n = ops.shape[0]

    def loss_fn(p, idx):
        pred = model.apply(p, ops[idx], emb[idx])
        return jnp.sum(weight[idx] * (pred - target[idx]) ** 2) / jnp.sum(weight[idx])

    def body(carry, k):
        p, s = carry
        idx = jax.random.randint(k, (min(batch, n),), 0, n)
        loss, g = jax.value_and_grad(loss_fn)(p, idx)
        upd, s = tx.update(g, s, p)
        return (optax.apply_updates(p, upd), s), loss

    (params, _), losses = jax.lax.scan(
        body, (params, tx.init(params)), jax.random.split(key, steps)
    )
    return params, losses


_fit_jit = jax.jit(_fit, static_argnames=("model", "steps", "lr", "batch"))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of base training and of TSFT (chosen on VALIDATION_DEVICES)."""

    hidden: int = 256
    depth: int = 3
    base_steps: int = 4000
    base_lr: float = 1e-3
    batch: int = 256
    stage1_steps: int = 300
    stage1_lr: float = 3e-4
    stage2_steps: int = 300
    stage2_lr: float = 3e-4
    pseudo_archs: int = 3000  # unlabelled architectures pseudo-labelled in stage 2
    pseudo_weight: float = 0.5  # weight of a pseudo-labelled sample against a measured one


@dataclasses.dataclass(frozen=True)
class LatencyModel:
    """A base or adapted model: the params of `LatencyMLP` and its config (the device it was
    adapted to is described by the `DeviceScale` returned next to it)."""

    config: TrainConfig
    params: dict

    @property
    def module(self) -> LatencyMLP:
        return LatencyMLP(self.config.hidden, self.config.depth)

    def predict_ms(self, arch: np.ndarray, scale: DeviceScale) -> np.ndarray:
        """(len(arch),) predicted latency (ms) of architecture indices on a device."""
        ops = jnp.asarray(arch_features(arch))
        emb = jnp.broadcast_to(jnp.asarray(scale.embedding), (ops.shape[0], 10))
        return scale.to_ms(np.asarray(_apply_jit(self.module, self.params, ops, emb)))


_apply_jit = jax.jit(lambda module, p, ops, emb: module.apply(p, ops, emb), static_argnums=0)


def reference_scale(table: LatencyTable, device: str) -> DeviceScale:
    """A device's standardisation from its measured reference-architecture latencies."""
    return DeviceScale.from_reference(table.column_ms(device)[table.hw_embedding_index])


def train_base(
    table: LatencyTable | None = None,
    devices: tuple[str, ...] | None = None,
    seed: int = 0,
    config: TrainConfig = TrainConfig(),
) -> LatencyModel:
    """Base model on ARCHS_PER_TRAIN_DEVICE random architectures of each training device."""
    table = table or load_latency_table()
    devices = devices or train_devices(table)
    rng = np.random.default_rng(seed)
    ops, emb, target = [], [], []
    for d in devices:
        scale = reference_scale(table, d)
        arch = rng.choice(table.num_archs, ARCHS_PER_TRAIN_DEVICE, replace=False)
        ops.append(arch_features(arch))
        emb.append(np.broadcast_to(scale.embedding, (len(arch), 10)))
        target.append(scale.to_target(table.column_ms(d)[arch]))
    ops, emb, target = (jnp.asarray(np.concatenate(x)) for x in (ops, emb, target))
    module = LatencyMLP(config.hidden, config.depth)
    key_init, key_fit = jax.random.split(jax.random.key(seed))
    params = module.init(key_init, ops[:1], emb[:1])
    params, _ = _fit_jit(
        params,
        module,
        ops,
        emb,
        target,
        jnp.ones_like(target),
        config.base_steps,
        config.base_lr,
        config.batch,
        key_fit,
    )
    return LatencyModel(config, params)


def adapt(
    base: LatencyModel, arch: np.ndarray, latency_ms: np.ndarray, seed: int = 0
) -> tuple[LatencyModel, DeviceScale, float]:
    """TSFT for a new device from its measurements (paper eq. 2-3).

    Stage 1 fine-tunes the base model on the N measured architectures; stage 2 pseudo-labels
    `pseudo_archs` unmeasured ones with the stage-1 model and trains again on measured +
    pseudo-labelled samples (pseudo ones weighted `pseudo_weight`).

    Args:
      arch: (N,) architecture indices measured on the device; must include HELP's 10 reference
        architectures (the device embedding).
      latency_ms: (N,) their measured latency.

    Returns (adapted model, the device's scale, wall seconds of fine-tuning).
    """
    table = load_latency_table()
    arch, latency_ms = _check_measurements(table, arch, latency_ms)
    t0 = time.perf_counter()
    ref_pos = [int(np.flatnonzero(arch == r)[0]) for r in table.hw_embedding_index]
    scale = DeviceScale.from_reference(latency_ms[ref_pos])
    cfg, module = base.config, base.module
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    ops = jnp.asarray(arch_features(arch))
    emb = jnp.broadcast_to(jnp.asarray(scale.embedding), (ops.shape[0], 10))
    target = jnp.asarray(scale.to_target(latency_ms))
    params, _ = _fit_jit(
        base.params, module, ops, emb, target, jnp.ones_like(target),
        cfg.stage1_steps, cfg.stage1_lr, cfg.batch, k1,
    )  # fmt: skip
    # Stage 2: pseudo-label unmeasured architectures with the stage-1 model.
    pool = np.setdiff1d(np.arange(table.num_archs), arch)
    pseudo = jax.random.choice(k2, jnp.asarray(pool), (min(cfg.pseudo_archs, pool.size),), False)
    ops_p = jnp.asarray(arch_features(np.asarray(pseudo)))
    emb_p = jnp.broadcast_to(jnp.asarray(scale.embedding), (ops_p.shape[0], 10))
    target_p = _apply_jit(module, params, ops_p, emb_p)
    weight = jnp.concatenate([jnp.ones_like(target), jnp.full_like(target_p, cfg.pseudo_weight)])
    params, _ = _fit_jit(
        params, module, jnp.concatenate([ops, ops_p]), jnp.concatenate([emb, emb_p]),
        jnp.concatenate([target, target_p]), weight,
        cfg.stage2_steps, cfg.stage2_lr, cfg.batch, k3,
    )  # fmt: skip
    jax.block_until_ready(params)
    return LatencyModel(cfg, params), scale, time.perf_counter() - t0


def _check_measurements(table: LatencyTable, arch, latency_ms) -> tuple[np.ndarray, np.ndarray]:
    arch = np.asarray(arch)
    latency_ms = np.asarray(latency_ms, np.float64)
    if arch.ndim != 1 or arch.shape != latency_ms.shape:
        raise ValueError(
            f"arch and latency_ms must be (N,) each, got {arch.shape}, {latency_ms.shape}"
        )
    if (
        not np.issubdtype(arch.dtype, np.integer)
        or (arch < 0).any()
        or (arch >= table.num_archs).any()
    ):
        raise ValueError(f"arch must be integer indices in 0..{table.num_archs - 1}")
    if np.unique(arch).size != arch.size:
        raise ValueError("arch has repeated indices")
    if not np.isfinite(latency_ms).all() or (latency_ms <= 0).any():
        raise ValueError("latency_ms must be finite and > 0 (NaN or non-positive measurement)")
    missing = np.setdiff1d(table.hw_embedding_index, arch)
    if missing.size:
        raise ValueError(
            "the measurements must include the 10 reference architectures; "
            f"missing {missing.tolist()}"
        )
    return arch, latency_ms

"""The compute-latency predictor of paper 3.3: a base model f(X, V_h; theta) over the NB201
cell encoding and a device embedding, and TSFT (two-stage fine-tuning) for a new device.

What is known of a device (`DeviceProfile`, works for a device never seen in training):
* HELP's hardware embedding: the measured latency of its 10 reference architectures,
  standardised (minus their mean, over their std). Targets are standardised the same way.
* An additive part: per-operation latencies fitted by least squares on the device's own
  measurements (latency ~ sum over layers of the latency of its operation). On the HELP data this
  explains most of the variance (min-max MSE 6e-6 on titan_rtx_256; fpga and eyeriss are exact
  sums), so the network only has to learn what is *not* additive.

Prediction = additive(X; device) + share * f(X, V_h; theta), share in [0, 1] chosen for each
new device by cross-validating stage 1 on its measurements (on the validation devices the full
residual was worse than none: 0.00172 against 0.00134 mean MSE at N = 50; with the share 0.00135),
f a residual network over the cell (an MLP
over the 30 edge-operation one-hots, or a jraph GCN over the layer graph: `TrainConfig.network`).
The MLP is the default: on the five new devices at N = 50 it reached mean MSE 0.00094 against
the GCN's 0.00101 (N = 10: 0.00116 against 0.00111), and TSFT with the GCN takes over 10 s per
device against 1.5 s (`results/latency_table5`, `results/latency_table5_gcn`).
"""

from __future__ import annotations

import dataclasses
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import numpy as np
import optax

from cpnjax.latency.encoding import ADJACENCY, NUM_NODES, OPS, additive_design, shipped_ops
from cpnjax.latency.table import LatencyTable, load_latency_table

NEW_DEVICES = ("titan_rtx_256", "gold_6226", "fpga", "raspi4", "eyeriss")
"""The paper's five new devices (table 5)."""
VALIDATION_DEVICES = ("2080ti_256", "titan_rtx_32", "gold_6240", "pixel2")
"""Held out of base training to choose hyper-parameters (one per device family)."""
ARCHS_PER_TRAIN_DEVICE = 900
CV_FOLDS = 5  # folds that choose TSFT's residual share
EMBEDDING_DIM = 10


def train_devices(table: LatencyTable, exclude=NEW_DEVICES) -> tuple[str, ...]:
    """HELP devices (complete measurements) not excluded and not for validation: 18 by default."""
    skip = set(exclude) | set(VALIDATION_DEVICES)
    return tuple(
        str(d)
        for d, src in zip(table.devices, table.device_source, strict=True)
        if src == "HELP" and str(d) not in skip
    )


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """What the predictor knows of one device, from its measurements only.

    Attributes:
      mean_ms, std_ms: mean and std of the 10 reference latencies (the standardisation).
      embedding: (10,) float32 standardised reference latencies (HELP's hardware embedding).
      additive: (6,) float64 standardised per-operation latencies and constant (least squares,
        minimum norm: the op counts sum to 6, so only differences are identified).
      residual_std: how far the measurements are from additive (standardised RMS of the
        least-squares residual, over N - 5 degrees of freedom). The network predicts the
        residual in these units, so a device whose latency is a sum of per-op latencies (fpga,
        eyeriss) gets the additive fit, and a device with large interactions (raspi4) gets them.
      residual_share: how much of the network's residual to add, in [0, 1]: 1 for the base
        model; for TSFT, chosen by cross-validation on the device's own measurements (0 where
        the network's residual does not predict held-out measurements).
    """

    mean_ms: float
    std_ms: float
    embedding: np.ndarray
    additive: np.ndarray
    residual_std: float
    residual_share: float = 1.0

    @classmethod
    def from_measurements(cls, arch: np.ndarray, latency_ms: np.ndarray) -> DeviceProfile:
        """From measurements that include the 10 reference architectures (checked)."""
        table = load_latency_table()
        arch, latency_ms = check_measurements(table, arch, latency_ms)
        ref_ms = latency_ms[[int(np.flatnonzero(arch == r)[0]) for r in table.hw_embedding_index]]
        std = float(ref_ms.std()) or 1.0
        mean = float(ref_ms.mean())
        emb = ((ref_ms - mean) / std).astype(np.float32)
        return cls(mean, std, emb, np.zeros(6), 0.0).refit(arch, latency_ms)

    def refit(self, arch: np.ndarray, latency_ms: np.ndarray) -> DeviceProfile:
        """The same standardisation and embedding, the additive part fitted on these."""
        target = (np.asarray(latency_ms, np.float64) - self.mean_ms) / self.std_ms
        design = additive_design(arch)
        additive, *_ = np.linalg.lstsq(design, target, rcond=None)
        dof = max(len(arch) - np.linalg.matrix_rank(design), 1)
        residual_std = float(np.sqrt(np.sum((target - design @ additive) ** 2) / dof))
        return dataclasses.replace(self, additive=additive, residual_std=residual_std)

    def to_target(self, arch: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """(N,) float32 network target: the standardised latency's residual from the additive
        part, in units of `residual_std` (0 where the device is exactly additive)."""
        z = (np.asarray(ms, np.float64) - self.mean_ms) / self.std_ms
        r = z - additive_design(arch) @ self.additive
        return (r / max(self.residual_std, 1e-12)).astype(np.float32)

    def to_ms(self, arch: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """(len(arch),) latency (ms) from the network's output on `arch`."""
        z = additive_design(arch) @ self.additive
        z = z + self.residual_share * self.residual_std * np.asarray(residual, np.float64)
        return z * self.std_ms + self.mean_ms


def profile_of(table: LatencyTable, device: str, arch: np.ndarray | None = None) -> DeviceProfile:
    """A device's profile from its measured latency on `arch` (default: the 10 references)."""
    arch = table.hw_embedding_index if arch is None else np.asarray(arch)
    return DeviceProfile.from_measurements(arch, table.column_ms(device)[arch])


def measured_archs(device: str, n: int, seed: int) -> np.ndarray:
    """(n,) the architectures measured on a device: HELP's 10 references plus n - 10 others
    drawn (seeded per device and n) from those with a measurement."""
    table = load_latency_table()
    measured = np.isfinite(table.column_ms(device))  # unknown device -> ValueError
    if n < 10:
        raise ValueError(f"N must be >= 10 (the 10 reference architectures), got {n}")
    if not measured[table.hw_embedding_index].all():
        raise ValueError(f"device {device!r} lacks a reference-architecture measurement")
    others = np.setdiff1d(np.flatnonzero(measured), table.hw_embedding_index)
    if n - 10 > others.size:
        raise ValueError(f"N = {n} is more than the {others.size + 10} measured on {device!r}")
    rng = np.random.default_rng([seed, n, *device.encode()])
    return np.concatenate([table.hw_embedding_index, rng.choice(others, n - 10, replace=False)])


class ResidualMLP(nn.Module):
    """(B, 8, 7) layer operations and (B, 10) device embedding -> (B,) residual."""

    hidden: int = 256
    depth: int = 3

    @nn.compact
    def __call__(self, ops: jax.Array, device: jax.Array) -> jax.Array:
        edge_ops = ops[:, 1:7, : len(OPS)].reshape(ops.shape[0], -1)
        h = jnp.concatenate([edge_ops, device], axis=-1)
        for _ in range(self.depth):
            h = nn.relu(nn.Dense(self.hidden)(h))
        return nn.Dense(1)(h)[..., 0]


def _layer_edges() -> tuple[np.ndarray, np.ndarray]:
    """Senders and receivers of the layer graph, both directions."""
    s, r = np.nonzero(ADJACENCY)
    return np.concatenate([s, r]), np.concatenate([r, s])


class ResidualGCN(nn.Module):
    """GCN over the (8-node) layer graph, device embedding on every node, sum readout.

    (B, 8, 7) layer operations and (B, 10) device embedding -> (B,) residual. The B cells are one
    jraph batch of B graphs with the same edges.
    """

    hidden: int = 128
    depth: int = 4

    @nn.compact
    def __call__(self, ops: jax.Array, device: jax.Array) -> jax.Array:
        b = ops.shape[0]
        send, recv = _layer_edges()
        offset = NUM_NODES * np.arange(b)[:, None]
        dev = jnp.broadcast_to(device[:, None, :], (b, NUM_NODES, device.shape[-1]))
        graph = jraph.GraphsTuple(
            nodes=jnp.concatenate([ops, dev], -1).reshape(b * NUM_NODES, -1),
            edges=None,
            senders=jnp.asarray((send[None] + offset).ravel()),
            receivers=jnp.asarray((recv[None] + offset).ravel()),
            n_node=jnp.full((b,), NUM_NODES),
            n_edge=jnp.full((b,), send.size),
            globals=None,
        )
        for _ in range(self.depth):
            # Sum aggregation (every layer has <= 4 neighbours): no degree normalisation,
            # which XLA would constant-fold over the whole batch's edges at compile time.
            layer = jraph.GraphConvolution(
                nn.Dense(self.hidden), add_self_edges=True, symmetric_normalization=False
            )
            graph = layer(graph)
            graph = graph._replace(nodes=nn.relu(graph.nodes))
        pooled = graph.nodes.reshape(b, NUM_NODES, self.hidden).sum(axis=1)
        return nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(pooled)))[..., 0]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of base training and of TSFT (chosen on VALIDATION_DEVICES)."""

    network: str = "mlp"  # "mlp" or "gcn"
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

    def module(self) -> nn.Module:
        if self.network == "mlp":
            return ResidualMLP(self.hidden, self.depth)
        if self.network == "gcn":
            return ResidualGCN(self.hidden, self.depth)
        raise ValueError(f"network must be 'mlp' or 'gcn', got {self.network!r}")


def _fit(params, module, ops, emb, target, weight, steps: int, lr: float, batch: int, key):
    """Adam on weighted MSE for `steps` minibatch steps (one jitted lax.scan)."""
    tx = optax.adam(lr)
    n = ops.shape[0]

    def loss_fn(p, idx):
        pred = module.apply(p, ops[idx], emb[idx])
        w = weight[idx]
        return jnp.sum(w * (pred - target[idx]) ** 2) / jnp.maximum(jnp.sum(w), 1e-6)

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


_fit_jit = jax.jit(_fit, static_argnames=("module", "steps", "lr", "batch"))


def _fit_folds(params, module, ops, emb, targets, weights, steps, lr, batch, keys):
    """`_fit` from the same params for each row of targets (K, N), weights (K, N), keys (K,)."""

    def one(target, weight, key):
        return _fit(params, module, ops, emb, target, weight, steps, lr, batch, key)[0]

    return jax.vmap(one)(targets, weights, keys)


_fit_folds_jit = jax.jit(_fit_folds, static_argnames=("module", "steps", "lr", "batch"))
_apply_jit = jax.jit(lambda module, p, ops, emb: module.apply(p, ops, emb), static_argnums=0)


def _inputs(arch: np.ndarray, profile: DeviceProfile) -> tuple[jax.Array, jax.Array]:
    ops = jnp.asarray(shipped_ops()[np.asarray(arch)])
    return ops, jnp.broadcast_to(jnp.asarray(profile.embedding), (ops.shape[0], EMBEDDING_DIM))


@dataclasses.dataclass(frozen=True)
class LatencyModel:
    """Base or fine-tuned residual network: its config and params."""

    config: TrainConfig
    params: dict

    def residual(self, arch: np.ndarray, profile: DeviceProfile) -> np.ndarray:
        return np.asarray(_apply_jit(self.config.module(), self.params, *_inputs(arch, profile)))

    def predict_ms(self, arch: np.ndarray, profile: DeviceProfile) -> np.ndarray:
        """(len(arch),) predicted latency (ms) of architecture indices on a device."""
        return profile.to_ms(arch, self.residual(arch, profile))

    def adapt(self, arch, latency_ms, seed: int = 0) -> DevicePredictor:
        """TSFT for a new device from its measurements: see `adapt`."""
        return adapt(self, arch, latency_ms, seed)


@dataclasses.dataclass(frozen=True)
class DevicePredictor:
    """A model with the profile of the one device it predicts for."""

    model: LatencyModel
    profile: DeviceProfile
    finetune_s: float = 0.0

    def predict_ms(self, arch: np.ndarray) -> np.ndarray:
        return self.model.predict_ms(arch, self.profile)


def train_base(
    table: LatencyTable | None = None,
    devices: tuple[str, ...] | None = None,
    seed: int = 0,
    config: TrainConfig = TrainConfig(),
) -> LatencyModel:
    """Base model on ARCHS_PER_TRAIN_DEVICE random architectures of each training device (each
    device's additive part fitted on those, plus its references)."""
    table = table or load_latency_table()
    devices = devices or train_devices(table)
    rng = np.random.default_rng(seed)
    ops, emb, target = [], [], []
    others = np.setdiff1d(np.arange(table.num_archs), table.hw_embedding_index)
    for d in devices:
        arch = np.concatenate(
            [table.hw_embedding_index, rng.choice(others, ARCHS_PER_TRAIN_DEVICE - 10, False)]
        )
        profile = profile_of(table, d, arch)
        o, e = _inputs(arch, profile)
        ops.append(o), emb.append(e)
        target.append(profile.to_target(arch, table.column_ms(d)[arch]))
    ops, emb = jnp.concatenate(ops), jnp.concatenate(emb)
    target = jnp.asarray(np.concatenate(target))
    module = config.module()
    key_init, key_fit = jax.random.split(jax.random.key(seed))
    params = module.init(key_init, ops[:1], emb[:1])
    params, _ = _fit_jit(
        params, module, ops, emb, target, jnp.ones_like(target),
        config.base_steps, config.base_lr, config.batch, key_fit,
    )  # fmt: skip
    return LatencyModel(config, params)


def adapt(base: LatencyModel, arch, latency_ms, seed: int = 0) -> DevicePredictor:
    """TSFT for a new device from its measurements (paper eq. 2-3).

    The device's profile (embedding and additive part) is fitted on the measurements. Stage 1
    fine-tunes the base network on the N measured residuals; stage 2 pseudo-labels
    `pseudo_archs` unmeasured architectures with the stage-1 network and trains again on measured
    + pseudo-labelled samples (pseudo ones weighted `pseudo_weight`).

    Args:
      arch: (N,) architecture indices measured on the device; must include HELP's 10 reference
        architectures (the device embedding).
      latency_ms: (N,) their measured latency.

    Returns the adapted predictor; its `finetune_s` is the wall time of all of this.
    """
    t0 = time.perf_counter()
    profile = DeviceProfile.from_measurements(arch, latency_ms)
    arch = np.asarray(arch)
    cfg, module = base.config, base.config.module()
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    ops, emb = _inputs(arch, profile)
    target = jnp.asarray(profile.to_target(arch, latency_ms))
    params, _ = _fit_jit(
        base.params, module, ops, emb, target, jnp.ones_like(target),
        cfg.stage1_steps, cfg.stage1_lr, cfg.batch, k1,
    )  # fmt: skip
    # Stage 2: pseudo-label unmeasured architectures with the stage-1 network.
    pool = np.setdiff1d(np.arange(load_latency_table().num_archs), arch)
    pseudo = np.asarray(
        jax.random.choice(k2, jnp.asarray(pool), (min(cfg.pseudo_archs, pool.size),), False)
    )
    ops_p, emb_p = _inputs(pseudo, profile)
    target_p = _apply_jit(module, params, ops_p, emb_p)
    weight = jnp.concatenate([jnp.ones_like(target), jnp.full_like(target_p, cfg.pseudo_weight)])
    params, _ = _fit_jit(
        params, module, jnp.concatenate([ops, ops_p]), jnp.concatenate([emb, emb_p]),
        jnp.concatenate([target, target_p]), weight,
        cfg.stage2_steps, cfg.stage2_lr, cfg.batch, k3,
    )  # fmt: skip
    share = _cross_validated_share(base, arch, np.asarray(latency_ms, np.float64), profile, k4)
    profile = dataclasses.replace(profile, residual_share=share)
    jax.block_until_ready(params)
    return DevicePredictor(LatencyModel(cfg, params), profile, time.perf_counter() - t0)


def _cross_validated_share(
    base: LatencyModel, arch: np.ndarray, latency_ms: np.ndarray, profile: DeviceProfile, key
) -> float:
    """How much of the fine-tuned residual to trust: K-fold cross-validation of stage 1.

    For each of K = min(5, N) folds, the additive part is refitted and the network fine-tuned
    (stage 1, all folds in one vmapped fit) on the other folds; the share s in [0, 1]
    minimising the held-out squared error of additive + s * residual is returned.
    """
    cfg, module = base.config, base.config.module()
    n = arch.size
    folds = np.asarray(jax.random.permutation(key, n)) % min(CV_FOLDS, n)
    ops, emb = _inputs(arch, profile)
    z = (latency_ms - profile.mean_ms) / profile.std_ms
    targets, weights, held_resid, scales = [], [], [], []
    for k in range(folds.max() + 1):
        train = folds != k
        fold = profile.refit(arch[train], latency_ms[train])
        targets.append(fold.to_target(arch, latency_ms))
        weights.append(train.astype(np.float32))
        held_resid.append(z - additive_design(arch) @ fold.additive)
        scales.append(fold.residual_std)
    params = _fit_folds_jit(
        base.params, module, ops, emb, jnp.asarray(np.stack(targets)),
        jnp.asarray(np.stack(weights)), cfg.stage1_steps, cfg.stage1_lr, cfg.batch,
        jax.random.split(key, len(targets)),
    )  # fmt: skip
    pred = np.asarray(jax.vmap(lambda p: module.apply(p, ops, emb))(params), np.float64)
    held = np.stack(weights) == 0
    a = np.stack(held_resid)[held]  # held-out residual of the additive fit
    b = (np.asarray(scales)[:, None] * pred)[held]  # the network's residual there
    return float(np.clip(a @ b / max(b @ b, 1e-300), 0.0, 1.0))


def check_measurements(table: LatencyTable, arch, latency_ms) -> tuple[np.ndarray, np.ndarray]:
    """(arch int indices, latency_ms float64) checked; ValueError saying what is wrong."""
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

"""The compute-latency predictor of paper 3.3: a base model f(X, V_h; theta) over the NB201
cell encoding and a device embedding, and TSFT (two-stage fine-tuning) for a new device.

What is known of a device (`DeviceProfile`, works for a device never seen in training):
* HELP's hardware embedding: the measured latency of its 10 reference architectures,
  standardised (minus their mean, over their std). Targets are standardised the same way.
* An additive part: per-operation latencies fitted on the device's own measurements (latency ~
  sum over layers of the latency of its operation), by reweighted least squares (`robust_fit`),
  so that one measurement far from any sum (samsung_s7's reference cell 6, 6 scales off) does
  not bend the five per-operation latencies that 10 measurements must fix. On the HELP data the
  additive part explains most of the variance (min-max MSE 6e-6 on titan_rtx_256; fpga and
  eyeriss are exact sums), so the network only has to learn what is *not* additive.

Prediction = additive(X; device) + share * f(X, V_h; theta), f a residual network over the cell
(an MLP over the 30 edge-operation one-hots, or a jraph GCN over the layer graph:
`TrainConfig.network`), share in [0, 1] chosen for each new device by cross-validating stage 1
on its measurements that are not reference architectures (`_cross_validate`; 0 at N = 10, where
every measurement is one). So at small N the predictor falls back to the additive fit, and the
network's residual is added only as far as it predicts measurements it has not seen. The same
cross-validation gives the device's `Confidence`. The MLP is the default: on the five new
devices at N = 50 it reached mean MSE 0.00070 against the GCN's 0.00106 (N = 10: 0.00116 each,
the additive part alone), and TSFT with the GCN takes about 10 s per device against 1.5 s
(`results/latency_table5`, `results/latency_table5_gcn`).
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
CV_FOLDS = 10  # folds that choose TSFT's residual share (and score its confidence)
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
      additive: (6,) float64 standardised per-operation latencies and constant (`robust_fit`,
        minimum norm: the op counts sum to 6, so only differences are identified).
      residual_std: how far the measurements are from additive (the t scale of the additive
        fit's standardised residual, over N - 5 degrees of freedom). The network predicts the
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
        additive, residual_std = robust_fit(additive_design(arch), target)
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


ROBUST_NU = 3.0
"""Degrees of freedom of the Student-t noise of the additive fit's start (`robust_fit`)."""
OUTLIER_CUTOFF = 2.5
"""Measurements farther than this many t scales from the robust start are left out of the
final least squares (the reweighting step of Rousseeuw & Leroy's reweighted least squares)."""


def robust_fit(design: np.ndarray, target: np.ndarray, nu: float = ROBUST_NU, iters: int = 50):
    """Least squares that one far-off measurement cannot bend: reweighted least squares.

    Start: least squares with Student-t noise (EM, i.e. iteratively reweighted least squares),
    which gives a measurement far from the fit weight (nu + 1) / (nu + r^2 / s^2). Then plain
    least squares on the measurements within OUTLIER_CUTOFF t scales of that start, so that the
    others keep full weight (the t weights alone also shrink mildly off measurements, which costs
    accuracy where there is no outlier). With no outlier it is the least-squares fit; if leaving
    the outliers out would lose a direction of the design, it is the t fit.

    Args:
      design: (N, P) float64; target: (N,) float64.

    Returns:
      coef: (P,) float64, minimum norm where the design is rank deficient.
      scale: the t scale s of the residual (over N - rank degrees of freedom).
    """
    rank = np.linalg.matrix_rank(design)
    dof = max(len(target) - rank, 1)
    weight = np.ones(len(target))
    for _ in range(iters):
        root = np.sqrt(weight)
        coef, *_ = np.linalg.lstsq(design * root[:, None], target * root, rcond=None)
        resid = target - design @ coef
        scale2 = max(float(weight @ resid**2) / dof, 1e-30)
        weight = (nu + 1.0) / (nu + resid**2 / scale2)
    scale = float(np.sqrt(scale2))
    keep = np.abs(resid) <= OUTLIER_CUTOFF * scale
    if np.linalg.matrix_rank(design[keep]) == rank:
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
    return coef, scale


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
    """Adam on weighted MSE for `steps` minibatch steps (one jitted lax.scan); full batch when
    the N samples fit one batch."""
    tx = optax.adam(lr)
    n = ops.shape[0]

    def loss_fn(p, idx):
        pred = module.apply(p, ops[idx], emb[idx])
        w = weight[idx]
        return jnp.sum(w * (pred - target[idx]) ** 2) / jnp.maximum(jnp.sum(w), 1e-6)

    def body(carry, k):
        p, s = carry
        # Data that fits one batch is used whole (exact gradients, no sampling noise).
        idx = jnp.arange(n) if n <= batch else jax.random.randint(k, (batch,), 0, n)
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
class Confidence:
    """How well a device's predictor predicts measurements of the device it did not fit on
    (cross-validated on its N measurements, see `adapt`).

    Attributes:
      samples: N, the measurements of the device.
      held_out: how many held-out predictions the figures are over.
      cv_r2: 1 - (squared error) / (variance of the measurements) of the held-out predictions:
        1 is exact, 0 no better than the held-out measurements' mean, < 0 worse than it.
      cv_rmse_ms: root mean squared error of the held-out predictions, ms. (Not a relative
        error: some devices measure near-empty cells in microseconds, raspi4 0.011 ms.)
    """

    samples: int
    held_out: int
    cv_r2: float
    cv_rmse_ms: float

    @classmethod
    def from_held_out(cls, samples: int, pred_ms: np.ndarray, true_ms: np.ndarray) -> Confidence:
        """From held-out predictions and the measurements they predict, (M,) each."""
        sse = float(np.sum((pred_ms - true_ms) ** 2))
        sst = float(np.sum((true_ms - true_ms.mean()) ** 2))
        r2 = 1.0 - sse / sst if sst > 0 else float(sse == 0.0)
        return cls(int(samples), int(true_ms.size), r2, float(np.sqrt(sse / true_ms.size)))

    @property
    def level(self) -> str:
        """ "high" (cv_r2 >= 0.9), "medium" (>= 0.5) or "low"."""
        return "high" if self.cv_r2 >= 0.9 else "medium" if self.cv_r2 >= 0.5 else "low"

    def describe(self) -> str:
        return (
            f"{self.level} confidence: cross-validated R^2 {self.cv_r2:.3f}, RMSE"
            f" {self.cv_rmse_ms:.3g} ms on {self.held_out} held-out of {self.samples} measurements"
        )


@dataclasses.dataclass(frozen=True)
class DevicePredictor:
    """A model with the profile of the one device it predicts for.

    `confidence` is the cross-validated error on the device's own measurements for a device
    adapted with TSFT; None for a device the base model was trained on (its error on those
    measurements would be in-sample).
    """

    model: LatencyModel
    profile: DeviceProfile
    finetune_s: float = 0.0
    confidence: Confidence | None = None

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
    return LatencyModel(config, jax.block_until_ready(params))  # timed by callers


def adapt(base: LatencyModel, arch, latency_ms, seed: int = 0) -> DevicePredictor:
    """TSFT for a new device from its measurements (paper eq. 2-3).

    The device's profile (embedding and additive part) is fitted on the measurements. Stage 1
    fine-tunes the base network on the N measured residuals; stage 2 pseudo-labels
    `pseudo_archs` unmeasured architectures with the stage-1 network and trains again on measured
    + pseudo-labelled samples (pseudo ones weighted `pseudo_weight`). Cross-validation on the
    measurements (`_cross_validate`) then sets how much of the network's residual to add and
    the predictor's `confidence`.

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
    share, confidence = _cross_validate(base, arch, np.asarray(latency_ms, np.float64), profile, k4)
    profile = dataclasses.replace(profile, residual_share=share)
    jax.block_until_ready(params)
    model = LatencyModel(cfg, params)
    return DevicePredictor(model, profile, time.perf_counter() - t0, confidence)


def _cross_validate(
    base: LatencyModel, arch: np.ndarray, latency_ms: np.ndarray, profile: DeviceProfile, key
) -> tuple[float, Confidence]:
    """How much of the fine-tuned residual to trust, and how well the result predicts
    measurements it did not fit on: K-fold cross-validation of stage 1 on the N measurements.

    The folds hold out only the N - 10 measurements that are not reference architectures, in
    K = min(CV_FOLDS, N - 10) folds: a reference's latency is in the device embedding, an input
    of the network, so a held-out reference would reach the prediction of itself. For each fold
    the additive part is refitted and the network fine-tuned (stage 1, all folds in one vmapped
    fit) on the rest; the share s in [0, 1] minimising the held-out squared error of
    additive + s * residual is returned, with the held-out error of that prediction.

    At N = 10 every measurement is a reference, so the network's residual cannot be checked on a
    measurement it has not seen: its share is 0, and the confidence is that of the additive part,
    leave-one-out. (Hiding each held-out reference from the embedding instead chose shares that
    lost to the additive part on one or two of the 27 devices for each seed tried.)
    """
    cfg, module = base.config, base.config.module()
    n = arch.size
    others = np.flatnonzero(~np.isin(arch, load_latency_table().hw_embedding_index))
    if others.size == 0:
        pred_ms = np.empty(n)
        for i in range(n):
            keep = np.arange(n) != i
            fold = profile.refit(arch[keep], latency_ms[keep])
            pred_ms[i] = fold.to_ms(arch[i : i + 1], np.zeros(1))[0]
        return 0.0, Confidence.from_held_out(n, pred_ms, latency_ms)
    folds = np.full(n, -1)  # references: always fitted on
    perm = np.asarray(jax.random.permutation(key, others.size))
    folds[others] = perm % min(CV_FOLDS, others.size)
    z = (latency_ms - profile.mean_ms) / profile.std_ms
    targets, weights, held_additive, scales = [], [], [], []
    for k in range(folds.max() + 1):
        train = folds != k
        fold = profile.refit(arch[train], latency_ms[train])
        targets.append(fold.to_target(arch, latency_ms))
        weights.append(train.astype(np.float32))
        held_additive.append(additive_design(arch) @ fold.additive)
        scales.append(fold.residual_std)
    ops, emb = _inputs(arch, profile)
    params = _fit_folds_jit(
        base.params, module, ops, emb, jnp.asarray(np.stack(targets)),
        jnp.asarray(np.stack(weights)), cfg.stage1_steps, cfg.stage1_lr, cfg.batch,
        jax.random.split(key, len(targets)),
    )  # fmt: skip
    pred = np.asarray(jax.vmap(lambda p: module.apply(p, ops, emb))(params), np.float64)
    held = np.stack(weights) == 0  # (K, N): a non-reference is held out in exactly one fold
    additive = np.stack(held_additive)[held]
    a = np.broadcast_to(z, held.shape)[held] - additive  # held-out residual of the additive fit
    b = (np.asarray(scales)[:, None] * pred)[held]  # the network's residual there
    share = float(np.clip(a @ b / max(b @ b, 1e-300), 0.0, 1.0))
    true_ms = np.broadcast_to(latency_ms, held.shape)[held]
    pred_ms = (additive + share * b) * profile.std_ms + profile.mean_ms
    return share, Confidence.from_held_out(n, pred_ms, true_ms)


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

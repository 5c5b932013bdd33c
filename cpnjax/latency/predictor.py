"""What the controller believes a task's compute latency is (host-only).

The simulator's observation never reads the measured latency: it reads a table of predicted
latency (num_archs, num_devices) made by a `LatencyPredictor`. The default is
`LearnedPredictor`, the predictor of paper 3.3: the base model for devices it was trained on,
TSFT-adapted from N measurements for devices that join the network new.

Adapting a new device takes seconds, so where the prediction cache is on
(`cpnjax.cache.enable_prediction_cache`, which the CLIs call) each device's predictions and
confidence are kept on disk, keyed by everything that makes them: the predictor's key, the
device, the source of the latency package, the shipped latency table and base model, and the
numeric packages' versions. A changed input is a new key; an unreadable entry is recomputed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from cpnjax import cache
from cpnjax.io import atomic_bytes, package_versions
from cpnjax.latency.model import (
    ARCHS_PER_TRAIN_DEVICE,
    NEW_DEVICES,
    Confidence,
    DevicePredictor,
    TrainConfig,
    adapt,
    measured_archs,
    profile_of,
    train_base,
    train_devices,
)
from cpnjax.latency.table import LatencyTable, load_latency_table


class LatencyPredictor(Protocol):
    def predict_ms(self, table: LatencyTable, devices: tuple[str, ...]) -> np.ndarray:
        """(num_archs, len(devices)) predicted latency (ms) of every architecture per device."""
        ...


class LearnedPredictor:
    """Base model + TSFT (paper 3.3).

    A device in `new_devices` joins with `samples` measurements (HELP's 10 references and
    samples - 10 others) and gets a TSFT-adapted predictor; the base model is trained without
    any of them. Any other device is one the base model was trained on, with
    ARCHS_PER_TRAIN_DEVICE measurements. Results are cached per process (the base model trains
    in seconds, each adaptation in about one).
    """

    def __init__(
        self,
        new_devices: tuple[str, ...] = NEW_DEVICES,
        samples: int = 50,
        seed: int = 0,
        config: TrainConfig | None = None,
    ):
        self.key = (tuple(new_devices), int(samples), int(seed), config or TrainConfig())

    def device_predictor(self, device: str) -> DevicePredictor:
        return _device_predictor(*self.key, device)

    def predict_ms(self, table: LatencyTable, devices: tuple[str, ...]) -> np.ndarray:
        if table is not load_latency_table():
            raise ValueError("LearnedPredictor predicts for the shipped latency table only")
        return np.stack([_all_archs_ms(*self.key, str(d)) for d in devices], axis=1)

    def report(self, devices) -> dict[str, dict]:
        """How each device is known, and how sure the predictor is of it (for config files)."""
        new_devices, samples = self.key[0], self.key[1]
        out = {}
        for d in dict.fromkeys(str(d) for d in devices):
            if d in new_devices:
                conf = _prediction(*self.key, d)[1]
                out[d] = {"known_from": f"TSFT on {samples} measurements", "samples": samples}
                out[d] |= {**dataclasses.asdict(conf), "level": conf.level}
            else:
                known = f"base model, profile from {ARCHS_PER_TRAIN_DEVICE} measurements"
                out[d] = {"known_from": known, "samples": ARCHS_PER_TRAIN_DEVICE}
        return out


@functools.cache
def _base(exclude: tuple[str, ...], seed: int, config: TrainConfig):
    """The base model: the one shipped with the package when it was trained with this key,
    else trained now (seconds)."""
    from cpnjax.latency.checkpoint import base_key, load_shipped_base

    shipped = load_shipped_base(base_key(exclude, seed, config))
    if shipped is not None:
        return shipped
    table = load_latency_table()
    return train_base(table, train_devices(table, exclude), seed, config)


@functools.cache
def _device_predictor(new_devices, samples, seed, config, device) -> DevicePredictor:
    table = load_latency_table()
    base = _base(new_devices, seed, config)
    if device in new_devices:
        arch = measured_archs(device, samples, seed)
        return adapt(base, arch, table.column_ms(device)[arch], seed)
    known = measured_archs(device, ARCHS_PER_TRAIN_DEVICE, seed)
    return DevicePredictor(base, profile_of(table, device, known))


def _all_archs_ms(new_devices, samples, seed, config, device) -> np.ndarray:
    """(num_archs,) float32 predicted latency (ms) of every architecture on `device`."""
    return _prediction(new_devices, samples, seed, config, device)[0]


@functools.cache
def _prediction(new_devices, samples, seed, config, device) -> tuple[np.ndarray, Confidence | None]:
    """Every architecture's predicted latency on `device` (read-only (num_archs,) float32) and
    the predictor's confidence: from the prediction cache when it is on and holds them, else
    made now (and stored there when it is on)."""
    folder = cache.prediction_dir()
    key = (tuple(new_devices), int(samples), int(seed), config, str(device))
    path = None if folder is None else folder / f"{_cache_key(key)}.npz"
    stored = None if path is None else _read_prediction(path)
    if stored is not None:
        return stored
    pred = _device_predictor(new_devices, samples, seed, config, device)
    ms = pred.predict_ms(np.arange(load_latency_table().num_archs)).astype(np.float32)
    ms.setflags(write=False)
    if path is not None:
        _write_prediction(path, ms, pred.confidence)
    return ms, pred.confidence


def _cache_key(key: tuple) -> str:
    """sha256 of a predictor key together with `_inputs_fingerprint()`."""
    new_devices, samples, seed, config, device = key
    desc = {
        "new_devices": list(new_devices),
        "samples": samples,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "device": device,
        "inputs": _inputs_fingerprint(),
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:32]


@functools.cache
def _inputs_fingerprint() -> str:
    """sha256 of what an adapted prediction is computed from besides its key: the latency
    package's source, the shipped latency table, the shipped base model's files, and the
    versions of the numeric packages."""
    from cpnjax.latency.checkpoint import SHIPPED_BASE

    digest = hashlib.sha256()
    files = sorted(Path(__file__).parent.glob("*.py"))
    files.append(Path(str(resources.files("cpnjax.data").joinpath("compute/nb201_latency.npz"))))
    files += sorted(p for p in Path(SHIPPED_BASE).rglob("*") if p.is_file())
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    digest.update(json.dumps(package_versions(), sort_keys=True).encode())
    return digest.hexdigest()


def _read_prediction(path: Path) -> tuple[np.ndarray, Confidence | None] | None:
    """A stored prediction, or None when there is none or it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ms = np.array(z["ms"], np.float32)
            conf = json.loads(str(z["confidence"]))
        if ms.shape != (load_latency_table().num_archs,):
            return None
        conf = None if conf is None else Confidence(**conf)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ms.setflags(write=False)
    return ms, conf


def _write_prediction(path: Path, ms: np.ndarray, conf: Confidence | None) -> None:
    """Store a prediction atomically (temp file + rename: concurrent processes are safe); a
    cache that cannot be written (disk full, permissions) is left as it is."""
    meta = None if conf is None else dataclasses.asdict(conf)
    buf = io.BytesIO()
    np.savez(buf, ms=ms, confidence=np.str_(json.dumps(meta)))
    try:
        atomic_bytes(path, buf.getvalue())
    except OSError:
        pass


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

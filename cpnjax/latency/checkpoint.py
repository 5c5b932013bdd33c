"""Save and load a device predictor, and the base model shipped with the package, with orbax
(host-only).

A predictor directory holds `state/` (orbax: network params and the device profile arrays) and
`predictor.json` (the network config and how the predictor was made, for people and for load).
The shipped base model (`SHIPPED_BASE`) holds `state/` (params) and `base.json`: the training
key (devices held out, seed, TrainConfig) it was trained with and the package versions. Made by
`python experiments/ship_base_predictor.py`; `tests/test_latency_model.py` retrains it and
checks that it is reproduced.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp

from cpnjax.io import on_this_process
from cpnjax.latency.model import (
    Confidence,
    DevicePredictor,
    DeviceProfile,
    LatencyModel,
    TrainConfig,
)

SHIPPED_BASE = Path(__file__).resolve().parents[1] / "data" / "predictor" / "base"


def save_predictor(predictor: DevicePredictor, path: Path, info: dict | None = None) -> Path:
    """Write `predictor` to a new directory `path` (an existing one is an error)."""
    path = Path(path).absolute()
    if path.exists():
        raise FileExistsError(f"{path} exists; choose a new directory")
    path.mkdir(parents=True)
    profile = {k: np.asarray(v) for k, v in dataclasses.asdict(predictor.profile).items()}
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path / "state", {"params": predictor.model.params, "profile": profile})
    conf = predictor.confidence
    meta = {
        "config": dataclasses.asdict(predictor.model.config),
        "finetune_s": predictor.finetune_s,
        "confidence": None if conf is None else {**dataclasses.asdict(conf), "level": conf.level},
        **(info or {}),
    }
    (path / "predictor.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_predictor(path: Path) -> DevicePredictor:
    """Read a directory written by `save_predictor`."""
    path = Path(path).absolute()
    if not (path / "predictor.json").is_file() or not (path / "state").is_dir():
        raise FileNotFoundError(f"{path} is not a saved predictor (no predictor.json or state/)")
    meta = json.loads((path / "predictor.json").read_text())
    with ocp.StandardCheckpointer() as ckpt:
        state = _restore(ckpt, path / "state")
    p = state["profile"]
    profile = DeviceProfile(
        mean_ms=float(p["mean_ms"]),
        std_ms=float(p["std_ms"]),
        embedding=np.asarray(p["embedding"], np.float32),
        additive=np.asarray(p["additive"], np.float64),
        residual_std=float(p["residual_std"]),
        residual_share=float(p["residual_share"]),
    )
    model = LatencyModel(TrainConfig(**meta["config"]), state["params"])
    conf = meta.get("confidence")
    if conf is not None:
        conf = Confidence(**{f.name: conf[f.name] for f in dataclasses.fields(Confidence)})
    return DevicePredictor(model, profile, float(meta["finetune_s"]), conf)


def base_key(exclude: tuple[str, ...], seed: int, config: TrainConfig) -> dict:
    """What makes a base model: the devices held out of training, the seed and the config."""
    return {"exclude": list(exclude), "seed": int(seed), "config": dataclasses.asdict(config)}


def save_base(model: LatencyModel, key: dict, path: Path, info: dict | None = None) -> Path:
    """Write a base model and its training `key` (`base_key`) to a new directory `path`."""
    path = Path(path).absolute()
    if path.exists():
        raise FileExistsError(f"{path} exists; choose a new directory")
    path.mkdir(parents=True)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path / "state", {"params": model.params})
    (path / "base.json").write_text(json.dumps({"key": key, **(info or {})}, indent=2) + "\n")
    return path


def load_shipped_base(key: dict, path: Path = SHIPPED_BASE) -> LatencyModel | None:
    """The shipped base model if it was trained with `key`, else None (then train it)."""
    meta_file = Path(path) / "base.json"
    if not meta_file.is_file():
        return None
    if json.loads(meta_file.read_text())["key"] != json.loads(json.dumps(key)):
        return None
    with ocp.StandardCheckpointer() as ckpt:
        state = _restore(ckpt, Path(path).absolute() / "state")
    return LatencyModel(TrainConfig(**key["config"]), state["params"])


def _restore(ckpt: ocp.StandardCheckpointer, path: Path):
    """Restore onto this process's first device (`io.on_this_process`)."""
    return ckpt.restore(path, on_this_process(ckpt.metadata(path).item_metadata))

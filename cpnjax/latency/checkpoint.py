"""Save and load a device predictor with orbax (host-only).

A predictor directory holds `state/` (orbax: network params and the device profile arrays) and
`predictor.json` (the network config and how the predictor was made, for people and for load).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp

from cpnjax.latency.model import DevicePredictor, DeviceProfile, LatencyModel, TrainConfig


def save_predictor(predictor: DevicePredictor, path: Path, info: dict | None = None) -> Path:
    """Write `predictor` to a new directory `path` (an existing one is an error)."""
    path = Path(path).absolute()
    if path.exists():
        raise FileExistsError(f"{path} exists; choose a new directory")
    path.mkdir(parents=True)
    profile = {k: np.asarray(v) for k, v in dataclasses.asdict(predictor.profile).items()}
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path / "state", {"params": predictor.model.params, "profile": profile})
    meta = {
        "config": dataclasses.asdict(predictor.model.config),
        "finetune_s": predictor.finetune_s,
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
        state = ckpt.restore(path / "state")
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
    return DevicePredictor(model, profile, float(meta["finetune_s"]))

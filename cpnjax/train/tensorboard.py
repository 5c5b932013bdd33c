"""The training curve as TensorBoard scalars, written from the host between jitted chunks
(tensorboardX: event files without TensorFlow; the `ecosystem` extra).

Tags, each at step = env steps: `validation/mean_response_ms` (the deterministic policy on the
fixed validation stream), `validation/<baseline>_ms` (Base1-4 and greedy-joint on the same
stream, flat lines to compare with), `train/<metric>` (the chunk's mean of each training metric:
losses, entropy, ...) and `perf/env_steps_per_s` (per wall second of the chunk: training,
validation and checkpoint). `tensorboard --logdir DIR` shows them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class CurveWriter:
    """Writes curve rows (`train.run._row`) to event files in `log_dir`."""

    def __init__(self, log_dir: Path, baselines: dict[str, float]):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(
                '--tensorboard needs tensorboardX: pip install "cpnjax[ecosystem]"'
            ) from e
        self.log_dir = Path(log_dir)
        self.fresh = not any(self.log_dir.glob("events.out.tfevents.*"))
        self._writer = SummaryWriter(str(self.log_dir))
        self._baselines = dict(baselines)

    def write(self, row: dict, env_steps_per_s: float | None = None) -> None:
        step = int(row["env_steps"])
        scalars = {"validation/mean_response_ms": row["mean_response_ms"]}
        scalars |= {f"validation/{k}_ms": v for k, v in self._baselines.items()}
        for key, value in row.items():
            if key.startswith("train_"):
                scalars[f"train/{key.removeprefix('train_')}"] = value
        if env_steps_per_s is not None:
            scalars["perf/env_steps_per_s"] = env_steps_per_s
        for tag, value in scalars.items():
            if value is not None and np.isfinite(value):
                self._writer.add_scalar(tag, float(value), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

"""Atomic file writers shared by every layer (results, tables, configs): temp file + rename, so a
reader never sees a half-written file. Host-only."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path


def atomic_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    _publish(f.name, path)


def atomic_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(data)
    _publish(f.name, path)


def atomic_csv(path: Path, rows: Sequence[dict]) -> None:
    """Write dict rows (the first row's keys are the header) to `path` atomically."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, suffix=".tmp", newline=""
    ) as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _publish(f.name, path)


def _publish(tmp: str, path: Path) -> None:
    """Give the temp file ordinary permissions (tempfile makes it 0600), then rename it."""
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def atomic_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON (non-JSON values by str) atomically."""
    atomic_text(path, json.dumps(obj, indent=2, default=str))


def atomic_figure(fig, path: Path, dpi: int = 120) -> None:
    """Save a matplotlib figure atomically (png)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    os.replace(tmp, path)


CORE_PACKAGES = ("cpnjax", "jax", "jaxlib", "flax", "optax", "jraph", "orbax-checkpoint", "numpy")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of the packages a result depends on (for config.json beside results): the core
    ones and `extra` (e.g. ("gymnax", "rejax"))."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (*CORE_PACKAGES, *extra):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def on_this_process(metadata):
    """A restore target for an orbax checkpoint's array metadata tree: each array whole on this
    process's first device. orbax refuses to restore a checkpoint saved on other devices (a
    run of several processes, or a predictor saved before `jax.distributed` started) without a
    target of the current topology ("Topology mismatch")."""
    import jax

    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), metadata)

"""On-disk caches for the command-line tools: JAX's compiled executables and the adapted
latency predictions.

A second `cpnjax evaluate` (or `train`, `cpnjax-ns3`) on the same machine loads the compiled
rollouts from disk instead of compiling them again, and reads each new device's TSFT-adapted
latency predictions instead of fine-tuning the predictor again (2-3 s a device). The cache
root is `$CPNJAX_CACHE_DIR`, else `$XDG_CACHE_HOME/cpnjax`, else `~/.cache/cpnjax`; compiled
executables go in its `jax/`, predictions in its `predictions/`. Set `CPNJAX_CACHE_DIR=off` to
keep nothing. Only the CLIs turn the caches on: importing cpnjax as a library leaves JAX's
configuration alone and adapts predictors in memory (call `enable_caches()` to opt in).
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_COMPILE_S = 0.2
"""Executables that took less than this to compile are not worth a disk round trip."""

_prediction_dir: Path | None = None


def cache_root() -> Path | None:
    """The directory the caches live under, or None when caching is off."""
    env = os.environ.get("CPNJAX_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cpnjax"


def enable_compilation_cache() -> Path | None:
    """Turn on JAX's persistent compilation cache in `cache_root()/jax`; returns it (None: off)."""
    import jax

    path = _usable(cache_root(), "jax")
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def enable_prediction_cache() -> Path | None:
    """Keep adapted latency predictions in `cache_root()/predictions` (see
    `cpnjax.latency.predictor`); returns it (None: off)."""
    global _prediction_dir
    _prediction_dir = _usable(cache_root(), "predictions")
    return _prediction_dir


def _usable(root: Path | None, name: str) -> Path | None:
    """root/name, made if need be; None when caching is off or the directory cannot be made
    (a cache is an optimisation: a read-only home runs without it)."""
    if root is None:
        return None
    try:
        (root / name).mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / name


def prediction_dir() -> Path | None:
    """Where adapted latency predictions are kept; None unless `enable_prediction_cache()` ran."""
    return _prediction_dir


def enable_caches() -> None:
    """Both caches (what the CLIs call first)."""
    enable_compilation_cache()
    enable_prediction_cache()

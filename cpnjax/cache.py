"""JAX's persistent compilation cache for the command-line tools.

A second `cpnjax evaluate` (or `train`, `cpnjax-ns3`) on the same machine loads the compiled
rollouts from disk instead of compiling them again. The cache lives in
`$CPNJAX_CACHE_DIR`, else `$XDG_CACHE_HOME/cpnjax/jax`, else `~/.cache/cpnjax/jax`; set
`CPNJAX_CACHE_DIR=off` to compile every time. Only the CLIs turn it on: importing cpnjax as a
library leaves JAX's configuration alone (call `enable_compilation_cache()` to opt in).
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_COMPILE_S = 0.2
"""Executables that took less than this to compile are not worth a disk round trip."""


def cache_dir() -> Path | None:
    """Where compiled executables are kept, or None when caching is off."""
    env = os.environ.get("CPNJAX_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cpnjax" / "jax"


def enable_compilation_cache() -> Path | None:
    """Turn on JAX's persistent compilation cache in `cache_dir()`; returns it (None: off)."""
    import jax

    path = cache_dir()
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path

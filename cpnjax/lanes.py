"""Reductions over short static axes as unrolled elementwise ops.

XLA:CPU emits a reduction over a short axis (the 8 jobs a link remembers, the 3 paths of a
candidate) as a scalar loop per output element, while the same arithmetic written as elementwise
ops between slices fuses into loops that vectorise over the environments. On the simulator's
FIFO backlog that was 874 ns -> 27 ns per call in a microbenchmark (4096 x 21 rows); the whole
step gained less (`experiments/profile_sim.py` times it). These helpers
take the same arguments as their `jnp` counterparts (one axis, default the last) and reduce
pairwise, so a sum of n slices has depth log2(n). Use them only on short axes: the graph grows
with the axis length.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def slices(x: jax.Array, axis: int = -1) -> list[jax.Array]:
    """The slices of x along `axis` (that axis removed), in order."""
    return [jax.lax.index_in_dim(x, i, axis, keepdims=False) for i in range(x.shape[axis])]


def fold(op: Callable, xs: list):
    """Pairwise reduce of a non-empty list with a binary op, keeping left-to-right order."""
    if not xs:
        raise ValueError("fold of an empty list")
    while len(xs) > 1:
        xs = [op(xs[i], xs[i + 1]) if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
    return xs[0]


def lane_sum(x: jax.Array, axis: int = -1) -> jax.Array:
    return fold(jnp.add, slices(x, axis))


def lane_max(x: jax.Array, axis: int = -1) -> jax.Array:
    return fold(jnp.maximum, slices(x, axis))


def lane_min(x: jax.Array, axis: int = -1) -> jax.Array:
    return fold(jnp.minimum, slices(x, axis))


def lane_any(x: jax.Array, axis: int = -1) -> jax.Array:
    return fold(jnp.logical_or, slices(x, axis))


def lane_all(x: jax.Array, axis: int = -1) -> jax.Array:
    return fold(jnp.logical_and, slices(x, axis))


def _arg(x: jax.Array, axis: int, better: Callable) -> jax.Array:
    def pick(a, b):
        take_b = better(b[0], a[0])  # strict: ties keep the earlier index, as jnp.argmin
        return jnp.where(take_b, b[0], a[0]), jnp.where(take_b, b[1], a[1])

    pairs = [(v, jnp.full(v.shape, i, jnp.int32)) for i, v in enumerate(slices(x, axis))]
    return fold(pick, pairs)[1]


def lane_argmin(x: jax.Array, axis: int = -1) -> jax.Array:
    """int32 index of the first minimum along `axis` (as jnp.argmin, for NaN-free input)."""
    return _arg(x, axis, jnp.less)


def lane_argmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """int32 index of the first maximum along `axis` (as jnp.argmax, for NaN-free input)."""
    return _arg(x, axis, jnp.greater)


def lane_logsumexp(x: jax.Array, b: jax.Array, axis: int = -1) -> jax.Array:
    """log sum b * exp(x) along `axis` (b >= 0, some b > 0 on every lane), stable and with the
    gradients of jax.nn.logsumexp(x, b=b)."""
    x = jnp.where(b != 0, x, -jnp.inf)
    m = lane_max(x, axis)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
    return m + jnp.log(lane_sum(b * jnp.exp(x - jnp.expand_dims(m, axis)), axis))

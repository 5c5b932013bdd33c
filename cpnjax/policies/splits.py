"""Split rules: how a task's bytes are divided over the chosen candidate's k paths.

* ECMP: equal shares over the existing paths.
* Min-MLU LP (paper 4.1.3, Base3/Base4): minimise the maximum link utilisation
      max_l  u_l + (8 B / (C_l * interval)) * sum_{p uses l} x_p
  over the simplex, where u_l is the link's measured utilisation (background, plus queued task
  data as a fraction of the interval) and B the task's bytes spread over one TE interval.
  A small tie-break, 1e-4 * (hops + index / 10) per unit share, picks one optimum among
  equals: the fewest hops, then the lower-delay path (paths are ordered by delay).
  `mlu_split_highs` solves it with scipy's HiGHS (host reference); `mlu_split` solves the same LP
  exactly under jit by enumerating the vertices of its epigraph (k is small: k = 3 gives
  C(3H + 3, 3) candidate vertices, a few thousand 4x4 solves).
* Water-filling: minimise max_p (probe delay_p + 8 B x_p / free_p), the transmission time the
  observation predicts; closed form, used by greedy-joint.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linprog

from cpnjax.sim import Obs

LP_INTERVAL_S = 0.01
"""TE interval over which a task's bytes count as a rate in the min-MLU LP. 10 ms is the
timescale on which a task is actually sent (a 4 MB task over 10 ms is 3.2 Gbit/s), so the LP
spreads the task where there is room. With 0.1 s the task looked like a trickle next to the
background, the LP put every byte on whichever path dodged the hottest link, lost all
multipath parallelism and was worse than ECMP on Tiscali (mean 52.1 vs 33.7 ms over 3 seeds;
32.1 vs 33.7 ms with 10 ms)."""
TIE_BREAK = 1e-4


def ecmp_split(path_mask: jax.Array) -> jax.Array:
    """(K,) equal shares over existing paths."""
    m = path_mask.astype(jnp.float32)
    return m / jnp.maximum(m.sum(), 1.0)


def mlu_rows(obs: Obs, slot: jax.Array, interval_s: float = LP_INTERVAL_S):
    """Rows of the min-MLU LP for one candidate.

    Returns:
      base: (R,) utilisation of each row's link without the task (R = K*H; padded rows -1e9).
      coef: (R, K) added utilisation per unit share on path q (0 where q avoids the link).
      real: (R,) bool.
    """
    links = obs.hop_links[slot]  # (K, H)
    mask = obs.hop_mask[slot]
    cap = obs.hop_capacity_bps[slot]
    util = obs.hop_bg_util[slot] + obs.hop_backlog_s[slot] / interval_s
    num_paths, num_hops = links.shape
    links_r, mask_r = links.reshape(-1), mask.reshape(-1)
    # uses[r, q]: path q crosses the link of row r
    same = (links_r[:, None, None] == links[None, :, :]) & mask[None, :, :]
    uses = same.any(-1) & mask_r[:, None]
    per_share = 8.0 * obs.size_bytes / (cap.reshape(-1) * interval_s)
    coef = jnp.where(uses, per_share[:, None], 0.0)
    base = jnp.where(mask_r, util.reshape(-1), -1e9)
    return base, coef, mask_r


def _tie_cost(path_mask, hops):
    """(K,) tie-break cost per unit share (works on numpy and jax arrays)."""
    order = np.arange(hops.shape[-1]) / 10.0
    return TIE_BREAK * jnp.where(path_mask, hops + order, 0.0)


def mlu_split(
    base: jax.Array, coef: jax.Array, real: jax.Array, path_mask: jax.Array, hops: jax.Array
) -> jax.Array:
    """Exact min-MLU split by vertex enumeration (jit-able). Shapes as in `mlu_rows`;
    path_mask, hops: (K,). Returns (K,) on the simplex over path_mask."""
    num_rows, k = coef.shape
    big = 1e3  # a missing path costs far more than any real one: its share is 0 at the optimum
    coef = jnp.where(path_mask[None, :], coef, big)
    # Constraint rows as [a | -1] z <= -u  (z = (x, t)); nonnegativity as [-e_q | 0] z <= 0.
    g = jnp.concatenate(
        [
            jnp.concatenate([coef, -jnp.ones((num_rows, 1))], axis=1),
            jnp.concatenate([-jnp.eye(k), jnp.zeros((k, 1))], axis=1),
        ]
    )
    h = jnp.concatenate([-base, jnp.zeros(k)])
    combos = np.array(list(itertools.combinations(range(num_rows + k), k)), dtype=np.int32)
    eq = jnp.concatenate([jnp.ones(k), jnp.zeros(1)])
    mats = jnp.concatenate([jnp.broadcast_to(eq, (len(combos), 1, k + 1)), g[combos]], axis=1)
    rhs = jnp.concatenate([jnp.ones((len(combos), 1)), h[combos]], axis=1)
    z = jnp.linalg.solve(mats, rhs[..., None])[..., 0]  # (M, k+1)
    x, t = z[:, :k], z[:, k]
    slack = jnp.where(real[None, :], base[None, :] + x @ coef.T - t[:, None], -1.0)
    feasible = (
        jnp.all(jnp.isfinite(z), axis=1)
        & jnp.all(x >= -1e-5, axis=1)
        & jnp.all(slack <= 1e-5 * (1.0 + jnp.abs(t[:, None])), axis=1)
        & (jnp.abs(x.sum(1) - 1.0) < 1e-4)
    )
    objective = jnp.where(feasible, t + x @ _tie_cost(path_mask, hops), jnp.inf)
    best = jnp.argmin(objective)
    x_best = jnp.clip(jnp.where(path_mask, x[best], 0.0), 0.0, None)
    x_best = x_best / jnp.maximum(x_best.sum(), 1e-12)
    return jnp.where(jnp.isfinite(objective[best]), x_best, ecmp_split(path_mask))


def mlu_split_highs(base, coef, real, path_mask, hops) -> tuple[np.ndarray, float]:
    """Reference: the same LP with scipy's HiGHS (host-only). Returns (split (K,), max util)."""
    base, coef, real = np.asarray(base), np.asarray(coef), np.asarray(real)
    path_mask, hops = np.asarray(path_mask), np.asarray(hops, dtype=np.float64)
    k = coef.shape[1]
    rows = np.flatnonzero(real)
    a_ub = np.concatenate([coef[rows], -np.ones((len(rows), 1))], axis=1)
    b_ub = -base[rows]
    cost = np.concatenate([np.asarray(_tie_cost(path_mask, hops)), [1.0]])
    bounds = [(0.0, None if path_mask[q] else 0.0) for q in range(k)] + [(None, None)]
    res = linprog(
        cost,
        A_ub=a_ub if len(rows) else None,
        b_ub=b_ub if len(rows) else None,
        A_eq=np.concatenate([np.ones((1, k)), np.zeros((1, 1))], axis=1),
        b_eq=[1.0],
        bounds=bounds,
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed on the min-MLU LP: {res.message}")
    x = np.clip(res.x[:k], 0.0, None)
    return x / x.sum(), float(res.x[k])


def max_utilisation(base, coef, real, x) -> jax.Array:
    """() the LP objective max_r base_r + coef_r . x over real rows."""
    return jnp.max(jnp.where(real, base + coef @ x, -jnp.inf))


def water_fill(
    delay_s: jax.Array, free_bps: jax.Array, path_mask: jax.Array, size_bytes: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Split minimising max_p (delay_p + 8 B x_p / free_p) over used paths.

    Args:
      delay_s, free_bps, path_mask: (K,) per path; size_bytes: ().

    Returns:
      split: (K,) on the simplex. level_s: () the predicted transmission time.

    The level T solves sum_p free_p (T - delay_p)^+ = 8B; with paths sorted by delay, T is the
    minimum over j of (8B + sum_{i<=j} free_i d_i) / sum_{i<=j} free_i (computed over the
    prefixes {m: d_m <= d_j}, which needs no sort).
    """
    bits = 8.0 * size_bytes
    c = jnp.where(path_mask, free_bps, 0.0)
    d = jnp.where(path_mask, delay_s, 0.0)
    # prefix[i, m]: path m is no slower than path i -- the sorted prefixes, without a sort
    prefix = (d[None, :] <= d[:, None]) & path_mask[None, :]
    cum_c = (prefix * c[None, :]).sum(-1)
    cum_cd = (prefix * (c * d)[None, :]).sum(-1)
    # Safe denominators (1 where a branch is not taken): max(x, 1e-30) would leave a gradient
    # of -y / 1e-60 = -inf in the branch a `where` drops, and 0 * inf = NaN in the sum.
    ratio = (bits + cum_cd) / jnp.where(cum_c > 0, cum_c, 1.0)
    levels = jnp.where(path_mask, jnp.where(cum_c > 0, ratio, 1e30), jnp.inf)
    level = jnp.min(levels)
    share = jnp.where(path_mask, free_bps * jnp.maximum(level - delay_s, 0.0), 0.0)
    total = share.sum()
    split = jnp.where(total > 0, share / jnp.where(total > 0, total, 1.0), ecmp_split(path_mask))
    return split, level

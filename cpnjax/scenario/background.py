"""Background traffic: a traffic matrix routed on shortest paths, scaled to a mean link
utilisation (host-only)."""

from __future__ import annotations

from importlib import resources

import numpy as np

from cpnjax.network import Topology, route_traffic_matrix

_ABILENE_RAW_TO_BPS = 100 * 8 / 300  # 100 bytes per 5-minute interval -> bit/s (CFR-RL)


def real_traffic_matrix(name: str, rng: np.random.Generator) -> np.ndarray | None:
    """A real measured TM snapshot (bit/s, relative scale) for topologies that ship one, else None.

    Abilene: one of the 2016 five-minute CFR-RL/Abilene TMs. B4: one of Teal's 36 real TMs.
    """
    files = {
        "abilene": ("traffic/abilene_tm_cfrrl.npz", "tm"),
        "b4": ("traffic/b4_tm_teal_real.npz", "tm"),
    }
    if name.lower() not in files:
        return None
    path, key = files[name.lower()]
    with resources.files("cpnjax.data").joinpath(path).open("rb") as f:
        tms = np.load(f)[key]
    tm = tms[rng.integers(len(tms))].astype(np.float64)
    return tm * _ABILENE_RAW_TO_BPS if name.lower() == "abilene" else tm


def gravity_traffic_matrix(topology: Topology, rng: np.random.Generator) -> np.ndarray:
    """Gravity model: demand(i, j) proportional to out-capacity(i) * in-capacity(j), times a
    log-normal(0, 0.5) factor per pair so that seeds differ. Relative scale."""
    n = topology.num_nodes
    out_cap = np.bincount(topology.src, weights=topology.capacity_bps, minlength=n)
    in_cap = np.bincount(topology.dst, weights=topology.capacity_bps, minlength=n)
    tm = np.outer(out_cap, in_cap) * rng.lognormal(0.0, 0.5, size=(n, n))
    np.fill_diagonal(tm, 0.0)
    return tm


def background_traffic(
    topology: Topology,
    mean_utilisation: float,
    max_utilisation: float,
    rng: np.random.Generator,
    topology_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Background demand and the link load it makes: ((num_nodes, num_nodes), (num_links,)),
    both in bit/s.

    The TM (real where shipped, else gravity) is routed on shortest paths by routing weight, then
    scaled so the mean link utilisation equals `mean_utilisation`; if that would push any link
    above `max_utilisation`, it is scaled down until the busiest link sits at `max_utilisation`
    (so background alone never saturates a link, and the mean is then below the target).
    """
    if not 0.0 <= mean_utilisation < 1.0:
        raise ValueError(f"background utilisation must be in [0, 1), got {mean_utilisation}")
    if not 0.0 < max_utilisation < 1.0:
        raise ValueError(f"max background utilisation must be in (0, 1), got {max_utilisation}")
    if mean_utilisation == 0.0:
        return np.zeros((topology.num_nodes,) * 2), np.zeros(topology.num_links)
    tm = real_traffic_matrix(topology_key or topology.name, rng)
    if tm is None or tm.shape != (topology.num_nodes, topology.num_nodes):
        tm = gravity_traffic_matrix(topology, rng)
    tm = np.array(tm, dtype=np.float64)
    np.fill_diagonal(tm, 0.0)
    load = route_traffic_matrix(topology, tm)
    util = load / topology.capacity_bps
    scale = mean_utilisation / max(util.mean(), 1e-30)
    scale = min(scale, max_utilisation / max(util.max(), 1e-30))
    return tm * scale, load * scale

"""experiments/layout_probe.py: the env-minor send_chunks gives the package's numbers."""

import importlib.util
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("layout_probe", ROOT / "experiments/layout_probe.py")
layout_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layout_probe)


def test_env_minor_send_equals_the_package_send():
    params, links, args = layout_probe.warm_state("abilene", num_envs=8, warm_tasks=6)
    repeats = 10  # > 8 jobs on the same links at one instant: free_slot must merge
    out_major = layout_probe.major_fn(params.packet_bytes, repeats)(links, args)
    minor_args = jax.tree.map(layout_probe.to_minor, args)
    minor_links = layout_probe.links_to_minor(links)
    out_minor = layout_probe.minor_fn(params.packet_bytes, repeats)(minor_links, minor_args)
    diff = layout_probe.max_differences(out_major, out_minor)
    assert all(v <= 1e-6 for v in diff.values()), diff
    assert float(out_major[2].sum()) > 0  # some chunk was sent

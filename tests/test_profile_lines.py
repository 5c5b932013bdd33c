"""experiments/profile_sim.py --lines: traced kernel time is charged to the package's lines."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp

from cpnjax.sim.dynamics import break_input

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("profile_sim", ROOT / "experiments/profile_sim.py")
profile_sim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile_sim)


def test_kernel_time_is_charged_to_the_line_that_made_it():
    rows = jnp.linspace(0.0, 1.0, 256 * 8).reshape(256, 8)
    jobs = (rows, rows + 0.5, rows, 0.1 * rows)
    compiled = jax.jit(jax.vmap(break_input)).lower(jobs).compile()
    times = profile_sim.kernel_times_us(compiled, (jobs,))
    assert times and all(us >= 0 for us in times.values())
    sources = profile_sim.kernel_sources(compiled.as_text())
    traced = {sources[k][0] for k in times if k in sources}
    # _input's per-job loop and _contrib are where break_input's arithmetic is written
    assert any(line.startswith("sim/dynamics.py:") for line in traced), traced
    table = profile_sim.line_table(times, sources, num_steps=1, top=3)
    shares = [float(r.split("|")[3].strip().rstrip("%")) for r in table[2:6] if r.startswith("|")]
    assert abs(sum(shares) - 100.0) < 0.5  # the listed lines and the rest make up the whole

"""Run by test_distributed.py: `train_run` in one process of a `jax.distributed` run (CPU,
gloo) or alone. Usage: distributed_check.py PROCESS_ID NUM_PROCESSES PORT RUN_DIR [resume].

SGD: Adam turns last-bit differences of a reordered gradient sum on a near-0 gradient into whole
steps of size lr, so only SGD keeps two summation orders within float tolerance."""

import dataclasses
import sys

from cpnjax.distributed import initialize

process_id, num_processes, port, run_dir = (*map(int, sys.argv[1:4]), sys.argv[4])
resume = sys.argv[5:] == ["resume"]
distributed = num_processes > 1 and initialize(f"localhost:{port}", num_processes, process_id)

import jax  # noqa: E402

from cpnjax.scenario import ScenarioConfig  # noqa: E402
from cpnjax.sim.sharding import env_mesh  # noqa: E402
from cpnjax.train import RunSpec, TrainConfig, train_run  # noqa: E402

assert jax.process_count() == num_processes, jax.process_count()
config = dataclasses.replace(
    TrainConfig.test(), num_envs=8, rollout_steps=8, num_updates=4, optimizer="sgd", lr=0.05
)
spec = RunSpec(ScenarioConfig.test(), 3, config, chunk_updates=2, validation_tasks=20)
mesh = env_mesh() if distributed else None
summary = train_run(spec, run_dir, resume=resume, progress=False, score_baselines=False, mesh=mesh)
print("OK", summary["num_processes"], summary["curve_final"]["mean_response_ms"], flush=True)

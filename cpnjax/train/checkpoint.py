"""Training checkpoints with orbax (host-only).

A run directory holds `config.json` (the resolved config: agent, scenario, seed, sizes,
package versions) and `checkpoints/<update>/` written by one orbax `CheckpointManager`, each
with three items: `state` (the whole TrainState: params, optimiser state, every environment, PRNG
keys, update counter, reward scale), `params` (the network alone, for evaluation) and `progress`
(JSON: the learning curve so far, wall seconds, env steps). orbax writes a step to a temporary
directory and renames it when complete, so a run killed at any moment leaves only whole
checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from cpnjax.io import on_this_process

CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"


class CheckpointError(ValueError):
    """A directory that is not a checkpoint, or one of another agent or scenario size."""


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_raw(tree):
    """Typed PRNG keys -> their uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def from_raw(raw, template):
    """Inverse of `to_raw`, guided by a template with typed keys where the state has them."""
    return jax.tree.map(
        lambda r, t: jax.random.wrap_key_data(jnp.asarray(r)) if _is_key(t) else jnp.asarray(r),
        raw,
        template,
    )


def manager(run_dir: Path, max_to_keep: int = 2) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
    return ocp.CheckpointManager(
        Path(run_dir).absolute() / CHECKPOINTS,
        options=options,
        item_names=("state", "params", "progress"),
    )


def save(mgr: ocp.CheckpointManager, state, progress: dict) -> None:
    """Save a TrainState (and its params and progress) at its update counter; blocks until
    written."""
    step = int(state.update)
    mgr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(to_raw(state)),
            params=ocp.args.StandardSave(state.params),
            progress=ocp.args.JsonSave(progress),
        ),
    )
    mgr.wait_until_finished()


def restore_state(mgr: ocp.CheckpointManager, template) -> tuple[object, dict]:
    """The latest (TrainState, progress); template: the abstract TrainState
    (`jax.eval_shape(trainer.init, key)`)."""
    step = mgr.latest_step()
    if step is None:
        raise CheckpointError(f"no checkpoint under {mgr.directory}")
    abstract = jax.eval_shape(to_raw, template)
    got = mgr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), progress=ocp.args.JsonRestore()
        ),
    )
    return from_raw(got["state"], template), dict(got["progress"])


def read_config(run_dir: Path) -> dict:
    """The run's resolved config; CheckpointError if `run_dir` holds no finished checkpoint."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file() or not (run_dir / CHECKPOINTS).is_dir():
        raise CheckpointError(f"{run_dir} is not a training run (no {CONFIG_FILE} or checkpoints/)")
    return json.loads(path.read_text())


def restore_params(run_dir: Path) -> dict:
    """The network params of the latest checkpoint of a run directory."""
    read_config(run_dir)
    mgr = manager(run_dir)
    step = mgr.latest_step()
    if step is None:
        raise CheckpointError(f"{run_dir} has no finished checkpoint")
    item = Path(mgr.directory) / str(step) / "params"
    mgr.close()
    with ocp.StandardCheckpointer() as ckpt:  # onto this process, whoever saved it
        params = ckpt.restore(item, on_this_process(ckpt.metadata(item).item_metadata))
    return jax.tree.map(jnp.asarray, params)

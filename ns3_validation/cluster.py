"""Where NS-3 runs execute: local worker threads (each run its own subprocess), or Ray tasks on a
local or remote Ray cluster (the `ecosystem` extra).

A run is a replay plan (`plan.build_plan`, JSON-able: built on the driver, so a Ray worker
needs neither the latency predictor nor JAX) played by `python -m ns3_validation.run` in a
subprocess with a timeout. Every run yields its raw result or its exception, in order: one
failed run never loses the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from ns3_validation.worker import Ns3RunError, run_module

LOCAL = "local"
"""`--ray` without an address: start a Ray cluster on this machine."""


def play(plan: dict, timeout_s: float) -> dict:
    """One NS-3 run (in a subprocess); its raw result with the worker's wall seconds."""
    start = time.perf_counter()
    raw = run_module("ns3_validation.run", plan, timeout_s=timeout_s)
    raw["wall_s"]["worker"] = time.perf_counter() - start
    return raw


def play_many(
    plans: Sequence[dict],
    timeout_s: float = 1800.0,
    max_workers: int = 2,
    ray_address: str | None = None,
    on_result: Callable[[int, dict | Exception], None] | None = None,
) -> list[dict | Exception]:
    """Every plan's raw result, or the exception that ended it, in order. `ray_address`: None
    for local threads (`max_workers` at a time), LOCAL for a Ray cluster started here, else
    the address of a running one (e.g. "auto" or "ray://head:10001"). `on_result(i, out)` is
    called on this thread as each run ends (to write a cell's files before the others end)."""
    out: list[dict | Exception | None] = [None] * len(plans)

    def record(i: int, result: dict | Exception) -> None:
        out[i] = result
        if on_result is not None:
            on_result(i, result)

    if ray_address is None:
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            futures = {pool.submit(play, plan, timeout_s): i for i, plan in enumerate(plans)}
            for future in as_completed(futures):
                try:
                    record(futures[future], future.result())
                except (Ns3RunError, ValueError) as err:
                    record(futures[future], err)
    else:
        _ray_map(plans, timeout_s, ray_address, record)
    return out


def _ray_map(plans: Sequence[dict], timeout_s: float, address: str, record) -> None:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError('--ray needs Ray: pip install "cpnjax[ecosystem]"') from e
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=None if address == LOCAL else address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(play)
        index = {task.remote(plan, timeout_s): i for i, plan in enumerate(plans)}
        pending = list(index)
        while pending:
            (ref,), pending = ray.wait(pending, num_returns=1)
            try:
                record(index[ref], ray.get(ref))
            except ray.exceptions.RayTaskError as err:
                cause = err.cause if isinstance(err.cause, Exception) else None
                record(index[ref], cause or Ns3RunError(str(err).splitlines()[-1]))
            except ray.exceptions.RayError as err:  # a worker or node died
                record(index[ref], Ns3RunError(f"Ray task failed: {type(err).__name__}: {err}"))
    finally:
        if started:
            ray.shutdown()

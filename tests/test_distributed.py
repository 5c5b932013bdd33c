"""`cpnjax train` across 2 local CPU processes (jax.distributed, gloo collectives): after a few
updates the parameters equal those of one process with the same global batch, and a run the
two processes resume from its checkpoint ends where the uninterrupted run did."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import chex
import pytest

from cpnjax.distributed import initialize, request_host_devices
from cpnjax.train.checkpoint import restore_params

CHECK = Path(__file__).with_name("distributed_check.py")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_two(run_dir: Path, *extra: str) -> list[subprocess.Popen]:
    port = free_port()
    return [
        subprocess.Popen(
            [sys.executable, str(CHECK), str(i), "2", str(port), str(run_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]


def test_two_processes_train_the_parameters_of_one(tmp_path):
    two = tmp_path / "two"
    procs = start_two(two)
    one = tmp_path / "one"
    alone = subprocess.run(
        [sys.executable, str(CHECK), "0", "1", "0", str(one)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "OK 2" in out, out[-2000:]
    assert alone.returncode == 0, alone.stderr[-2000:]
    # the files are process 0's; every process saved its part of the checkpoints
    assert (two / "curve.csv").is_file() and (two / "checkpoints" / "4").is_dir()
    chex.assert_trees_all_close(restore_params(one), restore_params(two), rtol=1e-4, atol=1e-6)
    # and the two processes agreed on the validation curve
    assert outs[0].split("OK 2")[1].split()[0] == outs[1].split("OK 2")[1].split()[0]

    # an interrupted run: its last checkpoint gone, the two processes resume from update 2
    ended = restore_params(two)
    shutil.rmtree(two / "checkpoints" / "4")
    kept = (two / "checkpoints" / "2").stat().st_mtime_ns
    procs = start_two(two, "resume")
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "OK 2" in out, out[-2000:]
    assert (two / "checkpoints" / "4").is_dir()
    assert (two / "checkpoints" / "2").stat().st_mtime_ns == kept  # resumed, not redone
    assert len((two / "curve.csv").read_text().splitlines()) == 1 + 3  # updates 0, 2, 4
    chex.assert_trees_all_close(restore_params(two), ended, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "args, message",
    [
        (("localhost:1234", None, 0), "some are missing"),
        (("localhost", 2, 0), "HOST:PORT"),
        (("localhost:1234", 2, 2), "0..1"),
    ],
)
def test_an_incomplete_or_wrong_multi_process_setup_is_refused(args, message, monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=message):
        initialize(*args)
    assert initialize() is False  # nothing asked: one process


@pytest.mark.parametrize(
    "flags, num_devices, expected",
    [
        (None, 2, "--xla_force_host_platform_device_count=2"),
        ("--xla_cpu_foo=1", 8, "--xla_cpu_foo=1 --xla_force_host_platform_device_count=8"),
        ("--xla_force_host_platform_device_count=4", 8, "--xla_force_host_platform_device_count=4"),
        (None, 1, None),
    ],
)
def test_request_host_devices_appends_the_count_once(flags, num_devices, expected, monkeypatch):
    if flags is None:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
    else:
        monkeypatch.setenv("XLA_FLAGS", flags)
    request_host_devices(num_devices)
    assert os.environ.get("XLA_FLAGS") == expected

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cpnjax.sim.sharding import check_divisible, env_mesh


def test_sharded_rollout_and_trainer_equal_unsharded_on_8_cpu_devices():
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    script = Path(__file__).with_name("sharded_check.py")
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("OK")


def test_a_mesh_larger_than_the_devices_is_refused_with_the_flag_to_set():
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        env_mesh(10_000)
    mesh = env_mesh(1)
    check_divisible(7, mesh)  # one device divides everything
    check_divisible(7, None)

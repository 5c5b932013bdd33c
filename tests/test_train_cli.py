"""`cpnjax train`: checkpoints, exact resume after SIGKILL, refusals."""

import json
import os
import signal
import subprocess
import sys
import time

import chex
import numpy as np
import pytest

from cpnjax.cli import main
from cpnjax.train.checkpoint import restore_params

# 8 environments x 16 steps, 40 updates in 4 checkpointed chunks of 10.
SMALL = [
    "--topology",
    "abilene",
    "--envs",
    "8",
    "--env-steps",
    "5120",
    "--seed",
    "3",
    "--skip-baselines",
    "--no-progress",
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "full"
    assert main(["train", *SMALL, "--out", str(out), "--tensorboard", str(out / "tb")]) == 0
    return out


def tensorboard_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} read back from the TFRecord event files in log_dir."""
    import struct

    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_train_writes_curve_checkpoint_and_config(uninterrupted):
    config = json.loads((uninterrupted / "config.json").read_text())
    assert config["agent_name"] == "rlms"
    assert config["spec"]["train"]["num_updates"] == 40
    rows = (uninterrupted / "curve.csv").read_text().splitlines()
    assert rows[0].startswith("update,env_steps,wall_s,mean_response_ms")
    assert len(rows) == 1 + 5  # before training and after each of 4 chunks
    assert (uninterrupted / "curve.png").stat().st_size > 10_000
    assert sorted(os.listdir(uninterrupted / "checkpoints")) == ["30", "40"]


def test_tensorboard_events_hold_the_curve(uninterrupted):
    import csv

    with open(uninterrupted / "curve.csv") as f:
        curve = list(csv.DictReader(f))
    scalars = tensorboard_scalars(uninterrupted / "tb")
    val = scalars["validation/mean_response_ms"]
    assert [s for s, _ in val] == [int(r["env_steps"]) for r in curve]
    np.testing.assert_allclose([v for _, v in val], [float(r["mean_response_ms"]) for r in curve])
    for tag in ("train/actor_loss", "train/critic_loss", "train/entropy", "perf/env_steps_per_s"):
        assert len(scalars[tag]) == 4 and all(np.isfinite(v) for _, v in scalars[tag]), tag


def test_sigkill_and_resume_ends_with_the_uninterrupted_params(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpnjax.cli", "train", *SMALL, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (out / "checkpoints" / "20").is_dir():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(int(s) for s in os.listdir(out / "checkpoints") if s.isdigit())
    assert done[-1] < 40, "killed too late to test resuming"
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    chex.assert_trees_all_equal(restore_params(out), restore_params(uninterrupted))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--agent", "gat"], "unknown agent"),
        (["--algo", "sac"], "unknown algo"),
        (["--env-steps", "-5"], "--env-steps must be a positive integer"),
        (["--envs", "0"], "--envs must be a positive integer"),
        (["--load-range", "0.3"], "--load-range must be two numbers"),
        (["--window", "3"], "--window applies to --algo apg only"),
        (["--algo", "apg", "--node-grad", "gumbel"], "unknown --node-grad"),
        (["--algo", "apg", "--window", "0"], "--window must be a positive integer"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["train", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_resume_refuses_a_missing_or_mismatched_checkpoint(uninterrupted, tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "is not a training run" in capsys.readouterr().err
    before = sorted(os.listdir(uninterrupted / "checkpoints"))
    assert main(["train", "--resume", str(uninterrupted), "--agent", "mlp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a syncgnn agent, not mlp" in err[0]
    assert main(["train", "--resume", str(uninterrupted), "--topology", "tiscali"]) == 2
    assert "trained on a scenario of size" in capsys.readouterr().err
    assert main(["train", *SMALL, "--out", str(uninterrupted)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert sorted(os.listdir(uninterrupted / "checkpoints")) == before


def test_evaluate_accepts_a_run_directory_as_a_policy(uninterrupted, tmp_path):
    import csv

    out = tmp_path / "eval"
    args = ["evaluate", "--topology", "abilene", "--tasks", "12", "--seed", "3", "--no-progress"]
    assert main([*args, "--policies", f"base1,{uninterrupted}", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["policy"] for r in rows] == ["base1", "rlms"]
    assert all(float(r["mean_response_ms"]) > 0 for r in rows)


def test_apg_trains_and_its_run_directory_is_a_policy(tmp_path):
    import csv

    out = tmp_path / "apg"
    small = ["--topology", "abilene", "--seed", "3", "--skip-baselines", "--no-progress"]
    apg = ["--algo", "apg", "--envs", "4", "--window", "2", "--env-steps", "80"]
    assert main(["train", *small, *apg, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["agent_name"] == "rlms-apg"
    assert config["spec"]["train"]["algo"] == "apg"
    assert config["spec"]["train"]["num_updates"] == 10
    assert np.isfinite(config["curve_final"]["mean_response_ms"])
    assert np.isfinite(config["curve_final"]["train_grad_norm"])
    ev = tmp_path / "eval"
    args = ["evaluate", "--topology", "abilene", "--tasks", "12", "--seed", "3", "--no-progress"]
    assert main([*args, "--policies", f"base1,{out}", "--out", str(ev)]) == 0
    rows = list(csv.DictReader(open(ev / "summary.csv")))
    assert [r["policy"] for r in rows] == ["base1", "rlms-apg"]

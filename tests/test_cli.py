import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from cpnjax.cli import main


def test_evaluate_writes_every_output(tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "evaluate",
            "--topology",
            "abilene",
            "--policies",
            "base1,greedy",
            "--tasks",
            "12",
            "--seed",
            "1",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["policy"] for r in rows] == ["base1", "greedy"]
    for col in (
        "mean_response_ms",
        "p99_response_ms",
        "mean_transmission_ms",
        "mean_wait_ms",
        "mean_compute_ms",
    ):
        assert all(float(r[col]) >= 0 for r in rows)
    per_task = list(csv.DictReader(open(out / "per_task.csv")))
    assert len(per_task) == 24
    for r in per_task:
        parts = float(r["transmission_ms"]) + float(r["wait_ms"]) + float(r["compute_ms"])
        assert float(r["response_ms"]) == pytest.approx(parts, rel=1e-6)
    assert "greedy improvement" in (out / "table.md").read_text()
    assert (out / "per_task_latency.png").stat().st_size > 10_000
    assert json.loads((out / "config.json").read_text())["scenario"]["num_tasks"] == 12


def bad_topology_files(tmp_path):
    cases = {}
    cases["malformed"] = "{edges: oops"
    cases["disconnected"] = json.dumps(
        {
            "edges": [
                {"src": 0, "dst": 1, "capacity_bps": 1e9},
                {"src": 1, "dst": 0, "capacity_bps": 1e9},
                {"src": 2, "dst": 3, "capacity_bps": 1e9},
                {"src": 3, "dst": 2, "capacity_bps": 1e9},
            ]
        }
    )
    cases["zero_capacity"] = json.dumps(
        {
            "edges": [
                {"src": 0, "dst": 1, "capacity_bps": 0},
                {"src": 1, "dst": 0, "capacity_bps": 1e9},
            ]
        }
    )
    paths = []
    for name, text in cases.items():
        p = tmp_path / f"{name}.json"
        p.write_text(text)
        paths.append(str(p))
    return paths


@pytest.mark.parametrize(
    "args, message",
    [
        (["--topology", "atlantis"], "unknown topology"),
        (["--policies", "base1,oracle"], "unknown policy"),
        (["--tasks", "0"], "num_tasks"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(args, message, capsys, tmp_path):
    code = main(["evaluate", *args, "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and message in err


def test_bad_topology_files_exit_non_zero_without_traceback(tmp_path):
    for path in bad_topology_files(tmp_path):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cpnjax.cli",
                "evaluate",
                "--topology",
                path,
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cpnjax: error:"), proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.parametrize(
    "args, message",
    [
        (["table5", "--new-devices", "tpu_v9"], "unknown device"),
        (["table5", "--samples", "5"], ">= 10"),
        (["table5", "--samples", "ten"], "comma-separated integers"),
        (["table5", "--brp-samples", "99999"], "--brp-samples"),
        (["adapt", "--device", "fpga", "--samples", "20000"], "more than"),
        (["adapt", "--device", "tpu_v9"], "unknown device"),
    ],
)
def test_bad_latency_arguments_exit_non_zero_with_one_line(args, message, capsys, tmp_path):
    code = main(["latency", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and message in err, err


def test_latency_table5_and_adapt_write_their_outputs(tmp_path, capsys):
    from cpnjax.latency.checkpoint import load_predictor

    out = tmp_path / "t5"
    partly = "latbench_embedded_tpu_edge_tpu_int8"  # 15284 of 15625 measured: scored on those
    args = ["--new-devices", f"fpga,{partly}", "--samples", "10", "--brp-samples", "0"]
    assert main(["latency", "table5", *args, "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "table5.csv").open()))
    assert {r["method"] for r in rows} == {"TSFT", "base", "FLOPs", "Layer-wise"}
    assert {r["device"] for r in rows} == {"fpga", partly}
    assert all(np.isfinite(float(r["mse"])) for r in rows)
    cols = {"method", "device", "samples", "mse", "spearman", "mape", "within10", "finetune_s"}
    assert cols <= set(rows[0])
    assert "| TSFT | 10 |" in (out / "table5.md").read_text()
    assert (out / "spearman_vs_samples.png").stat().st_size > 10_000
    assert json.loads((out / "config.json").read_text())["new_devices"] == ["fpga", partly]

    saved = tmp_path / "fpga_n20"
    assert (
        main(["latency", "adapt", "--device", "fpga", "--samples", "20", "--out", str(saved)]) == 0
    )
    meta = json.loads((saved / "predictor.json").read_text())
    assert meta["device"] == "fpga" and len(meta["measured_archs"]) == 20
    predictor = load_predictor(saved)
    assert predictor.predict_ms(np.arange(5)).shape == (5,)
    assert main(["latency", "adapt", "--device", "fpga", "--out", str(saved)]) == 2  # exists


@pytest.mark.parametrize(
    "edge, message",
    [
        ({"capacity_mbps": 1e300}, "outside 1..1e+15 bit/s"),
        ({"capacity_bps": 1e-40}, "outside 1..1e+15 bit/s"),
        ({"capacity_bps": float("inf")}, "positive number"),
        ({"capacity_bps": 1e9, "prop_delay_ms": 1e-320}, "outside 0 or 1e-09..1e+06 ms"),
        ({"capacity_bps": 1e9, "prop_delay_ms": 1e300}, "outside 0 or 1e-09..1e+06 ms"),
    ],
)
def test_values_float32_cannot_hold_are_refused_at_load(edge, message, capsys, tmp_path):
    path = tmp_path / "t.json"
    edges = [{"src": 0, "dst": 1, **edge}, {"src": 1, "dst": 0, "capacity_bps": 1e9}]
    path.write_text(json.dumps({"edges": edges}))  # inf is written as Infinity
    code = main(["evaluate", "--topology", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_more_candidates_than_compute_nodes_says_what_it_used(capsys, tmp_path):
    args = ["evaluate", "--policies", "base1", "--tasks", "5", "--candidates", "40"]
    assert main([*args, "--out", str(tmp_path), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "--candidates 40: Abilene has" in err and "slots are masked" in err, err

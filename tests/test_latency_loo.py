import csv
import json

import numpy as np
import pytest

from cpnjax import cli
from cpnjax.latency import LOO_CLASSES, device_class, load_latency_table
from cpnjax.latency.loo import (
    base_devices_for,
    device_folds,
    fully_measured_devices,
    validation_devices_for,
    verdicts,
)
from cpnjax.latency.model import VALIDATION_DEVICES

TABLE = load_latency_table()


def test_every_device_has_a_class_and_the_fully_measured_ones_are_the_27_help_devices():
    assert {device_class(d) for d in TABLE.devices} == set(LOO_CLASSES)
    full = fully_measured_devices(TABLE)
    assert len(full) == 27
    assert {str(TABLE.device_source[TABLE.device_index(d)]) for d in full} == {"HELP"}
    with pytest.raises(ValueError, match="no device class"):
        device_class("tpu_v9")


def test_folds_partition_the_devices_and_spread_each_class():
    devices = fully_measured_devices(TABLE)
    folds = device_folds(devices, 9)
    assert sorted(d for f in folds for d in f) == sorted(devices)
    for c in LOO_CLASSES:
        per_fold = [sum(device_class(d) == c for d in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (c, per_fold)
    with pytest.raises(ValueError, match="folds"):
        device_folds(devices, 0)


def test_a_held_out_device_is_never_trained_on_nor_validated_on():
    for group in device_folds(fully_measured_devices(TABLE), 27):
        val = validation_devices_for(group, fully_measured_devices(TABLE))
        assert len(val) == len(VALIDATION_DEVICES) and not set(val) & set(group)
        assert [device_class(v) for v in val] == [device_class(v) for v in VALIDATION_DEVICES]
        train = base_devices_for(TABLE, group)
        assert not set(train) & (set(group) | set(val))
        assert len(train) == 27 - 1 - 4


def test_the_loo_command_on_two_devices_end_to_end(tmp_path, capsys):
    out = tmp_path / "loo"
    argv = ["latency", "loo", "--devices", "pixel3,fpga", "--samples", "10,20"]
    assert cli.main([*argv, "--folds", "1", "--out", str(out)]) == 0
    with open(out / "loo.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"TSFT", "base", "FLOPs", "Layer-wise"}
    assert {(r["device"], r["device_class"], r["samples"]) for r in rows} == {
        (d, c, n) for d, c in (("pixel3", "mobile"), ("fpga", "embedded")) for n in ("10", "20")
    }
    for r in rows:
        assert 0.0 <= float(r["mse"]) and -1.0 <= float(r["spearman"]) <= 1.0
    # fpga is a sum of per-operation latencies: the additive fits rank it exactly.
    fpga = [r for r in rows if r["device"] == "fpga" and r["method"] == "Layer-wise"]
    assert all(float(r["spearman"]) > 0.999 for r in fpga)
    meta = json.loads((out / "config.json").read_text())
    (fold,) = meta["folds"]
    assert set(fold["held_out"]) == {"pixel3", "fpga"}
    assert not {"pixel3", "fpga"} & set(fold["base_devices"])
    assert "pixel2" not in fold["base_devices"]  # still a validation device
    for name in ("loo.md", "verdicts.csv", "tsft_vs_simple.png"):
        assert (out / name).stat().st_size > 0
    assert "TSFT >= both fits on" in capsys.readouterr().out


def test_verdicts_count_ties_within_the_tolerance():
    def rows(tsft, flops, lw):
        spear = {"TSFT": tsft, "FLOPs": flops, "Layer-wise": lw}
        return [{"method": m, "device": "pixel3", "samples": 10, "spearman": s}
                for m, s in spear.items()]  # fmt: skip

    assert verdicts(rows(0.900, 0.904, 0.80))[0]["holds"]
    assert not verdicts(rows(0.900, 0.906, 0.80))[0]["holds"]
    v = verdicts(rows(0.95, 0.80, 0.96))[0]
    assert v["best_simple_fit"] == "Layer-wise" and np.isclose(v["best_simple_spearman"], 0.96)


def test_bad_loo_requests_give_a_clear_error(tmp_path, capsys):
    out = str(tmp_path / "x")
    assert cli.main(["latency", "loo", "--devices", "nope", "--out", out]) == 2
    assert "unknown device" in capsys.readouterr().err
    assert cli.main(["latency", "loo", "--samples", "5", "--devices", "fpga", "--out", out]) == 2
    assert "N must be >= 10" in capsys.readouterr().err
    assert cli.main(["latency", "loo", "--samples", "ten", "--out", out]) == 2

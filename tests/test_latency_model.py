import numpy as np
import pytest

from cpnjax.latency import load_latency_table
from cpnjax.latency.baselines import FlopsFit
from cpnjax.latency.model import (
    NEW_DEVICES,
    VALIDATION_DEVICES,
    adapt,
    measured_archs,
    profile_of,
    robust_fit,
    train_base,
    train_devices,
)
from cpnjax.latency.table5 import metrics

TABLE = load_latency_table()


@pytest.fixture(scope="module")
def base():
    return train_base(seed=0)


def measurements(device: str, n: int, seed: int = 0):
    """The 10 reference architectures plus n - 10 random others, and their latency."""
    arch = measured_archs(device, n, seed)
    return arch, TABLE.column_ms(device)[arch]


def minmax_mse(pred, true):
    return metrics(pred, true)["mse"]


def test_training_devices_are_18_and_exclude_new_and_validation_devices():
    devices = train_devices(TABLE)
    assert len(devices) == 18
    assert not set(devices) & (set(NEW_DEVICES) | set(VALIDATION_DEVICES))


def test_adapt_beats_the_base_model_on_a_held_out_device(base):
    device = "pixel2"  # a validation device: never in base training
    arch, ms = measurements(device, 50)
    rest = np.setdiff1d(np.arange(TABLE.num_archs), arch)
    true = TABLE.column_ms(device)[rest]
    base_mse = minmax_mse(base.predict_ms(rest, profile_of(TABLE, device)), true)
    tsft = adapt(base, arch, ms, seed=0)
    tsft_mse = minmax_mse(tsft.predict_ms(rest), true)
    assert tsft_mse < 0.9 * base_mse, (tsft_mse, base_mse)
    assert tsft.finetune_s > 0
    assert 0.0 <= tsft.profile.residual_share <= 1.0


def test_a_device_whose_latency_is_a_sum_of_op_latencies_is_predicted_exactly(base):
    # fpga (HW-NAS-Bench) is a sum of per-layer latencies: the additive part fits it and the
    # network's residual is scaled by the measured non-additivity (zero), so TSFT is exact.
    arch, ms = measurements("fpga", 20)
    tsft = adapt(base, arch, ms, seed=0)
    assert tsft.profile.residual_std < 1e-6  # float32 rounding of the shipped table
    probe = np.arange(0, TABLE.num_archs, 7)
    np.testing.assert_allclose(tsft.predict_ms(probe), TABLE.column_ms("fpga")[probe], rtol=1e-5)
    # raspi4 is not additive: the residual is measured, and the network's share is not zero.
    arch, ms = measurements("raspi4", 20)
    tsft = adapt(base, arch, ms, seed=0)
    assert tsft.profile.residual_std > 0.05
    additive = tsft.profile.to_ms(probe, np.zeros(probe.size))
    assert np.abs(tsft.predict_ms(probe) - additive).max() > 0.1  # ms


def test_same_seed_same_numbers(base):
    arch, ms = measurements("raspi4", 20)
    a = adapt(base, arch, ms, seed=3)
    b = adapt(base, arch, ms, seed=3)
    probe = np.arange(100)
    np.testing.assert_array_equal(a.predict_ms(probe), b.predict_ms(probe))
    assert a.confidence == b.confidence
    assert a.profile.residual_share == b.profile.residual_share
    np.testing.assert_array_equal(a.profile.additive, b.profile.additive)
    again = train_base(seed=0)
    np.testing.assert_array_equal(
        again.predict_ms(probe, a.profile), base.predict_ms(probe, a.profile)
    )


def test_a_saved_predictor_loads_and_predicts_the_same(base, tmp_path):
    from cpnjax.latency.checkpoint import load_predictor, save_predictor

    arch, ms = measurements("gold_6226", 20)
    tsft = adapt(base, arch, ms, seed=0)
    path = save_predictor(tsft, tmp_path / "gold", {"device": "gold_6226"})
    loaded = load_predictor(path)
    probe = np.arange(0, TABLE.num_archs, 13)
    np.testing.assert_allclose(loaded.predict_ms(probe), tsft.predict_ms(probe), rtol=1e-6)
    assert loaded.model.config == tsft.model.config
    assert loaded.confidence == tsft.confidence is not None
    with pytest.raises(FileExistsError):
        save_predictor(tsft, path)
    with pytest.raises(FileNotFoundError, match="not a saved predictor"):
        load_predictor(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "device, n, message",
    [
        ("tpu_v9", 50, "unknown device"),
        ("fpga", 5, ">= 10"),
        ("fpga", 20_000, "more than"),
        ("latbench_embedded_tpu_edge_tpu_int8", 15_300, "more than"),
    ],
)
def test_bad_measurement_requests_give_a_clear_error(device, n, message):
    with pytest.raises(ValueError, match=message):
        measured_archs(device, n, seed=0)


def test_measurements_of_a_partly_measured_device_skip_the_missing():
    device = "latbench_desktop_cpu_core_i7_7820x_fp32"  # 15284 of 15625 measured
    arch = measured_archs(device, 15284, 0)  # all of them, and no NaN among them
    assert np.isfinite(TABLE.column_ms(device)[arch]).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, m: (a[1:], m[1:]), "reference architectures"),
        (lambda a, m: (a, np.where(np.arange(len(m)) == 12, np.nan, m)), "NaN"),
        (lambda a, m: (a, m[:-1]), r"\(N,\)"),
        (lambda a, m: (np.append(a[:-1], 99999), m), "indices in"),
        (lambda a, m: (np.append(a[:-1], a[0]), m), "repeated"),
    ],
)
def test_bad_measurements_give_a_clear_error(base, change, message):
    arch, ms = measurements("eyeriss", 20)
    with pytest.raises(ValueError, match=message):
        adapt(base, *change(arch, ms))


def test_brp_nas_learns_a_device_from_its_own_measurements():
    from scipy.stats import spearmanr

    from cpnjax.latency.baselines import BrpNasFit

    arch, ms = measurements("eyeriss", 300)
    fit = BrpNasFit(arch, ms, seed=0, steps=300)
    probe = np.setdiff1d(np.arange(0, TABLE.num_archs, 5), arch)
    rho = spearmanr(fit.predict_ms(probe), TABLE.column_ms("eyeriss")[probe])[0]
    assert rho > 0.8 and fit.train_s > 0


def test_flops_fit_is_exact_on_latency_made_from_flops():
    from cpnjax.latency.baselines import FlopsFit

    flops = TABLE.flops_m.astype(np.float64)
    arch = np.arange(0, 15625, 311)
    fit = FlopsFit(arch, 0.04 * flops[arch] + 1.5)
    np.testing.assert_allclose(fit.predict_ms(np.arange(500)), 0.04 * flops[:500] + 1.5, rtol=1e-9)


def test_layerwise_fit_is_exact_on_latency_made_from_operation_counts():
    from cpnjax.latency.baselines import LayerwiseFit
    from cpnjax.latency.encoding import op_counts, shipped_ops

    per_op = np.array([0.0, 0.3, 1.1, 0.5, 0.05])  # none, conv1x1, conv3x3, avgpool, skip
    made = op_counts(shipped_ops()) @ per_op + 2.0
    arch = np.arange(7, 15625, 97)
    fit = LayerwiseFit(arch, made[arch])
    np.testing.assert_allclose(fit.predict_ms(np.arange(1000)), made[:1000], rtol=1e-9)


def test_the_shipped_base_model_is_what_training_it_again_gives():
    import jax

    from cpnjax.latency.checkpoint import SHIPPED_BASE, base_key, load_shipped_base
    from cpnjax.latency.model import NEW_DEVICES, TrainConfig, profile_of, train_base, train_devices
    from cpnjax.latency.predictor import _base

    key = base_key(NEW_DEVICES, 0, TrainConfig())
    shipped = load_shipped_base(key)
    assert shipped is not None, f"no shipped base model at {SHIPPED_BASE} for {key}"
    for a, b in zip(  # the predictor loads the shipped model rather than training one
        jax.tree.leaves(_base(NEW_DEVICES, 0, TrainConfig()).params),
        jax.tree.leaves(shipped.params),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert load_shipped_base(base_key(NEW_DEVICES, 1, TrainConfig())) is None  # other seed
    table = load_latency_table()
    again = train_base(table, train_devices(table, NEW_DEVICES), 0, TrainConfig())
    for a, b in zip(jax.tree.leaves(shipped.params), jax.tree.leaves(again.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    arch = np.arange(0, table.num_archs, 97)
    for device in ("titan_rtx_256", "pixel3"):
        profile = profile_of(table, device)
        np.testing.assert_allclose(
            shipped.predict_ms(arch, profile), again.predict_ms(arch, profile), rtol=1e-4
        )


def test_robust_fit_is_least_squares_without_an_outlier_and_shrugs_one_off():
    rng = np.random.default_rng(0)
    design = np.column_stack([rng.normal(size=(40, 3)), np.ones(40)])
    truth = np.array([0.5, -1.0, 2.0, 0.3])
    target = design @ truth + 0.01 * rng.normal(size=40)
    coef, scale = robust_fit(design, target)
    ls, *_ = np.linalg.lstsq(design, target, rcond=None)
    np.testing.assert_allclose(coef, ls, atol=3e-3)  # Gaussian noise: close to least squares
    assert 0.005 < scale < 0.02
    bad = target.copy()
    bad[7] += 5.0  # one measurement 500 noise scales off
    coef, _ = robust_fit(design, bad)
    ls, *_ = np.linalg.lstsq(design, bad, rcond=None)
    assert np.abs(coef - truth).max() < 0.02 < np.abs(ls - truth).max()


def _unmeasured(arch):
    return np.setdiff1d(np.arange(TABLE.num_archs), arch)


def test_a_device_linear_in_flops_is_predicted_as_well_as_by_the_flops_fit(base):
    made = 0.04 * TABLE.flops_m.astype(np.float64) + 1.5  # ms: exactly FLOPs-linear
    arch = measured_archs("pixel3", 10, 0)  # the 10 references
    rest = _unmeasured(arch)
    tsft = adapt(base, arch, made[arch], seed=0)
    pred = tsft.predict_ms(rest)
    flops_pred = FlopsFit(arch, made[arch]).predict_ms(rest)
    assert np.abs(pred - made[rest]).max() < 1e-6  # ms
    ours, flops = metrics(pred, made[rest]), metrics(flops_pred, made[rest])
    assert ours["mse"] <= flops["mse"] + 1e-12
    # Many cells have equal FLOPs; 1e-12 ms of rounding breaks those ties at random (rho 0.996).
    ours = metrics(np.round(pred, 6), made[rest])
    assert ours["spearman"] >= flops["spearman"] - 1e-4
    assert tsft.confidence.level == "high" and tsft.confidence.cv_r2 > 0.999


@pytest.mark.parametrize("n", [10, 50])
def test_a_device_with_no_structure_gets_low_confidence(base, n):
    arch = measured_archs("pixel3", n, 0)
    real = adapt(base, arch, TABLE.column_ms("pixel3")[arch], seed=0)
    shuffled = np.random.default_rng(1).permutation(TABLE.column_ms("pixel3"))
    noise = adapt(base, arch, shuffled[arch], seed=0)
    assert noise.confidence.level == "low" and noise.confidence.cv_r2 < 0.5, noise.confidence
    assert real.confidence.cv_r2 > 0.8 and real.confidence.level != "low", real.confidence
    assert noise.confidence.samples == n
    assert noise.confidence.held_out == (10 if n == 10 else n - 10)  # references stay fitted


def test_the_scenario_records_how_sure_the_predictor_is_of_each_device():
    from cpnjax.scenario import ScenarioConfig, make_scenario

    scenario = make_scenario(ScenarioConfig.test(), 0)
    report = scenario.summary()["latency_predictor"]
    assert set(report) == set(scenario.devices)
    for device, entry in report.items():
        if device in scenario.config.new_devices:
            assert entry["samples"] == scenario.config.new_device_samples
            assert entry["level"] in ("high", "medium", "low") and entry["cv_r2"] <= 1.0
        else:
            assert "cv_r2" not in entry and entry["samples"] == 900

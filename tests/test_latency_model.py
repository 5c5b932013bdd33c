import numpy as np
import pytest

from cpnjax.latency import load_latency_table
from cpnjax.latency.model import (
    NEW_DEVICES,
    VALIDATION_DEVICES,
    adapt,
    reference_scale,
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
    rng = np.random.default_rng(seed)
    others = np.setdiff1d(np.arange(TABLE.num_archs), TABLE.hw_embedding_index)
    arch = np.concatenate([TABLE.hw_embedding_index, rng.choice(others, n - 10, replace=False)])
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
    base_mse = minmax_mse(base.predict_ms(rest, reference_scale(TABLE, device)), true)
    model, scale, seconds = adapt(base, arch, ms, seed=0)
    tsft_mse = minmax_mse(model.predict_ms(rest, scale), true)
    assert tsft_mse < 0.8 * base_mse, (tsft_mse, base_mse)
    assert seconds > 0


def test_same_seed_same_numbers(base):
    arch, ms = measurements("fpga", 20)
    a, _, _ = adapt(base, arch, ms, seed=3)
    b, scale, _ = adapt(base, arch, ms, seed=3)
    probe = np.arange(100)
    np.testing.assert_array_equal(a.predict_ms(probe, scale), b.predict_ms(probe, scale))
    again = train_base(seed=0)
    np.testing.assert_array_equal(again.predict_ms(probe, scale), base.predict_ms(probe, scale))


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

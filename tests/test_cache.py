"""The on-disk caches: adapted latency predictions are stored, read back bit for bit, keyed by
what makes them, and recomputed when unreadable; CPNJAX_CACHE_DIR=off keeps nothing."""

import numpy as np
import pytest

from cpnjax import cache
from cpnjax.latency import predictor
from cpnjax.latency.model import NEW_DEVICES
from cpnjax.latency.table import load_latency_table

NEW = NEW_DEVICES[0]
KNOWN = "titanx_1"  # a device the base model was trained on


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """A fresh cache root, the prediction cache on in it, and no in-memory predictions."""
    monkeypatch.setenv("CPNJAX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "_prediction_dir", None)  # restored after the test
    assert cache.enable_prediction_cache() == tmp_path / "predictions"
    _forget()
    yield tmp_path
    _forget()


def _forget():
    predictor._prediction.cache_clear()
    if hasattr(predictor._device_predictor, "cache_clear"):  # not while a test replaces it
        predictor._device_predictor.cache_clear()


def _refuse_to_adapt(*args):
    raise AssertionError("adapted although the prediction cache holds the prediction")


def test_a_stored_prediction_is_read_back_bit_for_bit(cache_root, monkeypatch):
    pred = predictor.LearnedPredictor()
    table = load_latency_table()
    made = pred.predict_ms(table, (NEW, KNOWN))
    made_conf = pred.report((NEW,))[NEW]
    files = sorted((cache_root / "predictions").glob("*.npz"))
    assert len(files) == 2  # one per device
    _forget()
    monkeypatch.setattr(predictor, "_device_predictor", _refuse_to_adapt)
    read = pred.predict_ms(table, (NEW, KNOWN))
    np.testing.assert_array_equal(read, made)
    assert pred.report((NEW,))[NEW] == made_conf
    assert made_conf["samples"] == 50 and made_conf["held_out"] > 0  # a real confidence
    with pytest.raises(AssertionError, match="adapted"):  # a new key is not in the cache
        predictor.LearnedPredictor(seed=1).predict_ms(table, (KNOWN,))


def test_the_key_holds_the_predictor_key_the_device_and_the_inputs(monkeypatch):
    base = (tuple(NEW_DEVICES), 50, 0, predictor.TrainConfig(), KNOWN)
    keys = {
        predictor._cache_key(base),
        predictor._cache_key((*base[:4], NEW)),
        predictor._cache_key((base[0], 20, *base[2:])),
        predictor._cache_key((*base[:2], 1, *base[3:])),
        predictor._cache_key((*base[:3], predictor.TrainConfig(stage1_steps=301), KNOWN)),
    }
    assert len(keys) == 5
    assert predictor._cache_key(base) == predictor._cache_key(base)
    monkeypatch.setattr(predictor, "_inputs_fingerprint", lambda: "other source")
    assert predictor._cache_key(base) not in keys


def test_an_unreadable_entry_is_made_again(cache_root):
    pred = predictor.LearnedPredictor()
    table = load_latency_table()
    made = pred.predict_ms(table, (KNOWN,))
    (entry,) = (cache_root / "predictions").glob("*.npz")
    entry.write_bytes(b"not an npz")
    _forget()
    np.testing.assert_array_equal(pred.predict_ms(table, (KNOWN,)), made)
    assert predictor._read_prediction(entry) is not None  # written again, readable


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CPNJAX_CACHE_DIR", "off")
    monkeypatch.setattr(cache, "_prediction_dir", None)
    assert cache.cache_root() is None
    assert cache.enable_prediction_cache() is None
    assert cache.prediction_dir() is None
    assert cache.enable_compilation_cache() is None


def test_a_cache_root_that_cannot_be_made_turns_the_caches_off(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CPNJAX_CACHE_DIR", str(blocker))
    monkeypatch.setattr(cache, "_prediction_dir", None)
    assert cache.enable_prediction_cache() is None
    assert cache.enable_compilation_cache() is None


def test_a_prediction_that_cannot_be_stored_is_still_returned(cache_root, monkeypatch):
    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predictor, "atomic_bytes", disk_full)
    ms, _ = predictor._prediction(*predictor.LearnedPredictor().key, KNOWN)
    assert ms.shape == (load_latency_table().num_archs,) and np.isfinite(ms).all()
    assert not list((cache_root / "predictions").iterdir())

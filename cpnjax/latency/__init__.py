"""NAS-Bench-201 latency table and compute-latency predictors."""

from cpnjax.latency.predictor import (
    DeviceMeanPredictor,
    LatencyPredictor,
    LearnedPredictor,
    OraclePredictor,
)
from cpnjax.latency.table import (
    DEFAULT_DEVICE_POOL,
    DEVICE_CLASSES,
    LOO_CLASSES,
    LatencyTable,
    device_class,
    load_latency_table,
)

__all__ = [
    "DEFAULT_DEVICE_POOL",
    "DEVICE_CLASSES",
    "LOO_CLASSES",
    "DeviceMeanPredictor",
    "LatencyPredictor",
    "LatencyTable",
    "LearnedPredictor",
    "device_class",
    "OraclePredictor",
    "load_latency_table",
]

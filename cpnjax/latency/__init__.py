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
    LatencyTable,
    load_latency_table,
)

__all__ = [
    "DEFAULT_DEVICE_POOL",
    "DEVICE_CLASSES",
    "DeviceMeanPredictor",
    "LatencyPredictor",
    "LatencyTable",
    "LearnedPredictor",
    "OraclePredictor",
    "load_latency_table",
]

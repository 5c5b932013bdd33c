"""Scheduling policies: the paper's baselines and greedy-joint (pure Obs -> Action functions)."""

from cpnjax.policies.baselines import (
    POLICIES,
    base1,
    base2,
    base3,
    base4,
    get_policy,
    greedy_joint,
    lp_policy,
    min_compute_slot,
    nearest_slot,
)
from cpnjax.policies.splits import (
    LP_INTERVAL_S,
    ecmp_split,
    max_utilisation,
    mlu_rows,
    mlu_split,
    mlu_split_highs,
    water_fill,
)

__all__ = [
    "LP_INTERVAL_S",
    "POLICIES",
    "base1",
    "base2",
    "base3",
    "base4",
    "ecmp_split",
    "get_policy",
    "greedy_joint",
    "lp_policy",
    "max_utilisation",
    "min_compute_slot",
    "mlu_rows",
    "mlu_split",
    "mlu_split_highs",
    "nearest_slot",
    "water_fill",
]

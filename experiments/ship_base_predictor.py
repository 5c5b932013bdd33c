"""Train the default base latency model and write it into the package (`SHIPPED_BASE`), so that
no process trains it again: `LearnedPredictor` loads it when its key matches.

    python experiments/ship_base_predictor.py [--force]
"""

from __future__ import annotations

import argparse
import shutil
import time

from cpnjax.io import package_versions
from cpnjax.latency import load_latency_table
from cpnjax.latency.checkpoint import SHIPPED_BASE, base_key, save_base
from cpnjax.latency.model import NEW_DEVICES, TrainConfig, train_base, train_devices

SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace the shipped model")
    args = parser.parse_args()
    if SHIPPED_BASE.exists():
        if not args.force:
            raise SystemExit(f"{SHIPPED_BASE} exists; --force to replace it")
        shutil.rmtree(SHIPPED_BASE)
    table = load_latency_table()
    config = TrainConfig()
    start = time.perf_counter()
    model = train_base(table, train_devices(table, NEW_DEVICES), SEED, config)
    train_s = time.perf_counter() - start
    info = {
        "command": "python experiments/ship_base_predictor.py",
        "train_devices": list(train_devices(table, NEW_DEVICES)),
        "train_s": train_s,
        "versions": package_versions(),
    }
    save_base(model, base_key(NEW_DEVICES, SEED, config), SHIPPED_BASE, info)
    print(f"wrote {SHIPPED_BASE} (trained in {train_s:.1f} s)")


if __name__ == "__main__":
    main()

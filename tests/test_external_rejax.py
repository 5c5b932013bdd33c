"""experiments/external_rejax.py --quick: rejax's PPO trains on the flat env end to end."""

import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_rejax_ppo_trains_on_the_flat_env(tmp_path):
    out = tmp_path / "rejax"
    subprocess.run(
        [sys.executable, str(ROOT / "experiments/external_rejax.py"), "--quick", "--out", str(out)],
        check=True,
        cwd=tmp_path,
        timeout=600,
    )
    with open(out / "summary.csv") as f:
        rows = {r["policy"]: float(r["mean_response_ms"]) for r in csv.DictReader(f)}
    expected = {"rejax_ppo", "random", "base1", "base2", "base3", "base4", "greedy"}
    assert expected <= set(rows)
    assert all(v > 0 for v in rows.values())
    with open(out / "curve.csv") as f:
        curve = list(csv.DictReader(f))
    assert len(curve) >= 3 and int(curve[-1]["env_steps"]) >= 40_000
    # a few seconds of PPO already schedule better than acting at random, and better than at
    # the start of training
    assert rows["rejax_ppo"] < rows["random"]
    assert float(curve[-1]["mean_response_ms"]) < float(curve[0]["mean_response_ms"])
    assert (out / "curve.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert config["versions"]["rejax"] != "absent" and config["env"] == "cpnjax/Abilene-flat"

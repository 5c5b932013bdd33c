"""docs/tutorial.md runs as written: every ```bash and ```python block, in order, in one empty
directory; each must succeed, and what the tutorial says the steps write must be there."""

import re
import subprocess
import sys
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(TUTORIAL.read_text())


def test_the_tutorial_runs_as_written(tmp_path):
    steps = blocks()
    assert [kind for kind, _ in steps].count("bash") >= 5 and len(steps) >= 7
    for i, (kind, code) in enumerate(steps):
        cmd = (
            ["bash", "-euo", "pipefail", "-c", code]
            if kind == "bash"
            else [sys.executable, "-c", code]
        )
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"block {i} ({kind}) failed:\n{code}\n{proc.stderr[-3000:]}"
        print(proc.stdout)
    for path in (
        "metro.json",
        "eval/table.md",
        "eval/per_task_latency.png",
        "run/curve.png",
        "eval_agent/summary.csv",
        "ns3/table.md",
    ):
        assert (tmp_path / path).is_file(), path
    assert any((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert "rlms" in (tmp_path / "eval_agent/summary.csv").read_text()
    assert "rlms" in (tmp_path / "ns3/table.md").read_text()

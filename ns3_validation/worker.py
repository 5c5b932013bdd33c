"""Run an NS-3 job in its own process, in a clean temporary directory.

`from ns import ns` searches the working directory tree for ns-3 libraries, and an ns-3 fatal
error ends the whole process, so each run is a subprocess with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


class Ns3RunError(RuntimeError):
    """An NS-3 worker crashed, timed out or printed no result."""


def run_module(module: str, args: dict, timeout_s: float = 600.0) -> dict:
    """Run `python -m module ARGS.json` in a fresh temp dir; parse its `RESULT {...}` line.

    The arguments go through a file (a replay plan is too long for a command line)."""
    root = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    with tempfile.TemporaryDirectory(prefix="cpnjax-ns3-") as cwd:
        args_path = Path(cwd) / "args.json"
        args_path.write_text(json.dumps(args))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", module, str(args_path)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as err:
            raise Ns3RunError(f"{module} timed out after {timeout_s:.0f} s") from err
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise Ns3RunError(f"{module} exited {proc.returncode} without a result: {' | '.join(tail)}")

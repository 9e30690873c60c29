"""`mypy --strict` (configured in pyproject.toml) holds on shared/ and sdk/: the code other code imports."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_on_shared_and_sdk() -> None:
    paths = ["shared", "sdk", "services/sla"]
    run = subprocess.run([sys.executable, "-m", "mypy", *paths], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr

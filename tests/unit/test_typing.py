"""`mypy --strict` (configured in pyproject.toml) holds on every package: shared/, sdk/, services/ and deploy/."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_on_every_package() -> None:
    paths = ["shared", "sdk", "services", "deploy"]
    run = subprocess.run([sys.executable, "-m", "mypy", *paths], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr

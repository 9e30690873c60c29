"""The Node demo's own unit tests (examples/demo-node/test, node:test, no npm packages needed), run from pytest
so `make test` runs them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "examples" / "demo-node"


def test_the_node_demo_units_pass() -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH (stack/install.sh installs nodejs)"
    out = subprocess.run([node, "--test", "test/"], cwd=APP, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout and "# pass 0" not in out.stdout, out.stdout[-2000:]

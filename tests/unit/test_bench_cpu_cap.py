"""bench/_cpu_cap.py: a capped process gets the share it was given, and the group goes when the block ends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench import _cpu_cap

SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


def _cpu_share(pid: int, seconds: float) -> float:
    p = psutil.Process(pid)
    before, t0 = sum(p.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    return (sum(p.cpu_times()[:2]) - before) / (time.monotonic() - t0)


def test_a_capped_spinner_gets_its_share_and_the_group_is_removed() -> None:
    why = _cpu_cap.available()
    if why is not None:  # the bench prints the same reason and measures uncapped only
        pytest.skip(why)
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        free = _cpu_share(spinner.pid, 0.6)
        with _cpu_cap.capped([spinner.pid], 0.2, name="safeguard-test-cap"):
            groups = [g for g in Path("/sys/fs/cgroup").rglob("safeguard-test-cap-0") if g.is_dir()]
            assert groups, "no cgroup made"
            capped = _cpu_share(spinner.pid, 1.5)
        assert not [g for g in groups if g.exists()], "the cgroup was left behind"
        assert free > 0.45, f"the spinner alone used {free:.2f} of a core: the machine is too busy to tell"
        assert capped < 0.3, f"capped at 0.2 core it used {capped:.2f}"
    finally:
        spinner.kill()
        spinner.wait()

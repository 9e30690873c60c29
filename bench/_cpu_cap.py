"""A CPU quota per process for a bench: each worker its own share of a core, as if on a machine of its own.

On this 2-core machine the broker, the load and the workers share the cores, so two uncapped workers measure
the machine, not the software's scale-out. With each worker capped at `cores` (a CFS quota in a cgroup of its
own), two workers have twice the CPU of one while the rest of the machine keeps its share.

cgroup v1 (`/sys/fs/cgroup/cpu/`) and v2 (`cpu.max`) both work; it needs root. `available()` says why not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")
_PERIOD_US = 100_000


def _root() -> tuple[Path, int] | None:
    if (_V1 / "cpu.cfs_quota_us").exists():
        return _V1, 1
    controllers = _V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return _V2, 2
    return None


def available() -> str | None:
    """None when a quota can be set here, else why not."""
    found = _root()
    if found is None:
        return "no cgroup cpu controller mounted"
    if not os.access(found[0], os.W_OK):
        return f"{found[0]} is not writable (needs root)"
    return None


@contextlib.contextmanager
def capped(pids: list[int], cores: float, *, name: str) -> Iterator[None]:
    """Each of `pids` in a cgroup of its own with `cores` of CPU until the block ends (the groups are removed)."""
    found = _root()
    assert found is not None, available()
    root, version = found
    quota = max(1000, int(cores * _PERIOD_US))
    groups = []
    try:
        for i, pid in enumerate(pids):
            group = root / f"{name}-{i}"
            group.mkdir()
            groups.append(group)
            if version == 1:
                (group / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (group / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
            (group / "cgroup.procs").write_text(str(pid))
        yield
    finally:
        for group in groups:
            with contextlib.suppress(OSError):  # its process may still be exiting: moved to the root first
                for left in (group / "cgroup.procs").read_text().split():
                    (root / "cgroup.procs").write_text(left)
            with contextlib.suppress(OSError):
                group.rmdir()

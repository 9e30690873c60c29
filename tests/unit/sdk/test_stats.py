from __future__ import annotations

from sdk.stats import ProcessStatsReporter, memory_limit_bytes
from shared.events import PoolStats


def test_report_uses_the_configured_limit_and_current_pools() -> None:
    r = ProcessStatsReporter(service="demo", instance="i", memory_limit=10 * 1024**3,
                             pools=lambda: [PoolStats(size=2, idle=1, max_size=10, connected=False)],
                             breakers=lambda: {"postgres": "open"})
    e = r.report()
    assert e.memory_limit_bytes == 10 * 1024**3
    assert 0 < e.memory_percent < 100
    assert abs(e.memory_percent - 100 * e.rss_bytes / e.memory_limit_bytes) < 0.01
    assert e.pools[0].connected is False and e.breakers == {"postgres": "open"}


def test_limit_defaults_to_cgroup_or_host() -> None:
    assert memory_limit_bytes() > 0

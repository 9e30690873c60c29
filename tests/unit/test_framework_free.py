"""A service's core (`service.py`) sees the world through ports (shared/ports.py, services/<svc>/ports.py):
importing it loads no Kafka, Postgres, Redis, web framework, stream processor or OpenTelemetry SDK.
Each import runs in a fresh interpreter, so modules other tests loaded do not count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiokafka", "asyncpg", "redis", "fastapi", "faust", "opentelemetry.sdk")
CORES = ("services.recovery.service", "services.notifier.service", "services.flags.service",
         "services.flags.changes", "services.flags.outbox", "services.flags.schedules", "services.flags.memory")


def _loaded_after_import(module: str) -> list[str]:
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            f"print(json.dumps(sorted(h for h in {HEAVY!r} if h in sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    loaded: list[str] = json.loads(run.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("module", CORES)
def test_core_imports_nothing_heavy(module: str) -> None:
    assert _loaded_after_import(module) == [], f"{module} loads framework code: move it behind a port"


def test_the_check_sees_a_heavy_import() -> None:
    assert "aiokafka" in _loaded_after_import("shared.kafka")

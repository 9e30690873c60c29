"""The native stack's credentials (issue 10 #12): made on first start, private, never in a log, and
none is the old shared default. Reads the stack `make up` started (`.stack/env` loaded)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.kafka.acls import ADMIN, PRINCIPALS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secrets_dir() -> Path:
    folder = os.environ.get("SAFEGUARD_SECRETS_DIR")
    if not folder:
        pytest.fail("SAFEGUARD_SECRETS_DIR is not set: load .stack/env of a stack started by `make up`")
    return Path(folder)


def test_every_credential_is_made_and_private(secrets_dir: Path) -> None:
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    names = [f"kafka-{p}" for p in (ADMIN, *PRINCIPALS)] + ["postgres-password"]
    values = []
    for name in names:
        f = secrets_dir / name
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f"{f} must be readable by its owner only"
        values.append(f.read_text().strip())
    assert all(len(v) >= 24 for v in values) and len(set(values)) == len(values), "long, and one per principal"
    assert "safeguard" not in values
    env = secrets_dir.parent / "env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert ":safeguard@" not in os.environ.get("POSTGRES_DSN", "")


def test_no_credential_reaches_a_log(secrets_dir: Path) -> None:
    values = [f.read_text().strip() for f in secrets_dir.iterdir() if f.is_file()]
    values.append(os.environ.get("SAFEGUARD_ADMIN_TOKEN", ""))
    values = [v for v in values if len(v) >= 16]
    logs = sorted((secrets_dir.parent / "logs").glob("*.log"))
    assert len(values) >= 9 and logs
    leaks = [(log.name, i) for log in logs for i, v in enumerate(values) if v in log.read_text(errors="replace")]
    assert leaks == [], f"credentials found in logs: {leaks}"

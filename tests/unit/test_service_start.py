"""`python -m services.<name>` with a bad policy file or setting stops with exit status 2 and names the field
on stderr (`shared.http.run_service`, `shared.startup.build_or_exit`), before anything is served."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=60)


@pytest.mark.parametrize(("service", "variable", "policy", "field"), [
    ("recovery", "RECOVERY_POLICY_FILE", "max_attempts: 0\n", "max_attempts"),
    ("notifier", "NOTIFIER_POLICY_FILE", "max_trigger_age: soon\n", "max_trigger_age"),
    ("sla", "SLA_POLICY_FILE", "pageload_window: 0\n", "pageload_window"),
])
def test_a_bad_policy_exits_2_naming_the_field(tmp_path: Path, service: str, variable: str, policy: str,
                                               field: str) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(policy)
    proc = _run(f"services.{service}", env={variable: str(bad)})
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"{service}: bad policy: {bad}") and field in line
    assert "Traceback" not in proc.stderr


def test_a_bad_setting_exits_2_one_line_per_field() -> None:
    proc = _run("services.recovery", env={"RECOVERY_PORT": "eighty", "RECOVERY_TICK_INTERVAL_S": "0"})
    assert proc.returncode == 2, proc.stderr
    assert sorted(proc.stderr.strip().splitlines()) == [
        "recovery: bad setting port: Input should be a valid integer, unable to parse string as an integer",
        "recovery: bad setting tick_interval_s: Input should be greater than 0"]


def test_recovery_with_a_command_is_the_cli_not_the_service() -> None:
    proc = _run("services.recovery", "recover", "--help", env={})
    assert proc.returncode == 0 and "--action" in proc.stdout

"""RECOVERY_EXECUTOR / RECOVERY_TARGETS / RECOVERY_DRY_RUN choose how recovery acts; a bad value stops the
service at start with a message naming it."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from pydantic import ValidationError

from services.recovery.executors.docker import DockerExecutor
from services.recovery.executors.factory import make_executor, open_operator
from services.recovery.executors.kubernetes import KubernetesExecutor
from services.recovery.executors.supervisord import SupervisordExecutor
from services.recovery.settings import RecoverySettings

TARGETS = '{"demo": [{"instance": "demo-blue", "program": "safeguard:demo-blue", "health_url": "http://127.0.0.1:8101/healthz"}]}'


@pytest.mark.parametrize(("name", "cls"), [("supervisord", SupervisordExecutor), ("docker", DockerExecutor),
                                           ("kubernetes", KubernetesExecutor), ("sdk", type(None))])
def test_the_executor_is_chosen_by_configuration(monkeypatch: pytest.MonkeyPatch, name: str, cls: type) -> None:
    monkeypatch.setenv("RECOVERY_EXECUTOR", name)
    assert isinstance(make_executor(RecoverySettings()), cls)


def test_an_unknown_executor_or_a_bad_target_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_EXECUTOR", "systemd")
    with pytest.raises(ValidationError, match="executor"):
        RecoverySettings()
    monkeypatch.setenv("RECOVERY_EXECUTOR", "supervisord")
    monkeypatch.setenv("RECOVERY_TARGETS", '{"demo": [{"instance": "demo-blue", "progam": "x"}]}')
    with pytest.raises(ValidationError, match="progam"):
        RecoverySettings()


async def test_targets_and_dry_run_reach_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_EXECUTOR", "supervisord")
    monkeypatch.setenv("RECOVERY_TARGETS", TARGETS)
    monkeypatch.setenv("RECOVERY_DRY_RUN", "true")
    async with AsyncExitStack() as stack:
        op = await open_operator(stack, RecoverySettings(), watch_kafka=False)
        assert op.dry_run and [t.program for t in op.restart_targets("demo", None)] == ["safeguard:demo-blue"]
        assert op.restart_targets("demo", "demo-green") == [] and op.restart_targets("shop", None) == []
        assert isinstance(op.executor, SupervisordExecutor) and op.watch is None and op.verifier is not None

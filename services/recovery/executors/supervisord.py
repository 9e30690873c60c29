"""Restart a program through supervisord's XML-RPC on its unix socket (the native stack), the way
`supervisorctl restart` does, with deploy's client (`deploy.instances.supervisor_rpc`)."""

from __future__ import annotations

import asyncio
import time
import xmlrpc.client
from pathlib import Path

from deploy.instances import supervisor_rpc
from services.recovery.executors.base import ExecutorError, Restarted, Target, answers

__all__ = ["SupervisordExecutor"]


class SupervisordExecutor:
    name = "supervisord"

    def __init__(self, *, socket: Path, ready_timeout_s: float = 60) -> None:
        self.socket, self.ready_timeout_s = socket, ready_timeout_s

    def describe(self, target: Target) -> str:
        return f"restart program {target.program} through supervisord ({self.socket})"

    def _restart(self, program: str) -> tuple[int, int]:
        rpc = supervisor_rpc(self.socket)
        try:
            before = rpc.getProcessInfo(program)
            if before["statename"] in ("RUNNING", "STARTING"):
                rpc.stopProcess(program)
            rpc.startProcess(program)  # waits until RUNNING (startsecs), or faults
            after = rpc.getProcessInfo(program)
        except (OSError, xmlrpc.client.Fault) as exc:
            raise ExecutorError(f"supervisord at {self.socket} could not restart {program}: {exc}") from exc
        return int(before["pid"]), int(after["pid"])

    async def restart(self, target: Target) -> Restarted:
        t0 = time.monotonic()
        old, new = await asyncio.to_thread(self._restart, target.program)
        if new == 0 or new == old:
            raise ExecutorError(f"{target.program}: no new process after the restart (pid {old} -> {new})")
        if not await answers(target.health_url, timeout_s=self.ready_timeout_s):
            raise ExecutorError(f"{target.instance} (pid {new}) did not answer {target.health_url} "
                                f"within {self.ready_timeout_s:.0f}s")
        return Restarted(instance=target.instance, before=f"pid {old}", after=f"pid {new}",
                         answered_s=time.monotonic() - t0)

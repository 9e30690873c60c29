"""Restart a compose container through the Docker Engine API (`POST /containers/{id}/restart`), finding it
by its compose labels with deploy's client (`deploy.docker_instances.DockerEngine`).

Without a project (RECOVERY_COMPOSE_PROJECT), recovery running in a compose container keeps to its own
project: the one its own container (its hostname, the container id) is labelled with, so another
project's `demo-green` on the same daemon is never restarted."""

from __future__ import annotations

import socket
import time
from typing import Any

from deploy.docker_instances import DockerEngine
from deploy.instances import InstanceError
from services.recovery.executors.base import ExecutorError, Restarted, Target, answers

__all__ = ["DockerExecutor"]


class DockerExecutor:
    name = "docker"

    def __init__(self, *, engine: DockerEngine, ready_timeout_s: float = 60, own_container: str | None = None) -> None:
        self.engine, self.ready_timeout_s = engine, ready_timeout_s
        self.own_container = own_container or socket.gethostname()
        self._scoped = engine.project is not None

    async def _scope(self) -> None:
        """No project given: the compose project of the container recovery runs in, if it runs in one."""
        if self._scoped:
            return
        r = await self.engine._api("GET", f"/containers/{self.own_container}/json")
        if r.status_code == 200:
            labels = (r.json().get("Config") or {}).get("Labels") or {}
            self.engine.project = labels.get("com.docker.compose.project") or None
        self._scoped = True

    def describe(self, target: Target) -> str:
        return f"restart container of compose service {target.program} through the Docker Engine API"

    async def _state(self, cid: str) -> dict[str, Any]:
        r = await self.engine._api("GET", f"/containers/{cid}/json")
        if r.status_code != 200:
            raise ExecutorError(f"inspecting {cid[:12]}: HTTP {r.status_code}: {self.engine._message(r)}")
        state: dict[str, Any] = r.json().get("State") or {}
        return state

    @staticmethod
    def _process(state: dict[str, Any]) -> str:
        return f"pid {state.get('Pid', 0)} started {state.get('StartedAt', '?')}"

    async def _unpause(self, target: Target, cid: str) -> None:
        """A frozen container (`docker pause`) cannot be restarted: the daemon answers 409 until it is unpaused."""
        r = await self.engine._api("POST", f"/containers/{cid}/unpause")
        if r.status_code != 204:
            raise ExecutorError(f"unpausing {target.program} ({cid[:12]}) before its restart: HTTP {r.status_code}: "
                                f"{self.engine._message(r)}")

    async def restart(self, target: Target) -> Restarted:
        t0 = time.monotonic()
        try:
            await self._scope()
            cid = str((await self.engine.container(target.program))["Id"])
            state = await self._state(cid)
            before = self._process(state)
            if state.get("Paused"):
                await self._unpause(target, cid)
            r = await self.engine._api("POST", f"/containers/{cid}/restart",
                                       params={"t": str(self.engine.stop_timeout_s)})
            if r.status_code != 204:
                raise ExecutorError(f"restarting {target.program} ({cid[:12]}): HTTP {r.status_code}: "
                                    f"{self.engine._message(r)}")
            after = self._process(await self._state(cid))
        except InstanceError as exc:
            raise ExecutorError(str(exc)) from None
        if after == before:
            raise ExecutorError(f"{target.program}: the container reports the same process after the restart ({after})")
        if not await answers(target.health_url, timeout_s=self.ready_timeout_s):
            raise ExecutorError(f"{target.instance} did not answer {target.health_url} within "
                                f"{self.ready_timeout_s:.0f}s after its restart")
        return Restarted(instance=target.instance, before=before, after=after, answered_s=time.monotonic() - t0)

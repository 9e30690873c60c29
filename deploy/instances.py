"""Where each colour of the app runs and how to start a version on one: a port with the native
stack's implementation (supervisord's XML-RPC on its unix socket, the version in a release file the
app reads at start). A colour is ready when its own /healthz answers 200 with that version."""

from __future__ import annotations

import asyncio
import os
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Protocol

import httpx

from deploy.app import ROOT, AppSpec

__all__ = ["InstanceError", "Instances", "SupervisorInstances", "make_instances", "running_version", "supervisor_rpc"]


class InstanceError(RuntimeError):
    """A colour could not be started or did not become ready; the message says which and why."""


class Instances(Protocol):
    async def start(self, colour: str, version: str) -> None: ...


async def running_version(spec: AppSpec, colour: str, *, timeout_s: float = 2.0) -> str | None:
    """The version a colour answers with on its /healthz, or None when it does not answer 200."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            r = await http.get(spec.colours[colour].url + spec.health)
    except httpx.HTTPError:
        return None
    return str(r.json().get("version", "")) or None if r.status_code == 200 else None


def supervisor_rpc(socket: Path) -> Any:
    """The `supervisor` namespace of supervisord's XML-RPC on its unix socket (calls block: run them in a thread)."""
    from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]  # supervisor ships no types or stubs

    transport = SupervisorTransport(None, None, f"unix://{socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


class SupervisorInstances:
    """The native stack: write `<release_dir>/<program>` with the version, restart the program through
    supervisord's XML-RPC (`.stack/run/supervisor.sock`), wait for its /healthz to say that version."""

    def __init__(self, spec: AppSpec, *, socket: Path, release_dir: Path, group: str = "safeguard",
                 ready_timeout_s: float = 60) -> None:
        self.spec, self.socket, self.release_dir, self.ready_timeout_s = spec, socket, release_dir, ready_timeout_s
        self.group = group  # stack/supervisord.conf.in puts every program in group "safeguard"

    def _rpc(self) -> Any:
        return supervisor_rpc(self.socket)

    def _restart(self, program: str) -> None:
        rpc = self._rpc()
        try:
            if rpc.getProcessInfo(program)["statename"] in ("RUNNING", "STARTING"):
                rpc.stopProcess(program)
            rpc.startProcess(program)
        except (OSError, xmlrpc.client.Fault) as exc:
            raise InstanceError(f"supervisord at {self.socket} could not restart {program}: {exc}") from exc

    async def start(self, colour: str, version: str) -> None:
        program = f"{self.group}:{self.spec.colours[colour].program}" if self.group else self.spec.colours[colour].program
        self.release_dir.mkdir(parents=True, exist_ok=True)
        name = self.spec.colours[colour].program
        tmp = self.release_dir / f".{name}.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.release_dir / name)
        await asyncio.to_thread(self._restart, program)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if await running_version(self.spec, colour) == version:
                return
            await asyncio.sleep(0.25)
        raise InstanceError(f"{colour} did not answer {self.spec.health} with version {version} "
                            f"within {self.ready_timeout_s:.0f}s (see its log: make logs P={program})")


def make_instances(spec: AppSpec) -> Instances:
    kind = spec.instances.get("kind", "supervisord")
    if kind == "docker":
        from deploy.docker_instances import DockerInstances

        return DockerInstances.from_env(spec)
    if kind == "kubernetes":
        from deploy.kube_instances import KubernetesInstances

        return KubernetesInstances.from_spec(spec)
    if kind != "supervisord":
        raise ValueError(f"{spec.source}: [instances] kind = {kind!r}: expected supervisord, docker or kubernetes")
    run = Path(os.environ.get("SAFEGUARD_SUPERVISOR_SOCKET", ROOT / ".stack" / "run" / "supervisor.sock"))
    release_dir = Path(os.environ.get("DEMO_RELEASE_DIR", ROOT / ".stack" / "deploy"))
    return SupervisorInstances(spec, socket=run, release_dir=release_dir if release_dir.is_absolute()
                               else ROOT / release_dir)

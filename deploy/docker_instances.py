"""The colours as Docker Compose containers (`[instances] kind = "docker"`): the same contract as
`SupervisorInstances`, through the Docker Engine API on its unix socket.

start(colour, version): find the colour's container by its compose labels (`com.docker.compose.service`
= the colour's `program`, `com.docker.compose.project` when `COMPOSE_PROJECT_NAME` is set), write the
version into `<release dir>/<program>` on the host (the directory bind-mounted at the container's
`DEMO_RELEASE_DIR`, read from the container itself), `POST /containers/{id}/restart`, wait for the
colour's /healthz (its published 127.0.0.1 port) to answer that version.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from deploy.app import AppSpec
from deploy.instances import InstanceError, running_version

__all__ = ["DEFAULT_SOCKET", "DockerEngine", "DockerInstances", "docker_socket"]

DEFAULT_SOCKET = Path("/var/run/docker.sock")
RELEASE_ENV = "DEMO_RELEASE_DIR"  # where the app reads its release file inside the container


def docker_socket() -> Path:
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        raise InstanceError(f"DOCKER_HOST={host}: only a unix socket (unix:///path) is supported")
    return Path(host.removeprefix("unix://")) if host else DEFAULT_SOCKET


class DockerEngine:
    """The Docker Engine API on its unix socket, and the compose containers it runs (shared with recovery's
    Docker executor)."""

    def __init__(self, *, socket: Path = DEFAULT_SOCKET, project: str | None = None, stop_timeout_s: int = 10) -> None:
        self.socket, self.project, self.stop_timeout_s = socket, project or None, stop_timeout_s

    async def _api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if not self.socket.exists():
            raise InstanceError(f"no Docker Engine socket at {self.socket}: is dockerd running "
                                "(or set DOCKER_HOST=unix:///path/docker.sock)?")
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://docker",
                                         timeout=self.stop_timeout_s + 30) as http:
                return await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise InstanceError(f"Docker Engine API at {self.socket}: {method} {path}: "
                                f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _message(r: httpx.Response) -> str:
        try:
            return str(r.json().get("message", r.text))
        except ValueError:
            return r.text[:300]

    async def container(self, program: str) -> dict[str, Any]:
        """The one running compose container of service `program` (one-off `compose run` ones excluded)."""
        labels = [f"com.docker.compose.service={program}", "com.docker.compose.oneoff=False"]
        labels += [f"com.docker.compose.project={self.project}"] if self.project else []
        r = await self._api("GET", "/containers/json", params={"all": "1", "filters": json.dumps({"label": labels})})
        if r.status_code != 200:
            raise InstanceError(f"Docker Engine API: listing containers: HTTP {r.status_code}: {self._message(r)}")
        found: list[dict[str, Any]] = r.json()
        where = f"compose service {program}" + (f" of project {self.project}" if self.project else "")
        if not found:
            raise InstanceError(f"no container of {where}: is the stack up (`docker compose up -d`)? "
                                "Set COMPOSE_PROJECT_NAME when it runs under another project name")
        if len(found) > 1:
            projects = sorted({c.get("Labels", {}).get("com.docker.compose.project", "?") for c in found})
            raise InstanceError(f"{len(found)} containers of {where} (projects {', '.join(projects)}): "
                                "set COMPOSE_PROJECT_NAME to pick one")
        return found[0]


class DockerInstances(DockerEngine):
    """`release_dir` None: the host side of the container's bind mount at `DEMO_RELEASE_DIR` (true when
    the daemon shares this machine's filesystem); set it (SAFEGUARD_DEPLOY_DIR) when it does not."""

    def __init__(self, spec: AppSpec, *, socket: Path = DEFAULT_SOCKET, project: str | None = None,
                 release_dir: Path | None = None, ready_timeout_s: float = 60, stop_timeout_s: int = 10) -> None:
        super().__init__(socket=socket, project=project, stop_timeout_s=stop_timeout_s)
        self.spec, self.release_dir, self.ready_timeout_s = spec, release_dir, ready_timeout_s

    @classmethod
    def from_env(cls, spec: AppSpec) -> DockerInstances:
        """`DOCKER_HOST` (unix://), `COMPOSE_PROJECT_NAME`, `SAFEGUARD_DEPLOY_DIR`, or `[instances]` keys
        `socket`, `project`, `release_dir` in the app description."""
        conf = spec.instances
        socket = Path(conf["socket"]) if conf.get("socket") else docker_socket()
        project = conf.get("project") or os.environ.get("COMPOSE_PROJECT_NAME")
        release = conf.get("release_dir") or os.environ.get("SAFEGUARD_DEPLOY_DIR")
        return cls(spec, socket=socket, project=project, release_dir=Path(release).resolve() if release else None)

    async def _release_dir(self, cid: str, program: str) -> Path:
        if self.release_dir is not None:
            return self.release_dir
        r = await self._api("GET", f"/containers/{cid}/json")
        if r.status_code != 200:
            raise InstanceError(f"inspecting {program} ({cid[:12]}): HTTP {r.status_code}: {self._message(r)}")
        info = r.json()
        env = dict(e.partition("=")[::2] for e in info.get("Config", {}).get("Env") or [])
        inside = env.get(RELEASE_ENV)
        if not inside:
            raise InstanceError(f"container {program} has no {RELEASE_ENV}: it cannot be told which version to run")
        for mount in info.get("Mounts") or []:
            if mount.get("Type") == "bind" and mount.get("Destination") == inside:
                return Path(mount["Source"])
        raise InstanceError(f"container {program} has no host directory bind-mounted at {inside} ({RELEASE_ENV})")

    @staticmethod
    def _write(directory: Path, name: str, version: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{name}.tmp"
        tmp.write_text(version + "\n")
        tmp.chmod(0o644)  # the app runs as another user in its container
        os.replace(tmp, directory / name)

    async def start(self, colour: str, version: str) -> None:
        program = self.spec.colours[colour].program
        cid = str((await self.container(program))["Id"])
        self._write(await self._release_dir(cid, program), program, version)
        r = await self._api("POST", f"/containers/{cid}/restart", params={"t": str(self.stop_timeout_s)})
        if r.status_code != 204:
            raise InstanceError(f"restarting {program} ({cid[:12]}): HTTP {r.status_code}: {self._message(r)}")
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if await running_version(self.spec, colour) == version:
                return
            await asyncio.sleep(0.25)
        raise InstanceError(f"{colour} did not answer {self.spec.health} with version {version} within "
                            f"{self.ready_timeout_s:.0f}s (see its log: docker compose logs {program})")

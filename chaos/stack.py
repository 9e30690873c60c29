"""The native stack under test: its env file, its supervisord, and the faults we inflict on it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Stack", "StackError"]


class StackError(RuntimeError):
    """The stack cannot be driven (no supervisord, a program that does not come back)."""


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def _programs(root: Path) -> dict[str, str]:
    """name -> PORT_VAR of every Safeguard program (stack/programs.conf, the one list)."""
    out: dict[str, str] = {}
    for line in (root / "stack" / "programs.conf").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 3:
            out[fields[0]] = fields[1]
    return out


@dataclass(frozen=True)
class Stack:
    root: Path
    env: dict[str, str]

    @classmethod
    def load(cls, root: Path | None = None) -> Stack:
        root = (root or Path(__file__).resolve().parent.parent).resolve()
        env_file = root / ".stack" / "env"
        if not env_file.exists():
            raise StackError(f"{env_file} is missing: start the stack with `make up`")
        return cls(root=root, env=_read_env(env_file))

    # ---- addresses ---------------------------------------------------------------------
    @property
    def front(self) -> str:
        return self.env["SAFEGUARD_FRONT_URL"]

    @property
    def demo(self) -> str:
        return self.env["SAFEGUARD_DEMO_URL"]

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def topic_prefix(self) -> str:
        return self.env.get("KAFKA_TOPIC_PREFIX", "")

    @property
    def admin_token(self) -> str:
        return (self.root / ".stack" / "admin-token").read_text().strip()

    def healthz(self) -> dict[str, str]:
        """program -> its own /healthz URL (straight to the process, not through HAProxy)."""
        return {name: f"http://127.0.0.1:{self.env[var]}/healthz" for name, var in _programs(self.root).items()}

    def demo_instances(self) -> dict[str, str]:
        """demo-blue / demo-green -> the base URL of that process."""
        return {name: f"http://127.0.0.1:{self.env[var]}" for name, var in _programs(self.root).items()
                if name.startswith("demo-")}

    def program(self, name: str) -> str:
        """The supervisord name of a program: `infra:kafka`, `safeguard:flags`."""
        return name if ":" in name else (f"infra:{name}" if name in _INFRA else f"safeguard:{name}")

    # ---- supervisord -------------------------------------------------------------------
    async def ctl(self, *args: str, check: bool = True) -> str:
        conf = self.root / ".stack" / "supervisord.conf"
        proc = await asyncio.create_subprocess_exec(
            str(self.root / ".venv" / "bin" / "supervisorctl"), "-c", str(conf), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        text = out.decode(errors="replace").strip()
        if check and proc.returncode not in (0, None) and "RUNNING" not in text:
            raise StackError(f"supervisorctl {' '.join(args)}: {text}")
        return text

    async def alive(self) -> bool:
        try:
            return (await self.ctl("pid", check=False)).strip().isdigit()
        except OSError:
            return False

    async def pid(self, name: str) -> int:
        text = await self.ctl("pid", self.program(name), check=False)
        return int(text) if text.isdigit() else 0

    async def state(self, name: str) -> str:
        text = await self.ctl("status", self.program(name), check=False)
        parts = text.split()
        return parts[1] if len(parts) > 1 else "UNKNOWN"

    async def kill9(self, name: str, *, pid: int = 0) -> int:
        pid = pid or await self.pid(name)
        if not pid:
            raise StackError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        return pid

    async def wait_restarted(self, name: str, *, old_pid: int, timeout: float) -> float | None:
        """Seconds until supervisord runs `name` again under a new pid (None: not within `timeout`)."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while loop.time() - t0 < timeout:
            pid = await self.pid(name)
            if pid and pid != old_pid and await self.state(name) == "RUNNING":
                return loop.time() - t0
            await asyncio.sleep(0.2)
        return None

    async def stop(self, name: str) -> None:
        await self.ctl("stop", self.program(name))

    async def start(self, name: str) -> None:
        await self.ctl("start", self.program(name), check=False)

    async def restart(self, name: str) -> None:
        await self.ctl("restart", self.program(name), check=False)

    async def pause(self, name: str, *, pid: int = 0) -> int:
        pid = pid or await self.pid(name)
        if not pid:
            raise StackError(f"{name} is not running")
        os.kill(pid, signal.SIGSTOP)
        return pid

    async def resume(self, name: str) -> None:
        pid = await self.pid(name)
        if pid:
            os.kill(pid, signal.SIGCONT)

    async def restore(self, paused: Iterable[str] = ("kafka",)) -> None:
        """Undo whatever a fault may have left: resume what faults pause, start every stopped program."""
        for name in paused:
            await self.resume(name)
        await self.ctl("start", "infra:*", check=False)
        await self.ctl("start", "safeguard:*", check=False)


_INFRA = frozenset({"kafka", "postgres", "redis", "haproxy"})

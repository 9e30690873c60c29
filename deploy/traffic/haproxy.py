"""The traffic switch on HAProxy's runtime API (the admin socket), no reload.

One backend (`[traffic] backend`), one server per colour (named as the colour, or `[traffic.servers]`).
A percent is written as the server's weight (HAProxy takes 0..256, relative within the backend): a
weight of 0 gets no new requests, while in-flight and keep-alive requests already on it finish there.
The new colour's weight is raised before the old one's is lowered, in one admin command line, so
there is no instant with no server to send to.

    [traffic]
    kind = "haproxy"
    backend = "demo"
    socket = "/path/haproxy.sock"     # or "tcp:127.0.0.1:9999" (compose publishes it there)
    timeout = 2.0                     # seconds for one admin command (default 2)
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
from dataclasses import dataclass, field
from typing import Any

from deploy.app import ROOT, AppSpec
from deploy.traffic.weights import TrafficError, check_weights, to_percent

__all__ = ["HaproxySwitch", "ServerState"]

UP = ("UP", "DRAIN", "NOLB", "no")  # `show stat` status, first word: "UP 1/2", "no check", "MAINT (via x/y)"
OUT = ("MAINT", "DRAIN")  # out of the rotation whatever the weight


@dataclass(frozen=True, kw_only=True)
class ServerState:
    """One server as `show stat` reports it."""

    status: str
    weight: int
    backup: bool = False

    @property
    def up(self) -> bool:
        return self.status.split(" ")[0] in UP

    @property
    def effective_weight(self) -> int:
        return 0 if self.status.split(" ")[0] in OUT else self.weight


@dataclass(frozen=True, kw_only=True)
class HaproxySwitch:
    socket: str
    backend: str
    servers: dict[str, str] = field(default_factory=lambda: {"blue": "blue", "green": "green"})
    timeout: float = 2.0

    @classmethod
    def from_spec(cls, spec: AppSpec) -> HaproxySwitch:
        traffic = spec.traffic
        for key in ("socket", "backend"):
            if not traffic.get(key):
                raise ValueError(f"{spec.source}: [traffic] kind = 'haproxy' needs `{key}`")
        if not spec.colours:
            raise ValueError(f"{spec.source}: no [colours.*]: nothing to switch between")
        names: dict[str, Any] = traffic.get("servers", {})
        socket = str(traffic["socket"])
        if not socket.startswith("tcp:") and not socket.startswith("/"):
            socket = str(ROOT / socket)
        return cls(socket=socket, backend=str(traffic["backend"]), timeout=float(traffic.get("timeout", 2.0)),
                   servers={c: str(names.get(c, c)) for c in spec.colours})

    async def weights(self) -> dict[str, int]:
        states = await self.states()
        return to_percent({c: s.effective_weight for c, s in states.items()})

    async def set_weights(self, weights: dict[str, int]) -> None:
        wanted = check_weights(weights, colours=self.servers)
        states = await self.states()
        down = [c for c, w in wanted.items() if w > 0 and not states[c].up]
        if down:
            raise TrafficError(f"HAProxy sees {', '.join(down)} down in backend {self.backend}: "
                               f"refusing to send traffic there (nothing changed)")
        # raise first, then lower: at no instant is every weight 0
        order = sorted(wanted, key=lambda c: wanted[c] == 0)
        commands = []
        for colour in order:
            server = f"{self.backend}/{self.servers[colour]}"
            if wanted[colour] > 0:
                commands.append(f"set server {server} state ready")
            commands.append(f"set server {server} weight {wanted[colour]}")
        await self.write("; ".join(commands))

    async def switch(self, colour: str) -> None:
        if colour not in self.servers:
            raise ValueError(f"unknown colour {colour!r}: this app has {', '.join(self.servers)}")
        await self.set_weights({colour: 100})

    async def healthy(self, colour: str) -> bool:
        if colour not in self.servers:
            raise ValueError(f"unknown colour {colour!r}: this app has {', '.join(self.servers)}")
        return (await self.states())[colour].up

    async def states(self) -> dict[str, ServerState]:
        """Each colour's server as `show stat <backend> 4 -1` (its servers) reports it."""
        text = await self.command(f"show stat {self.backend} 4 -1")
        if not text.startswith("# pxname"):
            raise TrafficError(f"HAProxy at {self.socket}: backend {self.backend!r}: {text.strip() or 'no answer'}")
        rows = {r["svname"]: r for r in csv.DictReader(text.removeprefix("# ").splitlines())}
        missing = [f"{c} (server {s!r})" for c, s in self.servers.items() if s not in rows]
        if missing:
            raise TrafficError(f"HAProxy backend {self.backend} has no server for {', '.join(missing)}; "
                               f"it has: {', '.join(rows) or 'none'}")
        states = {c: ServerState(status=rows[s]["status"], weight=int(rows[s]["uweight"] or 0),
                                 backup=rows[s]["bck"] == "1") for c, s in self.servers.items()}
        if backups := [f"{self.backend}/{self.servers[c]}" for c, st in states.items() if st.backup]:
            raise TrafficError(f"HAProxy server {', '.join(backups)} is `backup`: it gets traffic only when every "
                               f"other server is down, whatever its weight; remove `backup` and reload HAProxy")
        return states

    async def write(self, line: str) -> None:
        """Run `a; b; c` (HAProxy runs them in order); any answer but blank lines is an error."""
        answer = (await self.command(line)).strip()
        if answer:
            raise TrafficError(f"HAProxy at {self.socket} refused `{line}`: {answer}")

    async def command(self, line: str) -> str:
        """One admin command line on its own connection; HAProxy answers and closes."""
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self._connect()
                try:
                    writer.write(line.encode() + b"\n")
                    await writer.drain()
                    return (await reader.read()).decode()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except TimeoutError:
            raise TrafficError(f"HAProxy admin socket {self.socket}: no answer within {self.timeout}s") from None
        except FileNotFoundError:
            raise TrafficError(f"HAProxy admin socket {self.socket} does not exist: is HAProxy running with "
                               f"`stats socket {self.socket} level admin`? ([traffic] socket)") from None
        except ConnectionRefusedError:
            raise TrafficError(f"HAProxy admin socket {self.socket} refused the connection: "
                               f"HAProxy is not running or does not listen there ([traffic] socket)") from None
        except OSError as exc:
            raise TrafficError(f"HAProxy admin socket {self.socket}: {exc}") from None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket.startswith("tcp:"):
            host, _, port = self.socket.removeprefix("tcp:").rpartition(":")
            if not host or not port.isdigit():
                raise TrafficError(f"[traffic] socket {self.socket!r}: expected tcp:HOST:PORT or a unix socket path")
            return await asyncio.open_connection(host, int(port))
        return await asyncio.open_unix_connection(self.socket)

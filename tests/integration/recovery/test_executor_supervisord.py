"""The supervisord executor for real (issue 14): a private supervisord under a temp dir runs two tiny HTTP
programs; recovery restarts them through the XML-RPC socket one at a time, each with a new PID that answers
/healthz before the next goes. The native stack's own supervisord is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.instances import supervisor_rpc
from services.recovery.executors import ExecutorError, Restarted, Target, restart_in_turn
from services.recovery.executors.supervisord import SupervisordExecutor
from services.recovery.operator import Operator
from services.recovery.policy import load_policy
from services.recovery.repository import MemoryAuditStore
from services.recovery.service import RecoveryService
from shared.events import RecoveryActionVerified, RestartProcess, TriggerFired
from shared.testing import InMemoryPublisher

ROOT = Path(__file__).resolve().parents[3]
TINY = """
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Supervisor:
    socket: Path
    ports: dict[str, int]

    def target(self, name: str) -> Target:
        return Target(instance=f"shop-{name}", program=name, health_url=f"http://127.0.0.1:{self.ports[name]}/healthz")

    def pid(self, name: str) -> int:
        return int(supervisor_rpc(self.socket).getProcessInfo(name)["pid"])


@pytest.fixture(scope="module")
def supervisor() -> Iterator[Supervisor]:
    d = Path(tempfile.mkdtemp(prefix="sv", dir="/tmp"))  # a unix socket path must stay short
    (d / "tiny.py").write_text(TINY)
    ports = {"tiny-a": free_port(), "tiny-b": free_port()}
    programs = "".join(f"[program:{n}]\ncommand={sys.executable} {d / 'tiny.py'} {p}\nstartsecs=0\nstopwaitsecs=5\n"
                       f"autorestart=true\n" for n, p in ports.items())
    (d / "supervisord.conf").write_text(
        f"[unix_http_server]\nfile={d / 's.sock'}\n[supervisord]\nnodaemon=true\nlogfile={d / 'sv.log'}\n"
        f"pidfile={d / 'sv.pid'}\nchildlogdir={d}\n[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n" + programs)
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "supervisord"), "-c", str(d / "supervisord.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sv = Supervisor(socket=d / "s.sock", ports=ports)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if all(httpx.get(f"http://127.0.0.1:{p}/healthz").status_code == 200 for p in ports.values()):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the private supervisord did not start"
            time.sleep(0.05)
        yield sv
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(d, ignore_errors=True)


async def test_each_program_restarts_with_a_new_pid_that_answers_one_at_a_time(supervisor: Supervisor) -> None:
    executor = SupervisordExecutor(socket=supervisor.socket, ready_timeout_s=10)
    before = {n: supervisor.pid(n) for n in supervisor.ports}
    b_while_a: list[int] = []

    async def restart(t: Target) -> Restarted:
        done = await executor.restart(t)
        if t.program == "tiny-a":
            b_while_a.append(supervisor.pid("tiny-b"))  # b still runs its old process: never both at once
        return done

    t0 = time.monotonic()
    done = await restart_in_turn(restart, [supervisor.target("tiny-a"), supervisor.target("tiny-b")])
    took = time.monotonic() - t0
    assert b_while_a == [before["tiny-b"]]
    for r, name in zip(done, ("tiny-a", "tiny-b"), strict=True):
        new = supervisor.pid(name)
        assert new != before[name] and r.before == f"pid {before[name]}" and r.after == f"pid {new}"
        answer = httpx.get(f"http://127.0.0.1:{supervisor.ports[name]}/healthz")
        assert answer.status_code == 200 and answer.text == str(new)  # the new process answers
    print(f"\nsupervisord: two programs restarted one at a time in {took:.2f}s "
          f"({', '.join(f'{r.answered_s:.2f}s' for r in done)})")


async def test_memory_high_restarts_through_supervisord_and_the_effect_is_verified(supervisor: Supervisor) -> None:
    pub = InMemoryPublisher()
    operator = Operator(executor=SupervisordExecutor(socket=supervisor.socket, ready_timeout_s=10),
                        targets={"shop": [supervisor.target("tiny-a"), supervisor.target("tiny-b")]})
    svc = RecoveryService(policy=load_policy(ROOT / "config" / "recovery.yaml"), publisher=pub, flags=None,  # type: ignore[arg-type]
                          audit=MemoryAuditStore(), operator=operator)
    old = supervisor.pid("tiny-b")
    rec = await svc.recover_from_trigger(TriggerFired(service="shop", trigger="memory_high", episode_id="e1",
                                                      value=93, threshold=90, window_seconds=5, instance="shop-tiny-b"))
    await operator.settled()
    assert rec is not None and rec.status == "started" and pub.of_type(RestartProcess) == []
    [verified] = pub.of_type(RecoveryActionVerified)
    new = supervisor.pid("tiny-b")
    assert new != old and f"shop-tiny-b: pid {old} -> pid {new}" in verified.effect
    print(f"\nrestart_process (supervisord): action -> verified effect {verified.seconds:.2f}s")


async def test_a_program_supervisord_does_not_know_fails_with_its_name(supervisor: Supervisor) -> None:
    executor = SupervisordExecutor(socket=supervisor.socket, ready_timeout_s=5)
    with pytest.raises(ExecutorError, match="could not restart nope"):
        await executor.restart(Target(instance="x", program="nope"))


async def test_a_socket_nobody_listens_on_fails_with_where(tmp_path: Path) -> None:
    executor = SupervisordExecutor(socket=tmp_path / "none.sock", ready_timeout_s=1)
    with pytest.raises(ExecutorError, match="none.sock"):
        await executor.restart(Target(instance="x", program="tiny-a"))

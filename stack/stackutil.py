"""Small helpers for the native stack scripts (run with .venv/bin/python, stdlib + aiokafka).

    stackutil.py holders OWNER_MARK PORT...     who listens on these ports (any address)
    stackutil.py wait-tcp HOST PORT TIMEOUT
    stackutil.py redis-ping HOST PORT TIMEOUT
    stackutil.py kafka-ready BOOTSTRAP TIMEOUT  a metadata round trip that lists a broker
    stackutil.py haproxy-stat SOCK [OPTIONAL_BACKEND...]   servers' states via the admin socket
    stackutil.py wait-haproxy SOCK TIMEOUT                  until HAProxy sees every server UP
    stackutil.py haproxy-save-state SOCK FILE               `show servers state` into FILE (weights survive a restart)
    stackutil.py wait-programs SUPERVISOR_SOCK TIMEOUT NAME=URL...
                                                wait until each program is RUNNING with
                                                URL answering 200 (or FATAL), print a table
    stackutil.py wait-health URL TIMEOUT        until the health service's /api/health says pass;
                                                warn is said loudly and exits 0, fail exits 1
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client

__all__ = [
    "COMMANDS",
    "haproxy_save_state",
    "haproxy_stat",
    "holders",
    "kafka_ready",
    "redis_ping",
    "wait_haproxy",
    "wait_health",
    "wait_programs",
    "wait_tcp",
]

LISTEN = "0A"


def _listening_inodes(ports: set[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    port = int(local.rsplit(":", 1)[1], 16)
                    if state == LISTEN and port in ports:
                        found.setdefault(port, set()).add(inode)
        except FileNotFoundError:
            pass
    return found


def _inode_owners() -> dict[str, int]:
    owners: dict[str, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    target = os.readlink(f"{fd_dir}/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    owners.setdefault(target[8:-1], int(pid))
        except OSError:
            continue
    return owners


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _has_mark(pid: int, mark: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return mark.encode() in fh.read().split(b"\0")
    except OSError:
        return False


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _is_ours(pid: int, mark: str) -> bool:
    """The process or one of its ancestors carries our mark (a process that rewrites its
    title, like a postgres backend, may have lost its own copy of the environment)."""
    while pid > 1:
        if _has_mark(pid, mark):
            return True
        pid = _ppid(pid)
    return False


def holders(mark: str, *ports: str) -> int:
    """Print `port<TAB>pid<TAB>ours|foreign<TAB>cmdline` for each listening port."""
    wanted = {int(p) for p in ports}
    inodes = _listening_inodes(wanted)
    owners = _inode_owners() if inodes else {}
    for port in sorted(inodes):
        pids = sorted({owners[i] for i in inodes[port] if i in owners})
        if not pids:  # socket owned by a process we cannot see (other user / namespace)
            print(f"{port}\t?\tforeign\t(unknown process)")
        for pid in pids:
            kind = "ours" if _is_ours(pid, mark) else "foreign"
            print(f"{port}\t{pid}\t{kind}\t{_cmdline(pid)[:200]}")
    return 0


def wait_tcp(host: str, port: str, timeout: str) -> int:
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return 0
        except OSError:
            time.sleep(0.2)
    return 1


def redis_ping(host: str, port: str, timeout: str) -> int:
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return 0
        except OSError:
            pass
        time.sleep(0.2)
    return 1


def kafka_ready(bootstrap: str, timeout: str) -> int:
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    from aiokafka.client import AIOKafkaClient

    from shared.settings import KafkaSettings

    # the login of the environment (up.sh passes the admin principal's KAFKA_SASL_* from .stack/env)
    auth = KafkaSettings(bootstrap_servers=bootstrap).client_kwargs()

    async def once() -> bool:
        client = AIOKafkaClient(**auth, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except Exception:
            return False
        finally:
            await client.close()

    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if asyncio.run(once()):
            return 0
        time.sleep(0.3)
    return 1


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def make_connection(self, host):  # noqa: ANN001
        import http.client

        path = self.path

        class Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(5)
                self.sock.connect(path)

        return Conn("localhost")


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception:
        return None


def wait_programs(sock: str, timeout: str, *specs: str) -> int:
    targets = dict(spec.split("=", 1) for spec in specs)
    server = xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(sock))
    deadline = time.monotonic() + float(timeout)
    states: dict[str, str] = {}
    codes: dict[str, int | None] = {}
    while True:
        infos = {}
        for i in server.supervisor.getAllProcessInfo():
            infos[i["name"] if i["group"] == i["name"] else f'{i["group"]}:{i["name"]}'] = i
        for name, url in targets.items():
            states[name] = infos.get(name, {}).get("statename", "MISSING")
            codes[name] = _http_status(url) if states[name] == "RUNNING" else None
        settled = all(
            (states[n] == "RUNNING" and codes[n] == 200) or states[n] in ("FATAL", "MISSING")
            for n in targets
        )
        if settled or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    bad = 0
    for name, url in targets.items():
        ok = states[name] == "RUNNING" and codes[name] == 200
        bad += not ok
        health = f"HTTP {codes[name]}" if codes[name] else "no answer"
        print(f"  {'ok ' if ok else 'BAD'}  {name:<20} {states[name]:<9} {url:<38} {health}")
    return 1 if bad else 0


def _health_doc(url: str) -> dict[str, object]:
    """/api/health's answer (the health service answers 503 with the same JSON when not passing)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            doc = json.load(exc)
        except ValueError:
            return {"status": f"no answer (HTTP {exc.code})"}
    except (OSError, ValueError) as exc:
        return {"status": f"no answer ({exc})"}
    return doc if isinstance(doc, dict) else {"status": "no answer (not a JSON object)"}


def _not_passing(doc: dict[str, object]) -> str:
    checks = doc.get("checks")
    bad = [f"{name} {c[0].get('status')} ({c[0].get('output') or c[0].get('state')})"
           for name, c in (checks.items() if isinstance(checks, dict) else ()) if c[0].get("status") != "pass"]
    return ", ".join(bad) or str(doc.get("output", "-"))


def wait_health(url: str, timeout: str) -> int:
    """Until the health service has a verdict on every target and says pass (issue 15). A warn (a
    non-critical target down, a slow answer on a busy machine) is said loudly but does not fail the
    stack; fail or no answer does."""
    deadline = time.monotonic() + float(timeout)
    doc: dict[str, object] = {}
    while time.monotonic() < deadline:
        doc = _health_doc(url)
        if doc.get("status") == "pass":
            return 0
        time.sleep(0.5)
    level = "WARNING" if doc.get("status") == "warn" else "ERROR"
    print(f"\033[31m[stack] {level}:\033[0m {url} is not pass after {float(timeout):g}s: {doc.get('status')}; "
          f"not passing: {_not_passing(doc)}", file=sys.stderr)
    return 0 if level == "WARNING" else 1


def _haproxy_command(sock: str, command: str) -> bytes:
    """One command on HAProxy's admin socket; its whole answer (HAProxy closes after answering)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(sock)
        s.sendall(command.encode() + b"\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _haproxy_servers(sock: str) -> list[dict[str, str]]:
    lines = _haproxy_command(sock, "show stat").decode().lstrip("# ").splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    return [r for r in rows if r.get("svname") and r["svname"] not in ("FRONTEND", "BACKEND")]


def haproxy_stat(sock: str, *optional_backends: str) -> int:
    """Print each HAProxy server's state from the admin socket; non-zero when a server of a
    backend not listed in optional_backends is not UP."""
    bad = 0
    for row in _haproxy_servers(sock):
        optional = row["pxname"] in optional_backends
        ok = row["status"].startswith("UP") or optional
        bad += not ok
        role = "backup" if row.get("bck") == "1" else "active"
        note = "" if row["status"].startswith("UP") else (" (nothing there yet is fine)" if optional else "")
        print(f"  {'ok ' if ok else 'BAD'}  {row['pxname'] + '/' + row['svname']:<20} {row['status']:<9} "
              f"{role:<7} {row.get('check_desc', '')}{note}")
    return 1 if bad else 0


def wait_haproxy(sock: str, timeout: str) -> int:
    """Wait until HAProxy's own health checks see every server UP, so the front door answers as soon as
    `make up` returns (the programs answering /healthz is not enough: HAProxy checks every 2 s)."""
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            down = [f"{r['pxname']}/{r['svname']}" for r in _haproxy_servers(sock) if not r["status"].startswith("UP")]
        except OSError as exc:
            down = [f"admin socket: {exc}"]
        if not down:
            return 0
        if time.monotonic() > deadline:
            print(f"  haproxy still sees these servers down after {timeout}s: {', '.join(down)}", file=sys.stderr)
            return 1
        time.sleep(0.25)


def haproxy_save_state(sock: str, path: str) -> int:
    try:
        data = _haproxy_command(sock, "show servers state")
    except OSError as exc:
        print(f"haproxy state not saved ({exc})", file=sys.stderr)
        return 1
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return 0


COMMANDS = {
    "haproxy-stat": haproxy_stat,
    "wait-haproxy": wait_haproxy,
    "haproxy-save-state": haproxy_save_state,
    "holders": holders,
    "wait-tcp": wait_tcp,
    "redis-ping": redis_ping,
    "kafka-ready": kafka_ready,
    "wait-programs": wait_programs,
    "wait-health": wait_health,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](*sys.argv[2:]))

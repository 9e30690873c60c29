"""Every HTTP service starts with `python -m services.<name>`, serves /healthz, and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("service", ["flags", "health", "recovery", "notifier"])
def test_starts_serves_healthz_and_stops_cleanly_on_sigterm(service: str, unique: str) -> None:
    port = free_port()
    env = dict(os.environ, PORT=str(port), **{f"{service.upper()}_PORT": str(port)},
               FLAGS_DB_SCHEMA=f"flags_life_{unique}", HEALTH_INTERVAL_SECONDS="3600", LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"{service} exited early: {proc.stdout.read() if proc.stdout else ''}"
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{service} did not answer /healthz within 30 s"
            time.sleep(0.2)
        assert r.json()["status"] in {"pass", "warn"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stdout.read() if proc.stdout else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

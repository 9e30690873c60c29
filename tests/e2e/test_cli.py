"""The `safeguard` console script and the runbook's Step 3 script against the running stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.config import load_config
from cli.status import HEALTHY
from shared.testing.http import serving

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SAFEGUARD = str(Path(sys.executable).parent / "safeguard")
FRONT = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")


def safeguard(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SAFEGUARD, *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", **env})


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


@pytest.fixture(scope="module")
def token() -> str:
    try:
        httpx.get(FRONT + "/api/flags", timeout=3)
    except httpx.HTTPError as exc:
        pytest.fail(f"front door {FRONT} does not answer ({exc}); run `make up`")
    found = load_config().token
    assert found, "no admin token in the environment or .stack/: run `make up`"
    return found


@pytest.fixture
def flag(token: str) -> Iterator[str]:
    key = f"cli-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(FRONT + "/api/flags", json={"key": key, "state": "ENABLED", "reason": "cli test"}, headers=auth)
    assert r.status_code == 201, r.text
    yield key
    httpx.delete(f"{FRONT}/api/flags/{key}", headers=auth)


def evaluate(key: str) -> tuple[object, str]:
    r = httpx.post(f"{FRONT}/ofrep/v1/evaluate/flags/{key}", json={"context": {"targetingKey": "u1"}})
    assert r.status_code == 200, r.text
    return r.json()["value"], r.json()["reason"]


def test_status_json_and_table(token: str) -> None:
    js = safeguard("status", "--json")
    body = json.loads(js.stdout)
    assert {"services", "dependencies", "flags", "incidents", "sla"} <= body.keys()
    assert js.returncode == (0 if body["status"] in HEALTHY else 1), js.stderr
    table = safeguard("status")
    assert table.returncode in (0, 1), table.stderr
    # flags come and go with other tests; the probed services and dependencies stay
    for name in (*body["services"], *body["dependencies"]):
        assert name in table.stdout, (name, table.stdout)
    for title in ("Services", "Dependencies", "Flags", "Open incidents", "Active SLA triggers"):
        assert title in table.stdout


def test_flags_kill_enable_round_trip(flag: str) -> None:
    assert evaluate(flag)[0] is True
    killed = safeguard("flags", "kill", flag, "--reason", "cli e2e kill", "--json")
    assert killed.returncode == 0, killed.stderr
    assert (json.loads(killed.stdout)["state"], json.loads(killed.stdout)["killed"]) == ("DISABLED", True)
    assert evaluate(flag) == (False, "DISABLED")
    listed = safeguard("flags", "list")
    assert listed.returncode == 0 and flag in listed.stdout and "killed" in listed.stdout
    enabled = safeguard("flags", "enable", flag, "--reason", "cli e2e enable")
    assert enabled.returncode == 0, enabled.stderr
    assert flag in enabled.stdout and "ENABLED" in enabled.stdout
    assert evaluate(flag)[0] is True
    rolled = json.loads(safeguard("flags", "rollout", flag, "30", "--json").stdout)
    assert rolled["rolloutPercent"] == 30


def test_flag_changes_are_audited_with_reason(flag: str, token: str) -> None:
    assert safeguard("flags", "disable", flag, "--reason", "cli audit check").returncode == 0
    audit = httpx.get(f"{FRONT}/api/flags/{flag}/audit", headers={"Authorization": f"Bearer {token}"}).json()
    assert any(e.get("reason") == "cli audit check" and "cli" in str(e.get("actor")) for e in audit), audit


def test_failed_operation_and_usage_exit_codes(token: str) -> None:
    missing = safeguard("flags", "kill", f"no-such-{uuid.uuid4().hex[:6]}")
    assert missing.returncode == 1 and "404" in missing.stderr
    assert safeguard("flags", "rollout", "x", "150").returncode == 2
    assert safeguard("flags", "frobnicate").returncode == 2


@pytest.mark.parametrize("args", [("status",), ("flags", "list"), ("flags", "kill", "x"), ("recover",)])
def test_unreachable_front_door_exits_3(args: tuple[str, ...]) -> None:
    out = safeguard(*args, SAFEGUARD_FRONT_URL=closed_port_url(), SAFEGUARD_ADMIN_TOKEN="t")
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "does not answer" in out.stderr


def test_recover_json(token: str) -> None:
    out = safeguard("recover", "--json")
    actions = json.loads(out.stdout)
    assert out.returncode == (1 if any(a["status"] in ("failed", "skipped") for a in actions) else 0), out.stderr
    assert all(a["service"] == "demo" for a in actions)


def node(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAFEGUARD_")}
    return subprocess.run("node scripts/auto-recovery.js", shell=True, capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**clean, **env})


def test_runbook_step3_verbatim(token: str) -> None:
    # exactly as the runbook writes it, from the repository root, token found in .stack/ by itself
    out = node()
    assert out.returncode in (0, 1), (out.stdout, out.stderr)
    lines = out.stdout.strip().splitlines()
    assert lines and (lines == ["demo: no active trigger, nothing to do"]
                      or all(line.startswith("demo: ") and "[" in line for line in lines)), out.stdout
    assert out.returncode == (1 if any("[failed]" in ln or "[skipped]" in ln for ln in lines) else 0)


def test_step3_script_really_authenticates(token: str, tmp_path: Path) -> None:
    wrong = node(SAFEGUARD_ADMIN_TOKEN="not-the-token")
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr
    (tmp_path / ".stack").mkdir()
    (tmp_path / ".stack" / "admin-token").write_text(token + "\n")
    (tmp_path / ".stack" / "env").write_text(f"SAFEGUARD_FRONT_URL={FRONT}\n")
    from_files = node(SAFEGUARD_HOME=str(tmp_path))
    assert from_files.returncode in (0, 1) and from_files.stdout.startswith("demo: "), from_files.stderr
    assert node(SAFEGUARD_HOME=str(tmp_path / "none")).returncode == 2  # no token anywhere
    down = node(SAFEGUARD_FRONT_URL=closed_port_url(), SAFEGUARD_ADMIN_TOKEN=token)
    assert down.returncode == 3 and "does not answer" in down.stderr


def test_front_door_without_a_server_behind_it_exits_3() -> None:
    # what HAProxy answers when every server of a backend is down
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class NoServer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body><h1>503 Service Unavailable</h1>No server is available</body></html>"
            self.send_response(503)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    with serving(HTTPServer(("127.0.0.1", 0), NoServer)) as server:
        out = safeguard("status", SAFEGUARD_FRONT_URL=f"http://127.0.0.1:{server.server_port}")
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "HTTP 503" in out.stderr

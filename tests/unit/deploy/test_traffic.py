"""The traffic port's shared checks and its choice of implementation (no network)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deploy.app import ROOT, load_app
from deploy.traffic import check_weights, make_traffic, to_percent
from deploy.traffic.haproxy import HaproxySwitch, ServerState

COLOURS = ("blue", "green")


def test_weights_are_checked_and_completed() -> None:
    assert check_weights({"green": 100}, colours=COLOURS) == {"blue": 0, "green": 100}
    assert check_weights({"blue": 90, "green": 10}, colours=COLOURS) == {"blue": 90, "green": 10}


@pytest.mark.parametrize(("weights", "error"), [
    ({}, "add up to 100 percent, got 0"),
    ({"blue": 50, "green": 49}, "add up to 100 percent, got 99"),
    ({"blue": 150, "green": -50}, "weight of blue must be 0..100"),
    ({"blue": True}, "whole percent, got True"),
    ({"blue": "100"}, "whole percent, got '100'"),
    ({"red": 100}, "unknown colour\\(s\\) red: this app has blue, green"),
])
def test_bad_weights_say_what_is_wrong(weights: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_weights(weights, colours=COLOURS)


@pytest.mark.parametrize(("raw", "percent"), [
    ({"blue": 256, "green": 0}, {"blue": 100, "green": 0}),
    ({"blue": 1, "green": 1}, {"blue": 50, "green": 50}),
    ({"a": 1, "b": 1, "c": 1}, {"a": 34, "b": 33, "c": 33}),
    ({"blue": 0, "green": 0}, {"blue": 0, "green": 0}),
    ({"blue": 9, "green": 1}, {"blue": 90, "green": 10}),
])
def test_relative_weights_become_percents(raw: dict[str, int], percent: dict[str, int]) -> None:
    assert to_percent(raw) == percent
    assert sum(to_percent(raw).values()) in (0, 100)


@pytest.mark.parametrize(("status", "up", "share"), [
    ("UP", True, 100), ("UP 1/2", True, 100), ("no check", True, 100), ("DRAIN", True, 0),
    ("DOWN", False, 100), ("DOWN 1/2", False, 100), ("MAINT", False, 0), ("MAINT (via demo/x)", False, 0),
])
def test_a_server_status_says_up_and_in_rotation(status: str, up: bool, share: int) -> None:
    state = ServerState(status=status, weight=100)
    assert (state.up, state.effective_weight) == (up, share)


def test_the_demo_description_gives_haproxy_on_the_stack_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAPROXY_ADMIN_SOCKET", ".stack/run/haproxy.sock")
    switch = make_traffic(load_app("demo"))
    assert isinstance(switch, HaproxySwitch)
    assert (switch.backend, switch.servers) == ("demo", {"blue": "blue", "green": "green"})
    assert Path(switch.socket) == ROOT / ".stack" / "run" / "haproxy.sock"
    tcp = make_traffic(replace(load_app("demo"), traffic={"kind": "haproxy", "backend": "demo",
                                                          "socket": "tcp:127.0.0.1:9999"}))
    assert isinstance(tcp, HaproxySwitch) and tcp.socket == "tcp:127.0.0.1:9999"


@pytest.mark.parametrize(("traffic", "error"), [
    ({}, "kind = None: expected one of haproxy, kubernetes"),
    ({"kind": "nginx"}, "kind = 'nginx'"),
    ({"kind": "haproxy", "backend": "demo"}, "needs `socket`"),
    ({"kind": "haproxy", "socket": "/x.sock"}, "needs `backend`"),
])
def test_a_bad_traffic_table_is_a_clear_error(traffic: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        make_traffic(replace(load_app("demo"), traffic=traffic))

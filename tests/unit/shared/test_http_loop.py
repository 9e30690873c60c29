"""`shared.http.loop_options`: SAFEGUARD_HTTP_LOOP picks uvicorn's loop and HTTP parser, never uvicorn's "auto"."""

from __future__ import annotations

import importlib.util

import pytest

from shared.http import LOOP_SETTING, loop_options
from shared.startup import BAD_CONFIG


def test_default_is_asyncio_and_h11_even_when_uvloop_is_installed() -> None:
    assert loop_options(env={}) == ("asyncio", "h11")
    assert loop_options(env={LOOP_SETTING: " AsyncIO "}) == ("asyncio", "h11")


def test_a_bad_value_exits_2_naming_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        loop_options(env={LOOP_SETTING: "trio"})
    assert stop.value.code == BAD_CONFIG
    assert "SAFEGUARD_HTTP_LOOP='trio'" in capsys.readouterr().err


def test_uvloop_picks_httptools_or_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    installed = all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))
    if installed:
        assert loop_options(env={LOOP_SETTING: "uvloop"}) == ("uvloop", "httptools")
        return
    with pytest.raises(SystemExit) as stop:
        loop_options(env={LOOP_SETTING: "uvloop"})
    assert stop.value.code == BAD_CONFIG
    assert "needs" in capsys.readouterr().err

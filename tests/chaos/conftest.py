"""The chaos tests fault the whole native stack: they run after every other test of the session."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    chaos = [item for item in items if Path(str(item.path)).resolve().is_relative_to(_HERE)]
    if chaos:
        others = [item for item in items if item not in set(chaos)]
        items[:] = others + chaos

"""House rules (STYLE.md rule 8, issue 13): no module over 400 lines and no function over 40 lines
in services/, shared/ and sdk/. A function's length runs from its `def` line to its last line
(decorators not counted); a nested function is measured on its own and inside its parent."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "shared", "sdk")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40
SKIP_DIRS = {"__pycache__", "node_modules", "tests"}


def breaches(*, source: str, name: str) -> list[str]:
    """Every rule `source` breaks, one line each: `name: N lines` or `name:LINE function(): N lines`."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{name}: {lines} lines (module > {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}:{node.lineno} {node.name}(): {length} lines (function > {MAX_FUNCTION_LINES})")
    return found


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                  if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts))


def test_the_check_sees_a_long_module_and_a_long_function() -> None:
    long_function = "async def f() -> None:\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    short_function = "def g() -> None:\n" + "    x = 1\n" * (MAX_FUNCTION_LINES - 1)
    padding = "\n" * (MAX_MODULE_LINES - MAX_FUNCTION_LINES * 2)
    found = breaches(source=long_function + short_function + padding, name="m.py")
    assert found == [f"m.py: {MAX_MODULE_LINES + 1} lines (module > {MAX_MODULE_LINES})",
                     f"m.py:1 f(): {MAX_FUNCTION_LINES + 1} lines (function > {MAX_FUNCTION_LINES})"]
    assert breaches(source=short_function, name="m.py") == []


def test_the_walk_finds_every_package() -> None:
    found = {p.relative_to(ROOT).parts[0] for p in modules()}
    assert found == set(PACKAGES)
    assert ROOT / "sdk" / "circuit" / "breaker.py" in modules()


def test_no_module_over_400_lines_and_no_function_over_40() -> None:
    found = [b for p in modules() for b in breaches(source=p.read_text(), name=str(p.relative_to(ROOT)))]
    assert not found, "\n".join(found)

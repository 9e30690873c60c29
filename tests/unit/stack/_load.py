"""stack/ is scripts, not a package: its Python modules are loaded from their files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["ROOT", "load_stack_module"]

ROOT = Path(__file__).resolve().parents[3]


def load_stack_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"stack_{name}", ROOT / "stack" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module

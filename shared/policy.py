"""Validated YAML policy files: durations like `5m`, strict models, errors that name the field.

Each service declares its policy as pydantic models (on `Strict`) and loads it with
`load_yaml(path, Model)`; a bad file raises `PolicyError` naming every bad field, and the
service stops with that message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

__all__ = ["PolicyError", "parse_duration", "Duration", "PositiveDuration", "Strict", "load_yaml", "UNITS"]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
M = TypeVar("M", bound=BaseModel)


class PolicyError(ValueError):
    """The policy file is missing a field, has a bad value, or cannot be read."""


def parse_duration(value: object) -> float:
    """Seconds from `30`, `2.5`, `"90s"`, `"5m"`, `"1h"`, `"3d"`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if m:
            return float(m.group(1)) * UNITS[m.group(2) or "s"]
    raise ValueError(f"not a duration: {value!r} (use seconds or 90s / 5m / 1h / 3d)")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class Strict(BaseModel):
    """A policy section: unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: str | Path, model: type[M], *, what: str = "policy") -> M:
    """Read and validate `path` as `model`; `PolicyError` names each bad field."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: the {what} is not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: the {what} must be a mapping at top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc']) or '(root)'}': {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"{path}: invalid {what}: {problems}") from exc

"""Starting a service: settings and policy are checked before anything is served.

A bad environment variable (pydantic `ValidationError`) or a bad policy file (`PolicyError`) stops the
process with exit status 2 and a message on stderr that names the field, one line per bad field, instead
of a traceback. Framework-free, so the Faust worker (sla) starts the same way as the uvicorn services.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

from pydantic import ValidationError

from shared.policy import PolicyError

__all__ = ["BAD_CONFIG", "build_or_exit", "exit_bad_config", "field_lines", "where"]

BAD_CONFIG = 2  # the exit status of a process stopped by its configuration (sysexits' EX_USAGE is 64; 2 as argparse)
T = TypeVar("T")


def where(loc: Sequence[int | str]) -> str:
    """`('targets', 0, 'url')` -> `targets[0].url`; the empty location is the whole document."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def field_lines(exc: ValidationError) -> list[str]:
    """One `field: message` line per error (secrets are not echoed: the input value is left out)."""
    return [f"{where(err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False, include_url=False)]


def exit_bad_config(lines: list[str], *, service: str | None = None) -> NoReturn:
    """Each line on stderr (prefixed `<service>: ` when named), then exit status 2."""
    for line in lines:
        print(f"{service}: {line}" if service else line, file=sys.stderr)
    sys.exit(BAD_CONFIG)


def build_or_exit(build: Callable[[], T], *, service: str) -> T:
    """`build()` (read the settings, load the policy, compose the app), or exit 2 naming each bad field."""
    try:
        return build()
    except ValidationError as exc:
        exit_bad_config([f"bad setting {line}" for line in field_lines(exc)], service=service)
    except PolicyError as exc:  # already names each field (shared.policy.load_yaml)
        exit_bad_config([f"bad policy: {exc}"], service=service)

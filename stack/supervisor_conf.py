"""The Safeguard programs' part of the supervisord config, made from stack/programs.conf.

    python stack/supervisor_conf.py PROGRAMS_CONF --root ROOT --logs LOGS

prints the `[group:safeguard]` section and one `[program:<name>]` section per program; up.sh puts
them at @SAFEGUARD_PROGRAMS@ in stack/supervisord.conf.in. A line of programs.conf that is not
`<name> <PORT_VAR> <health-path> <command...>` exits 2 with the line named, before anything starts.
Stdlib only: up.sh runs it before the stack (and the services' packages) are there.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "GROUP",
    "Program",
    "ProgramsError",
    "group_section",
    "main",
    "parse_programs",
    "program_section",
    "safeguard_sections",
]

GROUP = "safeguard"

# The same for every Safeguard program: up.sh starts the group once infra and topics are ready
# (autostart=false); supervisord restarts a program that dies and stops it with its children.
_SETTINGS: tuple[tuple[str, str], ...] = (
    ("priority", "50"),
    ("autostart", "false"),
    ("autorestart", "true"),
    ("startsecs", "2"),
    ("startretries", "10"),
    ("stopsignal", "TERM"),
    ("stopwaitsecs", "20"),
    ("stopasgroup", "true"),
    ("killasgroup", "true"),
    ("redirect_stderr", "true"),
)
_LOG_SETTINGS: tuple[tuple[str, str], ...] = (
    ("stdout_logfile_maxbytes", "20MB"),
    ("stdout_logfile_backups", "2"),
)
_NAME = re.compile(r"[a-z][a-z0-9-]*")
_PORT_VAR = re.compile(r"[A-Z][A-Z0-9_]*")


class ProgramsError(ValueError):
    """A line of programs.conf that cannot become a supervisord program."""


@dataclass(frozen=True)
class Program:
    """One line of programs.conf: a Safeguard program that listens on ${port_var} and answers
    `health_path` with 200 when it is ready. stack/run.sh starts `command` from the repo root."""

    name: str
    port_var: str
    health_path: str
    command: str


def _parse_line(*, line: str, number: int) -> Program | None:
    text = line.split("#", 1)[0].strip()  # as lib.sh `programs`: a # starts a comment anywhere
    if not text:
        return None
    fields = text.split(None, 3)
    where = f"line {number}"
    if len(fields) < 4:
        raise ProgramsError(f"{where}: {text!r} needs <name> <PORT_VAR> <health-path> <command...>")
    name, port_var, health_path, command = fields
    if not _NAME.fullmatch(name):
        raise ProgramsError(f"{where}: name {name!r} must be lower case letters, digits and '-'")
    if not _PORT_VAR.fullmatch(port_var):
        raise ProgramsError(f"{where}: {port_var!r} is not a shell variable name like FLAGS_PORT")
    if not health_path.startswith("/"):
        raise ProgramsError(f"{where}: the health path {health_path!r} must start with '/'")
    return Program(name=name, port_var=port_var, health_path=health_path, command=command)


def parse_programs(*, text: str) -> list[Program]:
    """The programs of a programs.conf text, in order; ProgramsError names the first bad line."""
    programs: list[Program] = []
    for number, line in enumerate(text.splitlines(), start=1):
        program = _parse_line(line=line, number=number)
        if program is None:
            continue
        if any(p.name == program.name for p in programs):
            raise ProgramsError(f"line {number}: {program.name!r} is listed twice")
        programs.append(program)
    return programs


def group_section(*, programs: Sequence[Program]) -> str:
    return f"[group:{GROUP}]\nprograms={','.join(p.name for p in programs)}\n"


def program_section(*, program: Program, root: Path, logs: Path) -> str:
    """`[program:<name>]`: stack/run.sh gives the program its port, environment and Kafka login."""
    lines = [
        f"[program:{program.name}]",
        f"command={root / 'stack' / 'run.sh'} {program.name} {program.port_var} {program.command}",
        f"directory={root}",
        *(f"{key}={value}" for key, value in _SETTINGS),
        f"stdout_logfile={logs / program.name}.log",
        *(f"{key}={value}" for key, value in _LOG_SETTINGS),
    ]
    return "\n".join(lines) + "\n"


def safeguard_sections(*, programs: Sequence[Program], root: Path, logs: Path) -> str:
    """The group and every program's section, a blank line between sections."""
    sections = [group_section(programs=programs)]
    sections += [program_section(program=p, root=root, logs=logs) for p in programs]
    return "\n".join(sections)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("programs_conf", type=Path)
    parser.add_argument("--root", type=Path, required=True, help="the repo root (programs run from it)")
    parser.add_argument("--logs", type=Path, required=True, help="where each program's <name>.log goes")
    args = parser.parse_args(argv)
    try:
        programs = parse_programs(text=args.programs_conf.read_text())
    except (OSError, ProgramsError) as exc:
        print(f"{args.programs_conf}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(safeguard_sections(programs=programs, root=args.root, logs=args.logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""stack/supervisor_conf.py: programs.conf -> the supervisord group and sections, read back by
supervisord's own config parser (the thing that has to accept them)."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions

from tests.unit.stack._load import ROOT, load_stack_module

sc = load_stack_module("supervisor_conf")

CONF = """\
# a comment, then a blank line

flags     FLAGS_PORT    /healthz  python -m services.flags   # trailing comment
demo-blue DEMO_BLUE_PORT /ready   env DEMO_COLOR=blue  python -m examples.demo --x 1
"""


def _supervisord(text: str) -> dict[str, list[Any]]:
    """group name -> its process configs, as supervisord reads `text`."""
    options = ServerOptions()
    section = options.read_config(StringIO(text))
    assert options.parse_criticals == [] and options.parse_warnings == []
    return {g.name: g.process_configs for g in section.process_group_configs}


def _minimal(sections: str) -> str:
    return f"[supervisord]\nlogfile=/tmp/x.log\n\n{sections}"


def test_programs_conf_lines_become_programs_and_comments_do_not() -> None:
    programs = sc.parse_programs(text=CONF)
    assert programs == [
        sc.Program(name="flags", port_var="FLAGS_PORT", health_path="/healthz", command="python -m services.flags"),
        sc.Program(name="demo-blue", port_var="DEMO_BLUE_PORT", health_path="/ready",
                   command="env DEMO_COLOR=blue  python -m examples.demo --x 1"),
    ]


@pytest.mark.parametrize(("line", "says"), [
    ("flags FLAGS_PORT /healthz", "needs <name> <PORT_VAR> <health-path> <command"),
    ("Flags FLAGS_PORT /healthz python -m x", "name 'Flags'"),
    ("flags flags_port /healthz python -m x", "'flags_port' is not a shell variable"),
    ("flags FLAGS_PORT healthz python -m x", "must start with '/'"),
    ("health HEALTH_PORT /healthz python -m services.health", "'health' is listed twice"),
])
def test_a_bad_line_is_refused_with_its_number(line: str, says: str) -> None:
    text = "# header\nhealth HEALTH_PORT /healthz python -m services.health\n" + line + "\n"
    with pytest.raises(sc.ProgramsError, match=f"^line 3: .*{re.escape(says)}"):
        sc.parse_programs(text=text)


def test_every_program_gets_a_section_that_supervisord_reads(tmp_path: Path) -> None:
    programs = sc.parse_programs(text=CONF)
    text = sc.safeguard_sections(programs=programs, root=tmp_path, logs=tmp_path)
    groups = _supervisord(_minimal(text))
    assert list(groups) == ["safeguard"]
    procs = {p.name: p for p in groups["safeguard"]}
    assert list(procs) == ["flags", "demo-blue"]
    demo = procs["demo-blue"]
    assert demo.command == f"{tmp_path}/stack/run.sh demo-blue DEMO_BLUE_PORT env DEMO_COLOR=blue  python -m examples.demo --x 1"
    assert demo.directory == str(tmp_path)
    assert demo.stdout_logfile == f"{tmp_path}/demo-blue.log"
    assert (demo.autostart, demo.priority, demo.startsecs, demo.startretries, demo.stopwaitsecs) == (False, 50, 2, 10, 20)
    assert demo.stopasgroup and demo.killasgroup and demo.redirect_stderr
    assert demo.stdout_logfile_maxbytes == 20 * 1024 * 1024 and demo.stdout_logfile_backups == 2


def test_the_environment_is_supervisords_own_plus_the_owner_mark_only(tmp_path: Path) -> None:
    """A program's environment comes from stack/run.sh (.stack/env, PORT, its Kafka login), not from
    its section: supervisord adds only the owner mark that down.sh looks for."""
    programs = sc.parse_programs(text=CONF)
    sections = sc.safeguard_sections(programs=programs, root=Path("/r"), logs=tmp_path)
    assert "environment=" not in sections
    text = _minimal(sections).replace("[supervisord]\n", '[supervisord]\nenvironment=SAFEGUARD_STACK_OWNER="/r/.stack"\n')
    for proc in _supervisord(text)["safeguard"]:
        assert proc.environment == {"SAFEGUARD_STACK_OWNER": "/r/.stack"}


def test_the_template_and_the_repos_programs_make_one_config_supervisord_reads(tmp_path: Path) -> None:
    programs = sc.parse_programs(text=(ROOT / "stack" / "programs.conf").read_text())
    template = (ROOT / "stack" / "supervisord.conf.in").read_text()
    assert "@SAFEGUARD_PROGRAMS@" in template
    sections = sc.safeguard_sections(programs=programs, root=tmp_path, logs=tmp_path)
    text = template.replace("@SAFEGUARD_PROGRAMS@", sections)
    text = re.sub(r"@[A-Z_]+_LINE@", "", text)  # the optional user= lines
    text = re.sub(r"@[A-Z_0-9]+@", str(tmp_path), text)  # every other value a path is fine for parsing
    groups = _supervisord(text)
    assert [p.name for p in groups["safeguard"]] == [p.name for p in programs]
    assert {"infra", "zipkin"} <= set(groups)


def test_no_program_sets_its_own_kafka_login() -> None:
    """stack/run.sh logs each program in as its principal (flags-<n> as flags); a command that set
    KAFKA_SASL_* itself would bypass that."""
    for program in sc.parse_programs(text=(ROOT / "stack" / "programs.conf").read_text()):
        assert "KAFKA_SASL" not in program.command, program


def test_the_command_line_prints_the_sections_or_exits_2_naming_the_line(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.conf", tmp_path / "bad.conf"
    good.write_text(CONF)
    bad.write_text(CONF + "sla SLA_PORT /healthz\n")
    script = str(ROOT / "stack" / "supervisor_conf.py")
    args = ["--root", "/repo", "--logs", "/logs"]
    ok = subprocess.run([sys.executable, script, str(good), *args], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    want = sc.safeguard_sections(programs=sc.parse_programs(text=CONF), root=Path("/repo"), logs=Path("/logs"))
    assert ok.stdout == want
    no = subprocess.run([sys.executable, script, str(bad), *args], capture_output=True, text=True, timeout=30)
    assert no.returncode == 2 and no.stdout == ""
    assert f"{bad}: line 5: 'sla SLA_PORT /healthz' needs" in no.stderr

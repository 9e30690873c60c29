"""stack/bench-tools.sh, run by `make bench`: wrk is installed with apt when missing (as root), else the bench
says it falls back to its Python client. Run with stand-ins for `id`, `apt-get` and `wrk` on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "stack" / "bench-tools.sh"


def _bin(tmp_path: Path, *, uid: int, apt_installs: bool) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrk = bin_dir / "wrk"
    install = f'if [ "$1" = install ]; then printf "#!/bin/sh\\n" > "{wrk}"; /bin/chmod +x "{wrk}"; fi'
    tools = {"id": f"echo {uid}",
             "apt-get": f'echo "apt-get $*" >> "{tmp_path}/calls"\n' + (install if apt_installs else "")}
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    # only the stand-ins: this machine's own wrk (/usr/bin) must not be found
    return subprocess.run(["/bin/bash", str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                          timeout=30)


def test_root_installs_wrk_with_apt(tmp_path: Path) -> None:
    proc = _run(_bin(tmp_path, uid=0, apt_installs=True))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "apt-get update -qq", "apt-get install -y -qq --no-install-recommends wrk"]
    assert "installing wrk" in proc.stderr


def test_without_root_it_says_the_bench_falls_back(tmp_path: Path) -> None:
    proc = _run(_bin(tmp_path, uid=1000, apt_installs=False))
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "calls").exists()
    assert "wrk is not installed" in proc.stderr and "Python client" in proc.stderr


def test_wrk_present_does_nothing(tmp_path: Path) -> None:
    bin_dir = _bin(tmp_path, uid=0, apt_installs=True)
    (bin_dir / "wrk").write_text("#!/bin/sh\n")
    (bin_dir / "wrk").chmod(0o755)
    proc = _run(bin_dir)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert not (tmp_path / "calls").exists()

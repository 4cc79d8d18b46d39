"""``scripts/services.sh`` waits (bounded) for another apt-get's dpkg lock instead of failing."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "services.sh"


def _fake_apt(tmp_path: Path, fail_first: int = 0) -> tuple[dict[str, str], Path]:
    """A PATH whose apt-get records its arguments and reports a held lock ``fail_first`` times."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    counter = tmp_path / "count"
    counter.write_text("0")
    (bin_dir / "apt-get").write_text(f"""#!/usr/bin/env bash
n=$(cat {counter}); echo $((n + 1)) > {counter}
if [ "$n" -lt {fail_first} ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2; exit 100
fi
echo "$@" >> {log}
""")
    (bin_dir / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CLOVERLEAF_APT_LOCK_POLL": "0.1",
           "CLOVERLEAF_DPKG_LOCKS": str(tmp_path / "lock-frontend")}
    (tmp_path / "lock-frontend").touch()
    return env, log


def test_apt_get_waits_for_a_held_dpkg_lock_then_runs(tmp_path: Path) -> None:
    env, log = _fake_apt(tmp_path)
    holder = open(tmp_path / "lock-frontend", "w")  # held until the script waits
    fcntl.lockf(holder, fcntl.LOCK_EX)
    proc = subprocess.Popen(["bash", str(SCRIPT), "apt-get", "install", "-y", "redis-server"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    released = threading.Event()

    def release_when_waiting() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "waiting for another apt-get/dpkg" in line and not released.is_set():
                assert not log.exists(), "apt-get ran while the lock was held"
                holder.close()
                released.set()

    reader = threading.Thread(target=release_when_waiting, daemon=True)
    reader.start()
    assert proc.wait(timeout=30) == 0
    reader.join(timeout=5)
    assert released.is_set()
    assert "DPkg::Lock::Timeout=60 install -y redis-server" in log.read_text()


def test_apt_get_retries_when_apt_itself_reports_the_lock(tmp_path: Path) -> None:
    env, log = _fake_apt(tmp_path, fail_first=2)
    out = subprocess.run(["bash", str(SCRIPT), "apt-get", "update"], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("found the lock held; retrying") == 2
    assert log.read_text().count("update") == 1


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    env, log = _fake_apt(tmp_path)
    with open(tmp_path / "lock-frontend", "w") as holder:
        fcntl.lockf(holder, fcntl.LOCK_EX)
        out = subprocess.run(["bash", str(SCRIPT), "apt-get", "update"], env={**env, "CLOVERLEAF_APT_LOCK_WAIT": "1"},
                             capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "giving up" in out.stderr
    assert not log.exists()

"""Run state on disk, so a failed run can be resumed from the step that failed.

One JSON file per run, ``$XDG_DATA_HOME/cloverleaf/runs/<run_id>.json`` (``~/.local/share``
without it), written after every step. Why a file and not the gateway's store:

- the workflow runner is SDK code, which never imports the store (a database is optional;
  resuming must work with none configured);
- a run's state holds the workflow's data — model outputs, possibly confidential ones
  (``privacy: local-only``). A file readable only by its owner (0600 in a 0700 directory)
  keeps it on this machine; a shared PostgreSQL would not;
- a run is one document read back by one user; an atomic ``os.replace`` of a small file is
  all the durability it needs (a crash leaves the previous version, never half a file).

While a run runs, its process holds ``<run_id>.lock`` beside it (:meth:`RunStore.lock`), so
a resume from another process is refused instead of running the same steps twice.

The call records themselves (cost, latency, tokens per step) *are* in the store, under the
run's trace, for ``cloverleaf traces``; the run file keeps each finished step's cost and
target too, so a resumed run reports the whole run's cost.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ConfigError

_RUN_ID = re.compile(r"^run_[0-9a-f]{8,40}$")


@dataclass(slots=True)
class RunRecord:
    run_id: str
    workflow: str
    source: str
    digest: str
    status: str = "running"               # running | failed | interrupted | succeeded
    inputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)          # steps finished (ok or skipped), in order
    failed_step: str | None = None
    error: str | None = None
    trace_id: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    resumes: int = 0
    #: the run's effective privacy and data class, which a resume is held to (None in a file from
    #: before they were saved: the resume is held to what it is given)
    privacy: str | None = None
    data_class: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    return f"run_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(4)}"


def default_run_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cloverleaf" / "runs"


class RunStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise ConfigError(f"{run_id!r} is not a run id (they look like run_0193ab…, as printed by a failed run)")
        return self.directory / f"{run_id}.json"

    def save(self, record: RunRecord) -> None:
        record.updated_at = time.time()
        final = self.path(record.run_id)
        tmp = final.with_suffix(f".{os.getpid()}.tmp")
        with self._writing():
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record.as_dict(), f, ensure_ascii=False, default=_jsonable)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)

    @contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Hold run ``run_id`` exclusively while it runs, so another process cannot resume it
        meanwhile (both would run, and pay for, the remaining steps). An ``flock`` dies with its
        process: a run left ``running`` by a killed process can be resumed at once."""
        path = self.path(run_id).with_suffix(".lock")
        with self._writing():
            fd = _locked(path, run_id)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())      # for the message of whoever finds it taken
            yield
        finally:
            with suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Create the folder (0700) and say plainly when it cannot be written (a file, no permission)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            yield
        except OSError as exc:
            raise ConfigError(f"cannot keep run state in {self.directory}: {exc.strerror or exc} (the run "
                              "folder, --run-dir or run_dir=, must be a folder you can write)") from None

    def load(self, run_id: str) -> RunRecord:
        path = self.path(run_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no saved run {run_id!r} in {self.directory}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read run state {path}: {exc}") from None
        known = set(RunRecord.__dataclass_fields__)
        return RunRecord(**{k: v for k, v in data.items() if k in known})


def _locked(path: Path, run_id: str) -> int:
    """An open descriptor of ``path`` holding its exclusive lock, or ConfigError naming the holder."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"run {run_id} is in progress (pid {holder}); wait for it to end, or stop that "
                              "process, before resuming it") from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)          # its holder removed the file as we opened it: lock the current one


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)

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

The call records themselves (cost, latency, tokens per step) *are* in the store, under the
run's trace, for ``cloverleaf traces``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Mapping
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
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.path(record.run_id)
        tmp = final.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record.as_dict(), f, ensure_ascii=False, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

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



def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)

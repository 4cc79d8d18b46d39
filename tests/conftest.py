"""Suite-wide hygiene: no cloud credentials or metadata, and no socket beyond loopback.

* botocore's credential chain ends at the instance-metadata service (169.254.169.254); with
  ``AWS_EC2_METADATA_DISABLED=true`` and empty config/credential files it never looks there, and
  a developer's own ``~/.aws`` never leaks into a test. Set in ``os.environ`` (subprocesses such
  as ``cloverleaf serve`` inherit it) and re-asserted around every test.
* Google's Application Default Credentials: ``CLOUDSDK_CONFIG`` points at an empty gcloud folder
  and ``GOOGLE_APPLICATION_CREDENTIALS`` is unset, so a developer's own gcloud login or key file
  never reaches a Vertex AI test (which names its own credentials).
* :mod:`tests.netguard` refuses and records any connection or name lookup outside loopback;
  the session fails when one happened.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import netguard
from .loopback import Handle, LoopbackServer

_EMPTY_AWS_DIR = Path(__file__).resolve().parent / "fixtures" / "aws-empty"


def _aws_env() -> dict[str, str]:
    return {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(_EMPTY_AWS_DIR / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(_EMPTY_AWS_DIR / "credentials"),
    }


_EMPTY_GCLOUD_DIR = Path(__file__).resolve().parent / "fixtures" / "gcloud-empty"


def _google_env() -> dict[str, str]:
    return {"CLOUDSDK_CONFIG": str(_EMPTY_GCLOUD_DIR)}


_SITE = Path(__file__).resolve().parent / "netguard_site"
#: The session's folder for the children's log, removed at the end (one was left per run).
_LOG_FOLDER = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(_aws_env())
    os.environ.update(_google_env())
    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    netguard.install()
    # child Python processes load the same hook (sitecustomize) and log what they catch
    folder = Path(tempfile.mkdtemp(prefix="cloverleaf-netguard-"))
    config.stash[_LOG_FOLDER] = folder
    os.environ[netguard.LOG_ENV] = str(folder / "children.log")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SITE), os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(autouse=True)
def _hygiene(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {**_aws_env(), **_google_env()}.items():  # a test that cleared the environment gets them back
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    yield


def _all_violations() -> list[tuple[str, str]]:
    return [*netguard.violations, *netguard.child_violations()]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    found = _all_violations()
    if found:
        terminalreporter.section("sockets outside loopback", red=True)
        for event, host in found:
            terminalreporter.line(f"{event} -> {host}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _all_violations() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_LOG_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (``redis+cluster://``) of a three-primary Redis Cluster started for this session."""
    from tests.redis_cluster_support import OwnCluster

    cluster = OwnCluster(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def loopback() -> Iterator[Callable[[Handle], LoopbackServer]]:
    """Starts a :class:`tests.loopback.LoopbackServer` serving a handle per call; each is
    stopped when the test ends."""
    started: list[LoopbackServer] = []

    def start(handle: Handle) -> LoopbackServer:
        started.append(LoopbackServer(handle))
        return started[-1]

    yield start
    for server in started:
        server.close()

"""Stored Responses seen from two ``cloverleaf serve`` processes on one store (two replicas, or
two workers): each keeps its own cache, and a DELETE through one is a 404 through the other
at once — deleted user data is never served again, nor continued with previous_response_id."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.ports import unused_port

MASTER = "replica-test-master-key-0123456789"



class Replica:
    """One ``cloverleaf serve`` process on the offline fake provider."""

    def __init__(self, config: Path, home: Path) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CLOVERLEAF_MASTER_KEY": MASTER, "CLOVERLEAF_BACKEND": "fake",
               "XDG_DATA_HOME": str(home)}
        env.pop("CLOVERLEAF_CONFIG", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "cloverleaf", "--config", str(config), "serve",
                                      "--port", str(self.port)], env=env, cwd=home,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.proc.stdout.read() if self.proc.stdout else ""
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=MASTER, max_retries=0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    config = tmp_path / "cloverleaf.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/shared.db"\n')
    first = Replica(config, tmp_path)
    first.wait_ready()   # one migrates the new file, then the other opens it
    second = Replica(config, tmp_path)
    try:
        second.wait_ready()
        yield first, second
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_a_response_deleted_through_one_replica_is_gone_from_the_other(replicas: tuple[Replica, Replica]) -> None:
    here, there = (r.client() for r in replicas)
    first = here.responses.create(model="fake/echo", input="my secret diary entry")
    kept = here.responses.create(model="fake/echo", input="and more", previous_response_id=first.id)
    assert here.responses.retrieve(kept.id).output_text == "and more"   # both in this replica's cache

    there.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        here.responses.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError) as gone:
        here.responses.create(model="fake/echo", input="continue", previous_response_id=kept.id)
    assert gone.value.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        here.responses.input_items.list(kept.id)

    # an earlier turn deleted elsewhere: the chain cannot be rebuilt from the cached rows either
    later = here.responses.create(model="fake/echo", input="a second thread", previous_response_id=first.id)
    there.responses.delete(first.id)
    with pytest.raises(openai.BadRequestError, match=first.id):
        here.responses.create(model="fake/echo", input="go on", previous_response_id=later.id)
    assert here.responses.retrieve(later.id).id == later.id   # the later turn itself is still there

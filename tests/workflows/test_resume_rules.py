"""What a run keeps to: the strictest privacy and data class (the caller's tighten the file's)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf import Client, PrivacyViolation, WorkflowError
from cloverleaf._config import ProviderSettings
from cloverleaf.workflows import plan_workflow, run_workflow

from ..counting_upstream import CountingUpstream
from .test_runner import settings


@pytest.fixture
def cloud() -> Iterator[CountingUpstream]:
    upstream = CountingUpstream("cloud")
    yield upstream
    upstream.close()


def cloud_settings(tmp_path: Path, cloud: CountingUpstream, **kw: Any) -> Any:
    """`openai` is a cloud provider here (its base_url the counting mock): local-only refuses it."""
    return settings(tmp_path, env={"OPENAI_API_KEY": "sk-test", "XDG_DATA_HOME": str(tmp_path / "data")},
                    providers={"openai": ProviderSettings("openai", base_url=cloud.base_url)},
                    privacy={"classes": {"confidential": "local-only", "secret": "local-only", "public": "any"}},
                    **kw)


def run_file(tmp_path: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "data" / "cloverleaf" / "runs" / f"{run_id}.json").read_text()))


# --------------------------------------------------------------------------- data class: the strictest wins


def test_a_callers_data_class_tightens_the_files_and_never_loosens_it(tmp_path: Path,
                                                                       cloud: CountingUpstream) -> None:
    """The file says confidential (local-only); `--data-class public` (any) used to replace it and
    send the confidential prompt to the cloud."""
    confidential = {"name": "diary", "data_class": "confidential", "steps": [
        {"id": "a", "type": "llm_call", "model": "openai/gpt-4o-mini", "prompt": "patient record", "output": "a"}]}
    local = {**confidential, "steps": [{**confidential["steps"][0], "model": "fake/echo"}]}
    with Client(cloud_settings(tmp_path, cloud)) as client:
        with pytest.raises(PrivacyViolation, match="data class 'confidential'"):
            run_workflow(confidential, client=client, data_class="public")
        with pytest.raises(PrivacyViolation, match="data class 'confidential'"):
            plan_workflow(confidential, client=client, data_class="public")
        # a stricter class from the caller still wins over a looser file
        with pytest.raises(PrivacyViolation, match="data class 'secret'"):
            run_workflow({**confidential, "data_class": "public"}, client=client, data_class="secret")
        # the calls themselves carry the file's class, not the caller's looser one
        result = run_workflow(local, client=client, data_class="public")
        client.gateway.store.flush()
        [call] = client.traces.get(result.run_id).calls                 # type: ignore[union-attr]
        assert call.metadata["privacy"]["policy"] == "local-only"
        assert "data class 'confidential'" in call.metadata["privacy"]["rule"]
        with pytest.raises(WorkflowError, match="data_class: unknown data class 'nosuch'"):
            run_workflow(local, client=client, data_class="nosuch")
    assert cloud.connections == 0

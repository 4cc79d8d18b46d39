"""Schemathesis ``--checks all`` against the server: on its own ``/openapi.json`` (every
operation, the admin API included) and on OpenAI's published document for the operations
the server implements, at least 2,000 generated cases each (issue 12 item 1).

Both runs go at once (the schemathesis CLI in two processes, one server each), with a fixed
seed. The result must hold no server error and no conformance failure other than those the
server's document lists with their reason (``info.x-cloverleaf-deviations``, also in its
description); each finding is matched on the operation, the check, and what the server's
answer names (the ``param`` of a 400, its error code, an upstream status). The servers
resolve no host name (a generated attachment URL is refused, never fetched) and call only
the offline fake provider.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloverleaf.server.openapi import document

from .conftest import MASTER, Live, settings, start_live, stop_live

OPENAI_SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "specs" / "openai-openapi" / "openapi.yaml"
OPENAI_OPERATIONS = ("createChatCompletion", "createEmbedding", "createImage", "listModels", "retrieveModel")
MIN_CASES = 2000
#: examples per operation: enough for MIN_CASES with the seeds below (28 and 5 operations)
OWN_EXAMPLES, OPENAI_EXAMPLES, SEED = 20, 120, 20261202


def _nowhere(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "the test server resolves no host name")


def _server(**extra: Any) -> Live:
    return start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, image_model="fake/image",
                               attachments={"resolver": _nowhere}, **extra))


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Live]:
    live = _server()
    yield live
    stop_live(live)


@pytest.fixture(scope="module")
def openai_server() -> Iterator[Live]:
    live = _server(backend="fake")  # OpenAI's example model names are served by the fake
    yield live
    stop_live(live)


def test_served_document_is_the_one_tested(fuzz_server: Live) -> None:
    with fuzz_server.http() as http:
        served = http.get("/openapi.json").json()
    assert served == document()
    assert served["openapi"] == "3.1.0" and "/v1/chat/completions" in served["paths"]
    for item in served["info"]["x-cloverleaf-deviations"]:
        assert item["reason"] in served["info"]["description"]


@dataclass(frozen=True)
class Finding:
    operation: str
    check: str
    status: int | None
    param: str | None
    code: str | None
    upstream: bool
    message: str
    #: the field the check found invalid (``Invalid component: in body - NAME``) was sent as null
    null: bool
    request: Any

    @classmethod
    def of(cls, check: dict[str, Any], interaction: dict[str, Any] | None) -> Finding:
        failure = check["failure_info"]["failure"]
        status, body = None, None
        response = (interaction or {}).get("response")
        if response:
            status = response["status_code"]
            body = _json_of(response.get("content"))
        request = _json_of(((interaction or {}).get("request") or {}).get("body"))
        invalid = re.search(r"Invalid component: in body - (\w+)", str(failure.get("message") or ""))
        null = bool(invalid and isinstance(request, dict) and invalid.group(1) in request
                    and request[invalid.group(1)] is None)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or failure.get("message") or "")
        param = error.get("param")
        if param is None and ": " in message:  # Anthropic's shape has no param: messages start with it
            param = message.split(": ", 1)[0]
        code = error.get("code") or (error.get("details") or {}).get("error_code")
        return cls(failure["operation"], check["name"], status, param, code, "upstream_status" in error, message,
                   null, request)

    def documented_by(self, item: dict[str, Any], spec: str) -> bool:
        checks = item["check"] if isinstance(item["check"], list) else [item["check"]]
        if item.get("spec", "own") != spec or self.operation not in item["operations"] or self.check not in checks:
            return False
        if "status" in item and not (self.status is not None and str(self.status).startswith(item["status"])):
            return False
        if "param" in item and not (self.param and re.fullmatch(item["param"], self.param)):
            return False
        if "code" in item and not (self.code or "").startswith(item["code"]):
            return False
        if item.get("null") and not self.null:
            return False
        if "request" in item and not (isinstance(self.request, dict)
                                      and all(self.request.get(k) == v for k, v in item["request"].items())):
            return False
        return not item.get("upstream") or self.upstream


def _json_of(content: Any) -> Any:
    if not isinstance(content, dict) or "$base64" not in content:
        return None
    try:
        return json.loads(base64.b64decode(content["$base64"]))
    except ValueError:
        return None


def _run(location: str, url: str, examples: int, report: Path, *options: str) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("schemathesis")
    return subprocess.Popen(
        [str(cli), "run", location, "--url", url, "--checks", "all", "-n", str(examples), "--seed", str(SEED),
         "-H", f"Authorization: Bearer {MASTER}", "--no-color", "--generation-database", "none",
         "--report", "ndjson", "--report-ndjson-path", str(report), "--suppress-health-check", "all",
         "--continue-on-failure", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=report.parent)


def _findings(report: Path) -> tuple[int, list[Finding]]:
    cases, found = 0, []
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        cases += len(recorder.get("cases") or {})
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if check.get("status") == "failure":
                    found.append(Finding.of(check, (recorder.get("interactions") or {}).get(case_id)))
    return cases, found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_all_checks(fuzz_server: Live, openai_server: Live, tmp_path: Path) -> None:
    own_report, openai_report = tmp_path / "own.ndjson", tmp_path / "openai.ndjson"
    runs = [
        _run(f"{fuzz_server.url}/openapi.json", fuzz_server.url, OWN_EXAMPLES, own_report),
        _run(str(OPENAI_SPEC), f"{openai_server.url}/v1", OPENAI_EXAMPLES, openai_report,
             *(arg for op in OPENAI_OPERATIONS for arg in ("--include-operation-id", op))),
    ]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode in (0, 1), err.decode(errors="replace")[-2000:]  # 1: findings, read below
    deviations = document()["info"]["x-cloverleaf-deviations"]
    problems = []
    for spec, report in (("own", own_report), ("openai", openai_report)):
        cases, findings = _findings(report)
        print(f"{spec}: {cases} cases, {len(findings)} findings")
        assert cases >= MIN_CASES, (spec, cases)
        for finding in findings:
            if not any(finding.documented_by(d, spec) for d in deviations):
                problems.append((spec, finding))
    assert not problems, "\n".join(f"{spec}: {f}" for spec, f in problems)

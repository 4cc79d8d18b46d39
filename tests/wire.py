"""Load recorded provider traffic (VCR cassettes in tests/fixtures/wire/) as our HTTP values.

Usage::

    cas = cassette("pydantic-ai/tests/models/cassettes/test_openai/test_text_response.yaml")
    req, resp = cas[0]          # recorded request (dict) and our HttpResponse
    adapter.parse_chat(resp, chat_request)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from cloverleaf._http import HttpResponse

FIXTURES = Path(__file__).parent / "fixtures" / "wire"

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


@dataclass
class Interaction:
    method: str
    uri: str
    request_headers: dict[str, str]
    request_body: bytes | None
    response: HttpResponse

    @property
    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    def __iter__(self):  # allows: req, resp = interaction
        yield self
        yield self.response


def _headers(raw: dict[str, list[Any]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (raw or {}).items():
        value = v[0] if isinstance(v, list) and v else v
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        out[str(k).lower()] = str(value)
    return out


def _body(part: dict[str, Any]) -> bytes | None:
    if "parsed_body" in part:
        return json.dumps(part["parsed_body"]).encode()
    body = part.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    return str(body).encode("utf-8")


@cache
def cassette(relpath: str) -> tuple[Interaction, ...]:
    """All interactions of one cassette, in order. ``relpath`` is under tests/fixtures/wire/."""
    path = FIXTURES / relpath
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    out = []
    for item in data["interactions"]:
        req, resp = item["request"], item["response"]
        out.append(Interaction(
            method=str(req.get("method", "")).upper(),
            uri=req.get("uri", ""),
            request_headers=_headers(req.get("headers")),
            request_body=_body(req),
            response=HttpResponse(
                status=int(resp["status"]["code"]),
                headers=_headers(resp.get("headers")),
                body=_body(resp) or b"",
                url=req.get("uri", ""),
            ),
        ))
    return tuple(out)


def chunks(body: bytes, size: int) -> list[bytes]:
    return [body[i:i + size] for i in range(0, len(body), size)] or [b""]

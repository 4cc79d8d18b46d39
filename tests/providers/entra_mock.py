"""Microsoft Entra ID and Azure OpenAI on 127.0.0.1 for the service principal tests.

``POST /{tenant}/oauth2/v2.0/token`` checks what Entra checks for the client-credentials grant
(form body, ``grant_type``, the app's id and secret, the Cognitive Services scope) and answers
a fresh token (``entra-mock-N``, an hour), or Entra's own error body when told to fail.
``POST /openai/deployments/{deployment}/{operation}`` answers only a bearer token it issued, as
Azure OpenAI refuses any other with 401. Everything received is recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.loopback import Answer, LoopbackServer, Request, json_answer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "8d3a0f2e-0c1b-4a59-9b0e-4f1d2c3b4a5e"
SECRET = "Qx8~sEcReT.value_never-shown"
SCOPE = "https://cognitiveservices.azure.com/.default"
TOKEN_PATH = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<operation>[a-z/]+)\?api-version=[^&]+$")
CHAT = {"id": "chatcmpl-az1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from Azure."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class EntraMock:
    token_requests: list[dict[str, str]] = field(default_factory=list)
    azure_requests: list[Seen] = field(default_factory=list)
    #: (status, body) answers for the next token requests, before any token is issued
    token_failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    lifetime: int = 3599

    def start(self) -> EntraMock:
        self._server = LoopbackServer(self._reply)
        return self

    def _reply(self, request: Request) -> Answer:
        status, answer = self.answer(request.path, request.headers, request.body)
        if status == 200 and b'"stream":true' in request.body.replace(b" ", b""):
            return Answer(status, _sse(answer), {"content-type": "text/event-stream"})
        return json_answer(answer, status)

    @property
    def url(self) -> str:
        return self._server.url

    def close(self) -> None:
        self._server.close()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if (token := TOKEN_PATH.match(path)) is not None:
            return self._token(token["tenant"], headers, body)
        if (call := AZURE_PATH.match(path)) is not None:
            self.azure_requests.append(Seen(path, headers, body))
            bearer = headers.get("authorization", "").removeprefix("Bearer ")
            if bearer not in self.issued or "api-key" in headers:
                return 401, {"error": {"code": "401", "message": "Access denied due to invalid subscription key "
                                                                 "or wrong API endpoint."}}
            if call["operation"] == "embeddings":
                return 200, {"object": "list", "model": "text-embedding-3-small",
                             "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
                             "usage": {"prompt_tokens": 2, "total_tokens": 2}}
            return 200, CHAT
        return 404, {"error": {"code": "404", "message": "Resource not found"}}

    def _token(self, tenant: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.token_requests.append(form)
        if self.token_failures:
            return self.token_failures.pop(0)
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"error": "invalid_request", "error_description": "AADSTS900144: not a form post"}
        if tenant != TENANT:
            return 400, {"error": "invalid_request", "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}
        if form.get("grant_type") != "client_credentials" or form.get("scope") != SCOPE:
            return 400, {"error": "invalid_scope", "error_description": "AADSTS70011: The provided value for "
                                                                        "the input parameter 'scope' is not valid."}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != SECRET:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret "
                                                                         "provided."}
        token = f"entra-mock-{len(self.issued) + 1}"
        self.issued.add(token)
        return 200, {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                     "access_token": token}


def _sse(answer: dict[str, Any]) -> bytes:
    """A chat answer as Azure streams it: its text in one chunk, the finish, then ``[DONE]``."""
    choice = answer["choices"][0]
    chunks = [{"id": answer["id"], "object": "chat.completion.chunk", "created": 1, "model": answer["model"],
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": choice["message"]["content"]},
                            "finish_reason": None}]},
              {"id": answer["id"], "object": "chat.completion.chunk", "created": 1, "model": answer["model"],
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"

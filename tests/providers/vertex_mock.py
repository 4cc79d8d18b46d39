"""Google on 127.0.0.1 for the Vertex AI tests: an OAuth token endpoint and Vertex AI's Gemini.

``/token`` checks what Google checks: a service account's JWT is verified with the account's
public key (RS256) and its claims (``iss``, ``scope``, ``aud`` = this token URI, a one-hour
``iat``..``exp``); a gcloud login's refresh token, client id and secret must match. It answers
with a fresh access token (``ya29.mock-N``), or Google's own error body when told to fail.

``/v1/projects/P/locations/L/publishers/google/models/M:generateContent`` (and
``:streamGenerateContent?alt=sse``) answers only a bearer token ``/token`` issued, as Vertex AI
refuses any other with ``UNAUTHENTICATED``. Every other method (Claude's ``:rawPredict``,
embeddings' ``:predict``) answers what the test queued in ``replies``. Everything received is
recorded.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.loopback import Answer, LoopbackServer, Request, json_answer

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
VERTEX_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/"
                         r"(?P<publisher>google|anthropic)/models/(?P<model>[^/:]+):(?P<method>\w+)(?P<query>\?.*)?$")
ANSWER = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from Vertex."}]},
                          "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 1000, "totalTokenCount": 2000},
          "modelVersion": "gemini-2.5-flash", "responseId": "vertex-1"}
STREAM = [{"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello "}]}}],
           "modelVersion": "gemini-2.5-flash"},
          {"candidates": [{"content": {"role": "model", "parts": [{"text": "from Vertex."}]}, "finishReason": "STOP"}],
           "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 1000, "totalTokenCount": 2000},
           "modelVersion": "gemini-2.5-flash"}]


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def write_service_account(path: Path, key: rsa.RSAPrivateKey, token_uri: str, *, project_id: str | None = "proj-123",
                          email: str = "runner@proj-123.iam.gserviceaccount.com") -> Path:
    data: dict[str, Any] = {"type": "service_account", "private_key_id": "kid-1", "private_key": pem(key),
                            "client_email": email, "client_id": "1234567890", "token_uri": token_uri}
    if project_id:
        data["project_id"] = project_id
    path.write_text(json.dumps(data))
    return path


def write_authorized_user(path: Path, token_uri: str | None = None) -> Path:
    data = {"type": "authorized_user", "client_id": "cid.apps.googleusercontent.com", "client_secret": "d-FL95Q19q7MQmFp",
            "refresh_token": "1//0refresh-secret", "quota_project_id": "quota-proj"}
    if token_uri:
        data["token_uri"] = token_uri
    path.write_text(json.dumps(data))
    return path


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class GoogleMock:
    #: client_email -> public key of the service accounts it knows
    accounts: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    lifetime: int = 3600
    token_requests: list[dict[str, str]] = field(default_factory=list)
    #: the verified claims of each service-account JWT
    claims: list[dict[str, Any]] = field(default_factory=list)
    vertex_requests: list[Seen] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    #: (status, body) answers for the next token requests
    token_failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: set: token answers wait for it (concurrency tests release it)
    hold: threading.Event | None = None
    token_arrived: threading.Event = field(default_factory=threading.Event)
    #: (status, content-type, body) answers for the next authenticated Vertex AI calls, in order
    replies: list[tuple[int, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> GoogleMock:
        self.server = LoopbackServer(self._answer)
        self.url = self.server.url
        self.token_uri = self.url + "/token"
        return self

    def _answer(self, request: Request) -> Answer:
        if request.path == "/token":
            status, answer = self._token(request.headers, request.body)
            return json_answer(answer, status)
        with self.lock:
            self.vertex_requests.append(Seen(request.path, request.headers, request.body))
        status, kind, data = self._vertex(request.path, request.headers)
        return Answer(status, data, {"content-type": kind})

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.close()

    # -- /token -------------------------------------------------------------------------------
    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self.lock:
            self.token_requests.append(form)
            failure = self.token_failures.pop(0) if self.token_failures else None
        self.token_arrived.set()
        if self.hold is not None:
            self.hold.wait(10)
        if failure is not None:
            return failure
        assert headers["content-type"] == "application/x-www-form-urlencoded"
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_jwt(form.get("assertion", ""))
        elif form.get("grant_type") == "refresh_token":
            problem = None if (form.get("refresh_token"), form.get("client_id"), form.get("client_secret")) == (
                "1//0refresh-secret", "cid.apps.googleusercontent.com", "d-FL95Q19q7MQmFp") else "Bad Request"
        else:
            problem = "Invalid grant_type"
        if problem is not None:
            return 400, {"error": "invalid_grant", "error_description": problem}
        with self.lock:
            token = f"ya29.mock-{len(self.issued) + 1}"
            self.issued.append(token)
        return 200, {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}

    def _check_jwt(self, assertion: str) -> str | None:
        head, claims, signature = assertion.split(".")
        header = json.loads(_unb64(head))
        payload = json.loads(_unb64(claims))
        key = self.accounts.get(payload.get("iss"))
        if header != {"alg": "RS256", "typ": "JWT", "kid": "kid-1"} or key is None:
            return "Invalid JWT: unknown key"
        try:
            key.verify(_unb64(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        if payload.get("scope") != SCOPE or payload.get("aud") != self.token_uri:
            return "Invalid JWT: bad scope or audience"
        if payload["exp"] - payload["iat"] != 3600:
            return "Invalid JWT: Token must be a short-lived token (60 minutes)"
        with self.lock:
            self.claims.append(payload)
        return None

    # -- Vertex AI ------------------------------------------------------------------------------
    def _vertex(self, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or "x-goog-api-key" in headers:
            error = {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                               "status": "UNAUTHENTICATED"}}
            return 401, "application/json", json.dumps(error).encode()
        match = VERTEX_PATH.match(path)
        if match is None:
            return 404, "application/json", b'{"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}}'
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        if match["method"] == "streamGenerateContent":
            assert match["query"] == "?alt=sse"
            return 200, "text/event-stream", b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in STREAM)
        return 200, "application/json", json.dumps(ANSWER).encode()

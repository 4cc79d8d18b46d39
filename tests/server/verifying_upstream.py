"""A stand-in for OpenAI's Responses API and Anthropic's Messages API on 127.0.0.1 that checks
replayed reasoning the way the real ones do.

OpenAI looks an input item's ``id`` up among the items it kept ("Item with id ... not found",
404) and decrypts a reasoning item's ``encrypted_content``; Anthropic verifies a thinking
block's ``signature`` and a ``redacted_thinking`` block's ``data`` (400). Here an id, an
encryption or a signature verifies only if this stand-in issued it, and under ``store: false``
no id at all is found, as nothing was kept. Each answers from the request: a reasoning model
(``o*``, ``gpt-5*``) or ``thinking`` gets reasoning first, then an answer that echoes the last
user text. Every request body is kept (``bodies``), per API.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cloverleaf._config import ProviderSettings
from tests.loopback import Answer, LoopbackServer, Request, json_answer, sse_event

from .conftest import Live, settings, start_live, stop_live


def _new(prefix: str, issued: set[str]) -> str:
    value = prefix + os.urandom(24).hex()
    issued.add(value)
    return value


class VerifyingUpstream:
    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, Any]]] = {"openai": [], "anthropic": []}
        self._kept: set[str] = set()        # item ids OpenAI kept (store: true)
        self._encrypted: set[str] = set()   # OpenAI's encrypted reasoning this stand-in made
        self._signed: set[str] = set()      # Anthropic's thinking signatures
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._answer)
        self.url = self.server.url

    def _answer(self, request: Request) -> Answer:
        body = request.json()
        api = "openai" if request.path.startswith("/openai/") else "anthropic"
        with self._lock:
            self.bodies[api].append(body)
            status, answer = (self._openai if api == "openai" else self._anthropic)(body)
        if body.get("stream") and status == 200 and api == "openai":
            return Answer(status, b"".join(sse_event(e, e["type"]) for e in _events(answer)),
                          {"content-type": "text/event-stream"})
        return json_answer(answer, status)

    def close(self) -> None:
        self.server.close()

    # -- OpenAI Responses ---------------------------------------------------------------
    def _openai(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        stored = body.get("store", True) is not False
        for item in body["input"] if isinstance(body["input"], list) else []:
            if "id" in item and not (stored and item["id"] in self._kept):
                return 404, _openai_error(f"Item with id '{item['id']}' not found. Items are not persisted when "
                                          "`store` is set to false.")
            enc = item.get("encrypted_content")
            if item.get("type") == "reasoning" and enc is not None and enc not in self._encrypted:
                return 400, _openai_error("The encrypted content could not be verified.")
        output: list[dict[str, Any]] = []
        if body["model"].startswith(("o", "gpt-5")):
            reasoning = {"type": "reasoning", "id": _new("rs_", self._kept), "summary": [
                {"type": "summary_text", "text": "weighing it"}]}
            if "reasoning.encrypted_content" in (body.get("include") or ()):
                reasoning["encrypted_content"] = _new("gAAAAB", self._encrypted)
            output.append(reasoning)
        output.append({"type": "message", "id": _new("msg_", self._kept), "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "echo: " + _last_user_text(body["input"]),
                                    "annotations": []}]})
        return 200, {
            "id": _new("resp_", set()), "object": "response", "created_at": 1, "status": "completed", "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"), "model": body["model"],
            "output": output, "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": stored, "metadata": body.get("metadata") or {}, "temperature": 1.0, "top_p": 1.0,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": body.get("tools") or [],
            "truncation": "disabled",
            "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
                      "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 8}}

    # -- Anthropic Messages -------------------------------------------------------------
    def _anthropic(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for i, message in enumerate(body["messages"]):
            for j, block in enumerate(message["content"] if isinstance(message["content"], list) else []):
                proof = block.get("signature") if block["type"] == "thinking" else block.get("data")
                if block["type"] in ("thinking", "redacted_thinking") and proof not in self._signed:
                    return 400, {"type": "error", "error": {
                        "type": "invalid_request_error",
                        "message": f"messages.{i}.content.{j}: Invalid `signature` in `{block['type']}` block"}}
        content: list[dict[str, Any]] = []
        if (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
            content.append({"type": "thinking", "thinking": "weighing it", "signature": _new("Eq", self._signed)})
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
        content.append({"type": "text", "text": "echo: " + text})
        return 200, {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                     "content": content, "stop_reason": "end_turn", "stop_sequence": None,
                     "usage": {"input_tokens": 5, "output_tokens": 3}}


def _openai_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": "input", "code": None}}


def _last_user_text(items: Any) -> str:
    if isinstance(items, str):
        return items
    for item in reversed(items):
        if item.get("role") == "user":
            content = item["content"]
            return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    return ""


def _events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer as a Responses stream (each item whole: added, then done), numbered."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**response, "status": "in_progress", "output": []}}]
    for i, item in enumerate(response["output"]):
        events.append({"type": "response.output_item.added", "output_index": i, "item": item})
        events.append({"type": "response.output_item.done", "output_index": i, "item": item})
    events.append({"type": "response.completed", "response": response})
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


@contextmanager
def gateway_on(upstream: VerifyingUpstream) -> Iterator[Live]:
    """A live server whose ``openai-responses`` and ``anthropic`` rows are this stand-in, and whose
    ``mixed`` model is OpenAI's Responses API behind a fallback of another kind (so no relay)."""
    s = settings(env={"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"},
                 providers={"openai-responses": ProviderSettings("openai-responses", base_url=f"{upstream.url}/openai"),
                            "anthropic": ProviderSettings("anthropic", base_url=f"{upstream.url}/anthropic")},
                 routes={"mixed": {"targets": ["openai-responses/o3", "fake/echo"]}})
    live = start_live(s)
    try:
        yield live
    finally:
        stop_live(live)

"""A mock api.openai.com on 127.0.0.1 that refuses request fields per model family, as OpenAI does.

Each rule answers with the status, error shape and words OpenAI sends (quoted in public issue
reports and OpenAI's API reference); a request that breaks none gets a short answer. Used through
the real client and transport, so a test fails exactly where the real API would:

- ``max_tokens`` on a reasoning model (o-series, gpt-5 but its ``-chat`` models):
  "Unsupported parameter: 'max_tokens' is not supported with this model. Use
  'max_completion_tokens' instead.";
- ``temperature``/``top_p`` other than 1 on a reasoning model ("Unsupported value: 'temperature'
  does not support 0.2 with this model. Only the default (1) value is supported."), any at all on
  a web-search model ("Model incompatible request arguments supplied: temperature, top_p", with
  ``param`` and ``code`` null);
- ``parallel_tool_calls`` on the o-series ("Unsupported parameter: 'parallel_tool_calls' is not
  supported with this model.");
- ``reasoning_effort`` (``reasoning.effort`` on ``/responses``) outside the model's levels: the
  o-series take low/medium/high, gpt-5/-mini/-nano minimal too, gpt-5.1 and later none instead
  ("Unsupported value: 'minimal' is not supported with the 'gpt-5.1' model. Supported values are:
  'none', 'low', 'medium', and 'high'.").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.loopback import Answer, LoopbackServer, Request, json_answer

CHAT_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-5",
               "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                            "message": {"role": "assistant", "content": "Done.", "refusal": None,
                                        "annotations": []}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
RESPONSES_ANSWER = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-5",
                    "output": [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                                "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}],
                    "usage": {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}}

_REASONING = re.compile(r"^(o[134]|gpt-[5-9](?!\d))(?![\w.]*-chat)")
_O_SERIES = re.compile(r"^o[134](-|$)")
_FIRST_GPT5 = re.compile(r"^gpt-5(-mini|-nano)?(-\d{4}-\d{2}-\d{2})?$")
_SEARCH = re.compile(r"-search-preview")


def _levels(model: str) -> tuple[str, ...]:
    if _O_SERIES.search(model):
        return ("low", "medium", "high")
    if _FIRST_GPT5.search(model):
        return ("minimal", "low", "medium", "high")
    return ("none", "low", "medium", "high")


def _error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def chat_problem(body: dict[str, Any], reasoning_names: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """OpenAI's 400 body for what ``POST /chat/completions`` refuses in ``body``, or None;
    ``reasoning_names``: more models that follow the reasoning models' rules (Azure deployments)."""
    model = body["model"]
    if _SEARCH.search(model):
        refused = [k for k in ("frequency_penalty", "presence_penalty", "temperature", "top_p") if k in body]
        if refused:
            return _error(f"Model incompatible request arguments supplied: {', '.join(refused)}", None, None)
    if _REASONING.search(model) or model in reasoning_names:
        if "max_tokens" in body:
            return _error("Unsupported parameter: 'max_tokens' is not supported with this model. "
                          "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
        for key in ("temperature", "top_p"):
            if body.get(key, 1) != 1:
                return _error(f"Unsupported value: '{key}' does not support {body[key]} with this model. "
                              "Only the default (1) value is supported.", key, "unsupported_value")
    elif "reasoning_effort" in body:
        return _error("Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                      "reasoning_effort", "unsupported_parameter")
    if _O_SERIES.search(model) and "parallel_tool_calls" in body:
        return _error("Unsupported parameter: 'parallel_tool_calls' is not supported with this model.",
                      "parallel_tool_calls", "unsupported_parameter")
    return _effort_problem(model, body.get("reasoning_effort"), "reasoning_effort")


def responses_problem(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 body for what ``POST /responses`` refuses in ``body``, or None."""
    effort = (body.get("reasoning") or {}).get("effort")
    return _effort_problem(body["model"], effort, "reasoning.effort")


def _effort_problem(model: str, effort: str | None, param: str) -> dict[str, Any] | None:
    levels = _levels(model)
    if effort is None or effort in levels:
        return None
    named = ", ".join(f"'{level}'" for level in levels[:-1]) + f", and '{levels[-1]}'"
    return _error(f"Unsupported value: '{effort}' is not supported with the '{model}' model. "
                  f"Supported values are: {named}.", param, "unsupported_value")


class OpenAIRulesUpstream:
    """The server. ``bodies`` holds each request body received, ``refused`` each 400 sent;
    ``reasoning_names`` are more models it treats as reasoning models (deployments named freely)."""

    def __init__(self, reasoning_names: frozenset[str] = frozenset()) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.reasoning_names = reasoning_names
        self.server = LoopbackServer(self._answer)
        self.url = f"{self.server.url}/v1"

    def _answer(self, request: Request) -> Answer:
        body = request.json()
        self.bodies.append(body)
        if request.path.endswith("/chat/completions"):
            problem, answer = chat_problem(body, self.reasoning_names), CHAT_ANSWER
        elif request.path.endswith("/responses"):
            problem, answer = responses_problem(body), RESPONSES_ANSWER
        else:
            problem, answer = _error(f"Invalid URL (POST {request.path})", None, None), {}
        if problem:
            self.refused.append(problem)
        return json_answer(problem or answer, 400 if problem else 200)

    def close(self) -> None:
        self.server.close()


def serving(reasoning_names: frozenset[str] = frozenset()) -> Iterator[OpenAIRulesUpstream]:
    """A pytest fixture body: the server for one test."""
    upstream = OpenAIRulesUpstream(reasoning_names)
    yield upstream
    upstream.close()

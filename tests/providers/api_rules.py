"""A mock upstream on 127.0.0.1 that checks a conversation the way each real API does.

A mock that takes any body finds nothing when a conversation moves between providers: the
history one provider produced is only wrong by another's rules. This one answers a request
that breaks a documented rule with that API's own 400 (its status, shape and wording), and
anything else with a short text answer, so a test calls through the real client and
transport and fails exactly where the real API would:

- OpenAI Chat Completions: an assistant turn's ``tool_calls`` must be followed by the tool
  messages answering each of them, nothing between ("An assistant message with 'tool_calls'
  must be followed by tool messages responding to each 'tool_call_id'"), and a tool message
  must answer a call of that turn;
- Bedrock Converse: the conversation starts with a user turn ("A conversation must start with
  a user message"), roles alternate, and ``toolUseId`` is 1 to 64 characters of
  ``[a-zA-Z0-9_-]`` (ToolUseBlock / ToolResultBlock in the API reference), each result
  answering a call of the turn before; its own constraints for every model (botocore's
  ``bedrock-runtime`` service model, in AWS's wording: :func:`converse_field_problem`): no text
  block blank, no system text or stop sequence empty, ``temperature`` 0 to 1, a tool name (of a
  ``toolSpec``, a forced tool or a ``toolUse``) 1 to 64 of ``[a-zA-Z0-9_-]``; and for Claude, the
  Messages API's rules it relays ("The model returned the following errors: ..."): no system
  text or stop sequence of only whitespace, no prefill ending with whitespace;
- Claude, on Anthropic's Messages API and on Converse alike: with thinking on, a request may
  not end with an assistant turn (a prefill) that does not start with its thinking ("You
  cannot pre-fill responses when thinking is enabled").
- Anthropic's Messages API, request fields (:func:`anthropic_field_problem`, the API's own
  wording, as reported from the real API in public issue threads): no text block empty or,
  in a turn with no other text, only whitespace; a final assistant turn (a prefill) that
  ends with whitespace; a stop sequence of only whitespace; ``temperature`` outside 0..1;
  ``metadata.user_id`` over 256 characters; a tool name (of a tool, a forced tool or a call in
  the history) not matching ``^[a-zA-Z0-9_-]{1,64}$``. The system prompt's blocks likewise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from tests.loopback import Answer, LoopbackServer, Request, json_answer

_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_NAME = _TOOL_USE_ID   # the tool name pattern of Anthropic's API and of Converse (ToolName) is the same

OPENAI_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Done."}}],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
ANTHROPIC_ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                    "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn",
                    "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}
PREFILL_WITH_THINKING = ("messages.{at}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
                         "When `thinking` is enabled, a final `assistant` message must start with a thinking block.")
#: Converse's ValidationException for a value outside a constraint of its service model.
CONVERSE_CONSTRAINT = "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: Member must {rule}"
CONVERSE_ANSWER = {"output": {"message": {"role": "assistant", "content": [{"text": "Done."}]}},
                   "stopReason": "end_turn", "usage": {"inputTokens": 10, "outputTokens": 1, "totalTokens": 11}}


def openai_chat_problem(body: dict[str, Any]) -> str | None:
    """What OpenAI's Chat Completions API would refuse in ``body``'s messages, or None."""
    messages = body["messages"]
    for i, msg in enumerate(messages):
        if msg["role"] == "tool":
            before = next((m for m in reversed(messages[:i]) if m["role"] != "tool"), None)
            ids = {c["id"] for c in (before or {}).get("tool_calls") or ()}
            if msg.get("tool_call_id") not in ids:
                return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                        "message with 'tool_calls'.")
        calls = [c["id"] for c in msg.get("tool_calls") or ()]
        if calls:
            answered = set()
            for later in messages[i + 1:]:
                if later["role"] != "tool":
                    break
                answered.add(later["tool_call_id"])
            missing = [c for c in calls if c not in answered]
            if missing:
                return ("An assistant message with 'tool_calls' must be followed by tool messages responding to "
                        f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                        f"{', '.join(missing)}")
    return None


def anthropic_problem(body: dict[str, Any]) -> str | None:
    """What Anthropic's Messages API would refuse in ``body``'s messages, or None."""
    messages = body["messages"]
    last = messages[-1] if messages else None
    if "thinking" in body and last is not None and last["role"] == "assistant":
        first = last["content"][0]["type"]
        if first not in ("thinking", "redacted_thinking"):
            return PREFILL_WITH_THINKING.format(at=len(messages) - 1, found=first)
    return anthropic_field_problem(body)


def anthropic_field_problem(body: dict[str, Any]) -> str | None:
    """What the Messages API refuses in ``body``'s fields and text blocks, or None."""
    system = body.get("system")
    for block in system if isinstance(system, list) else ():
        if not block["text"].strip():
            return "system: text content blocks must contain non-whitespace text"
    for turn in body["messages"]:
        content = turn["content"]
        blocks = [b for b in content if b.get("type") == "text"] if isinstance(content, list) else []
        if any(b["text"] == "" for b in blocks):
            return "messages: text content blocks must be non-empty"
        if blocks and not any(b["text"].strip() for b in blocks):
            return "messages: text content blocks must contain non-whitespace text"
    last = body["messages"][-1] if body["messages"] else None
    if last is not None and last["role"] == "assistant":
        content = last["content"]
        final = content if isinstance(content, str) else (content[-1].get("text", "x") if content else "x")
        if final != final.rstrip():
            return "messages: final assistant content cannot end with trailing whitespace"
    if any(not s.strip() for s in body.get("stop_sequences") or ()):
        return "stop_sequences: each stop sequence must contain non-whitespace"
    for i, tool in enumerate(body.get("tools") or ()):
        if not _TOOL_NAME.fullmatch(tool["name"]):
            return f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
    tool_names = [tool.get("name") for tool in body.get("tools") or ()]
    if len(set(tool_names)) < len(tool_names):
        return "tools: Tool names must be unique."
    for i, turn in enumerate(body["messages"]):
        for j, block in enumerate(turn["content"] if isinstance(turn["content"], list) else ()):
            if block.get("type") == "tool_use" and not _TOOL_NAME.fullmatch(block["name"]):
                return (f"messages.{i}.content.{j}.tool_use.name: String should match pattern "
                        "'^[a-zA-Z0-9_-]{1,64}$'")
    choice = body.get("tool_choice") or {}
    if "name" in choice and choice["name"] not in {t["name"] for t in body.get("tools") or ()}:
        return f"Tool '{choice['name']}' not found in provided tools"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: range: 0..1"
    user_id = (body.get("metadata") or {}).get("user_id")
    if isinstance(user_id, str) and len(user_id) > 256:
        return "metadata.user_id: String should have at most 256 characters"
    return None


def converse_problem(body: dict[str, Any], model: str = "") -> str | None:
    """What Bedrock's Converse API would refuse in ``body``'s messages, or None."""
    problem = converse_field_problem(body, claude="anthropic." in model or "claude" in model)
    if problem is not None:
        return problem
    messages = body["messages"]
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
    if thinking and messages and messages[-1]["role"] == "assistant" and "reasoningContent" not in messages[-1]["content"][0]:
        return PREFILL_WITH_THINKING.format(at=len(messages) - 1, found=next(iter(messages[-1]["content"][0])))
    if messages and messages[0]["role"] != "user":
        return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
    for i, msg in enumerate(messages):
        if i and messages[i - 1]["role"] == msg["role"]:
            return ("A conversation must alternate between user and assistant roles. Make sure the conversation "
                    "alternates between user and assistant roles and try again.")
        for j, block in enumerate(msg["content"]):
            for kind in ("toolUse", "toolResult"):
                if kind in block and not _TOOL_USE_ID.fullmatch(str(block[kind].get("toolUseId", ""))):
                    return (f"1 validation error detected: Value '{block[kind].get('toolUseId')}' at "
                            f"'messages.{i + 1}.member.content.{j + 1}.member.{kind}.toolUseId' failed to satisfy "
                            "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+")
            if "toolResult" in block:
                previous = messages[i - 1]["content"] if i else []
                if block["toolResult"]["toolUseId"] not in {b["toolUse"]["toolUseId"] for b in previous
                                                            if "toolUse" in b}:
                    return (f"The toolResult blocks at messages.{i}.content contain an id that does not match any "
                            "toolUse block of the previous turn.")
    return None


def converse_field_problem(body: dict[str, Any], *, claude: bool) -> str | None:
    """What Converse refuses in ``body``'s fields and text blocks, for any model and, with
    ``claude``, what Claude refuses beside (Anthropic's rules, relayed)."""
    relayed = "The model returned the following errors: "
    for i, block in enumerate(body.get("system") or ()):
        if block.get("text") == "":
            return CONVERSE_CONSTRAINT.format(value="", at=f"system.{i + 1}.member.text",
                                              rule="have length greater than or equal to 1")
        if claude and "text" in block and not block["text"].strip():
            return relayed + "system: text content blocks must contain non-whitespace text"
    for i, msg in enumerate(body["messages"]):
        for j, block in enumerate(msg["content"]):
            if "text" in block and not block["text"].strip():
                return (f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text "
                        "to the text field, and try again.")
    last = body["messages"][-1] if body["messages"] else None
    texts = [b["text"] for b in (last or {}).get("content", ()) if "text" in b]
    if claude and last is not None and last["role"] == "assistant" and texts and texts[-1] != texts[-1].rstrip():
        return relayed + "messages: final assistant content cannot end with trailing whitespace"
    inference = body.get("inferenceConfig") or {}
    for i, stop in enumerate(inference.get("stopSequences") or ()):
        if stop == "":
            return CONVERSE_CONSTRAINT.format(value="", at=f"inferenceConfig.stopSequences.{i + 1}.member",
                                              rule="have length greater than or equal to 1")
        if claude and not stop.strip():
            return relayed + "stop_sequences: each stop sequence must contain non-whitespace"
    temperature = inference.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return CONVERSE_CONSTRAINT.format(value=temperature, at="inferenceConfig.temperature",
                                          rule="have value less than or equal to 1")
    tool_config = body.get("toolConfig") or {}
    named = [(f"toolConfig.tools.{i + 1}.member.toolSpec.name", t["toolSpec"]["name"])
             for i, t in enumerate(tool_config.get("tools") or ()) if "toolSpec" in t]
    if "tool" in (tool_config.get("toolChoice") or {}):
        named.append(("toolConfig.toolChoice.tool.name", tool_config["toolChoice"]["tool"]["name"]))
    named += [(f"messages.{i + 1}.member.content.{j + 1}.member.toolUse.name", b["toolUse"]["name"])
              for i, m in enumerate(body["messages"]) for j, b in enumerate(m["content"]) if "toolUse" in b]
    for at, name in named:
        if not _TOOL_NAME.fullmatch(name):
            return CONVERSE_CONSTRAINT.format(value=name, at=at, rule="satisfy regular expression pattern: "
                                              "[a-zA-Z0-9_-]+" if len(name) <= 64 else
                                              "have length less than or equal to 64")
    return None


class RuleCheckingUpstream:
    """The server: ``/chat/completions`` by OpenAI's rules, ``/v1/messages`` by Anthropic's,
    ``/converse`` by Bedrock's. ``bodies``
    holds each request body received, ``refused`` each refusal given."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refused: list[str] = []
        #: what ``/v1/messages`` answers a request it takes (a test may set a tool call)
        self.anthropic_answer: dict[str, Any] = ANTHROPIC_ANSWER
        #: what ``/converse`` answers a request it takes (a test may set a tool call)
        self.converse_answer: dict[str, Any] = CONVERSE_ANSWER
        self.server = LoopbackServer(self._answer)
        self.url = self.server.url

    def _answer(self, request: Request) -> Answer:
        body = request.json()
        path = request.path
        self.bodies.append(body)
        headers: dict[str, str] = {}
        if path.endswith("/chat/completions"):
            problem = openai_chat_problem(body)
            status, reply = ((400, {"error": {"message": problem, "type": "invalid_request_error",
                                              "param": "messages", "code": None}}) if problem
                             else (200, OPENAI_ANSWER))
        elif path.endswith("/v1/messages"):
            problem = anthropic_problem(body)
            status, reply = ((400, {"type": "error", "error": {"type": "invalid_request_error",
                                                               "message": problem}}) if problem
                             else (200, self.anthropic_answer))
        elif path.endswith("/converse"):
            problem = converse_problem(body, unquote(path))
            status, reply = (400, {"message": problem}) if problem else (200, self.converse_answer)
            if problem:
                headers["x-amzn-errortype"] = "ValidationException:http://internal.amazon.com/"
        else:
            problem, status, reply = f"no mock for {path}", 404, {"message": "not found"}
        if problem:
            self.refused.append(problem)
        return json_answer(reply, status, headers)

    def close(self) -> None:
        self.server.close()


def serving() -> Iterator[RuleCheckingUpstream]:
    """A pytest fixture body: the server for one test."""
    upstream = RuleCheckingUpstream()
    yield upstream
    upstream.close()

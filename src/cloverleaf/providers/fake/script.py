"""What the fake upstream should do next: a per-upstream script, and model-name directives.

Two ways to steer the fake, for two audiences:

- tests hold the :class:`~cloverleaf.providers.fake.FakeUpstream` and queue items on its
  :class:`FakeScript` (``upstream.script.fail(429).reply(text="ok")``); each request takes
  the next item, in order, and with none queued the deterministic behaviour applies;
- anyone else (the CLI, the server, a TOML route) names a model whose *directives* say it:
  ``fake/fail-429x2``, ``fake/echo+slow-200ms`` (grammar in :mod:`cloverleaf.providers.fake`).

Both produce the same :class:`Fault` values, which the upstream turns into real transport
behaviour (HTTP errors, stalls, broken connections, malformed bodies).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["fail", "hang", "reset", "garbage", "truncate"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One misbehaviour. ``after_chunks`` is where a ``reset`` breaks the body."""

    kind: FaultKind
    status: int = 500
    body: bytes | None = None
    headers: dict[str, str] | None = None
    after_chunks: int = 0


@dataclass(slots=True)
class ScriptedReply:
    """A canned answer; unset fields fall back to the deterministic behaviour's values."""

    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning: str | None = None
    usage: dict[str, int] | None = None
    finish_reason: str | None = None


ScriptItem = Fault | ScriptedReply


class FakeScript:
    """A queue of replies and faults, consumed one per request (thread-safe).

    ``latency`` and ``chunk_delay`` are standing settings, not queue items: they apply to
    every later request until changed. Methods return the script so calls chain.
    """

    def __init__(self) -> None:
        self._queue: deque[ScriptItem] = deque()
        self._lock = threading.Lock()
        self.latency_seconds = 0.0
        self.chunk_delay_seconds = 0.0

    # -- queue items ---------------------------------------------------------------------
    def reply(self, text: str | None = None, *, tool_calls: list[Any] | None = None, reasoning: str | None = None,
              usage: Any = None, finish_reason: str | None = None, times: int = 1) -> FakeScript:
        """Answer with this text and/or these tool calls (``ToolCall`` objects or
        ``{"name", "arguments", "id"?}`` dicts); ``usage`` is a ``Usage`` or a dict of
        ``input_tokens``/``output_tokens`` (or OpenAI's ``prompt_tokens``/``completion_tokens``)."""
        item = ScriptedReply(text, [_tool_call_dict(c) for c in tool_calls] if tool_calls else None,
                             reasoning, _usage_dict(usage), finish_reason)
        return self._push(item, times)

    def fail(self, status: int, body: bytes | str | dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, times: int = 1) -> FakeScript:
        """Answer with HTTP ``status`` (an OpenAI-shaped error body unless ``body`` is given)."""
        if isinstance(body, dict):
            import json

            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else body
        return self._push(Fault("fail", status, raw, dict(headers or {})), times)

    def hang(self, times: int = 1) -> FakeScript:
        """Never answer: the client's read timeout fires (``httpx.ReadTimeout``)."""
        return self._push(Fault("hang"), times)

    def reset_after(self, n_chunks: int, times: int = 1) -> FakeScript:
        """Send ``n_chunks`` body chunks (stream events), then break the connection."""
        return self._push(Fault("reset", after_chunks=max(0, n_chunks)), times)

    def garbage(self, times: int = 1) -> FakeScript:
        """Answer 200 with malformed JSON (in the body, or in a stream's data line)."""
        return self._push(Fault("garbage"), times)

    def truncate(self, times: int = 1) -> FakeScript:
        """Answer 200 but stop early: a stream without its finish chunk and ``[DONE]``,
        a JSON body cut in half."""
        return self._push(Fault("truncate"), times)

    # -- standing settings ---------------------------------------------------------------
    def latency(self, seconds: float) -> FakeScript:
        self.latency_seconds = max(0.0, seconds)
        return self

    def chunk_delay(self, seconds: float) -> FakeScript:
        self.chunk_delay_seconds = max(0.0, seconds)
        return self

    # -- consumption ---------------------------------------------------------------------
    def next_item(self) -> ScriptItem | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def clear(self) -> FakeScript:
        with self._lock:
            self._queue.clear()
        self.latency_seconds = self.chunk_delay_seconds = 0.0
        return self

    def _push(self, item: ScriptItem, times: int) -> FakeScript:
        with self._lock:
            self._queue.extend([item] * max(1, times))
        return self


def _tool_call_dict(call: Any) -> dict[str, Any]:
    if isinstance(call, dict):
        return dict(call)
    return {"id": getattr(call, "id", None), "name": call.name, "arguments": call.arguments}


def _usage_dict(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    if not isinstance(usage, dict):  # a cloverleaf Usage
        return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                "cached_tokens": usage.cached_tokens, "reasoning_tokens": usage.reasoning_tokens}
    aliases = {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"}
    return {aliases.get(str(k), str(k)): int(v) for k, v in usage.items()}


# --------------------------------------------------------------------------- directives


@dataclass(frozen=True, slots=True)
class Directives:
    """What a model name asks of the fake (see the grammar in :mod:`cloverleaf.providers.fake.adapter`)."""

    name: str = ""
    echo: bool = False
    fault: Fault | None = None
    #: Apply ``fault`` to only the first N calls for this model name (None: every call).
    times: int | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0


_FAIL = re.compile(r"fail-(\d{3})(?:x(\d+))?$")
_RESET = re.compile(r"reset-after-(\d+)$")
_DURATION = re.compile(r"(slow|drip)-(\d+(?:\.\d+)?)(ms|s)$")
_TIMES = re.compile(r"(hang|garbage|truncate)(?:x(\d+))?$")


def parse_model(model: str) -> Directives:
    """Split ``echo+slow-200ms`` into directives; tokens that are not directives form the name."""
    echo, fault, times, latency, delay = False, None, None, 0.0, 0.0
    names: list[str] = []
    for token in (t for t in model.split("+") if t):
        low = token.lower()
        if low == "echo":
            echo = True
        elif m := _FAIL.match(low):
            fault, times = Fault("fail", int(m.group(1))), int(m.group(2)) if m.group(2) else None
        elif m := _RESET.match(low):
            fault = Fault("reset", after_chunks=int(m.group(1)))
        elif m := _TIMES.match(low):
            fault, times = Fault(m.group(1)), int(m.group(2)) if m.group(2) else None  # type: ignore[arg-type]
        elif m := _DURATION.match(low):
            seconds = float(m.group(2)) / (1000.0 if m.group(3) == "ms" else 1.0)
            if m.group(1) == "slow":
                latency = seconds
            else:
                delay = seconds
        else:
            names.append(token)
    return Directives("+".join(names), echo, fault, times, latency, delay)

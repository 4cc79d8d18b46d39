"""Our conversation as Gemini ``contents``: roles, parts, tool calls and thought signatures.

Gemini knows two roles, ``user`` and ``model``; tool results travel as ``functionResponse``
parts in a ``user`` turn and must answer every ``functionCall`` of the preceding ``model``
turn *in one content*, so consecutive messages of the same Gemini role are merged.

Thought signatures are opaque tokens Gemini attaches to a part (a thought, a function call
or a text part) and wants back on the next turn (for function calls it refuses the turn
without them). We keep them where our types have room: ``Reasoning.signature`` for thoughts,
``ToolCall.extra["thoughtSignature"]`` for function calls, and a text-less
``Reasoning(signature=...)`` for the signature of a text part, which is put back on the
text part it belongs to (the next one, or the last one when it arrived at the end of a
stream on an empty part). A model turn whose function calls carry no signature at all (another
provider's turn, a client that dropped it) gets Gemini's documented stand-in on its first call. One known shift: when thoughts were requested and the signature
sits on the answer's first text part, the shared accumulator folds it into the preceding
thought, so it goes back on the thought part; Gemini only requires the signatures of
function calls, which are never moved.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from ..._types import Attachment, Message, Reasoning, Role, Text, ToolCall, ToolResult
from .._common import GEMINI_IMAGES, checked_image, replayable_reasoning

if TYPE_CHECKING:
    from ..._errors import InvalidRequestError


class _Host(Protocol):
    """What the encoder needs of its adapter (a protocol keeps the import one way)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def invalid(self, message: str, model: str | None = None) -> InvalidRequestError: ...

_SIGNATURE_KEY = "thoughtSignature"
#: Gemini's documented signature for a function call it did not produce itself (a conversation
#: moved over from another model): the signature check is skipped for that call.
SKIP_SIGNATURE_CHECK = "skip_thought_signature_validator"
#: Model generations that never check signatures (Gemini 1.x and 2.x).
_UNSIGNED_GENERATIONS = re.compile(r"gemini-[12](?:[.-]|$)")


def build_contents(adapter: _Host, messages: list[Message], *, vertex: bool, model: str) -> list[dict[str, Any]]:
    """``contents`` for ``messages`` (system messages excluded: they go to ``systemInstruction``)."""
    contents: list[dict[str, Any]] = []
    for position, msg in enumerate(messages):
        if msg.role is Role.SYSTEM:
            continue
        if msg.role is Role.ASSISTANT:
            # an empty answer (a blocked or cut-off turn) stays a turn: Gemini takes an empty text part
            role, parts = "model", _model_parts(adapter, msg.parts) or [{"text": ""}]
            _sign_unsigned_calls(parts, model)
        else:
            role, parts = "user", _user_parts(adapter, msg.parts, messages[:position], vertex=vertex, model=model)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


# --------------------------------------------------------------------------- model turns


def _model_parts(adapter: _Host, parts: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending_signature: str | None = None
    for part in parts:
        if isinstance(part, Reasoning):
            if not replayable_reasoning(adapter, part.provider):
                continue  # another provider's thoughts mean nothing to Gemini
            if part.text:
                thought: dict[str, Any] = {"text": part.text, "thought": True}
                if part.signature:
                    thought[_SIGNATURE_KEY] = part.signature
                out.append(thought)
            elif part.signature:
                pending_signature = part.signature
        elif isinstance(part, Text):
            text: dict[str, Any] = {"text": part.text}
            if pending_signature:
                text[_SIGNATURE_KEY] = pending_signature
                pending_signature = None
            out.append(text)
        elif isinstance(part, ToolCall):
            call: dict[str, Any] = {"name": part.name, "args": part.arguments}
            if part.id:
                call["id"] = part.id
            entry: dict[str, Any] = {"functionCall": call}
            signature = (part.extra or {}).get(_SIGNATURE_KEY)
            if signature:
                entry[_SIGNATURE_KEY] = signature
            out.append(entry)
        elif isinstance(part, Attachment) and part.data is not None:
            # an image Gemini generated, sent back as it came (a conversation that edits it)
            image: dict[str, Any] = {"inlineData": {"mimeType": part.media_type or "application/octet-stream",
                                                    "data": part.base64()}}
            if pending_signature:
                image[_SIGNATURE_KEY] = pending_signature
                pending_signature = None
            out.append(image)
        elif isinstance(part, Attachment):
            raise adapter.invalid("Gemini takes an attachment in a model (assistant) turn only as bytes "
                                  "(an image it generated), not a URL")
    if pending_signature:
        # a signature that arrived after the text (end of a stream): it belongs to that text
        for entry in reversed(out):
            if "text" in entry and not entry.get("thought") and _SIGNATURE_KEY not in entry:
                entry[_SIGNATURE_KEY] = pending_signature
                break
    return out


def _sign_unsigned_calls(parts: list[dict[str, Any]], model: str) -> None:
    """Give a turn's function calls Gemini's documented stand-in signature when none of them has
    one (a history from another provider, or a client that dropped it): Gemini 3 refuses a
    model turn whose first functionCall is unsigned; with the stand-in it skips the check. A
    turn whose first call is signed is Gemini's own (parallel calls after the first come
    unsigned) and stays as it is. Older models, which check nothing, are sent nothing."""
    calls = [p for p in parts if "functionCall" in p]
    if not calls or any(_SIGNATURE_KEY in p for p in calls) or _UNSIGNED_GENERATIONS.search(model):
        return
    calls[0][_SIGNATURE_KEY] = SKIP_SIGNATURE_CHECK


# --------------------------------------------------------------------------- user turns


def _user_parts(adapter: _Host, parts: list[Any], history: list[Message], *, vertex: bool,
                model: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            # empty text beside other content says nothing, and some Gemini models refuse it ("Unable to
            # submit request because it has an empty text parameter"); a turn of only that goes as it
            # is (Gemini 3 answers it: a recording in tests/providers/test_gemini_replay.py)
            if part.text or all(isinstance(p, Text) and not p.text for p in parts):
                out.append({"text": part.text})
        elif isinstance(part, Attachment):
            out.append(attachment_part(adapter, part, vertex=vertex, model=model))
        elif isinstance(part, ToolResult):
            out.extend(_function_response(adapter, part, history, vertex=vertex, model=model))
        elif isinstance(part, (ToolCall, Reasoning)):
            raise adapter.invalid(f"a {type(part).__name__} belongs in an assistant message, not a user/tool one")
    return out


def _function_response(adapter: _Host, result: ToolResult, history: list[Message], *, vertex: bool,
                       model: str) -> list[dict[str, Any]]:
    name = result.name or _call_name(result.tool_call_id, history)
    if not name:
        raise adapter.invalid(
            f"tool result {result.tool_call_id!r} has no name and answers no earlier tool call; Gemini needs the "
            "function name: pass ToolResult(name=...) or keep the assistant turn with the call in the history",
            model=model,
        )
    # Gemini documents "output" and "error" as the keys of a function's response object
    response: dict[str, Any] = {"name": name, "response": {"error" if result.is_error else "output": result.text}}
    if result.tool_call_id:
        response["id"] = result.tool_call_id
    out: list[dict[str, Any]] = [{"functionResponse": response}]
    if not isinstance(result.content, str):
        # images/PDFs a tool returned travel next to the response, in the same user turn
        out.extend(attachment_part(adapter, p, vertex=vertex, model=model)
                   for p in result.content if isinstance(p, Attachment))
    return out


def _call_name(call_id: str, history: list[Message]) -> str | None:
    """The name of the most recent earlier tool call with this id."""
    for msg in reversed(history):
        for part in reversed(msg.parts):
            if isinstance(part, ToolCall) and part.id == call_id:
                return part.name
    return None


# --------------------------------------------------------------------------- attachments

_MEDIA_DEFAULT = {"image": "image/png", "pdf": "application/pdf", "audio": "audio/wav"}


def attachment_part(adapter: _Host, att: Attachment, *, vertex: bool, model: str) -> dict[str, Any]:
    """``inlineData`` for bytes; ``fileData`` for a URL Gemini itself can fetch."""
    if att.kind == "image":
        checked_image(att.media_type, GEMINI_IMAGES, provider=adapter.name, model=model)
    mime = att.media_type or _MEDIA_DEFAULT.get(att.type or "", "application/octet-stream")
    if att.data is not None:
        return {"inlineData": {"mimeType": mime, "data": att.base64()}}
    if att.url is None:
        raise adapter.invalid("attachment is not resolved (no data and no url)", model=model)
    if not provider_fetchable(att.url, vertex=vertex):
        raise adapter.invalid(
            f"the Gemini API cannot fetch {att.type or 'attachment'} URLs itself (only Files API URIs and YouTube "
            "links; Vertex AI also takes gs:// and https URLs); use fetch=\"local\" so cloverleaf downloads it "
            "and sends the bytes inline",
            model=model,
        )
    return {"fileData": {"mimeType": mime, "fileUri": att.url}}


def provider_fetchable(url: str, *, vertex: bool) -> bool:
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if host == "generativelanguage.googleapis.com" and "/files/" in parsed.path:
        return True  # a Files API upload
    if host in ("youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"):
        return True
    return vertex and parsed.scheme in ("gs", "https")

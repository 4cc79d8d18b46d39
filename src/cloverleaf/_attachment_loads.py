"""Each attachment loaded once per call, however many requests the call sends.

One call may send its messages several times: a gateway route falls back to another target,
``run_tools=True`` sends the growing conversation once per tool turn. Every send resolves the
request's attachments (``Engine._aresolve_attachments``), and a URL attachment was downloaded
again each time: slower, and a second download may not even return the same bytes. The
loaded copies cannot be written back into the caller's objects (a Message kept for later
would then hold megabytes), so they are kept here instead, for the length of the call.

A call opens the scope (:func:`begin` and :func:`end`; a stream, :func:`stream_scope`); inside it, :func:`loaded` hands back what
an attachment object already loaded to, and :func:`keep` records new loads. The key is the
caller's Attachment object itself (its identity, held alive by the entry), so two equal-looking
attachments are still loaded on their own, and nothing outlives the call. Loaded copies are
resolved again on each send, which re-checks their bytes under the policy (size, type, the
request's byte total) without any I/O. Outside a scope nothing is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar, Token
from typing import Any

from ._documents import nested_attachments
from ._types import Attachment

#: id(the caller's attachment) -> (that attachment, its loaded copy), for the current call
_Loads = dict[int, tuple[Any, Attachment]]
_current: ContextVar[_Loads | None] = ContextVar("cloverleaf_attachment_loads", default=None)


def begin() -> Token[_Loads | None] | None:
    """Open the call's scope (a call inside another shares the outer one: a tool loop's turns
    go through the gateway, which opens its own); hand the result to :func:`end`. Plain
    calls rather than a context manager: the gateway opens one per chat call, on its hot path."""
    if _current.get() is not None:
        return None
    return _current.set({})


def end(token: Token[_Loads | None] | None) -> None:
    if token is not None:
        _current.reset(token)


def stream_scope(req: Any) -> _Loads | None:
    """A stream's scope, or None when it has nothing to load or runs inside an open scope. A
    stream is an async generator, whose steps run in its consumer's context: a scope set there
    would stay set in the consumer's task after a stream left unfinished (and every later call
    of that task would share it). So a stream keeps its scope itself and lends it only to each
    attempt's first step (:func:`loading_in`), where the engine loads the attachments."""
    if _current.get() is not None or not holds_attachments(req.messages):
        return None
    return {}


async def loading_in(loads: _Loads, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``events`` (one attempt's engine stream) with its first step, where its attachments are
    loaded, run under ``loads``: set and reset within that step, so nothing crosses a yield."""
    token = _current.set(loads)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        return
    finally:
        _current.reset(token)
    try:
        yield first
        async for event in events:
            yield event
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def holds_attachments(messages: Sequence[Any]) -> bool:
    """Any attachment in ``messages``, in a message's parts or inside a tool result or document."""
    for message in messages:
        for part in message.parts:
            if isinstance(part, Attachment):
                return True
            if nested_attachments(part):
                return True
    return False


def loaded(atts: Sequence[Any]) -> list[Any]:
    """``atts`` with each one this call already loaded replaced by its loaded copy."""
    loads = _current.get()
    if not loads:
        return list(atts)
    out = []
    for att in atts:
        entry = loads.get(id(att))
        out.append(entry[1] if entry is not None and entry[0] is att else att)
    return out


def keep(atts: Sequence[Any], copies: Sequence[Attachment]) -> None:
    """Record that each of ``atts`` (the caller's objects) loaded to the matching copy."""
    loads = _current.get()
    if loads is None:
        return
    for att, copy in zip(atts, copies, strict=True):
        if copy is not att:
            loads[id(att)] = (att, copy)

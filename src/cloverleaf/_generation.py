"""An answer the provider says failed is raised, not returned.

Gemini (``MALFORMED_FUNCTION_CALL``, ``UNEXPECTED_TOOL_CALL``, ``TOO_MANY_TOOL_CALLS``, and
``OTHER``/``NO_IMAGE`` when nothing was said) and
Bedrock (``malformed_tool_use``, ``malformed_model_output``) answer 200 when the model's output
came out broken; the adapters map that to ``finish_reason`` ``"error"``. Returned as a
response, it read like an ordinary (empty) answer: a gateway client saw ``stop`` / ``end_turn``,
the provider's own words were dropped, and no retry or fallback was tried. One rule, applied
where the engine finishes every answer (whole or streamed), so the SDK and the gateway agree.

A provider that cuts an answer short for want of capacity (DeepSeek's
``insufficient_system_resource``, also ``"error"`` to us) gets
:class:`GenerationInterruptedError`, which says so in words of its own: the model wrote nothing
wrong there, and the text that came reads like a finished answer.
"""

from __future__ import annotations

from ._errors import GenerationFailedError, GenerationInterruptedError
from ._types import ChatResponse

#: Raw finish reasons by which a provider says it interrupted the answer itself, with what they mean.
_INTERRUPTIONS = {
    # api-docs.deepseek.com: "the request is interrupted due to insufficient resource of the inference system"
    "insufficient_system_resource": "its inference system ran short of resources",
}


def raise_if_failed(out: ChatResponse, provider: str, model: str) -> None:
    """Raise :class:`GenerationFailedError` when ``out`` is an answer the provider says failed."""
    if out.finish_reason != "error":
        return
    raw = out.metadata.raw_finish_reason
    why = _INTERRUPTIONS.get(raw) if raw else None
    cls: type[GenerationFailedError] = GenerationFailedError
    if why is not None:
        cls = GenerationInterruptedError
        message = f"the provider interrupted the answer part-way: {why} (finish_reason {raw})"
    else:
        said = (out.metadata.extra or {}).get("finish_message")
        message = f"the model's answer failed upstream ({raw or 'finish_reason error'})"
        message += f": {said}" if isinstance(said, str) and said else ""
    error = cls(message + "; the same request usually succeeds when sent again",
                provider=provider, model=out.model or model, code=raw, request_id=out.metadata.request_id)
    error.response = out
    raise error

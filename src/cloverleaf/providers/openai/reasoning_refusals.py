"""Learn that a model follows the reasoning models' rules from OpenAI's own refusal of ``max_tokens``.

Which models refuse ``max_tokens`` and sampling is read from the model's name
(:func:`.messages.is_reasoning_model`: o1, o3, o4, gpt-5 and later). A name the pattern does not
know, most often an Azure deployment named by its owner (``prod-chat``, with no ``model`` in its
configuration) or a model newer than this library, got ``max_tokens``, ``temperature`` and
``top_p`` on every call and OpenAI's 400 on every call:

- ``{"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use
  'max_completion_tokens' instead.", "param": "max_tokens", "code": "unsupported_parameter"}``;
- ``{"message": "Unsupported value: 'temperature' does not support 0.2 with this model. Only the
  default (1) value is supported.", "param": "temperature", "code": "unsupported_value"}``.

On either refusal the call is sent once more by the reasoning models' rules (``max_completion_tokens``,
no ``temperature``/``top_p``, ``reasoning_effort`` kept) and the model is remembered per server
(bounded, as :mod:`..ollama.thinking` remembers models without thinking): one refused request per
model and process, not one per call. No other 400 is sent again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..._http import HttpResponse
    from ..._types import ChatRequest


def says_reasoning_rules(refusal: HttpResponse, req: ChatRequest) -> bool:
    """Whether ``refusal`` is OpenAI's 400 for a field that ``req`` sent and only a reasoning model
    refuses: ``max_tokens`` ("Use 'max_completion_tokens' instead"), or a ``temperature``/``top_p``
    other than the default."""
    if refusal.status != 400:
        return False
    try:
        payload: Any = refusal.json()
    except ValueError:
        return False
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return False
    param, code, message = err.get("param"), err.get("code"), str(err.get("message") or "")
    if param == "max_tokens" and code == "unsupported_parameter":
        return req.max_tokens is not None and "max_completion_tokens" in message
    if code == "unsupported_value" and param in ("temperature", "top_p"):
        return getattr(req, param) is not None and "Only the default" in message
    return False

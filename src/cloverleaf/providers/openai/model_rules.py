"""Which request fields OpenAI's model families refuse, beyond the reasoning models' sampling rule.

OpenAI answers each of these with a 400, so a request built without knowing them fails on every
call to that model, whatever the caller's conversation holds (a gateway client that always sends
``parallel_tool_calls``, a route falling back from gpt-5 to o3 with the effort it was given):

- the o-series (o1, o3, o4-mini and their dated and ``-mini`` names) refuse
  ``parallel_tool_calls`` ("Unsupported parameter: 'parallel_tool_calls' is not supported with
  this model."); gpt-5 and the chat models take it. It is left out, as an unsupported sampling
  value is: the model calls its tools one at a time either way.
- ``reasoning_effort: "minimal"`` exists only on the first gpt-5 models (gpt-5, gpt-5-mini,
  gpt-5-nano). The o-series take ``low``/``medium``/``high``, and gpt-5.1 and later answer
  "Unsupported value: 'minimal' is not supported with the 'gpt-5.1' model. Supported values are:
  'none', 'low', 'medium', and 'high'." (the codex models likewise): there ``minimal`` becomes
  ``low``, the least reasoning every one of them takes.
- the web-search chat models (``gpt-4o-search-preview``, ``gpt-4o-mini-search-preview``) refuse
  sampling: "Model incompatible request arguments supplied: temperature, top_p". ``temperature``
  and ``top_p`` are left out for them, as for the reasoning models.

The rules read OpenAI's own model names (on an Azure row, the deployment's underlying model);
another service's models are not matched and keep every field.
"""

from __future__ import annotations

import re

_O_SERIES = re.compile(r"(^|/)o[134](-|$)")
#: The models that take ``reasoning_effort: "minimal"`` (a date or ``-latest`` may follow).
_TAKES_MINIMAL = re.compile(r"(^|/)gpt-5(-mini|-nano)?(-\d{4}-\d{2}-\d{2}|-latest)?$")
_SEARCH_MODEL = re.compile(r"(^|/)gpt-[\w.-]*-search-preview")
#: OpenAI's reasoning families, whose effort levels these rules know.
_OPENAI_REASONING = re.compile(r"(^|/)(o[134]|gpt-[5-9](?!\d))")


def takes_parallel_tool_calls(model: str) -> bool:
    """False for the o-series, which refuse the field (see the module's docstring)."""
    return _O_SERIES.search(model) is None


def takes_sampling(model: str) -> bool:
    """False for the web-search models, which refuse ``temperature`` and ``top_p``."""
    return _SEARCH_MODEL.search(model) is None


def effort_for_model(model: str, effort: str) -> str:
    """``effort`` as ``model`` takes it: ``minimal`` is ``low`` on an OpenAI reasoning model
    other than the first gpt-5 models; any other level, or another service's model, as given."""
    if effort == "minimal" and _OPENAI_REASONING.search(model) and not _TAKES_MINIMAL.search(model):
        return "low"
    return effort

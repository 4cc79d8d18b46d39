"""What a dashboard session signed in with an admin-scoped *virtual* key may hand on.

The dashboard's promise is that an admin-scoped key keeps its own allowed models, limits and
budget. Two things it can do would break that unless they are bounded here:

- **Creating keys.** A key made on the Keys page is checked against the session's key and is
  never more permissive in anything a key can be limited by: its allowed models are a subset
  of the session key's (a blank field means "the session key's list", not "every model"), its
  privacy is at least as strict (the form has no privacy field: it is the session key's), and
  it expires no later than the session key (blank: when the session key does). Its project is
  the session key's (the form's blank), and never another: a project's budget caps all its
  keys together, so a key made outside the project would spend outside that cap.

  Budget, rpm and tpm are different: they are counted *per key*. A created key's spend and
  requests are not counted against the session key's, so even a lower budget or rate lets the
  session key multiply its own allowance by minting many keys. That cannot be bounded key by
  key, so a session whose key has a budget, rpm or tpm creates no keys at all
  (:func:`minting_refusal`); the master key, or an admin key without those limits, can. A
  project's budget is not counted per key, so a key of a project may create keys of that project.
- **Calling as a pasted key** in the Playground. The pasted key's policy is what the call runs
  under, so it must itself be within the session key's limits (:func:`wider_than`): a
  limited admin key cannot use the Playground to run calls its own key may not make. Its
  budget and rates are the pasted key's own, which is no escape: whoever holds that secret
  can call the API with it directly.

And one thing it may not do at all: change the model registry when its key has any limit
(:func:`registry_refusal`). An entry decides what a call costs and where a model name
goes, so a budget-limited key (or a key of a project, which its project's budgets limit) could
price its own calls at $0, and a key allowed one name
could point that name at any other model.

The master key's sessions are not limited by anything here.
"""

from __future__ import annotations

import time
from typing import Any

from ..._context import KeyPolicy
from ..errors import BadRequest, Forbidden
from ..keys import model_allowed

#: Limits counted per key, which a created key would have on top of its creator's.
PER_KEY_LIMITS = ("budget", "rpm", "tpm")
#: How long a budget period runs: a child's may not be shorter than its parent's ($1 a day is
#: $30 a month; $1 a month is never more than $1 a day allows over that month).
_PERIOD_LENGTH = {"day": 1, "month": 2, None: 3}     # None: the key's whole life ("total")


def has_limits(key: Any) -> bool:
    """Does the key limit anything a call may do (models, privacy, budget, rates, its project's
    budgets)?"""
    return bool(key.allowed_models or key.privacy not in (None, "any") or key.project
                or any(getattr(key, n) is not None for n in PER_KEY_LIMITS))


def _set_per_key_limits(key: Any) -> list[str]:
    return [n for n in PER_KEY_LIMITS if getattr(key, n) is not None]


def minting_refusal(key: Any) -> Forbidden | None:
    """Why a session of ``key`` may not create keys (see the module), or None when it may."""
    limits = _set_per_key_limits(key)
    if not limits:
        return None
    return Forbidden(
        f"your key {key.id} has its own {_and(limits)}, and a key you created would have its own on top "
        "(a key's spend and requests are counted per key), so keys cannot be created from this session: "
        "ask whoever holds the master key (or an admin key without a budget or rate limits) to create it",
        code="key_creation_refused")


def registry_refusal(key: Any) -> Forbidden | None:
    """Why a session of ``key`` may not add, change or delete model entries, or None when it may."""
    if not has_limits(key):
        return None
    return Forbidden(
        f"your key {key.id} has limits (allowed models, privacy, budget, rates or a project), and the model "
        "registry sets what calls cost and where a model name goes, so this session may look at the registry and "
        "test its entries but not change it: sign in with the master key (or an admin key without limits)",
        code="registry_read_only")


def inherit(parent: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a key to be created from ``parent``'s session: what the form left blank
    is ``parent``'s; what it set must be within ``parent``'s, else :class:`BadRequest`
    naming the field."""
    out = dict(fields)
    if not out.get("allowed_models"):
        out["allowed_models"] = list(parent.allowed_models or [])
    if out.get("budget") is None and parent.budget is not None:
        out["budget"], out["budget_period"] = parent.budget, parent.budget_period
    for name in ("rpm", "tpm"):
        if out.get(name) is None:
            out[name] = getattr(parent, name)
    if out.get("privacy") is None:
        out["privacy"] = parent.privacy
    if out.get("expires_at") is None:
        out["expires_at"] = parent.expires_at
    if out.get("project") is None:
        out["project"] = parent.project
    child = KeyPolicy(key_id="new", allowed_models=tuple(out["allowed_models"]), rpm=out.get("rpm"),
                      tpm=out.get("tpm"), budget=out.get("budget"), budget_period=out.get("budget_period"),
                      privacy=out.get("privacy"), project=out.get("project"))
    problem = wider_than(parent, child, parent_expires=parent.expires_at, child_expires=out["expires_at"])
    if problem is not None:
        field, message = problem
        raise BadRequest(f"{message}: a key you create may not be more permissive than your own key "
                         f"{parent.id}", param=field, code="wider_than_your_key")
    return out


def wider_than(parent: Any, child: Any, *, parent_expires: float | None = None,
               child_expires: float | None = None) -> tuple[str, str] | None:
    """The first way ``child`` (a key or a :class:`KeyPolicy`) is more permissive than
    ``parent``, as (field, what is wrong), or None when it is within ``parent`` in everything:
    models, privacy, project, budget (amount and period), rpm, tpm and, when ``parent_expires``
    is given, expiry."""
    parent_models = tuple(parent.allowed_models or ())
    if parent_models:
        outside = [m for m in child.allowed_models or () if not _covered(parent_models, m)]
        if not child.allowed_models or outside:
            what = ", ".join(repr(m) for m in outside) if outside else "every model"
            return "allowed_models", (f"allowed models: {what} is not within yours ({', '.join(parent_models)}); "
                                      "name models exactly, or use one of your own patterns")
    if parent.privacy == "local-only" and child.privacy != "local-only":
        return "privacy", "privacy: yours is local-only, so this key's must be local-only too"
    # a key that limits anything keeps its keys in its project, none included: a key without a
    # project naming one would spend that team's budget (only an unlimited key may choose)
    if child.project != parent.project and (parent.project is not None or has_limits(parent)):
        return "project", (f"project: yours is {parent.project!r}, so this key's must be {parent.project!r} too "
                           f"(not {child.project or 'none'!r}): its calls would spend outside your project's budget")
    if parent.budget is not None:
        if child.budget is None or child.budget > parent.budget:
            shown = "none" if child.budget is None else f"${child.budget:g}"
            return "budget", f"budget: {shown} is more than yours (${parent.budget:g})"
        if _PERIOD_LENGTH.get(child.budget_period, 0) < _PERIOD_LENGTH.get(parent.budget_period, 3):
            return "budget_period", (f"budget period: {child.budget_period or 'total'} resets more often than "
                                     f"yours ({parent.budget_period or 'total'})")
    for name in ("rpm", "tpm"):
        mine, theirs = getattr(parent, name), getattr(child, name)
        if mine is not None and (theirs is None or theirs > mine):
            return name, f"{name}: {'unlimited' if theirs is None else theirs} is more than yours ({mine})"
    if parent_expires is not None and (child_expires is None or child_expires > parent_expires):
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(parent_expires))
        return "expires_in_days", f"expiry: it would outlive your key, which expires at {when}"
    return None


def _covered(patterns: tuple[str, ...], model: str) -> bool:
    """Is every name ``model`` allows one of ``patterns`` allows? Yes for one of the patterns
    itself, or for an exact name (no ``*``) that they allow; a narrower pattern of one's own
    (``fake/e*`` under ``fake/*``) is not worked out, and is refused with the advice to name
    models exactly."""
    return model in patterns or ("*" not in model and model_allowed(patterns, model))


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


__all__ = ["PER_KEY_LIMITS", "has_limits", "inherit", "minting_refusal", "registry_refusal", "wider_than"]

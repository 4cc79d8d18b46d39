"""Which project a server call runs as: its key's, or one the master key names per request.

A project groups calls the way an SDK's ``project=`` does: ``[budgets.NAME] scope = "project"``
caps what all its calls spend together, and the call records carry it (``/admin/spend?by=project``,
``cloverleaf spend --by project``, the dashboard's Spend page). On the server the project comes
from the virtual key (its ``project``, set through the admin API, the CLI or the dashboard), so
every key of a team draws on one budget, whoever holds which key.

The header ``x-cloverleaf-project`` names a project for one request, and is trusted only from
callers that are not bound to anything: the master key and open mode (no keys at all, the
developer's own machine). A key with a project runs as that project, always: a header naming
another is a 403 (``project_mismatch``), never a way out of the project's budget; the same
name is accepted, as a no-op. A key *without* a project may not name one either (403
``project_not_allowed``): it would charge any team's budget it names — whoever holds a key
could spend another team's allowance, and their calls would show as that team's — so a key
joins a project only by an admin setting it on the key.

The rule for a name is the same wherever one comes from (:func:`check_project`): printable ASCII
without ``|`` (a budget counter is ``project:<name>|<period>``, split at the ``|``), no spaces at
either end, and short enough for every column that keeps it — the call records', the rollups',
and the budget ledger's scope after its ``project:`` prefix.

Hot path: the key's project is in its cached policy (:class:`~cloverleaf._context.KeyPolicy`),
so this costs one header lookup and nothing else; a change to a key's project reaches calls as
any key change does (the key cache is dropped: at once here, within 0.5 s elsewhere).
"""

from __future__ import annotations

import re

from .._context import KeyPolicy
from ..gateway.store import schema
from .admin_text import column_chars
from .errors import BadRequest, Forbidden

PROJECT_HEADER = "x-cloverleaf-project"
_SCOPE_PREFIX = "project:"
#: The longest name every column that keeps a project holds (the budget scope with its prefix).
PROJECT_CHARS = min(column_chars(schema.calls.c.project) or 255, column_chars(schema.virtual_keys.c.project) or 255,
                    (column_chars(schema.budgets.c.scope) or 255) - len(_SCOPE_PREFIX))
#: Printable ASCII but ``|``; no space at either end (JSON Schema's form of :func:`check_project`).
PROJECT_PATTERN = rf"^[!-{{}}~]([ -{{}}~]{{0,{PROJECT_CHARS - 2}}}[!-{{}}~])?$"
_PROJECT = re.compile(PROJECT_PATTERN)
_RULE = (f"1 to {PROJECT_CHARS} printable ASCII characters, without '|' and without spaces at either end "
         "(e.g. 'acme' or 'team-search')")


def check_project(value: str, where: str) -> str:
    """``value`` if it is a project name, else a 400 naming ``where`` and the rule."""
    if not _PROJECT.fullmatch(value):
        raise BadRequest(f"{where}: a project name is {_RULE}", param=where, code="invalid_project")
    return value


def call_project(policy: KeyPolicy | None, header: str | None) -> str | None:
    """The project a call runs as: ``policy`` is the caller's key policy (None for the master
    key and open mode), ``header`` the request's ``x-cloverleaf-project`` (None: not sent)."""
    bound = policy.project if policy is not None else None
    if header is None:
        return bound
    named = check_project(header, PROJECT_HEADER)
    if policy is None or named == bound:
        return named
    if bound is None:
        raise Forbidden(f"{PROJECT_HEADER}: this API key belongs to no project, so it may not name one (it would "
                        "charge that project's budget); an admin gives a key its project (PATCH /admin/keys/{id} "
                        "with {\"project\": ...}, or `cloverleaf keys create --project`), or call with the master "
                        "key", param=PROJECT_HEADER, code="project_not_allowed")
    raise Forbidden(f"{PROJECT_HEADER}: this API key belongs to project {bound!r}, and its calls run as that "
                    f"project only; leave the header out (or send {bound!r}), or use a key of the project "
                    f"{named!r}", param=PROJECT_HEADER, code="project_mismatch")


__all__ = ["PROJECT_CHARS", "PROJECT_HEADER", "PROJECT_PATTERN", "call_project", "check_project"]

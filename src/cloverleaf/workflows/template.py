"""Templates in workflow files: ``"Describe {state.city.name} for {inputs.audience}"``.

Only ``{inputs.NAME...}`` and ``{state.NAME...}`` are references; every other brace is
text, so a prompt may hold JSON examples as written. A path walks into structured outputs
(``{state.city.name}``) and lists (``{state.items.0}``); a key is any text but ``.`` and braces
(``{state.place.città}``). ``{{state.x}}`` is the literal text ``{state.x}``. Text that looks
like a reference but is not one (``{ state.x }`` with spaces, ``{state..x}``) is kept in
:attr:`Template.unparsed`, and the workflow's check refuses it: the model would otherwise get
the braces instead of the value, and nothing would say so.

A template is parsed once, when the workflow is loaded (so references are checked before
any call), and rendered per run. A reference to a missing key is a :class:`TemplateError`
that names the key and what *is* there; the runner adds the step and field. A skipped step's
output is null, which reads as empty text, and so is any field of it: a later step need not
repeat the skipped step's ``when:`` to be safe to run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: A path segment is any text but ``.`` (the separator) and braces: a JSON Schema property may be
#: named in any script (``città``) or hold a space (``first name``), though not begin or end with one.
_SEGMENT = r"[^.{}\s](?:[^.{}\n]*[^.{}\s])?"
_PATH = r"(?:inputs|state)(?:\." + _SEGMENT + r")+"
_REF = re.compile(r"\{\{(" + _PATH + r")\}\}|\{(" + _PATH + r")\}")
#: What is left as text but was surely meant as a reference: ``{ state.x }``, ``{state..x}``,
#: ``{state.x`` never closed. Sent as it is, the model would get the braces, not the value.
_LOOKS_LIKE_REF = re.compile(r"\{\s*(?:inputs|state)\s*\.[^{}]{0,60}\}?")


def suggestion(fragment: str) -> str | None:
    """The reference ``fragment`` (an entry of :attr:`Template.unparsed`) was surely meant to be,
    when taking the spaces out makes one (``{ state.x }`` → ``{state.x}``)."""
    squeezed = re.sub(r"\s*([{}.])\s*", r"\1", fragment.strip())
    return squeezed if _REF.fullmatch(squeezed) and not squeezed.startswith("{{") else None


class TemplateError(Exception):
    """A reference that cannot be rendered: ``ref`` is the whole reference, ``key`` the part
    that is missing."""

    def __init__(self, message: str, *, ref: str, key: str) -> None:
        super().__init__(message)
        self.ref = ref
        self.key = key


@dataclass(frozen=True, slots=True)
class Ref:
    """``state.city.name`` as ``root="state", path=("city", "name")``."""

    root: str
    path: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Ref:
        root, *path = text.split(".")
        return cls(root, tuple(path))

    def __str__(self) -> str:
        return ".".join((self.root, *self.path))

    def lookup(self, scopes: Mapping[str, Any]) -> Any:
        """The value, or :class:`TemplateError` naming the first missing key. A field of null is
        null: a skipped step's output is null, and so is every field of it (as ``when:`` reads it)."""
        value: Any = scopes[self.root]
        walked = self.root
        for key in self.path:
            if value is None:
                return None
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                raise TemplateError(f"{{{self}}}: {_missing(walked, key, value)}", ref=str(self), key=key)
            walked = f"{walked}.{key}"
        return value


def _missing(walked: str, key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(map(str, value))) or "none"
        return f"key {key!r} is not in {walked} (it has: {keys})"
    if isinstance(value, list):
        return f"{walked} is a list of {len(value)}; {key!r} is not an index in it"
    return f"{walked} is {type(value).__name__}, not an object with key {key!r}"


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and references, alternating."""

    text: str
    parts: tuple[str | Ref, ...]
    #: Text that looks like a reference but is not one the grammar reads (``{ state.x }``): the
    #: workflow's check reports each, rather than the model receiving it as braces.
    unparsed: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str | Ref] = []
        unparsed: list[str] = []
        pos = 0
        for m in _REF.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
                unparsed.extend(_LOOKS_LIKE_REF.findall(text, pos, m.start()))
            if m.group(1):                      # {{state.x}}: the literal text {state.x}
                parts.append("{" + m.group(1) + "}")
            else:
                parts.append(Ref.parse(m.group(2)))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
            unparsed.extend(_LOOKS_LIKE_REF.findall(text, pos))
        return cls(text, tuple(_merge(parts)), tuple(unparsed))

    @property
    def refs(self) -> list[Ref]:
        return [p for p in self.parts if isinstance(p, Ref)]

    @property
    def single(self) -> Ref | None:
        """The reference when the template is exactly one (its value keeps its type)."""
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], Ref) else None

    def value(self, scopes: Mapping[str, Any]) -> Any:
        """A single reference's value as it is (an object stays an object); otherwise text."""
        ref = self.single
        return ref.lookup(scopes) if ref is not None else self.render(scopes)

    def render(self, scopes: Mapping[str, Any]) -> str:
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else as_text(part.lookup(scopes)))
        return "".join(out)


def as_text(value: Any) -> str:
    """How a value reads inside text: strings as they are, structures as JSON, null as empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _merge(parts: list[str | Ref]) -> list[str | Ref]:
    out: list[str | Ref] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        else:
            out.append(part)
    return out

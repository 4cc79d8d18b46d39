"""``when:`` conditions: a small expression language over state and inputs, never ``eval``.

::

    when: state.review.approved
    when: state.city.population > 1000000 and inputs.detail != "short"
    when: not (state.lang in ["en", "de"]) or inputs.force == true

Grammar (precedence low to high)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") operand)?
    operand := REF | STRING | NUMBER | true | false | null | "[" (operand ("," operand)*)? "]" | "(" expr ")"

``REF`` is ``state.x.y`` or ``inputs.x``, its keys letters (of any script: ``state.place.città``),
digits, ``_`` and ``-``. A reference to a key that is not there (a step
that was skipped, an optional field the model left out) is ``null`` rather than an error,
so ``when: state.review`` reads "when there is a review". Truthiness is JSON's: null, false,
0, "" and empty lists/objects are false; equality is JSON's too: ``false == 0`` and ``1 in
[true]`` are false (a boolean equals only a boolean), not Python's ``True == 1``. Ordering
compares numbers with numbers and strings with strings only; anything else is a
:class:`ConditionError`, not a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .template import Ref, TemplateError

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    | (?P<word>[^\W\d][\w-]*(?:\.[\w-]+)*)
    )""", re.VERBOSE)
_COMPARE = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
_LITERALS = {"true": True, "false": False, "null": None}


class ConditionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    tree: Any

    @classmethod
    def parse(cls, text: str) -> Condition:
        parser = _Parser(_tokens(text), text)
        tree = parser.expr()
        if parser.peek() is not None:
            raise ConditionError(f"unexpected {parser.peek()!r} in condition {text!r}")
        return cls(text, tree)

    @property
    def refs(self) -> list[Ref]:
        found: list[Ref] = []
        _collect(self.tree, found)
        return found

    def evaluate(self, scopes: Mapping[str, Any]) -> bool:
        return truthy(_eval(self.tree, scopes))


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value != [] and value != {}


def _tokens(text: str) -> list[str | tuple[str, Any]]:
    out: list[str | tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"cannot read condition {text!r} at {text[pos:].strip()[:20]!r}")
        pos = m.end()
        if m.group("num") is not None:
            num = m.group("num")
            out.append(("lit", float(num) if any(c in num for c in ".eE") else int(num)))
        elif m.group("str") is not None:
            out.append(("lit", _string(m.group("str"), text)))
        elif m.group("op") is not None:
            out.append(m.group("op"))
        else:
            word = m.group("word")
            if word in _LITERALS:
                out.append(("lit", _LITERALS[word]))
            elif word in ("and", "or", "not", "in"):
                out.append(word)
            elif word.split(".")[0] in ("state", "inputs") and "." in word:
                out.append(("ref", Ref.parse(word)))
            else:
                raise ConditionError(f"unknown name {word!r} in condition {text!r}: use state.KEY, inputs.KEY, "
                                     "true, false, null, strings in quotes or numbers")
    return out


def _string(raw: str, text: str) -> str:
    """A quoted string: "..." with JSON's escapes, '...' with a backslash keeping the next character."""
    if raw[0] == "'":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    try:
        value: str = json.loads(raw)
    except json.JSONDecodeError as exc:  # "C:\Users": \U is no JSON escape
        raise ConditionError(f"cannot read the string {raw} in condition {text!r} ({exc.msg}): write a "
                             "backslash as \\\\") from None
    return value


class _Parser:
    def __init__(self, tokens: list[str | tuple[str, Any]], text: str) -> None:
        self.tokens = tokens
        self.i = 0
        self.text = text

    def peek(self) -> Any:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> Any:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = repr(expected) if expected else "more"
            raise ConditionError(f"condition {self.text!r} is incomplete: expected {want}")
        self.i += 1
        return token

    def expr(self) -> Any:
        node = self.conj()
        while self.peek() == "or":
            self.take()
            node = ("or", node, self.conj())
        return node

    def conj(self) -> Any:
        node = self.neg()
        while self.peek() == "and":
            self.take()
            node = ("and", node, self.neg())
        return node

    def neg(self) -> Any:
        if self.peek() == "not":
            self.take()
            return ("not", self.neg())
        return self.compare()

    def compare(self) -> Any:
        left = self.operand()
        op = self.peek()
        if op == "not" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1] == "in":
            self.i += 2
            return ("cmp", "not in", left, self.operand())
        if op in _COMPARE:
            self.take()
            return ("cmp", op, left, self.operand())
        return left

    def operand(self) -> Any:
        token = self.take()
        if token == "(":
            node = self.expr()
            self.take(")")
            return node
        if token == "[":
            items = []
            while self.peek() != "]":
                items.append(self.operand())
                if self.peek() != "]":
                    self.take(",")
            self.take("]")
            return ("list", items)
        if isinstance(token, tuple):
            return token
        raise ConditionError(f"unexpected {token!r} in condition {self.text!r}")


def _collect(node: Any, found: list[Ref]) -> None:
    if not isinstance(node, tuple):
        return
    if node[0] == "ref":
        found.append(node[1])
    elif node[0] == "list":
        for item in node[1]:
            _collect(item, found)
    elif node[0] != "lit":
        for child in node[1:]:
            _collect(child, found)


def _eval(node: Any, scopes: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "ref":
        try:
            return node[1].lookup(scopes)
        except TemplateError:
            return None
    if kind == "list":
        return [_eval(item, scopes) for item in node[1]]
    if kind == "not":
        return not truthy(_eval(node[1], scopes))
    if kind == "and":
        return truthy(_eval(node[1], scopes)) and truthy(_eval(node[2], scopes))
    if kind == "or":
        return truthy(_eval(node[1], scopes)) or truthy(_eval(node[2], scopes))
    return _compare(node[1], _eval(node[2], scopes), _eval(node[3], scopes))


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("in", "not in"):
        if not isinstance(right, list | str | dict):
            raise ConditionError(f"'{op}' needs a list, string or object on the right, got {_kind(right)}")
        if isinstance(right, str | dict) and not isinstance(left, str):     # an object's keys are strings
            raise ConditionError(f"'{op}' {'a string' if isinstance(right, str) else 'an object'} needs a string "
                                 f"on the left, got {_kind(left)}")
        found = any(_equal(left, item) for item in right) if isinstance(right, list) else left in right
        return found if op == "in" else not found
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    if not numbers and not (isinstance(left, str) and isinstance(right, str)):
        raise ConditionError(f"cannot compare {_kind(left)} {op} {_kind(right)}: both sides must be numbers "
                             "or both strings")
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])


def _equal(left: Any, right: Any) -> bool:
    """JSON's equality: a boolean equals only a boolean (Python's ``False == 0`` would run a step
    guarded by ``inputs.retries == 0`` when retries is false), in lists and objects too."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(v, right[k]) for k, v in left.items())
    return bool(left == right)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__

"""Checks every configuration table shares for its values, in a module of their own so that
any table's parser (``_config``, the gateway's, the server's, attachments', telemetry's) can
use them without importing the others.

Every numeric setting, from the file or from a ``CLOVERLEAF_*`` variable, goes through
:func:`number` or :func:`whole` (:func:`env_number`/:func:`env_whole` read the variable's text
first). One check, so every table refuses the same things with the same words: text where a
number belongs (``float("abc")`` was a traceback), a boolean (``true`` is 1 to Python), NaN
(every comparison with it is false, so ``max_wait = nan`` waited forever and ``limit_usd = nan``
capped nothing), infinity (a traceback where a whole number was made of it), and a value out
of range (``max_body_mb = -1`` started a server that refused every request).

Every text setting goes through :func:`text` (a table of text, such as ``headers``, through
:func:`text_table`; an array of text through :func:`text_list`), and every true/false one
through :func:`boolean`: ``identifier = 5`` or ``base_url = 5`` loaded, passed ``cloverleaf
doctor`` and then made every call to the model a 500, and ``is_public = "false"`` meant true."""

from __future__ import annotations

import math
from typing import Any

from ._errors import ConfigError

#: The longest wait any setting may name: about 31 years. Longer is no use, and past it the
#: platform's clocks overflow (``socket.settimeout(1e12)`` and ``Lock.acquire`` raise).
MAX_SECONDS = 1_000_000_000


def boolean(where: str, value: Any) -> bool:
    """A setting that must be a TOML boolean. Anything else is refused, naming the key: read
    with ``bool()``, the string "false" (or "no", or 0.0 in some other table) is true, and the
    setting silently means the opposite of what was written."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def text(where: str, value: Any) -> str:
    """A setting that must be TOML text (in quotes). A number, boolean, array or table there
    was kept as it was and failed, as a 500, in the first call that used it as text. The
    message names the key and the kind of value found, never the value (it may be a key)."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be text in quotes (\"...\"), not {_kind(value)}")
    return value


def inline_table(where: str, value: Any, example: str = "key = value") -> dict[str, Any]:
    """An inline table (``additional_config = { region = "eu-central-1" }``): read as one, a
    string had its characters reported as unknown keys."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table ({{ {example} }}), not {_kind(value)}")
    return value


def text_table(where: str, value: Any, example: str = 'X-Team = "ml"') -> dict[str, str]:
    """A table whose every value is text (``headers = { X-Team = "ml" }``)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of text values ({{ {example} }}), not {_kind(value)}")
    return {str(key): text(f"{where} {key!r}", item) for key, item in value.items()}


def text_list(where: str, value: Any, example: str = '"cdn.internal"') -> tuple[str, ...]:
    """An array whose every item is text (``allow_hosts = ["cdn.internal"]``); from Python, any
    collection of text that is not itself text (a set or frozenset, sorted so the order is fixed)."""
    if isinstance(value, set | frozenset):
        value = sorted(value, key=str)
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be an array of text values ([{example}]), not {_kind(value)}")
    return tuple(text(f"{where}[{i}]", item) for i, item in enumerate(value))


def not_a_table(where: str, value: Any, example: str = "") -> str:
    """The message for a table given as another value (``store = "sqlite:///x.db"``), which,
    read as a table, had its characters reported as unknown keys. The value is not quoted: a
    URL written there can carry a password. ``example``: a key the table takes, or for a table
    of tables (``[routes]``) the header and a key of one of them (``[routes.NAME] targets = [...]``)."""
    header, key = where, example
    if example.startswith("["):
        header, _, key = example.partition("] ")
        header += "]"
    how = f" (for example {key})" if key else ""
    return (f"{where} must be a table, not {_kind(value)}: write {header} on a line of its own and its keys "
            f"below it{how}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def number(where: str, value: Any, *, minimum: float = 0.0, above: bool = False, maximum: float | None = None,
           unit: str = "") -> float:
    """A finite number (an integer or a float) of at least ``minimum`` (``above``: more than
    it) and at most ``maximum``; ``unit`` ("seconds") goes into the message."""
    if not _is_number(value) or not _in_range(value, minimum, above, maximum):
        raise ConfigError(f"{where} must be {_allowed('a number', unit, minimum, above, maximum)}, got {value!r}")
    return float(value)


def whole(where: str, value: Any, *, minimum: int = 0, maximum: int | None = None, unit: str = "") -> int:
    """A whole number (``3`` or ``3.0``) from ``minimum`` to ``maximum``."""
    if (not _is_number(value) or (isinstance(value, float) and not value.is_integer())
            or not _in_range(value, minimum, False, maximum)):
        raise ConfigError(f"{where} must be {_allowed('a whole number', unit, minimum, False, maximum)}, "
                          f"got {value!r}")
    return int(value)


def seconds(where: str, value: Any, *, zero: bool = False, minimum: float = 0.0) -> float:
    """A number of seconds above ``minimum`` (``zero``: or equal to it, which for most settings
    turns the feature off) and at most :data:`MAX_SECONDS`."""
    return number(where, value, minimum=minimum, above=not zero, maximum=MAX_SECONDS, unit="seconds")


def env_seconds(var: str, text: str, **limits: Any) -> float:
    """``seconds`` for an environment variable's text."""
    return seconds(var, _parsed(text), **limits)


def env_number(var: str, text: str, **limits: Any) -> float:
    """``number`` for an environment variable's text (``"30"``, ``"2.5"``)."""
    return number(var, _parsed(text), **limits)


def env_whole(var: str, text: str, **limits: Any) -> int:
    """``whole`` for an environment variable's text."""
    return whole(var, _parsed(text), **limits)


def _parsed(text: str) -> Any:
    """The number the text spells, or the text itself (which the check then refuses by name)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _in_range(value: float, minimum: float, above: bool, maximum: float | None) -> bool:
    low_ok = value > minimum if above else value >= minimum
    return low_ok and (maximum is None or value <= maximum)


def _allowed(kind: str, unit: str, minimum: float, above: bool, maximum: float | None) -> str:
    """``a number of seconds above 0 and at most 1000000000``, ``a whole number from 0 to 65535``."""
    text = f"{kind} of {unit}" if unit else kind
    if maximum is not None and not above:
        return f"{text} from {_shown(minimum)} to {_shown(maximum)}"
    text = f"{text} {'above' if above else 'of at least'} {_shown(minimum)}"
    return text if maximum is None else f"{text} and at most {_shown(maximum)}"


def _shown(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"

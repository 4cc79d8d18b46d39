"""Checks every configuration table shares for its values, in a module of their own so that
any table's parser (``_config``, the gateway's, the server's, attachments', telemetry's) can
use them without importing the others."""

from __future__ import annotations

from typing import Any

from ._errors import ConfigError


def boolean(where: str, value: Any) -> bool:
    """A setting that must be a TOML boolean. Anything else is refused, naming the key: read
    with ``bool()``, the string "false" (or "no", or 0.0 in some other table) is true, and the
    setting silently means the opposite of what was written."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value

"""The privacy request headers: ``x-cloverleaf-privacy`` and ``x-cloverleaf-data-class``.

A client may only make a call *stricter* than its key, route and ``[privacy] default``
allow (the gateway applies the strictest setting), so these headers need no permission.
They are checked here, at admission, so a typo is the client's 400 and never a 5xx or,
worse, a silently looser policy.
"""

from __future__ import annotations

from .._errors import ConfigError
from .._privacy import POLICIES, PrivacyConfig
from .errors import BadRequest

PRIVACY_HEADER = "x-cloverleaf-privacy"
DATA_CLASS_HEADER = "x-cloverleaf-data-class"


def privacy_headers(config: PrivacyConfig, privacy: str | None,
                    data_class: str | None) -> tuple[str | None, str | None]:
    if privacy is not None:
        privacy = privacy.strip().lower()
        if privacy not in POLICIES:
            raise BadRequest(f"header {PRIVACY_HEADER}: expected one of {', '.join(POLICIES)}, got {privacy[:40]!r}",
                             code="invalid_privacy")
    if data_class is not None:
        data_class = data_class.strip()
        try:
            config.class_policy(data_class)
        except ConfigError as exc:
            raise BadRequest(f"header {DATA_CLASS_HEADER}: {exc}", code="unknown_data_class") from None
    return privacy, data_class

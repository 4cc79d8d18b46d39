"""One-time tokens for the "Create key" form: a reload of its answer does not create a second key.

Why: the answer to "Create key" is the POST's own page (it shows the new secret, once, and
cannot be a redirect: the secret must not travel in a URL or be kept anywhere). Reloading it,
or a browser restoring the tab, sent the form again and silently made another key.

How, with nothing new to store: every rendering of the form carries a fresh token
(``nonce.mac``, the MAC keyed with the session's CSRF secret, so a token is good only in the
session that rendered it), and the key a token creates has an id derived from the token
(:func:`key_id_for`). A token sent again therefore names a key that exists already, and the
form says so instead of creating one; two copies sent at once race on the id, the primary
key, and the second is refused the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..errors import BadRequest
from .session import Session, same_token

FIELD = "form_token"


def _mac(session: Session, purpose: str, nonce: str) -> str:
    return hmac.new(session.csrf.encode(), f"{purpose}|{nonce}".encode(), hashlib.sha256).hexdigest()


def new_token(session: Session) -> str:
    """A token for one rendering of the form in ``session``."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_mac(session, 'ui-key-form', nonce)[:32]}"


def key_id_for(session: Session, token: str | None) -> str:
    """The id of the key this form submission creates (the same for the same token).
    Raises BadRequest for a missing token or one this session did not issue."""
    nonce, _, mac = (token or "").partition(".")
    if not nonce or not same_token(mac, _mac(session, "ui-key-form", nonce)[:32]):
        raise BadRequest("the form has no valid submission token (it is older than your session, or did not "
                         "come from this page); reload the page and fill it in again", param=FIELD)
    return "key_" + _mac(session, "ui-key-id", nonce)[:16]

"""What kind of thing an attachment's ``source`` is, and how to read the local kinds safely.

A source is one of: raw bytes, a local path (``str`` or ``os.PathLike``), a ``file://`` URL,
an http(s) URL, a data URL, or bare base64 text. The rules for a ``str`` are fixed and
documented so nothing is guessed by trying: ``data:`` is a data URL; ``scheme://`` (or a
``scheme:`` of two letters or more, like ``gopher:``) is a URL; text made only of base64
characters, at least 32 of them, not starting with ``~`` or ``.``, is base64 -- except that
a text starting with ``/`` (an absolute path, or JPEG's ``/9j/``) is base64 only when its
first bytes decode to a known media signature; anything else is a path. File names have a
``.`` that base64 never contains, so real files are not mistaken for base64.

Every reader here enforces the size cap *before* doing the expensive part (a ``stat`` before
reading a file, the encoded length before decoding base64) and never puts the content into
an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, unquote_to_bytes, urlsplit
from urllib.request import url2pathname

from .._errors import AttachmentError
from .sniff import sniff
from .ssrf import redact_url

SourceKind = Literal["bytes", "path", "file-url", "url", "data-url", "base64"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_OPAQUE_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):(?![\\/])")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_MIN_BASE64 = 32


@dataclass(frozen=True, slots=True)
class Source:
    kind: SourceKind
    value: str | bytes
    #: The URL scheme, for ``url``.
    scheme: str = ""

    def describe(self) -> str:
        """How to name this source in an error message: never its content."""
        if self.kind == "bytes":
            return f"{len(self.value)} bytes of data"
        if self.kind == "base64":
            return f"base64 text ({len(self.value)} characters)"
        if self.kind == "data-url":
            return f"a data: URL ({len(self.value)} characters)"
        if self.kind == "path":
            return f"file {str(self.value)!r}"
        return redact_url(str(self.value))


def classify(raw: str | bytes | bytearray | memoryview | os.PathLike[str]) -> Source:
    """Which kind of source ``raw`` is (see the module docstring for the rules on ``str``)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return Source("bytes", bytes(raw))
    if isinstance(raw, os.PathLike):
        return Source("path", os.fspath(raw))
    if not isinstance(raw, str):
        raise AttachmentError(f"attachment source must be a path, URL, base64 text or bytes, not {type(raw).__name__}",
                              rule="invalid-source", detail=type(raw).__name__)
    text = raw.strip()
    if not text:
        raise AttachmentError("attachment source is empty", rule="invalid-source")
    if text[:5].lower() == "data:":
        return Source("data-url", text, "data")
    match = _URL.match(text) or _OPAQUE_URL.match(text)
    if match:
        scheme = match.group(1).lower()
        return Source("file-url" if scheme == "file" else "url", text, scheme)
    if len(text) >= _MIN_BASE64 and text[0] not in "~." and _BASE64.match(text):
        if text[0] != "/" or _starts_with_media_signature(text):
            return Source("base64", text)
    return Source("path", raw)


def _starts_with_media_signature(text: str) -> bool:
    """JPEG and MP3 base64 starts with ``/`` (``/9j/``, ``//u``) like an absolute path does:
    it is base64 when its first bytes decode to a known signature."""
    try:
        head = base64.b64decode(text[:12], validate=True)
    except (binascii.Error, ValueError):
        return False
    return sniff(head) is not None


# --------------------------------------------------------------------------- base64


def decode_base64(text: str, max_bytes: int, *, what: str = "base64 attachment") -> bytes:
    """Decode standard or URL-safe base64 (whitespace allowed), refusing oversize input
    from its length alone, before any decoding work."""
    if len(text) // 4 * 3 > max_bytes * 2 + 3:  # far over even if half of it were whitespace
        raise _too_large_b64(what, max_bytes, len(text))
    compact = "".join(text.split())
    decoded_size = len(compact) * 3 // 4 - compact[-2:].count("=")
    if decoded_size > max_bytes:
        raise _too_large_b64(what, max_bytes, len(text))
    if "-" in compact or "_" in compact:
        compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4) if "=" not in compact else ""
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentError(f"{what} is not valid base64 ({len(text)} characters)",
                              rule="invalid-base64") from None
    if len(data) > max_bytes:
        raise _too_large_b64(what, max_bytes, len(text))
    return data


def _too_large_b64(what: str, max_bytes: int, length: int) -> AttachmentError:
    return AttachmentError(
        f"{what} decodes to more than the {max_bytes}-byte limit ({length} characters of base64); "
        "raise AttachmentPolicy.max_bytes to allow bigger attachments", rule="too-large", detail=f"{max_bytes} bytes")


def parse_data_url(text: str, max_bytes: int) -> tuple[str | None, bytes]:
    """``data:[<media type>][;base64],<data>`` -> (declared media type or None, bytes)."""
    header, sep, payload = text[5:].partition(",")
    if not sep:
        raise AttachmentError("data: URL has no ',' separating its header from its data", rule="invalid-source")
    if len(payload) > max_bytes * 3:  # over even if every byte were percent-encoded
        raise _too_large_b64("data: URL", max_bytes, len(payload))
    params = [p.strip() for p in header.split(";")]
    media_type = params[0] or None
    if "base64" in (p.lower() for p in params[1:]):
        return media_type, decode_base64(unquote(payload) if "%" in payload else payload, max_bytes,
                                         what="data: URL")
    data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large_b64("data: URL", max_bytes, len(payload))
    return media_type, data


# --------------------------------------------------------------------------- files


def file_url_path(url: str) -> str:
    """The local path of a ``file://`` URL; refuses ``file://otherhost/`` (a network share)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise AttachmentError(f"file URL {redact_url(url)} names a remote host; only local files can be read",
                              rule="local-path", detail=parts.netloc)
    return url2pathname(unquote(parts.path)) if os.name == "nt" else unquote(parts.path)


def read_file(path: str, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes`` (checked with ``stat`` first, then the
    read itself is bounded in case the file grows)."""
    full = os.path.expanduser(path)
    try:
        info = os.stat(full)
    except FileNotFoundError:
        raise AttachmentError(f"attachment file {path!r} does not exist", rule="not-found", detail=path) from None
    except OSError as exc:
        raise AttachmentError(f"cannot read attachment file {path!r}: {exc.strerror}", rule="not-found",
                              detail=path) from None
    if not stat.S_ISREG(info.st_mode):
        raise AttachmentError(f"attachment path {path!r} is not a regular file", rule="not-a-file", detail=path)
    if info.st_size > max_bytes:
        raise _file_too_large(path, max_bytes, info.st_size)
    try:
        with open(full, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise AttachmentError(f"cannot read attachment file {path!r}: {exc.strerror}", rule="not-found",
                              detail=path) from None
    if len(data) > max_bytes:
        raise _file_too_large(path, max_bytes, len(data))
    return data


def file_digest(path: str) -> str:
    """The SHA-256 of a regular file's bytes, read in blocks (a big file is never held whole):
    what a local attachment *is* before it is loaded (the response cache's key). ``OSError``
    when it is missing, unreadable or not a regular file (checked before opening it: opening
    a FIFO would block)."""
    full = os.path.expanduser(path)
    if not stat.S_ISREG(os.stat(full).st_mode):
        raise OSError(f"{path!r} is not a regular file")
    with open(full, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _file_too_large(path: str, max_bytes: int, size: int) -> AttachmentError:
    return AttachmentError(f"attachment file {path!r} is {size} bytes, over the {max_bytes}-byte limit; "
                           "raise AttachmentPolicy.max_bytes to allow bigger attachments",
                           rule="too-large", detail=f"{max_bytes} bytes")

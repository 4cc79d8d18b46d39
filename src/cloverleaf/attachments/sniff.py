"""What an attachment really is, from its first bytes, then from its name.

Providers reject (or worse, misread) an image sent as ``application/pdf``, and a user's
``type="image"`` on a PDF is a mistake worth a clear error. So the media type is read from
magic bytes first; the file extension is only a fallback for bytes no signature matches.
"""

from __future__ import annotations

import posixpath

from .._errors import AttachmentError, clipped
from .._types import AttachmentKind

KINDS: tuple[AttachmentKind, ...] = ("image", "pdf", "audio")

#: Every media type cloverleaf accepts, and its kind.
SUPPORTED: dict[str, AttachmentKind] = {
    "image/png": "image",
    "image/jpeg": "image",
    "image/gif": "image",
    "image/webp": "image",
    "image/heic": "image",
    "image/heif": "image",
    "image/avif": "image",
    "application/pdf": "pdf",
    "audio/wav": "audio",
    "audio/mpeg": "audio",
    "audio/ogg": "audio",
    "audio/flac": "audio",
    "audio/mp4": "audio",
    "audio/webm": "audio",
    "audio/aac": "audio",
    "audio/aiff": "audio",
}

_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/x-flac": "audio/flac",
    "audio/m4a": "audio/mp4",
    "audio/x-m4a": "audio/mp4",
    "audio/x-aiff": "audio/aiff",
    "audio/x-aac": "audio/aac",
    "application/x-pdf": "application/pdf",
}

_EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".pdf": "application/pdf",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".webm": "audio/webm",
    ".aac": "audio/aac",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
}

#: Formats whose files always start with their signature: a claim (or extension) of one of
#: these on bytes without it is wrong, not merely unsniffable. MP3, AAC, MP4 and WebM may
#: carry leading junk or tags we do not parse, so a claim of those is trusted.
ALWAYS_SIGNED = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/heic", "image/heif", "image/avif",
    "application/pdf", "audio/wav", "audio/flac", "audio/ogg", "audio/aiff",
})

#: Media types that say nothing about the content (so never contradict a signature).
GENERIC = frozenset({"application/octet-stream", "binary/octet-stream", ""})

#: Video, which cloverleaf does not send: recognised, so it is refused as what it is rather than
#: sent as audio or guessed from its extension.
VIDEO = frozenset({"video/mp4", "video/quicktime"})

# ISO base media files (``ftyp``) by brand: the major brand, else a compatible one, says what the
# file holds. Images and M4A audio have brands of their own; generic brands (isom, mp42, 3gp…) are
# used for audio-only and video files alike, so for those the track handlers decide.
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
                b"mif1": "image/heif", b"msf1": "image/heif", b"heif": "image/heif"}
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_VIDEO_BRANDS = {b"qt  ": "video/quicktime", b"M4V ": "video/mp4", b"M4VH": "video/mp4", b"M4VP": "video/mp4",
                 b"F4V ": "video/mp4", b"F4P ": "video/mp4"}


def normalize(media_type: str) -> str:
    """Lowercase, without parameters (``; charset=...``), aliases folded (``image/jpg``)."""
    base = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def kind_of(media_type: str | None) -> AttachmentKind | None:
    return SUPPORTED.get(normalize(media_type)) if media_type else None


def _mp3_frame(data: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version, layer III, bitrate and rate."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version = (data[1] >> 3) & 0b11
    layer = (data[1] >> 1) & 0b11
    bitrate = data[2] >> 4
    rate = (data[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate not in (0, 0b1111) and rate != 0b11


def _adts(data: bytes) -> bool:
    return len(data) >= 7 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0


def sniff(data: bytes) -> str | None:
    """The media type the bytes' signature announces, or None. It may be one cloverleaf does not
    send (:data:`VIDEO`): the caller refuses that by name."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if b"%PDF-" in data[:1024]:  # readers allow junk before the header
        return "application/pdf"
    if head.startswith(b"ID3") or _mp3_frame(head):
        return "audio/mpeg"
    if _adts(head):
        return "audio/aac"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if head[4:8] == b"ftyp":
        return _iso_media(data)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    return None


def _iso_media(data: bytes) -> str:
    """An ISO base media file's type: AVIF/HEIC/HEIF image, M4A audio, or video (MP4, MOV)."""
    major = data[8:12]
    size = int.from_bytes(data[:4], "big")
    compatible = {data[i:i + 4] for i in range(16, min(size, 256) - 3, 4)}
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and compatible & _AVIF_BRANDS):
        return "image/avif"
    if major in _HEIF_BRANDS:
        return _HEIF_BRANDS[major]
    if major in _AUDIO_BRANDS:
        return "audio/mp4"
    if major in _VIDEO_BRANDS:
        return _VIDEO_BRANDS[major]
    if b"vide" in _track_handlers(data):
        return "video/mp4"
    return "audio/mp4"  # sound tracks only, or none seen (the tracks may not have arrived yet)


def _track_handlers(data: bytes, most: int = 16) -> set[bytes]:
    """The handler types (``vide``, ``soun``…) of the ``hdlr`` boxes in ``data``: a handler box
    is its size, ``hdlr``, version and flags, a predefined zero, then the type."""
    found: set[bytes] = set()
    at = data.find(b"hdlr")
    while at >= 0 and len(found) < most:
        found.add(data[at + 12:at + 16])
        at = data.find(b"hdlr", at + 4)
    return found


def from_name(name: str | None) -> str | None:
    """The media type a file name or URL path's extension suggests."""
    if not name:
        return None
    _, ext = posixpath.splitext(name.replace("\\", "/").rsplit("/", 1)[-1].lower())
    return _EXTENSIONS.get(ext)


def supported_list() -> str:
    by_kind = {k: [m for m, mk in SUPPORTED.items() if mk == k] for k in KINDS}
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in by_kind.items())


def as_kind(value: str) -> AttachmentKind | None:
    """``"image"``/``"pdf"``/``"audio"`` (also ``"document"`` for pdf), else None."""
    v = value.strip().lower()
    if v == "document":
        v = "pdf"
    return v if v in KINDS else None


def claimed_kind(value: str) -> AttachmentKind:
    """The kind a user's ``type=`` names, by :func:`as_kind`; the one rule for the loader and
    the engine's capability check, so a type the one accepts the other does too."""
    kind = as_kind(str(value))
    if kind is None:
        raise AttachmentError(f"unsupported attachment type {clipped(value)}; supported types: image, pdf, audio "
                              f"({supported_list()})", rule="unsupported-type", detail=str(value))
    return kind

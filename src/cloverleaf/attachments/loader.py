"""Turn what a user handed over into a checked, typed :class:`~cloverleaf._types.Attachment`.

This is the one entry point the SDK, the CLI and the server call. It classifies the source,
reads it within the policy (local files only if allowed; URLs through the SSRF guard; base64
within the size cap), and settles the kind and media type from the bytes themselves. Sync
and async differ only in the download call; everything else is shared.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

from .._errors import AttachmentError, clipped
from .._storage_uris import STORAGE_READERS, what_works
from .._types import IMAGE_DETAILS, Attachment, AttachmentKind, ImageDetail
from . import sniff
from .fetch import ByteBudget, adownload, download
from .policy import AttachmentPolicy
from .sources import Source, classify, decode_base64, file_url_path, parse_data_url, read_file
from .ssrf import ALLOWED_SCHEMES, parse_http_url

SourceLike = Attachment | str | bytes | bytearray | memoryview | os.PathLike[str]
FetchMode = Literal["local", "provider"]


@dataclass(slots=True)
class _Spec:
    """The user's request, validated: what the source is and what they claim it to be."""

    source: Source
    type: AttachmentKind | None
    media_type: str | None
    fetch: FetchMode
    filename: str | None
    cache_control: dict[str, Any] | None
    detail: ImageDetail | None

    @classmethod
    def of(cls, att: SourceLike, type: str | None, media_type: str | None, fetch: str | None) -> _Spec:
        base = att if isinstance(att, Attachment) else Attachment(source=att)  # type: ignore[arg-type]
        # Bytes already loaded win (resolving twice re-checks them, never re-fetches), then
        # the user's source, then a bare url.
        raw = base.data if base.data is not None else base.source if base.source is not None else base.url
        if raw is None:
            raise AttachmentError("attachment has no source, data or url", rule="invalid-source")
        kind = _claimed_kind(type if type is not None else base.type)
        claimed = _claimed_media_type(media_type if media_type is not None else base.media_type)
        mode = fetch if fetch is not None else base.fetch
        if mode not in ("local", "provider"):
            raise AttachmentError(f"attachment fetch must be 'local' or 'provider', not {clipped(mode)}", rule="invalid-source")
        if base.detail is not None and base.detail not in IMAGE_DETAILS:
            raise AttachmentError(f"attachment detail must be 'low', 'high' or 'auto', not {clipped(base.detail)}",
                                  rule="invalid-detail", detail=clipped(base.detail))
        return cls(classify(raw), kind, claimed, cast(FetchMode, mode), base.filename, base.cache_control,
                   base.detail)


def _claimed_kind(value: str | None) -> AttachmentKind | None:
    return None if value is None else sniff.claimed_kind(value)


def _claimed_media_type(value: str | None) -> str | None:
    if value is None:
        return None
    normalized = sniff.normalize(value)
    if normalized in sniff.GENERIC:
        return None
    if normalized not in sniff.SUPPORTED:
        raise AttachmentError(f"unsupported attachment media type {clipped(value)}; supported: "
                              f"{sniff.supported_list()}", rule="unsupported-type", detail=clipped(value))
    return normalized


# --------------------------------------------------------------------------- entry points


def resolve(att: SourceLike, *, policy: AttachmentPolicy | None = None, type: str | None = None,
            media_type: str | None = None, fetch: str | None = None) -> Attachment:
    """Check and load an attachment; returns a resolved copy (``data`` or ``url`` filled).

    Raises :class:`~cloverleaf.AttachmentError` (``rule`` says which check) for any
    refusal; nothing is downloaded past a failed check.
    """
    spec = _Spec.of(att, type, media_type, fetch)
    policy = policy or AttachmentPolicy()
    if _needs_download(spec):
        got = download(str(spec.source.value), policy)
        return _settle(spec, got.data, name=got.filename, keep_source=True)
    return _resolve_offline(spec, policy)


async def aresolve(att: SourceLike, *, policy: AttachmentPolicy | None = None, type: str | None = None,
                   media_type: str | None = None, fetch: str | None = None,
                   budget: ByteBudget | None = None) -> Attachment:
    """:func:`resolve` for async callers (downloads without blocking the event loop).
    ``budget``: a request's shared byte budget, charged while a download arrives."""
    spec = _Spec.of(att, type, media_type, fetch)
    policy = policy or AttachmentPolicy()
    if _needs_download(spec):
        got = await adownload(str(spec.source.value), policy, budget)  # charged as it arrives
        return _settle(spec, got.data, name=got.filename, keep_source=True)
    resolved = _resolve_offline(spec, policy)
    if budget is not None and resolved.data is not None:
        budget.take(len(resolved.data), spec.source.describe())
    return resolved


def _needs_download(spec: _Spec) -> bool:
    return spec.source.kind == "url" and spec.source.scheme in ALLOWED_SCHEMES and spec.fetch == "local"


# --------------------------------------------------------------------------- the offline kinds


def _resolve_offline(spec: _Spec, policy: AttachmentPolicy) -> Attachment:
    source = spec.source
    if source.kind == "url":
        if source.scheme in STORAGE_READERS:
            return _storage_uri(spec)
        if source.scheme not in ALLOWED_SCHEMES:
            raise AttachmentError(
                f"attachment URL scheme {clipped(source.scheme)} is not allowed; use http(s), a data: URL, base64"
                + (" or a local path" if policy.allow_local_paths else "")
                + " (or an s3:// URI for bedrock, a gs:// URI for vertex, with fetch='provider')",
                rule="scheme", detail=clipped(source.scheme))
        return _provider_url(spec)
    if source.kind in ("path", "file-url"):
        if not policy.allow_local_paths:
            raise AttachmentError(
                f"local files cannot be attached here ({source.describe()}): paths and file:// URLs are only "
                "read by the SDK and the CLI; send the content as base64, a data: URL or an http(s) URL",
                rule="local-path", detail="path" if source.kind == "path" else "file://")
        value = str(source.value)
        path = file_url_path(value) if source.kind == "file-url" else value
        return _settle(spec, read_file(path, policy.max_bytes), name=path, keep_source=True)
    if source.kind == "data-url":
        declared, data = parse_data_url(str(source.value), policy.max_bytes)
        return _settle(spec, data, declared=declared)
    if source.kind == "base64":
        return _settle(spec, decode_base64(str(source.value), policy.max_bytes))
    data = bytes(source.value) if isinstance(source.value, bytes) else b""
    if len(data) > policy.max_bytes:
        raise AttachmentError(f"attachment of {len(data)} bytes is over the {policy.max_bytes}-byte limit; raise "
                              "AttachmentPolicy.max_bytes to allow bigger attachments", rule="too-large",
                              detail=f"{policy.max_bytes} bytes")
    return _settle(spec, data)


def _storage_uri(spec: _Spec) -> Attachment:
    """An ``s3://``/``gs://`` URI: never downloaded (the provider reads it with the caller's cloud
    credentials; the engine checks the provider reads that scheme). Its media type must be known
    without the bytes: given, or from the file extension."""
    url = str(spec.source.value).strip()
    scheme = str(spec.source.scheme)
    if spec.fetch != "provider":
        raise AttachmentError(f"cloverleaf cannot download {scheme}:// URIs; {what_works(scheme)}", rule="scheme",
                              detail=scheme)
    media_type = spec.media_type or sniff.from_name(unquote(urlsplit(url).path))
    kind = sniff.kind_of(media_type)
    if media_type is None or kind is None:
        raise AttachmentError(
            f"cannot tell the media type of {clipped(url)} without reading it; pass media_type= (such as "
            "'image/png' or 'application/pdf'), which the provider needs with the URI", rule="unknown-type",
            detail=scheme)
    _check_claims(spec, kind, media_type, what=clipped(url))
    filename = spec.filename or posixpath.basename(unquote(urlsplit(url).path)) or None
    return Attachment(source=url, type=kind, media_type=media_type, fetch="provider", url=url, filename=filename,
                      cache_control=spec.cache_control, detail=spec.detail)


def _provider_url(spec: _Spec) -> Attachment:
    """``fetch="provider"``: check the scheme and the URL's shape only; the provider fetches it."""
    url = str(spec.source.value).strip()
    target = parse_http_url(url)
    by_name = sniff.from_name(unquote(urlsplit(url).path))
    media_type = spec.media_type or by_name
    kind = spec.type or sniff.kind_of(media_type)
    if kind is None:
        raise AttachmentError(
            f"cannot tell whether {target.describe()} is an image, a PDF or audio without downloading it; "
            "pass type='image', 'pdf' or 'audio' (or fetch='local')", rule="unknown-type", detail=target.describe())
    _check_claims(spec, kind, media_type, what=target.describe())
    filename = spec.filename or posixpath.basename(unquote(urlsplit(url).path)) or None
    return Attachment(source=url, type=kind, media_type=media_type if sniff.kind_of(media_type) == kind else None,
                      fetch="provider", url=url, filename=filename, cache_control=spec.cache_control,
                      detail=spec.detail)


# --------------------------------------------------------------------------- deciding the type


def _settle(spec: _Spec, data: bytes, *, name: str | None = None, declared: str | None = None,
            keep_source: bool = False) -> Attachment:
    """Decide kind and media type: magic bytes first, then what the user (or a data URL)
    claimed, then the file extension. A claim that contradicts the bytes is refused."""
    what = spec.source.describe()
    from_source = _claimed_media_type(declared) if declared else None
    claimed = spec.media_type or from_source
    sniffed = sniff.sniff(data)
    media_type: str | None = sniffed
    if sniffed in sniff.VIDEO:
        raise AttachmentError(f"{what} is video ({sniffed}), which cannot be attached; supported: "
                              f"{sniff.supported_list()}", rule="unsupported-type", detail=sniffed)
    if sniffed is not None:
        kind = sniff.SUPPORTED[sniffed]
    else:
        media_type = claimed or sniff.from_name(name or spec.filename)
        kind_or_none = sniff.kind_of(media_type)
        if media_type is None or kind_or_none is None:
            raise AttachmentError(
                f"cannot tell what {what} is: its bytes match no supported format and no media type or file "
                f"extension says; supported: {sniff.supported_list()}", rule="unknown-type", detail=what)
        if media_type in sniff.ALWAYS_SIGNED:
            raise AttachmentError(
                f"{what} is said to be {media_type} but its bytes lack that format's signature; "
                "it is damaged or not that kind of file", rule="type-mismatch", detail=media_type)
        kind = kind_or_none
    _check_claims(spec, kind, claimed, what=what, actual=media_type)
    filename = spec.filename or (os.path.basename(name) if name else None)
    source = spec.source.value if keep_source and isinstance(spec.source.value, str) else None
    return Attachment(source=source, type=kind, media_type=media_type, fetch="local", data=data,
                      filename=filename, cache_control=spec.cache_control, detail=spec.detail)


def _check_claims(spec: _Spec, kind: AttachmentKind, claimed: str | None, *, what: str,
                  actual: str | None = None) -> None:
    claimed_kind = sniff.kind_of(claimed)
    for label, value in (("type", spec.type), ("media type", claimed_kind)):
        if value is not None and value != kind:
            shown = claimed if label == "media type" else value
            raise AttachmentError(
                f"{what} was given as {label} {clipped(shown)} ({value}) but its content is {actual or kind} ({kind}); "
                f"pass type={kind!r} or the intended file", rule="type-mismatch", detail=f"{value} != {kind}")

"""What a chat request's attachments ask of its provider, checked before any download or send.

The engine's pre-send check (:meth:`~cloverleaf._engine.Engine.check`) asks this module which
input capabilities the attachments need (image, PDF, audio), then whether each sits where the
provider can take it: in a system message only where the provider's system prompt carries
attachments (elsewhere the encoder would drop it, the call would succeed and the model would
never see it), by URL only where the provider fetches URLs, and a cloud-storage URI only for
the provider that reads that scheme. Each refusal says what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _documents as documents
from ._capabilities import Capabilities, Capability
from ._errors import UnsupportedCapability
from ._storage_uris import scheme_of, what_works
from ._types import Attachment, ChatRequest, Role

_ATTACHMENT_CAP = {"image": Capability.IMAGE_INPUT, "pdf": Capability.PDF_INPUT, "audio": Capability.AUDIO_INPUT}


@dataclass(slots=True)
class AttachmentNeeds:
    """What :func:`needs` found: the input capabilities, the attachments the provider must
    fetch (with their kind), and whether any attachment is in a system message."""

    capabilities: list[Capability] = field(default_factory=list)
    by_url: list[tuple[str, Attachment]] = field(default_factory=list)
    in_system: bool = False


def needs(req: ChatRequest, *, untyped_attachments: bool = True) -> AttachmentNeeds:
    """``untyped_attachments=False`` skips the kind of attachments whose type is known only once
    loaded (the check before loading them); where they sit is judged either way."""
    out = AttachmentNeeds()
    for msg in req.messages:
        for part in msg.parts:
            atts = [part] if isinstance(part, Attachment) else [
                att for _, _, att in documents.nested_attachments(part)]
            if atts and msg.role is Role.SYSTEM:
                out.in_system = True
            for att in atts:
                if att.type is None and not untyped_attachments:
                    continue
                kind = attachment_kind(att)
                out.capabilities.append(_ATTACHMENT_CAP[kind])
                if att.fetch == "provider" and att.data is None:
                    out.by_url.append((kind, att))
    return out


def check_placement(provider: str, caps: Capabilities, found: AttachmentNeeds) -> None:
    """Raise UnsupportedCapability for an attachment the provider cannot take where it is
    (after the kinds are checked: "use a user message" is no fix for a kind it takes nowhere)."""
    if found.in_system and not caps.system_attachments:
        raise UnsupportedCapability(
            provider, "an attachment in a system message",
            hint="put the image, PDF or audio in a user message: this provider's system prompt is text only, "
                 "so the attachment would never reach the model (a Document of text only may stay there: it "
                 "is read as system text)")
    for kind, att in found.by_url:
        _check_url(provider, caps, kind, att)


def _check_url(provider: str, caps: Capabilities, kind: str, att: Attachment) -> None:
    scheme = scheme_of(att.url if att.url is not None else att.source if isinstance(att.source, str) else None)
    if scheme is not None:
        if scheme not in caps.storage_schemes:
            raise UnsupportedCapability(provider, f"{scheme}:// attachment URIs", hint=what_works(scheme))
        return
    ok = {"image": caps.url_image_input, "pdf": caps.url_pdf_input, "audio": caps.url_audio_input}.get(kind, False)
    if not ok:
        raise UnsupportedCapability(provider, f"{kind} input by URL (fetch='provider')",
                                    hint="use fetch='local' so cloverleaf downloads it and sends the bytes")


def attachment_kind(att: Attachment) -> str:
    """The attachment's kind by the loader's own rule (``"document"``, ``"PDF"``, ``" pdf "``
    are pdf); an unknown one is the loader's AttachmentError, before any I/O. Untyped: an
    image, the kind most likely, until loading it says (the check runs again then)."""
    if att.type is None:
        return "image"
    from .attachments.sniff import claimed_kind

    return claimed_kind(att.type)

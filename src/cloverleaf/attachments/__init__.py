"""Attachments (images, PDFs, audio) loaded safely from paths, URLs, base64 and data URLs.

``resolve``/``aresolve`` turn a user's :class:`~cloverleaf._types.Attachment` (or a bare
source) into a checked one: size-capped, typed from its magic bytes, and, for URLs, fetched
only through the SSRF guard (public addresses only, pinned against DNS rebinding, redirects
re-checked, a deadline on the whole download). :class:`AttachmentPolicy` holds the limits; the
server uses ``AttachmentPolicy(allow_local_paths=False)``.

Modules: ``sources`` (what a source is), ``sniff`` (what the bytes are), ``addresses``
(which IPs are private, in every spelling), ``ssrf`` (check and pin a URL), ``fetch`` (the
guarded download), ``loader`` (the entry points), ``request`` (all of one request's
attachments, concurrently, under the per-request caps), ``policy`` (the knobs).
"""

from .loader import aresolve, resolve
from .policy import AttachmentPolicy
from .request import aresolve_all, resolve_all

__all__ = ["AttachmentPolicy", "aresolve", "aresolve_all", "resolve", "resolve_all"]

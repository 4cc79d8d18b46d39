"""Cloud-storage URIs (``s3://``, ``gs://``) as attachments: read by the provider, never by us.

Bedrock Converse reads an image or PDF from S3 itself (``source.s3Location.uri``) and Vertex AI
reads one from Cloud Storage (``fileData.fileUri``), with the caller's cloud credentials. So
such a URI is an attachment only with ``fetch="provider"`` and only for the provider whose row
lists the scheme (``Capabilities.storage_schemes``); cloverleaf, and the gateway, never
download it. Every error about one names the combination that works.
"""

from __future__ import annotations

#: Each scheme and the provider that reads it (the rows' ``storage_schemes`` say the same; a
#: test keeps the two in agreement). Used for the words of errors raised before a provider is known.
STORAGE_READERS: dict[str, str] = {"s3": "bedrock", "gs": "vertex"}


def scheme_of(url: str | None) -> str | None:
    """``"s3"`` or ``"gs"`` when ``url`` is such a URI, else None."""
    if not isinstance(url, str):
        return None
    scheme, sep, _ = url.strip().partition("://")
    scheme = scheme.lower()
    return scheme if sep and scheme in STORAGE_READERS else None


def what_works(scheme: str) -> str:
    """The one way a ``scheme://`` attachment reaches a model, for an error's hint."""
    reader = STORAGE_READERS[scheme]
    return (f"{scheme}:// URIs are read by {reader} itself: attach one with fetch='provider' to a {reader} "
            f"model (cloverleaf never downloads them); for any other provider give an http(s) URL, a local file "
            f"or the bytes")

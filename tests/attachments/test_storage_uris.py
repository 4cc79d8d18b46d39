"""``s3://`` (Bedrock) and ``gs://`` (Vertex AI) attachment URIs reach the provider that reads them.

The adapters encoded them (Converse ``source.s3Location.uri``, Vertex ``fileData``) but the
loader refused the schemes first, and the errors' hints sent users in circles ("use
fetch='local'", which cannot download them). Now each works with ``fetch="provider"`` for its
provider (``Capabilities.storage_schemes``); every other combination is a clear error naming
what works, raised before anything is sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from cloverleaf import Attachment, AttachmentError, Client, Message, Text, UnsupportedCapability
from cloverleaf._storage_uris import STORAGE_READERS
from cloverleaf._types import ChatRequest
from cloverleaf.providers.registry import ROWS, capabilities_of

ENV = {"GOOGLE_CLOUD_PROJECT": "my-project", "OPENAI_API_KEY": "sk-test"}


def _built(model: str, att: Attachment) -> dict[str, Any]:
    with Client(env=ENV, max_retries=0) as client:
        target = client.engine.resolve(model, base_url="http://127.0.0.1:9", api_key="k")
        req = client.engine._resolve_attachments(target, ChatRequest(target.model, [Message.user([Text("x"), att])]))
        body = client.engine._build_chat(target, req).json()   # what ``cloverleaf chat --dry-run`` shows
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(("att", "expected"), [
    (Attachment(url="s3://my-bucket/cat.png", fetch="provider"),
     {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://my-bucket/cat.png"}}}}),
    (Attachment(source="s3://my-bucket/report", type="pdf", media_type="application/pdf", fetch="provider"),
     {"document": {"format": "pdf", "name": "report", "source": {"s3Location": {"uri": "s3://my-bucket/report"}}}}),
])
def test_bedrock_reads_s3_uris(att: Attachment, expected: dict[str, Any]) -> None:
    assert _built("bedrock/amazon.nova-pro-v1:0", att)["messages"][0]["content"][1] == expected


def test_vertex_reads_gs_uris() -> None:
    body = _built("vertex/gemini-2.5-flash", Attachment(source="gs://my-bucket/doc.pdf", fetch="provider"))
    assert body["contents"][0]["parts"][1] == {"fileData": {"mimeType": "application/pdf",
                                                            "fileUri": "gs://my-bucket/doc.pdf"}}


@pytest.mark.parametrize(("model", "uri", "reader"), [
    ("openai/gpt-4o", "s3://b/cat.png", "bedrock"), ("vertex/gemini-2.5-flash", "s3://b/cat.png", "bedrock"),
    ("bedrock/amazon.nova-pro-v1:0", "gs://b/cat.png", "vertex"), ("gemini/gemini-2.5-flash", "gs://b/cat.png", "vertex")])
def test_another_provider_is_told_which_one_reads_the_scheme(model: str, uri: str, reader: str) -> None:
    with pytest.raises(UnsupportedCapability) as err:
        _built(model, Attachment(source=uri, fetch="provider"))
    assert f"read by {reader} itself" in str(err.value) and "fetch='local'" not in str(err.value)


def test_fetch_local_and_an_unknown_media_type_say_what_works() -> None:
    with pytest.raises(AttachmentError, match="cannot download s3:// URIs.*fetch='provider' to a bedrock model"):
        _built("bedrock/amazon.nova-pro-v1:0", Attachment(source="s3://b/cat.png", type="image"))
    with pytest.raises(AttachmentError, match="pass media_type="):
        _built("bedrock/amazon.nova-pro-v1:0", Attachment(source="s3://b/object", type="image", fetch="provider"))


def test_the_rows_and_the_error_words_agree_on_who_reads_which_scheme() -> None:
    rows = {s: sorted(r.name for r in ROWS if s in capabilities_of(r).storage_schemes) for s in STORAGE_READERS}
    assert rows == {scheme: [reader] for scheme, reader in STORAGE_READERS.items()}

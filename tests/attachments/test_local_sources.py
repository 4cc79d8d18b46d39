"""Sources that need no network: paths, file URLs, bytes, base64 and data URLs, with the size
cap enforced before the expensive step, types checked against the bytes, and errors that
never echo content."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest

from cloverleaf._errors import AttachmentError
from cloverleaf._types import Attachment
from cloverleaf.attachments import AttachmentPolicy, aresolve, resolve
from cloverleaf.attachments import sources as sources_module
from cloverleaf.attachments.sources import classify

from .conftest import MEDIA, MediaServer, loopback_policy, media

PNG = media("image.png")
JPEG = media("image.jpg")
PDF = media("document.pdf")
WAV = media("audio.wav")
MP3 = media("audio.mp3")


# --------------------------------------------------------------------------- classification


def test_classification_rules() -> None:
    b64_png = base64.b64encode(PNG).decode()
    b64_jpeg = base64.b64encode(JPEG).decode()
    assert b64_jpeg.startswith("/9j/")
    assert classify(PNG).kind == "bytes"
    assert classify(bytearray(PNG)).kind == "bytes"
    assert classify(MEDIA / "image.png").kind == "path"
    assert classify("photo.png").kind == "path"
    assert classify("/etc/hostname").kind == "path"
    assert classify("/usr/share/doc/readme/abcdefghijklmnopqrstuvwxyz0123").kind == "path"
    assert classify("~/Pictures/cat.jpg").kind == "path"
    assert classify("C:\\Users\\me\\cat.jpg").kind == "path"
    assert classify(b64_png).kind == "base64"
    assert classify(b64_jpeg).kind == "base64"  # "/9j/..." decodes to a JPEG signature
    assert classify(f"data:image/png;base64,{b64_png}").kind == "data-url"
    assert classify("https://example.com/a.png").kind == "url"
    assert classify("file:///tmp/a.png").kind == "file-url"
    assert classify("gopher://x/").scheme == "gopher"
    with pytest.raises(AttachmentError) as info:
        classify("   ")
    assert info.value.rule == "invalid-source"
    with pytest.raises(AttachmentError):
        classify(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(("name", "kind", "media_type"), [
    ("image.png", "image", "image/png"), ("image.jpg", "image", "image/jpeg"),
    ("document.pdf", "pdf", "application/pdf"), ("audio.wav", "audio", "audio/wav"),
    ("audio.mp3", "audio", "audio/mpeg"),
])
def test_local_files(name: str, kind: str, media_type: str) -> None:
    for source in (str(MEDIA / name), MEDIA / name, (MEDIA / name).as_uri()):
        att = resolve(source)  # type: ignore[arg-type]
        assert (att.type, att.media_type, att.filename, att.data) == (kind, media_type, name, media(name))


def test_home_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "scan.pdf").write_bytes(PDF)
    assert resolve("~/scan.pdf").type == "pdf"


def test_missing_file_and_non_regular_files() -> None:
    with pytest.raises(AttachmentError) as info:
        resolve("/no/such/file.png")
    assert info.value.rule == "not-found"
    with pytest.raises(AttachmentError) as info:
        resolve(str(MEDIA))
    assert info.value.rule == "not-a-file"
    if os.path.exists("/dev/zero"):
        with pytest.raises(AttachmentError) as info:
            resolve("/dev/zero")  # never read: it is endless
        assert info.value.rule == "not-a-file"


def test_oversized_file_is_refused_by_stat_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(sources_module, "open", no_open, raising=False)
    with pytest.raises(AttachmentError) as info:
        resolve(str(MEDIA / "audio.wav"), policy=AttachmentPolicy(max_bytes=1000))
    assert info.value.rule == "too-large" and "8044 bytes" in str(info.value)


def test_file_contents_never_appear_in_errors(tmp_path: Path) -> None:
    secret = tmp_path / "notes.png"
    secret.write_bytes(b"TOPSECRET api_key=sk-live-123 " * 10)
    with pytest.raises(AttachmentError) as info:
        resolve(str(secret))
    assert info.value.rule == "type-mismatch"  # named .png, but no PNG signature
    assert "TOPSECRET" not in str(info.value) and "sk-live" not in str(info.value)
    assert "notes.png" in str(info.value)


# --------------------------------------------------------------------------- bytes, base64, data URLs


def test_bytes_and_base64_forms() -> None:
    assert resolve(PNG).media_type == "image/png"
    assert resolve(base64.b64encode(JPEG).decode()).media_type == "image/jpeg"
    wrapped = base64.encodebytes(WAV).decode()  # 76-column lines
    assert resolve(wrapped).data == WAV
    urlsafe = base64.urlsafe_b64encode(MP3).decode().rstrip("=")
    assert resolve(urlsafe).data == MP3
    assert resolve(f"data:application/pdf;base64,{base64.b64encode(PDF).decode()}").type == "pdf"
    assert resolve("data:image/png," + quote_from_bytes(PNG)).data == PNG  # percent-encoded, not base64
    assert resolve(f"data:;base64,{base64.b64encode(PNG).decode()}").media_type == "image/png"
    octet = f"data:application/octet-stream;base64,{base64.b64encode(PNG).decode()}"
    assert resolve(octet).media_type == "image/png"


def test_same_kind_claims_are_corrected_to_the_real_subtype() -> None:
    jpeg_claimed = f"data:image/jpeg;base64,{base64.b64encode(PNG).decode()}"
    assert resolve(jpeg_claimed).media_type == "image/png"


def test_invalid_base64_does_not_echo_the_payload() -> None:
    bad = "QUJD" * 20 + "!!!!" + "TUFSS0VS" * 5
    with pytest.raises(AttachmentError) as info:
        resolve(f"data:image/png;base64,{bad}")
    assert info.value.rule == "invalid-base64"
    assert "TUFSS0VS" not in str(info.value) and "QUJD" not in str(info.value)


def test_huge_base64_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("base64 was decoded")

    monkeypatch.setattr(sources_module.base64, "b64decode", no_decode)
    huge = "A" * (3 * 1024 * 1024)  # 2.25 MB decoded, over a 1 MB cap
    with pytest.raises(AttachmentError) as info:
        resolve(huge, policy=AttachmentPolicy(max_bytes=1024 * 1024))
    assert info.value.rule == "too-large"
    with pytest.raises(AttachmentError) as info:
        resolve(f"data:image/png;base64,{huge}", policy=AttachmentPolicy(max_bytes=1024 * 1024))
    assert info.value.rule == "too-large"


def test_decoded_size_limit_is_exact() -> None:
    policy = AttachmentPolicy(max_bytes=len(PNG))
    assert resolve(base64.b64encode(PNG).decode(), policy=policy).data == PNG
    assert resolve(PNG, policy=policy).data == PNG
    small = AttachmentPolicy(max_bytes=len(PNG) - 1)
    for source in (base64.b64encode(PNG).decode(), PNG, str(MEDIA / "image.png")):
        with pytest.raises(AttachmentError) as info:
            resolve(source, policy=small)
        assert info.value.rule == "too-large"


# --------------------------------------------------------------------------- type claims


@pytest.mark.parametrize(("kwargs", "rule"), [
    ({"type": "image"}, "type-mismatch"),
    ({"media_type": "image/png"}, "type-mismatch"),
    ({"type": "audio", "media_type": "audio/wav"}, "type-mismatch"),
    ({"type": "video"}, "unsupported-type"),
    ({"media_type": "text/plain"}, "unsupported-type"),
    ({"fetch": "sometimes"}, "invalid-source"),
])
def test_claims_contradicting_a_pdf(kwargs: dict, rule: str) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(PDF, **kwargs)
    assert info.value.rule == rule
    if rule == "unsupported-type":
        assert "image/png" in str(info.value) and "audio/mpeg" in str(info.value)  # lists what is supported


def test_unrecognised_bytes_fall_back_to_the_claim_or_extension(tmp_path: Path) -> None:
    raw = b"\x00\x01opaque-audio-bytes" * 4
    assert resolve(raw, media_type="audio/aac").media_type == "audio/aac"
    (tmp_path / "clip.m4a").write_bytes(raw)
    assert resolve(str(tmp_path / "clip.m4a")).media_type == "audio/mp4"
    with pytest.raises(AttachmentError) as info:
        resolve(raw)
    assert info.value.rule == "unknown-type" and "audio/wav" in str(info.value)
    with pytest.raises(AttachmentError) as info:
        resolve(raw, type="image")
    assert info.value.rule == "unknown-type"
    with pytest.raises(AttachmentError) as info:
        resolve(raw, media_type="image/png")  # PNGs always carry their signature
    assert info.value.rule == "type-mismatch"


# --------------------------------------------------------------------------- Attachment in, Attachment out


async def test_attachment_objects_are_copied_not_mutated() -> None:
    original = Attachment(source=str(MEDIA / "image.png"), type="image", cache_control={"type": "ephemeral"})
    att = await aresolve(original)
    assert original.data is None and not original.resolved
    assert att.resolved and att.data == PNG and att.cache_control == {"type": "ephemeral"}
    assert "bytes" in repr(att) and "PNG" not in repr(att)
    from_data = resolve(Attachment(data=WAV, filename="memo.wav"))
    assert (from_data.type, from_data.filename, from_data.source) == ("audio", "memo.wav", None)
    with pytest.raises(AttachmentError) as info:
        resolve(Attachment())
    assert info.value.rule == "invalid-source"


def test_resolving_a_resolved_attachment_rechecks_its_bytes_without_refetching(server: MediaServer) -> None:
    first = resolve(server.url("/media/image.png"), policy=loopback_policy())
    again = resolve(first, policy=AttachmentPolicy(allow_local_paths=False))
    assert again.data == PNG and again.media_type == "image/png"
    assert len(server.seen) == 1
    with pytest.raises(AttachmentError) as info:
        resolve(first, policy=AttachmentPolicy(max_bytes=10))
    assert info.value.rule == "too-large"


def test_base64_sources_are_not_kept_twice() -> None:
    att = resolve(base64.b64encode(PNG).decode())
    assert att.source is None and att.data == PNG

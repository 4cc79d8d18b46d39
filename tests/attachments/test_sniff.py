"""Media types from magic bytes (real files, and documented headers for formats Debian has no
encoder for in its default set), from file names, and normalisation of claimed types."""

from __future__ import annotations

import struct

import pytest

from cloverleaf.attachments.sniff import as_kind, from_name, kind_of, normalize, sniff

from .conftest import media


@pytest.mark.parametrize(("name", "expected"), [
    ("image.png", "image/png"),
    ("image.jpg", "image/jpeg"),
    ("document.pdf", "application/pdf"),
    ("audio.wav", "audio/wav"),
    ("audio.mp3", "audio/mpeg"),
    ("audio-id3.mp3", "audio/mpeg"),
    ("audio.flac", "audio/flac"),
    ("audio.ogg", "audio/ogg"),
])
def test_real_files(name: str, expected: str) -> None:
    assert sniff(media(name)) == expected


def _box(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"isom"


@pytest.mark.parametrize(("head", "expected"), [
    (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (_box(b"heic"), "image/heic"),
    (_box(b"mif1"), "image/heif"),
    (_box(b"M4A "), "audio/mp4"),
    (_box(b"isom"), "audio/mp4"),  # a generic brand with no video track in sight
    (_box(b"M4B "), "audio/mp4"),
    (_box(b"avif"), "image/avif"),
    (_box(b"avis"), "image/avif"),
    (struct.pack(">I", 24) + b"ftypmif1\x00\x00\x00\x00mif1avif", "image/avif"),  # AVIF as a compatible brand
    (_box(b"qt  "), "video/quicktime"),
    (_box(b"M4V "), "video/mp4"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "audio/webm"),
    (b"\xff\xf1\x50\x80\x02\x1f\xfc", "audio/aac"),
    (b"FORM\x00\x00\x00\x2eAIFFCOMM", "audio/aiff"),
    (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),  # MPEG-1 layer III frame header, 128 kbit/s 44.1 kHz
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    (b"\n\n%PDF-1.7\n", "application/pdf"),  # junk before the header is allowed by readers
])
def test_documented_signatures(head: bytes, expected: str) -> None:
    assert sniff(head + bytes(32)) == expected


@pytest.mark.parametrize("head", [
    b"",
    b"hello world, this is text",
    b"<html><body>",
    b"\xff\xff\xff\xff",  # sync bits but an invalid bitrate: not MP3
    b"\xff\xfa\xf0\x00",  # bitrate index 15 is "bad"
    b"RIFF\x00\x00\x00\x00AVI ",
])
def test_unrecognised(head: bytes) -> None:
    assert sniff(head) is None


def test_names_and_aliases() -> None:
    assert from_name("/tmp/Photo.JPEG") == "image/jpeg"
    assert from_name("https-path/a.b/voice.M4A") == "audio/mp4"
    assert from_name("C:\\docs\\report.pdf") == "application/pdf"
    assert from_name("archive.tar.gz") is None and from_name(None) is None
    assert normalize("Image/JPG; charset=binary") == "image/jpeg"
    assert normalize("audio/x-wav") == "audio/wav"
    assert kind_of("audio/mp3") == "audio"
    assert kind_of("application/pdf") == "pdf"
    assert kind_of("text/plain") is None
    assert as_kind("document") == "pdf" and as_kind("Image") == "image" and as_kind("video") is None


def _track(handler: bytes) -> bytes:
    """A ``hdlr`` box as found in a track: size, type, version and flags, predefined, handler."""
    return struct.pack(">I", 33) + b"hdlr" + bytes(4) + bytes(4) + handler + bytes(13)


@pytest.mark.parametrize("brand", [b"isom", b"mp42", b"3gp4"])
def test_a_generic_mp4_brand_is_told_apart_by_its_tracks(brand: bytes) -> None:
    moov = b"moov" + _track(b"soun")
    assert sniff(_box(brand) + moov) == "audio/mp4"
    assert sniff(_box(brand) + moov + _track(b"vide")) == "video/mp4"


@pytest.mark.parametrize("data", [_box(b"qt  "), _box(b"mp42") + _track(b"vide") + _track(b"soun")])
def test_video_is_refused_as_video_not_sent_as_audio(data: bytes) -> None:
    from cloverleaf._errors import AttachmentError
    from cloverleaf.attachments import resolve

    with pytest.raises(AttachmentError, match="is video") as err:
        resolve(data + bytes(32))
    assert err.value.rule == "unsupported-type"
    with pytest.raises(AttachmentError, match="is video"):
        resolve(data + bytes(32), type="audio")


def test_avif_is_an_image() -> None:
    from cloverleaf.attachments import resolve

    att = resolve(_box(b"avif") + bytes(32), type="image")
    assert (att.type, att.media_type) == ("image", "image/avif")
    assert from_name("photo.AVIF") == "image/avif"


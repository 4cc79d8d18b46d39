"""``cloverleaf image`` and ``cloverleaf embed`` check their own arguments before the paid call:
an image generated and then not written, or vectors fetched for a comparison that cannot be
made, were paid for and thrown away."""

from __future__ import annotations

import pytest

from cloverleaf.cli import main

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse


@pytest.fixture
def mylab(tmp_path, upstream):
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n')
    return str(config)


def test_image_into_a_folder_that_does_not_exist_is_refused_before_the_call(tmp_path, mylab, upstream):
    for out in (tmp_path / "no" / "such" / "x.png", tmp_path):
        with pytest.raises(SystemExit, match=r"cannot write .*give -o a file path .*nothing was sent"):
            main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)])
    assert upstream.seen == []


def test_embed_similarity_of_one_text_is_refused_before_the_call(mylab, upstream):
    with pytest.raises(SystemExit, match="--similarity needs at least two texts"):
        main(["--config", mylab, "embed", "-m", "mylab/text-embedding-3-small", "--similarity", "only one"])
    assert upstream.seen == []


def test_image_without_a_model_names_the_flag():
    """It said "pass model=", the SDK's argument, to someone at a shell."""
    with pytest.raises(SystemExit, match="pass -m MODEL"):
        main(["image", "a cat", "-o", "cat.png"])


def test_image_says_what_it_cost_and_spend_counts_it(tmp_path, upstream, monkeypatch, capsys):
    """Every image model cost None: ``cloverleaf image`` said nothing of the price and
    ``cloverleaf spend`` counted the call at an unknown cost. Two hd dall-e-3 images are $0.16."""
    import base64
    import json

    from .upstream import Reply

    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    upstream.queue(Reply(body=json.dumps({"created": 1, "data": [{"b64_json": png}, {"b64_json": png}]}).encode()))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.openai]\nbase_url = "{upstream.url}/v1"\n\n'
                      f'[store]\nurl = "sqlite:///{tmp_path / "calls.db"}"\n')
    assert main(["--config", str(config), "image", "a cat", "-m", "openai/dall-e-3", "-n", "2", "--quality", "hd",
                 "-o", str(tmp_path / "cat.png")]) == 0
    assert "cost: $0.160000 (2 images)" in capsys.readouterr().out
    assert main(["--config", str(config), "spend", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["calls"] == 1 and row["cost"] == pytest.approx(0.16) and row["unknown_cost"] == 0


def test_image_never_replaces_a_file_without_force(tmp_path, mylab, upstream, capsys):
    """`image -o cat.png` over an existing cat.png replaced it without a word (and `-n 2` its
    cat-1.png, cat-2.png): refused before the call unless --force; with it, replaced and said."""
    import base64
    import json

    from .upstream import Reply

    png = b"\x89PNG\r\n\x1a\nnew"
    (tmp_path / "cat.png").write_bytes(b"precious")
    (tmp_path / "cats-2.png").write_bytes(b"precious too")
    base = ["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1"]
    with pytest.raises(SystemExit, match=r"cat.png already exists; pass --force .*nothing was sent"):
        main([*base, "-o", str(tmp_path / "cat.png")])
    with pytest.raises(SystemExit, match=r"cats-2.png already exists; pass --force"):
        main([*base, "-n", "2", "-o", str(tmp_path / "cats.png")])
    assert upstream.seen == [] and (tmp_path / "cat.png").read_bytes() == b"precious"
    assert not (tmp_path / "cats-1.png").exists()
    upstream.queue(Reply(body=json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(png).decode()}]})
                         .encode()))
    capsys.readouterr()
    assert main([*base, "--force", "-o", str(tmp_path / "cat.png")]) == 0
    assert (tmp_path / "cat.png").read_bytes() == png and "wrote " in capsys.readouterr().out


def test_images_beyond_n_never_replace_a_file(tmp_path, mylab, upstream, capsys):
    """An upstream that answers more images than -n asked for: ``-o cat.png`` (n=1) was written as
    cat-1.png and cat-2.png, replacing cat-1.png, a file the check before the call never looked
    at, and leaving cat.png unwritten. The files asked for are the -n ones; an extra image goes
    to the next free name and never over a file that exists without --force."""
    import base64
    import json

    from .upstream import Reply

    png = base64.b64encode(b"\x89PNG\r\n\x1a\nnew").decode()
    (tmp_path / "cat-2.png").write_bytes(b"precious")
    three = {"created": 1, "data": [{"b64_json": png}] * 3}
    upstream.queue(Reply(body=json.dumps(three).encode()))
    assert main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(tmp_path / "cat.png")]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "cat.png").read_bytes() == base64.b64decode(png) and f"wrote {tmp_path / 'cat.png'}" in out
    assert (tmp_path / "cat-2.png").read_bytes() == b"precious"
    assert f"{tmp_path / 'cat-2.png'} already exists; not replaced" in err
    assert (tmp_path / "cat-3.png").read_bytes() == base64.b64decode(png)
    upstream.queue(Reply(body=json.dumps(three).encode()))
    assert main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "--force",
                 "-o", str(tmp_path / "cat.png")]) == 0
    assert (tmp_path / "cat-2.png").read_bytes() == base64.b64decode(png)


def _answer_a_link(upstream, url):
    import json

    from .upstream import Reply

    upstream.queue(Reply(body=json.dumps({"created": 1, "data": [{"url": url}]}).encode()))


def test_image_answered_as_a_link_is_downloaded_and_written(tmp_path, upstream, monkeypatch, capsys):
    """A provider that answers a URL instead of image data (some ignore response_format) left
    `image -o cat.png` with no file, a line on stderr and status 0. The link is fetched over the
    client's transport, without the provider's key, and the file written."""
    from .upstream import Reply

    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n'
                      'api_key_env = "MYLAB_KEY"\n')
    monkeypatch.setenv("MYLAB_KEY", "sk-lab-secret")
    png = b"\x89PNG\r\n\x1a\nfrom a link"
    _answer_a_link(upstream, f"{upstream.url}/files/cat.png?sig=abc")
    upstream.queue(Reply(headers={"content-type": "image/png"}, body=png))
    out = tmp_path / "cat.png"
    assert main(["--config", str(config), "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)]) == 0
    assert out.read_bytes() == png and f"wrote {out} ({len(png)} bytes, image/png)" in capsys.readouterr().out
    fetched = upstream.seen[-1]
    assert (fetched.method, fetched.path) == ("GET", "/files/cat.png?sig=abc")
    assert "authorization" not in fetched.headers and "sk-lab-secret" not in str(fetched.headers)


def test_image_link_that_gives_no_image_fails_with_the_link(tmp_path, mylab, upstream):
    """A link that answers no image (expired: a 404 page) writes nothing and fails, saying where
    the image is (and a web page is never written into cat.png)."""
    from .upstream import Reply

    link = f"{upstream.url}/files/gone.png"
    _answer_a_link(upstream, link)
    upstream.queue(Reply(status=404, headers={"content-type": "text/html"}, body=b"<html>expired</html>"))
    out = tmp_path / "cat.png"
    with pytest.raises(SystemExit, match=rf"not written, .*cat.png: .*HTTP 404.*fetch it yourself from {link}"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)])
    _answer_a_link(upstream, link)
    upstream.queue(Reply(headers={"content-type": "text/html"}, body=b"<html>sign in</html>"))
    with pytest.raises(SystemExit, match=r"gave no image \(HTTP 200, text/html"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)])
    assert not out.exists()


def test_a_local_only_image_is_not_fetched_from_a_public_host(tmp_path, upstream):
    """--local-only sends nothing beyond this machine or network: not a download either."""
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n'
                      '[[models]]\nname = "lab-image"\nprovider = "mylab"\nidentifier = "gpt-image-1"\n'
                      'is_public = false\n')
    _answer_a_link(upstream, "http://8.8.8.8/cat.png")
    out = tmp_path / "cat.png"
    with pytest.raises(SystemExit, match=r"not local .*local-only; fetch it yourself from http://8.8.8.8/cat.png"):
        main(["--config", str(config), "image", "a cat", "-m", "lab-image", "--local-only", "-o", str(out)])
    assert [s.method for s in upstream.seen] == ["POST"] and not out.exists()


def test_an_image_link_that_redirects_is_followed_a_bounded_number_of_times(tmp_path, mylab, upstream, capsys):
    """A link that redirects (a CDN's signed URL) gave "no image (HTTP 302)" and no file: redirects
    are followed, each hop checked as the link is, at most MAX_REDIRECTS of them."""
    from cloverleaf.cli.image_links import MAX_REDIRECTS

    from .upstream import Reply

    png = b"\x89PNG\r\n\x1a\nredirected"
    _answer_a_link(upstream, f"{upstream.url}/files/a.png")
    upstream.queue(Reply(status=302, headers={"location": "/files/b.png"}, body=b""))
    upstream.queue(Reply(headers={"content-type": "image/png"}, body=png))
    out = tmp_path / "cat.png"
    assert main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)]) == 0
    assert out.read_bytes() == png and upstream.seen[-1].path == "/files/b.png"
    _answer_a_link(upstream, f"{upstream.url}/files/loop.png")
    for _ in range(MAX_REDIRECTS + 1):
        upstream.queue(Reply(status=307, headers={"location": "/files/loop.png"}, body=b""))
    with pytest.raises(SystemExit, match=rf"redirected more than {MAX_REDIRECTS} times; fetch it yourself"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "--force", "-o", str(out)])


def test_an_image_link_over_the_size_cap_is_not_written(tmp_path, mylab, upstream, monkeypatch):
    """A link's body was read whole and written, however large (a 60 MB answer became a 60 MB file)."""
    from cloverleaf.cli import image_links

    from .upstream import Reply

    monkeypatch.setattr(image_links, "MAX_IMAGE_BYTES", 1000)
    out = tmp_path / "cat.png"
    _answer_a_link(upstream, f"{upstream.url}/files/big.png")
    upstream.queue(Reply(headers={"content-type": "image/png"}, body=b"\x89PNG\r\n\x1a\n" + b"0" * 2000))
    with pytest.raises(SystemExit, match=r"answered 2,008 bytes, over the 1,000-byte limit for an image"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)])
    _answer_a_link(upstream, f"{upstream.url}/files/big.png")   # no Content-Length: cut off as it runs past
    upstream.queue(Reply(headers={"content-type": "image/png"}, chunks=[b"\x89PNG\r\n\x1a\n", b"0" * 2000]))
    with pytest.raises(SystemExit, match=r"more than 1,000 bytes, the limit for an image"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)])
    assert not out.exists()


def test_an_octet_stream_link_is_written_only_when_its_bytes_are_an_image(tmp_path, mylab, upstream):
    from .upstream import Reply

    out = tmp_path / "cat.png"
    _answer_a_link(upstream, f"{upstream.url}/files/x")
    upstream.queue(Reply(headers={"content-type": "application/octet-stream"}, body=b"<html>sign in</html>"))
    with pytest.raises(SystemExit, match=r"gave no image \(HTTP 200, application/octet-stream"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)])
    assert not out.exists()


def test_a_plain_http_link_outside_is_not_fetched(tmp_path, mylab, upstream):
    """Only https is fetched from a host that is not local (plain http on this machine or its network
    is a local server's, and allowed)."""
    _answer_a_link(upstream, "http://8.8.8.8/cat.png")
    with pytest.raises(SystemExit, match=r"plain http link to a host that is not local .*only https"):
        main(["--config", mylab, "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(tmp_path / "cat.png")])
    assert [s.method for s in upstream.seen] == ["POST"]


def test_a_local_only_link_that_redirects_outside_is_not_followed(tmp_path, upstream):
    """The local-only rule held for the link only; a redirect from it is held to it too."""
    from .upstream import Reply

    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n'
                      '[[models]]\nname = "lab-image"\nprovider = "mylab"\nidentifier = "gpt-image-1"\n'
                      'is_public = false\n')
    _answer_a_link(upstream, f"{upstream.url}/files/cat.png")
    upstream.queue(Reply(status=302, headers={"location": "https://8.8.8.8/cat.png"}, body=b""))
    with pytest.raises(SystemExit, match=r"not local .*this call is local-only"):
        main(["--config", str(config), "image", "a cat", "-m", "lab-image", "--local-only",
              "-o", str(tmp_path / "cat.png")])
    assert [s.path for s in upstream.seen][-1] == "/files/cat.png"


def test_an_image_call_that_came_back_incomplete_writes_what_came_and_fails_saying_so(tmp_path, upstream,
                                                                                       monkeypatch, capsys):
    """Imagen's n=6 is two calls; the second failing lost the four images the first made."""
    import base64
    import json

    from .upstream import Reply

    png = base64.b64encode(b"\x89PNG\r\n\x1a\nimagen").decode()
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.gemini]\nbase_url = "{upstream.url}/v1beta"\n[defaults]\nmax_retries = 0\n')
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-secret")
    upstream.queue(Reply(body=json.dumps({"predictions": [{"bytesBase64Encoded": png}] * 4}).encode()))
    upstream.queue(Reply(status=500, body=b'{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}'))
    with pytest.raises(SystemExit, match=r"only 4 of 6 images: .*boom"):
        main(["--config", str(config), "image", "a fox", "-m", "gemini/imagen-4.0-generate-001", "-n", "6",
              "-o", str(tmp_path / "fox.png")])
    assert [(tmp_path / f"fox-{i}.png").exists() for i in range(1, 7)] == [True] * 4 + [False] * 2
    assert "cost: $0.160000 (4 images)" in capsys.readouterr().out


def test_a_link_into_this_machines_network_from_a_provider_outside_is_not_fetched(tmp_path, upstream, monkeypatch):
    """The rule that a host outside may not steer this machine at its own network held for
    redirects only: a hosted provider's link itself to http://127.0.0.1/... (or a router's
    10.0.0.1) was fetched. The provider here is "outside" by its name's answer (localhost made
    public for the check; the sockets stay on loopback), and the link's host is this machine."""
    from cloverleaf import _privacy

    real = _privacy._system_resolver
    monkeypatch.setattr(_privacy, "_system_resolver",
                        lambda host, port: ["8.8.8.8"] if host == "localhost" else real(host, port))
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.hosted]\nkind = "openai"\nbase_url = "http://localhost:{upstream.port}/v1"\n')
    _answer_a_link(upstream, f"{upstream.url}/internal/admin.png")
    out = tmp_path / "cat.png"
    with pytest.raises(SystemExit, match=r"is from a provider outside this machine's network, and points at a host "
                                         r"on this machine .*not followed; fetch it yourself"):
        main(["--config", str(config), "image", "a cat", "-m", "hosted/gpt-image-1", "-o", str(out)])
    assert [s.method for s in upstream.seen] == ["POST"] and not out.exists()   # nothing fetched

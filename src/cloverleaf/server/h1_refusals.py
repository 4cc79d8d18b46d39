"""The answers the ``h1`` protocol (:mod:`.h1_server`) gives itself, to requests the app never
sees: a head too large (431) or a request-target too long (414), a target that is not a path
(CONNECT, ``*``), a missing or repeated Host, a transfer coding it cannot decode (501). Each
is JSON in OpenAI's shape (the API is not known yet) saying what to send instead, and the
connection is closed after it. Split from the protocol so its hot path stays one module.
"""

from __future__ import annotations

import httptools

from .h1_cycle import status_line

#: a request head (request line and headers) may not be larger (431), nor its request-target (414)
MAX_HEAD = 64 * 1024
MAX_URL = 8 * 1024
#: added to ``H1Protocol._framing`` per Transfer-Encoding line other than ``chunked`` (see check_framing)
CODING = 1 << 16


def error_answer(status: int, message: str, code: str, extra: bytes = b"") -> bytes:
    """A whole answer to a request the app never saw (a protocol error): JSON in OpenAI's
    shape, as every other error (the API is not known yet), then the connection is closed."""
    text = "".join(c for c in message if " " <= c <= "~").replace("\\", "/").replace('"', "'")
    body = (b'{"error": {"message": "%s", "type": "invalid_request_error", "param": null, "code": "%s"}}'
            % (text.encode("ascii"), code.encode("ascii")))
    return (b"%scontent-type: application/json\r\ncontent-length: %d\r\nx-cloverleaf-overhead-ms: 0.000\r\n"
            b"%sconnection: close\r\n\r\n%s" % (status_line(status), len(body), extra, body))


class Refused(Exception):
    """Raised in a parser callback to stop parsing a head the server will not take."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer


def not_a_path_answer() -> bytes:
    return error_answer(400, "the request-target is not a path: CONNECT, '*' and unparsable absolute URLs are not "
                             "supported; send origin-form requests like 'POST /v1/chat/completions'",
                        "bad_http_request")


def split_target(url: bytes, method: bytes) -> tuple[bytes, bytes]:
    """An absolute-form target (``http://host/path?q``) as its path and query; anything else
    that is not a path (CONNECT's ``host:port``, ``*``) is refused saying so (llhttp's error
    was a bare "User callback error")."""
    if method == b"CONNECT":
        raise Refused(not_a_path_answer())
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise Refused(not_a_path_answer()) from None
    if parsed.schema is None:  # '*' parses as a path
        raise Refused(not_a_path_answer())
    return parsed.path or b"/", parsed.query or b""


def url_too_long() -> Refused:
    return Refused(error_answer(414, f"the request-target (URL) is longer than {MAX_URL} bytes; the connection "
                                      "is closed", "url_too_long"))


def head_too_large() -> Refused:
    return Refused(error_answer(431, f"the request head (request line and headers) is larger than {MAX_HEAD} "
                                      "bytes; the connection is closed", "headers_too_large"))


def check_framing(framing: int, version: str) -> None:
    """A head without exactly one Host (RFC 9112 §3.2: a 400; HTTP/1.0 may omit it), or
    with a transfer coding other than ``chunked``: llhttp takes the chunked framing off
    ``gzip, chunked`` and the app would get the body still compressed (a 501, RFC 9112
    §6.1). ``framing`` is what ``on_header`` counted: Host lines, plus ``CODING`` per
    Transfer-Encoding line that is not plain ``chunked`` (one integer to test per request:
    this is called only when it is not exactly 1)."""
    hosts, coding = framing % CODING, framing >= CODING
    if hosts > 1:
        raise Refused(error_answer(400, "the request has more than one Host header; send exactly one",
                                    "bad_host_header"))
    if hosts == 0 and version != "1.0":
        raise Refused(error_answer(400, "an HTTP/1.1 request must have a Host header (RFC 9112 section 3.2); "
                                         "send one, e.g. 'Host: 127.0.0.1:4000'", "bad_host_header"))
    if coding:
        raise Refused(error_answer(501, "transfer codings other than 'chunked' (such as gzip) are not supported; "
                                         "send the body with Content-Length or 'Transfer-Encoding: chunked' "
                                         "alone", "unsupported_transfer_encoding"))

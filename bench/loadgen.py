"""A closed-loop HTTP/1.1 load generator for Chat Completions, with time-to-first-token.

Why our own: ``wrk`` and friends cannot see *inside* an SSE stream, and we need the moment
the first token arrives, for every target alike. This is a raw ``asyncio.Protocol`` client
(pre-built request bytes, an incremental response parser for content-length and chunked
bodies), so that it costs the machine far less than any gateway it measures.

``concurrency`` workers each hold one keep-alive connection and send requests back to back.
A warmup phase (not measured) opens the connections and warms the target's code paths;
then either a fixed duration (requests *started and finished* inside the window count) or a
fixed count per worker. Every non-2xx answer, dropped connection or truncated stream is an
error, counted and never folded into latency.

Run as its own process (``python -m bench.loadgen --url ... --json``); prints one JSON
object: requests/s, latency percentiles (ms), TTFT percentiles for streams, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_CONTENT_RE = re.compile(rb'"content"\s*:\s*"[^"]')


@dataclass
class Sample:
    started: float
    finished: float
    ttft: float | None = None


@dataclass
class Result:
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    #: every answer received, warmup included (the denominator for a gateway's CPU per request)
    completed: int = 0

    def error(self, why: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = why


class ClientProtocol(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends the bytes and waits for one whole
    response, noting when the first token of an SSE body arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, float | None, bool]] | None = None
        self.lost: Exception | None = None
        self._reset()

    def _reset(self) -> None:
        self.state = 0  # 0 headers, 1 content-length body, 2 chunked size line, 3 chunk data, 4 trailer
        self.status = 0
        self.remaining = 0
        self.ttft: float | None = None
        self.want_ttft = False
        self.done_seen = False
        self.chunks = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("connection closed by the server")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    async def request(self, data: bytes, stream: bool) -> tuple[int, float | None, bool]:
        if self.lost is not None:
            raise self.lost
        self._reset()
        self.want_ttft = stream
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)  # type: ignore[union-attr]
        return await self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except Exception as exc:  # noqa: BLE001 - a parse failure is the target's error
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)

    def _body(self, piece: bytes | bytearray) -> None:
        if self.want_ttft:
            found = len(_CONTENT_RE.findall(piece))
            if found:
                self.chunks += found
                if self.ttft is None:
                    self.ttft = time.perf_counter()
            if b"[DONE]" in piece:
                self.done_seen = True

    def _finish(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.ttft, self.done_seen))

    def _parse(self) -> None:
        buf = self.buf
        while buf:
            if self.state == 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                del buf[: end + 4]
                self.status = int(head[9:12])
                pos = head.find(b"\r\ncontent-length:")
                if pos >= 0:
                    stop = head.find(b"\r\n", pos + 2)
                    self.remaining = int(head[pos + 17: stop if stop >= 0 else None])
                    self.state = 1
                    if self.remaining == 0:
                        self._finish()
                        self.state = 0
                elif b"\r\ntransfer-encoding: chunked" in head:
                    self.state = 2
                else:
                    raise ValueError("response without content-length or chunked encoding")
            elif self.state == 1:
                take = min(self.remaining, len(buf))
                self._body(buf[:take])
                del buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self.state = 0
                    self._finish()
            elif self.state == 2:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                size = int(bytes(buf[:eol]).split(b";")[0], 16)
                del buf[: eol + 2]
                if size == 0:
                    self.state = 4
                else:
                    self.remaining = size + 2  # data + CRLF
                    self.state = 3
            elif self.state == 3:
                take = min(self.remaining, len(buf))
                self._body(buf[:take])
                del buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self.state = 2
            elif self.state == 4:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                del buf[: eol + 2]
                if eol == 0:  # the empty line after the (usually absent) trailers
                    self.state = 0
                    self._finish()


def build_request(url: str, model: str, stream: bool, api_key: str,
                  headers: list[str] | None = None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Say hello."}],
                               "max_tokens": 64}
    if stream:
        payload["stream"] = True
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (f"POST {parts.path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"accept: application/json\r\nauthorization: Bearer {api_key}\r\n"
            + "".join(f"{h.strip()}\r\n" for h in headers or ())
            + f"content-length: {len(body)}\r\n\r\n").encode()
    return host, port, head + body


def _close(proto: ClientProtocol | None) -> None:
    """Close a worker's connection when it is done with it: left to the garbage collector, it
    stays open, and a server's ``wait_closed()`` (which waits for its connections since Python
    3.12) never returns."""
    if proto is not None and proto.transport is not None:
        proto.transport.close()


async def _worker(host: str, port: int, data: bytes, stream: bool, result: Result, warm_until: float,
                  stop_at: float, per_worker: int | None, warm_count: int, start_at: float = 0.0,
                  expect_chunks: int = 0) -> None:
    """Duration mode (``per_worker`` None): a request counts when it *finishes* inside
    [warm_until, stop_at] (the caller cancels the workers at ``stop_at``). Count mode: the
    first ``warm_count`` requests are warmup, then ``per_worker`` are measured; none starts
    after ``stop_at``. ``start_at``: the connection is opened at once, the first request waits
    until then (a burst started evenly over a ramp). ``expect_chunks``: a stream with fewer
    content chunks is not intact (an error)."""
    loop = asyncio.get_running_loop()
    proto: ClientProtocol | None = None
    done = 0
    warmed = 0
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at or (per_worker is not None and done >= per_worker):
                return
            if proto is None or proto.lost is not None:
                try:
                    _, proto = await loop.create_connection(ClientProtocol, host, port)
                except OSError as exc:
                    result.error(f"connect: {exc}")
                    done += 1  # a refused connection still uses up one of this worker's requests
                    await asyncio.sleep(0.05)
                    continue
            if start_at > time.perf_counter():
                await asyncio.sleep(start_at - time.perf_counter())
            started = time.perf_counter()
            try:
                status, ttft, done_seen = await proto.request(data, stream)
            except Exception as exc:  # noqa: BLE001
                result.error(f"{type(exc).__name__}: {exc}")
                _close(proto)
                proto = None
                continue
            finished = time.perf_counter()
            result.completed += 1
            if per_worker is None:
                if finished < warm_until or finished > stop_at:
                    continue
            elif warmed < warm_count:
                warmed += 1
                continue
            done += 1
            if status >= 300:
                result.error(f"HTTP {status}")
            elif stream and (ttft is None or not done_seen):
                result.error("stream without content or without [DONE]")
            elif stream and proto.chunks < expect_chunks:
                result.error(f"stream with {proto.chunks} of {expect_chunks} content chunks")
            else:
                result.samples.append(Sample(started, finished, None if ttft is None else ttft - started))
    finally:  # on Python 3.12+ the server's wait_closed() waits for every connection left open
        _close(proto)


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def summarise(result: Result, window: float) -> dict[str, Any]:
    lat = sorted((s.finished - s.started) * 1000.0 for s in result.samples)
    ttft = sorted(s.ttft * 1000.0 for s in result.samples if s.ttft is not None)
    out: dict[str, Any] = {
        "count": len(lat), "completed_all": result.completed, "errors": result.errors, "first_error": result.first_error,
        "window_s": window, "rps": len(lat) / window if window > 0 else 0.0,
        "mean_ms": sum(lat) / len(lat) if lat else None,
    }
    for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)):
        out[f"{name}_ms"] = _pct(lat, q)
        out[f"ttft_{name}_ms"] = _pct(ttft, q)
    return out


async def run(url: str, model: str, *, concurrency: int, duration: float | None, warmup: float,
              per_worker: int | None = None, warm_count: int = 1, max_seconds: float | None = None,
              stream: bool = False, api_key: str = "sk-bench", headers: list[str] | None = None,
              ramp: float = 0.0, expect_chunks: int = 0) -> dict[str, Any]:
    host, port, data = build_request(url, model, stream, api_key, headers)
    result = Result()
    t0 = time.perf_counter()
    warm_until = t0 + warmup
    if per_worker is None:
        stop_at = warm_until + (duration or 0.0)
    else:  # no new request after the cap (warmup included); requests under way still finish
        stop_at = t0 + max_seconds if max_seconds else float("inf")
    tasks = [asyncio.create_task(_worker(host, port, data, stream, result, warm_until, stop_at, per_worker,
                                         warm_count, t0 + ramp * i / concurrency if ramp else 0.0,
                                         expect_chunks)) for i in range(concurrency)]
    if per_worker is None:
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        for task in tasks:  # requests still under way at the end are not waited for
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    else:
        await asyncio.gather(*tasks)
    if per_worker is None:
        window = duration or 0.0
    else:
        measured = result.samples
        window = (max(s.finished for s in measured) - min(s.started for s in measured)) if measured else 0.0
    return summarise(result, window)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="full URL of the chat completions endpoint")
    parser.add_argument("--model", default="mock-model")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (after warmup)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured warmup")
    parser.add_argument("--per-worker", type=int, default=None,
                        help="measure this many requests per worker instead of a duration")
    parser.add_argument("--warm-count", type=int, default=1, help="unmeasured requests per worker (with --per-worker)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="with --per-worker: start no request after this many seconds")
    parser.add_argument("--stream", action="store_true", help="send stream=true and measure TTFT")
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--header", action="append", default=[], help="an extra request header 'Name: value'")
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="start the workers' requests evenly over this many seconds (a burst)")
    parser.add_argument("--expect-chunks", type=int, default=0,
                        help="a stream with fewer content chunks than this counts as an error (not intact)")
    args = parser.parse_args(argv)
    from .mock_upstream import install_fast_loop

    loop_name = install_fast_loop()
    out = asyncio.run(run(args.url, args.model, concurrency=args.concurrency, duration=args.duration,
                          warmup=args.warmup, per_worker=args.per_worker, warm_count=args.warm_count,
                          max_seconds=args.max_seconds, stream=args.stream, api_key=args.api_key,
                          headers=args.header, ramp=args.ramp, expect_chunks=args.expect_chunks))
    out["loop"] = loop_name
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

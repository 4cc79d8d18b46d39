"""Instructions per streamed chunk: what relaying one SSE chunk costs, the same figure on every run.

Why: issue 13's burst target (256 streams of 64 chunks) is decided by what the gateway spends
per chunk (85 µs against the floor relay's 27 µs), and a timed run on this shared machine
cannot see a 1-2% change in it. ``bench/instructions.py`` counts a non-streaming request;
this counts, in the same server process under callgrind, ``--requests`` non-streaming chat
completions and then ``--streams`` streamed ones (64 chunks each, 20 ms apart, so each chunk
arrives and is relayed on its own as in the burst scenario; on two connections by default: under
valgrind's slowdown more streams at once fall behind, their chunks arrive several to a read, and
the figure moves by a tenth between runs), and reports::

    per chunk = (instructions per stream - instructions per request) / 64

(the per-request work both share — h1 parse, dispatch, the upstream request, the call record —
taken out). The idle server's background rate is taken out of both, as in
``bench/instructions.py``::

    python -m bench.stream_instructions                  # open
    python -m bench.stream_instructions --configs open,governed --repeats 2
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import instructions as I
from bench import mock_upstream
from bench import targets as T


def measure(config: I.Config, requests: int, streams: int, connections: int, warmup: int) -> tuple[float, float]:
    """(instructions per request, per streamed chunk) for one configuration, in one server."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"instr-stream-{config.name}-"))
    out_dir = run_dir / "callgrind"
    out_dir.mkdir()
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out.%p",
               "--collect-atstart=yes", "--dump-instr=no")
    mock = T.start_mock(run_dir, None)
    target = None
    try:
        target = T.start_cloverleaf(mock, run_dir, None, name=config.name, governed=config.governed,
                                    wrapper=wrapper, toml=I.config_toml(config, mock.base, run_dir),
                                    key_policy=config.key_policy, ready_timeout=600)
        url, model = target.endpoints["instant"]
        stream_url, stream_model = target.endpoints["d20"]
        key = target.api_key or T.MASTER_KEY
        I.drive(url, model, key, warmup, connections)
        I.drive(stream_url, stream_model, key, max(2, warmup // 50), connections, stream=True)
        assert target.process is not None
        pid = target.process.pid
        time.sleep(I.WRITER_SETTLE_SECONDS)

        def counted(work: Callable[[], None]) -> tuple[int, float]:
            I.callgrind(pid, "--zero")
            started = time.monotonic()
            work()
            elapsed = time.monotonic() - started
            before = set(out_dir.glob("cg.out*"))
            I.callgrind(pid, "--dump")
            return I.dumped_total(out_dir, before), elapsed

        idle, idle_seconds = counted(lambda: time.sleep(I.IDLE_SECONDS))
        rate = idle / idle_seconds

        def settled(work: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                work()
                time.sleep(I.WRITER_SETTLE_SECONDS)
            return run

        busy, seconds = counted(settled(lambda: I.drive(url, model, key, requests, connections)))
        per_request = (busy - rate * seconds) / requests
        busy, seconds = counted(settled(lambda: I.drive(stream_url, stream_model, key, streams, connections, stream=True)))
        per_stream = (busy - rate * seconds) / streams
        return per_request, (per_stream - per_request) / mock_upstream.STREAM_CHUNKS
    finally:
        for t in (target, mock):
            if t is not None:
                t.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="open",
                    help=f"comma-separated, of: {', '.join(c for c in I.CONFIGS if c != 'floor')}")
    ap.add_argument("--requests", type=I._positive, default=200)
    ap.add_argument("--streams", type=I._positive, default=16)
    ap.add_argument("--connections", type=I._positive, default=2)
    ap.add_argument("--warmup", type=I._positive, default=200)
    ap.add_argument("--repeats", type=I._positive, default=1)
    ap.add_argument("--parallel", type=I._positive, default=2)
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (Debian: apt install valgrind)", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in I.CONFIGS or I.CONFIGS[n].floor]
    if unknown:
        print(f"unknown configuration(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    lock = threading.Lock()

    def run(name: str) -> None:
        figures = measure(I.CONFIGS[name], args.requests, args.streams, args.connections, args.warmup)
        with lock:
            results[name].append(figures)

    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        for done in [pool.submit(run, n) for n in names for _ in range(args.repeats)]:
            done.result()
    print(f"instructions (callgrind, every thread, less the idle rate): {args.requests} requests, then "
          f"{args.streams} streams of {mock_upstream.STREAM_CHUNKS} chunks 20 ms apart, "
          f"over {args.connections} connections")
    for name, runs in results.items():
        listed = ", ".join(f"{r / 1000:,.0f}k req / {c / 1000:,.1f}k chunk" for r, c in runs)
        print(f"  {name:10s} per request {min(r for r, _ in runs) / 1000:7,.0f}k   per streamed chunk "
              f"{min(c for _, c in runs) / 1000:6,.1f}k   (runs: {listed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

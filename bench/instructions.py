"""CPU per request counted in machine instructions: the same figure on every run.

Why: on a shared machine a timed cell moves by a quarter between repetitions, so a change of
10-20% in what a request costs — governance against the open path, one optimisation — is
inside the noise of ``bench/run.sh``. Counting the instructions the server executes per
request (valgrind's callgrind, which simulates the CPU) gives a figure that moves by about
1% between runs, whatever else the machine is doing. It is a proxy: it does not see cache
misses or system-call latency, and a request runs some 50 times slower under valgrind, so
timers fire more often per request (the store's writer is told to flush every 3 s to keep
its batches near the size they have at full speed; the virtual-key sync still runs every second).
Use it to compare configurations and commits; use ``bench/run.sh`` for throughput.

Each configuration is ``cloverleaf serve`` (one worker, the production server path: h1,
dispatch, the gateway, the h1 client, the store's writer thread) started under callgrind
against the bench mock (instant upstream). The client warms it up and waits for the writer
to commit; the counters are read over an idle spell (the background chores' rate), then
over ``--requests`` chat completions on ``--connections`` keep-alive connections plus the
wait for the writer to commit them; instructions per request are that total (every thread),
less the idle rate over the same time, over the count::

    python -m bench.instructions                     # open, governed, and the floor
    python -m bench.instructions --ablation          # what each part of governance costs
    python -m bench.instructions --configs open,governed --requests 500

Needs ``valgrind`` (Debian: ``apt install valgrind``). Configurations run two at a time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import targets as T


@dataclass(frozen=True)
class Config:
    """One configuration: the benchmark's TOML (governed or open) less ``drop_tables``, the
    virtual key's policy (None: ``targets.KEY_POLICY``), or the floor relay instead."""

    name: str
    what: str
    governed: bool = False
    drop_tables: tuple[str, ...] = ()          # TOML tables removed from the governed config
    key_policy: dict[str, float] | None = None
    floor: bool = False


KEY_BUDGET = {"budget": T.KEY_POLICY["budget"]}
KEY_LIMITS = {"rpm": T.KEY_POLICY["rpm"], "tpm": T.KEY_POLICY["tpm"]}
LIMITS, BUDGETS = ("limits.gov", "limits.gov20"), ("budgets.gov", "budgets.gov20")

CONFIGS = {c.name: c for c in (
    Config("floor", "the bare Python relay (bench/floor_proxy.py): the least a Python gateway adds", floor=True),
    Config("open", "cloverleaf open: the store recording every call, master key"),
    Config("governed", "cloverleaf governed: as bench/run.sh (key with budget and rpm/tpm, route rpm/tpm and "
                       "budget)", governed=True),
    Config("key", "a virtual key with no budget or limits; priced route, no limits or budgets", governed=True,
           drop_tables=LIMITS + BUDGETS, key_policy={}),
    Config("key+route-limits", "... plus the route's rpm/tpm limits", governed=True, drop_tables=BUDGETS,
           key_policy={}),
    Config("key+route-budget", "... plus the route's budget", governed=True, drop_tables=LIMITS, key_policy={}),
    Config("key+key-limits", "... plus the key's rpm/tpm limits", governed=True, drop_tables=LIMITS + BUDGETS,
           key_policy=KEY_LIMITS),
    Config("key+key-budget", "... plus the key's budget", governed=True, drop_tables=LIMITS + BUDGETS,
           key_policy=KEY_BUDGET),
)}
DEFAULT = ("floor", "open", "governed")
ABLATION = ("open", "key", "key+route-limits", "key+route-budget", "key+key-limits", "key+key-budget", "governed")

#: Longer than the writer's flush interval (``config_toml``): by then every record queued is committed.
WRITER_SETTLE_SECONDS = 4.0
#: How long the idle server is counted, to take its background work out of the figure.
IDLE_SECONDS = 8.0

CHAT = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}


def config_toml(config: Config, mock_base: str, run_dir: Path) -> str:
    """The benchmark's configuration with ``config.drop_tables`` removed and the store's
    writer flushing every 3 s (at full speed it commits every 100 calls; under valgrind a
    200 ms flush would commit every few calls and count per-batch costs 50 times over)."""
    text = T.cloverleaf_toml(mock_base, run_dir / config.name, config.governed)
    for table in config.drop_tables:
        text, found = re.subn(rf"^\[{re.escape(table)}\]\n(?:[^\[\n][^\n]*\n)*", "", text, flags=re.M)
        if not found:
            raise ValueError(f"no [{table}] table in the benchmark configuration")
    return text.replace("[store]\n", "[store]\nflush_ms = 3000\n", 1)


def drive(url: str, model: str, api_key: str | None, requests: int, connections: int, *,
          stream: bool = False) -> None:
    """``requests`` chat completions over ``connections`` keep-alive connections; every
    answer must be a 200 (streamed ones, ``stream``, must end with ``[DONE]``)."""
    body = json.dumps({"model": model, **({"stream": True} if stream else {}), **CHAT}).encode()
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    host, _, rest = url.removeprefix("http://").partition("/")
    path = "/" + rest

    def one_connection(count: int) -> None:
        conn = http.client.HTTPConnection(host, timeout=300)
        try:
            for _ in range(count):
                conn.request("POST", path, body, headers)
                answer = conn.getresponse()
                data = answer.read()
                if answer.status != 200 or (stream and b"data: [DONE]" not in data):
                    raise RuntimeError(f"{url}: {answer.status} {data[-300:]!r}")
        finally:
            conn.close()

    shares = [requests // connections + (1 if i < requests % connections else 0) for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        for done in [pool.submit(one_connection, n) for n in shares if n]:
            done.result()


def callgrind(pid: int, command: str) -> None:
    subprocess.run(["callgrind_control", command, str(pid)], check=True, capture_output=True, timeout=600)


def dumped_total(out_dir: Path, before: set[Path]) -> int:
    """The instruction total of the dump ``callgrind_control --dump`` just wrote (every thread)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in sorted(set(out_dir.glob("cg.out*")) - before):
            text = path.read_text(errors="replace")
            found = re.search(r"^(?:summary|totals): (\d+)", text, flags=re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.5)
    raise RuntimeError(f"callgrind wrote no dump in {out_dir}")


def measure(config: Config, requests: int, connections: int, warmup: int) -> float:
    """Instructions per request for one configuration (a server started, measured, stopped),
    less what the idle server does in the same time: under valgrind the measured requests take
    seconds, and the once-a-second chores (the virtual-key and model-registry syncs) would be
    counted per request some 50 times over."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"instr-{config.name}-"))
    out_dir = run_dir / "callgrind"
    out_dir.mkdir()
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out.%p",
               "--collect-atstart=yes", "--dump-instr=no")
    mock = T.start_mock(run_dir, None)
    target = None
    try:
        if config.floor:
            target = T.start_floor(mock, run_dir, None, wrapper)
        else:
            target = T.start_cloverleaf(mock, run_dir, None, name=config.name, governed=config.governed,
                                        wrapper=wrapper, toml=config_toml(config, mock.base, run_dir),
                                        key_policy=config.key_policy, ready_timeout=600)
        url, model = target.endpoints["instant"]
        key = target.api_key or (None if config.floor else T.MASTER_KEY)
        drive(url, model, key, warmup, connections)
        assert target.process is not None
        pid = target.process.pid
        time.sleep(WRITER_SETTLE_SECONDS)   # the warm-up's records are committed outside the count

        def counted(work: Callable[[], None]) -> tuple[int, float]:
            """Instructions while ``work`` runs, and its seconds."""
            callgrind(pid, "--zero")
            started = time.monotonic()
            work()
            elapsed = time.monotonic() - started
            before = set(out_dir.glob("cg.out*"))
            callgrind(pid, "--dump")
            return dumped_total(out_dir, before), elapsed

        idle, idle_seconds = counted(lambda: time.sleep(IDLE_SECONDS))

        def load() -> None:
            drive(url, model, key, requests, connections)
            time.sleep(WRITER_SETTLE_SECONDS)   # the measured records are committed inside the count

        busy, busy_seconds = counted(load)
        return (busy - idle / idle_seconds * busy_seconds) / requests
    finally:
        for t in (target, mock):
            if t is not None:
                t.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=",".join(DEFAULT), help=f"comma-separated, of: {', '.join(CONFIGS)}")
    ap.add_argument("--ablation", action="store_true", help=f"the configurations {', '.join(ABLATION)}")
    ap.add_argument("--requests", type=_positive, default=400)
    ap.add_argument("--connections", type=_positive, default=1)
    ap.add_argument("--warmup", type=_positive, default=200)
    ap.add_argument("--repeats", type=_positive, default=1, help="measure each configuration this many times")
    ap.add_argument("--parallel", type=_positive, default=2)
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (Debian: apt install valgrind)", file=sys.stderr)
        return 2
    names = ABLATION if args.ablation else tuple(n.strip() for n in args.configs.split(",") if n.strip())
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        print(f"unknown configuration(s): {', '.join(unknown)}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    jobs = [(name, i) for name in names for i in range(args.repeats)]
    results: dict[str, list[float]] = {name: [] for name in names}
    lock = threading.Lock()

    def run(job: tuple[str, int]) -> None:
        figure = measure(CONFIGS[job[0]], args.requests, args.connections, args.warmup)
        with lock:
            results[job[0]].append(figure)

    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        for done in [pool.submit(run, job) for job in jobs]:
            done.result()
    report(results, args, lambda name: CONFIGS[name].what)
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def report(results: dict[str, list[float]], args: argparse.Namespace, what: Callable[[str], str]) -> None:
    base = min(results["open"]) if results.get("open") else None
    print(f"instructions per request (callgrind, every thread, less the idle server's background work), "
          f"{args.requests} requests over {args.connections} connection(s) after {args.warmup} warm-up, "
          "instant upstream")
    for name, figures in results.items():
        best = min(figures)
        spread = f" (runs: {', '.join(f'{f / 1000:,.0f}k' for f in figures)})" if len(figures) > 1 else ""
        ratio = f"  {best / base * 100:5.1f}% of open" if base else ""
        print(f"  {name:18s} {best / 1000:9,.0f}k{ratio}{spread}  — {what(name)}")


if __name__ == "__main__":
    sys.exit(main())

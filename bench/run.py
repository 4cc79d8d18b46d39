"""The benchmark, in one command: direct vs cloverleaf vs the LiteLLM proxy, side by side.

``bench/run.sh`` (or ``.venv/bin/python -m bench.run``) starts the mock upstream, each
gateway pinned to core 0 (the mock and the load generator share core 1), and measures, for
concurrency 1, 16 and 64:

- ``instant``: non-streaming requests to an upstream that answers at once (pure overhead);
- ``d20``: non-streaming requests to an upstream that answers after 20 ms (the throughput
  target: at 64 concurrent requests, ≥ 80% of the direct call's requests/s);
- ``stream``: streams of 64 chunks 20 ms apart (time to first token).

Every cell runs ``--repeats`` times, targets interleaved (direct, cloverleaf, litellm,
direct, ...) so that a noisy neighbour hurts all of them alike; the table shows medians,
and "added" numbers are a target's median minus the direct call's. Then each gateway gets
a sustained run (``--sustain`` seconds, 5 minutes by default) at 48 non-streaming + 16
streaming concurrent clients while its resident memory is sampled every second.

Everything lands in ``bench/results/<timestamp>/``: ``cells.jsonl`` (every repetition),
``summary.json``, ``table.txt``, and each process's log and config.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import report
from .targets import (
    BENCH_DIR,
    NGINX,
    PYTHON,
    REPO,
    Target,
    cpu_seconds,
    litellm_available,
    portkey_available,
    rss_mib,
    start_cloverleaf,
    start_floor,
    start_litellm,
    start_mock,
    start_nginx,
    start_portkey,
    taskset,
)

SCENARIOS = {"instant": ("instant", False), "d20": ("d20", False), "stream": ("d20", True), "burst": ("d20", True)}
STREAM_CHUNKS = 64  # content chunks per stream from the mock
GATEWAY_CORE = "0"
LOAD_CORE = "1"
#: cloverleaf targets: name -> start_cloverleaf keywords (bench.variants flags, serve flags, governed, granian)
CLOVERLEAF_TARGETS: dict[str, dict[str, Any]] = {
    "cloverleaf": {},
    "cloverleaf-governed": {"governed": True},
    "cloverleaf-governed-otel": {"governed": True, "telemetry": True},
    "cloverleaf-governed-cache": {"governed": True, "cache": True},
    "cloverleaf-uvicorn": {"serve_args": ("--http", "uvicorn")},
    "cloverleaf-governed-uvicorn": {"governed": True, "serve_args": ("--http", "uvicorn")},
    "cloverleaf-granian": {"granian": True},
    "cloverleaf-governed-granian": {"governed": True, "granian": True},
    "cloverleaf-aiohttp": {"variant": ("--http-client", "aiohttp")},
    "cloverleaf-httpx": {"variant": ("--http-client", "httpx")},
    "cloverleaf-h11": {"variant": ("--uvicorn-http", "h11"), "serve_args": ("--http", "uvicorn")},
    "cloverleaf-notrace": {"variant": ("--no-trace-writes",)},
    "cloverleaf-switch5": {"variant": ("--switch-interval", "0.005")},
    "cloverleaf-switch05": {"variant": ("--switch-interval", "0.0005")},
    "cloverleaf-no-orjson": {"variant": ("--no-orjson",)},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short cells, 2 repeats, 15 s sustained run (~3 min)")
    p.add_argument("--targets", default="direct,cloverleaf,cloverleaf-governed,litellm,portkey",
                   help="comma list from: direct, floor (bench/floor_proxy.py), nginx, litellm, portkey, "
                        + ", ".join(CLOVERLEAF_TARGETS))
    p.add_argument("--scenarios", default="instant,d20,burst",
                   help="instant, d20 (non-stream), stream (N streams per client), burst (streams started "
                        "evenly over --burst-ramp)")
    p.add_argument("--concurrency", default="1,64,256", help="for instant, d20 and stream")
    p.add_argument("--burst-streams", type=int, default=256, help="streams in the burst scenario")
    p.add_argument("--burst-ramp", type=float, default=1.0, help="seconds over which the burst's streams start")
    p.add_argument("--sustain-targets", default=None,
                   help="gateways that get the sustained memory run (default: every gateway)")
    p.add_argument("--repeats", type=int, default=None, help="repetitions of each cell (default 3; quick 2)")
    p.add_argument("--duration", type=float, default=None, help="measured seconds per non-stream cell (5; quick 1)")
    p.add_argument("--warmup", type=float, default=None, help="unmeasured seconds before each cell (1; quick 0.3)")
    p.add_argument("--streams", type=int, default=None, help="measured streams per client per cell (3; quick 1)")
    p.add_argument("--sustain", type=float, default=None, help="seconds of the sustained memory run (300; quick 15)")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument("--out", default=None, help="results directory (default bench/results/<timestamp>)")
    args = p.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (2 if quick else 3)
    args.duration = args.duration if args.duration is not None else (1.0 if quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if quick else 1.0)
    args.streams = args.streams or (1 if quick else 3)
    args.sustain = args.sustain if args.sustain is not None else (15.0 if quick else 300.0)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")
    args.sustain_targets = (args.targets if args.sustain_targets is None
                            else [t.strip() for t in args.sustain_targets.split(",") if t.strip()])
    return args


def loadgen(target: Target, scenario: str, concurrency: int, args: argparse.Namespace, *,
            duration: float | None = None, core: str | None = LOAD_CORE, per_worker: int | None = None,
            max_seconds: float | None = None) -> dict[str, Any]:
    upstream, stream = SCENARIOS[scenario]
    url, model = target.endpoints[upstream]
    cmd = [*taskset(core), PYTHON, "-m", "bench.loadgen", "--url", url, "--model", model,
           "--api-key", target.api_key, "--concurrency", str(concurrency)]
    for header in target.headers.get(upstream, ()):
        cmd += ["--header", header]
    if scenario == "burst":  # one stream per connection, started evenly over the ramp, checked whole
        cmd += ["--stream", "--per-worker", "1", "--warm-count", "0", "--ramp", str(args.burst_ramp),
                "--expect-chunks", str(STREAM_CHUNKS), "--max-seconds", str(args.burst_ramp + 30)]
    elif stream:
        per_worker = per_worker or args.streams
        cmd += ["--stream", "--per-worker", str(per_worker), "--warm-count", "1",
                "--max-seconds", str(max_seconds or 5 + 2.5 * (per_worker + 1))]
    else:
        cmd += ["--duration", str(duration or args.duration), "--warmup", str(args.warmup)]
    done = subprocess.run(cmd, capture_output=True, cwd=REPO, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(done.stdout)


def measure_cell(target: Target, scenario: str, concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    pid = target.pid if target.name != "direct" else None
    cpu0 = cpu_seconds(pid) if pid else None
    out = loadgen(target, scenario, concurrency, args, core=None if args.no_pin else LOAD_CORE)
    if pid:
        # CPU the gateway spent per answered request, warmup included on both sides.
        out["gateway_cpu_s"] = cpu_seconds(pid) - (cpu0 or 0.0)
        out["gateway_rss_mib"] = rss_mib(pid)
        if SCENARIOS[scenario][1] and out.get("completed_all"):
            out["cpu_us_per_chunk"] = out["gateway_cpu_s"] * 1e6 / (out["completed_all"] * STREAM_CHUNKS)
    return out


def sustained(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """48 non-stream + 16 stream clients for ``args.sustain`` s; RSS sampled every second."""
    pid = target.pid
    assert pid is not None
    time.sleep(2.0)
    before = rss_mib(pid)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(1.0):
            samples.append((time.monotonic() - t0, rss_mib(pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    core = None if args.no_pin else LOAD_CORE
    results: dict[str, Any] = {}

    def run_stream() -> None:
        results["stream"] = loadgen(target, "stream", 16, args, core=core, per_worker=100000,
                                    max_seconds=args.sustain)

    streamer = threading.Thread(target=run_stream)
    streamer.start()
    results["d20"] = loadgen(target, "d20", 48, args, core=core, duration=args.sustain)
    streamer.join()
    stop.set()
    sampler.join()
    right_after = rss_mib(pid)
    time.sleep(5.0)
    after = rss_mib(pid)
    during = [r for _, r in samples]
    half = [r for t, r in samples if t >= args.sustain / 2]
    quarter = [r for t, r in samples if t >= args.sustain / 4]
    return {"rss_before_mib": before, "rss_during_median_mib": statistics.median(during) if during else None,
            "rss_during_max_mib": max(during) if during else None, "rss_right_after_mib": right_after,
            "rss_after_idle_mib": after,
            # growth over the second half of the run: the leak signal (warm-up growth excluded)
            "rss_growth_second_half_mib": (half[-1] - quarter[0]) if half and quarter else None,
            "samples": samples, "load": results}


def environment() -> dict[str, Any]:
    def version(python: str, module: str) -> str | None:
        r = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version('{module}'))"],
                           capture_output=True, text=True)
        return r.stdout.strip() or None

    lite = str(BENCH_DIR / ".venv-litellm" / "bin" / "python")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=REPO)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {
        "python": platform.python_version(), "cpu": cpu, "cores": os.cpu_count(),
        "commit": commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else ""),
        "packages": {m: version(PYTHON, m) for m in ("httpx", "aiohttp", "uvicorn", "uvloop", "httptools",
                                                     "starlette", "orjson")},
        "litellm": version(lite, "litellm") if litellm_available() else None,
    }


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so that the targets are stopped on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out).resolve() if args.out else BENCH_DIR / "results" / stamp  # the gateways run elsewhere
    run_dir.mkdir(parents=True, exist_ok=True)
    gw_core = None if args.no_pin else GATEWAY_CORE
    load_core = None if args.no_pin else LOAD_CORE
    if "litellm" in args.targets and not litellm_available():
        print("litellm: bench/.venv-litellm is missing (bench/run.sh creates it); skipping LiteLLM", file=sys.stderr)
        args.targets.remove("litellm")
    if "portkey" in args.targets and not portkey_available():
        print("portkey: bench/.venv-portkey is missing (bench/run.sh installs it with npm); skipping Portkey",
              file=sys.stderr)
        args.targets.remove("portkey")
    if "nginx" in args.targets and not NGINX.exists():
        print("nginx: /usr/sbin/nginx is missing (apt-get install nginx-light); skipping nginx", file=sys.stderr)
        args.targets.remove("nginx")
    env = environment()
    print(f"results -> {run_dir}\n{json.dumps(env)}", flush=True)
    targets: dict[str, Target] = {}
    summary: dict[str, Any] = {"args": {k: v for k, v in vars(args).items()}, "environment": env}
    try:
        mock = start_mock(run_dir, load_core)
        targets["direct"] = mock
        for name in args.targets:
            if name in CLOVERLEAF_TARGETS:
                targets[name] = start_cloverleaf(mock, run_dir, gw_core, name=name, **CLOVERLEAF_TARGETS[name])
            elif name == "litellm":
                targets[name] = start_litellm(mock, run_dir, gw_core)
            elif name == "portkey":
                targets[name] = start_portkey(mock, run_dir, gw_core)
            elif name == "floor":
                targets[name] = start_floor(mock, run_dir, gw_core)
            elif name == "nginx":
                targets[name] = start_nginx(mock, run_dir, gw_core)
            elif name != "direct":
                raise SystemExit(f"unknown target {name!r}")
        summary["rss_at_start_mib"] = {n: rss_mib(t.pid) for n, t in targets.items() if n != "direct" and t.pid}
        cells: list[dict[str, Any]] = []
        with (run_dir / "cells.jsonl").open("w") as log:
            for scenario in args.scenarios:
                for conc in ([args.burst_streams] if scenario == "burst" else args.concurrency):
                    for rep in range(args.repeats):
                        for name, target in targets.items():
                            out = measure_cell(target, scenario, conc, args)
                            row = {"scenario": scenario, "concurrency": conc, "target": name, "repeat": rep, **out}
                            cells.append(row)
                            log.write(json.dumps(row) + "\n")
                            log.flush()
                            print(report.progress_line(row), flush=True)
        summary["cells"] = report.aggregate(cells, list(targets))
        summary["memory"] = {}
        if args.sustain > 0:
            for name, target in targets.items():
                if name == "direct" or name not in args.sustain_targets:
                    continue
                print(f"sustained run: {name}, {args.sustain:.0f} s ...", flush=True)
                summary["memory"][name] = sustained(target, args)
    finally:
        for target in reversed(list(targets.values())):
            target.stop()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    text = report.render(summary)
    (run_dir / "table.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

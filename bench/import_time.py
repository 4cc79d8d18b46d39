"""Import cost of `cloverleaf` vs `openai` (and `litellm` if installed), by `python -X importtime`.

Runs each import N times in fresh interpreters, alternating, and prints the median
cumulative time of the top-level module in milliseconds plus the ratio.

    .venv/bin/python bench/import_time.py [-n 15] [--litellm-python bench/.venv-litellm/bin/python]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys


def import_ms(python: str, module: str) -> float:
    err = subprocess.run([python, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True,
                         check=True).stderr
    # the largest cumulative figure for the module's own line (a package may appear twice)
    times = [int(parts[1]) for parts in ([p.strip() for p in line.split("|")] for line in err.splitlines())
             if len(parts) == 3 and parts[2] == module and parts[1].isdigit()]
    if not times:
        raise RuntimeError(f"no importtime line for {module}")
    return max(times) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--litellm-python", help="a python that has litellm installed")
    args = ap.parse_args()
    targets = [(sys.executable, "cloverleaf"), (sys.executable, "openai")]
    if args.litellm_python:
        targets.append((args.litellm_python, "litellm"))
    samples: dict[str, list[float]] = {m: [] for _, m in targets}
    for _ in range(args.n):
        for py, mod in targets:
            samples[mod].append(import_ms(py, mod))
    med = {m: statistics.median(v) for m, v in samples.items()}
    for m, v in med.items():
        print(f"{m:<11} median {v:8.1f} ms  (min {min(samples[m]):.1f}, max {max(samples[m]):.1f}, n={args.n})")
    print(f"cloverleaf / openai = {med['cloverleaf'] / med['openai']:.3f}")


if __name__ == "__main__":
    main()
